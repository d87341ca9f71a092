// The admin plane runs at --admin_nice (issue 12, rapid reset): every thread
// gRPC creates inherits the nice value of the thread that started the admin
// server (server/admin/admin_thread_priority.h), while the event loop, the
// data plane's workers, the metrics server, the fork server and its children
// keep upperd's own. Read from /proc/<pid>/task/*/stat (field 19: nice) of a
// real upperd that has served data connections and admin calls.
//
// gRPC 1.51 names its threads (comm, 15 bytes); seen on a running upperd:
// default-executo(r), resolver-execut(or), grpc_global_tim(er),
// event_engine (2), timer_manager, nexting_thread (2), grpcpp_sync_ser(ver)
// (2 or more). upperd names none of its own (event loop, workers, metrics),
// so theirs read "upperd"; the fork server and its children are
// "upperd-fork".
#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/proc.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

struct Task {
  std::string comm;
  int nice = 0;
};

// /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat: comm (in parentheses,
// may hold spaces) and nice (field 19, the 17th after the comm).
std::optional<Task> ReadTask(const std::string& stat_path) {
  std::optional<std::string> stat = ReadProcFile(stat_path);
  if (!stat) return std::nullopt;
  const size_t open = stat->find('(');
  const size_t close = stat->rfind(')');
  if (open == std::string::npos || close == std::string::npos) {
    return std::nullopt;
  }
  Task task;
  task.comm = stat->substr(open + 1, close - open - 1);
  std::vector<std::string> fields =
      absl::StrSplit(stat->substr(close + 2), ' ', absl::SkipEmpty());
  if (fields.size() < 17 || !absl::SimpleAtoi(fields[16], &task.nice)) {
    return std::nullopt;
  }
  return task;
}

// Every thread of `pid` by tid.
std::map<pid_t, Task> Threads(pid_t pid) {
  std::map<pid_t, Task> threads;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(
           absl::StrCat("/proc/", pid, "/task"), error)) {
    pid_t tid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &tid)) continue;
    if (std::optional<Task> task =
            ReadTask(absl::StrCat("/proc/", pid, "/task/", tid, "/stat"))) {
      threads[tid] = *task;
    }
  }
  return threads;
}

// A thread gRPC has just created runs at the admin nice it inherited but
// still carries upperd's name until it names itself: read it again, for up
// to a second, until it has (a data-plane thread keeps the name, and fails).
Task SettledTask(pid_t pid, pid_t tid, Task task) {
  const std::string stat = absl::StrCat("/proc/", pid, "/task/", tid, "/stat");
  for (int i = 0; i < 100 && task.comm == "upperd"; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
    std::optional<Task> again = ReadTask(stat);
    if (!again) break;  // gone meanwhile
    task = *again;
  }
  return task;
}

void ExpectRoundTrip(int fd) {
  ASSERT_EQ(send(fd, "nice", 4, MSG_NOSIGNAL), 4);
  absl::StatusOr<std::string> back =
      ReadExactly(fd, 4, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, "NICE");
}

// Starts upperd with `args`, opens two data connections (so that workers
// exist: threads or fork children), makes admin calls of every kind (so
// that gRPC's sync server has grown its pool) and checks every thread's
// nice value, and that of every descendant process.
void ExpectNices(const std::vector<std::string>& args, int admin_increment) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start({.args = args});
  ASSERT_TRUE(upperd.ok()) << upperd.status();
  absl::StatusOr<uint16_t> admin_port = (*upperd)->Port("admin");
  ASSERT_TRUE(admin_port.ok()) << admin_port.status();
  std::vector<UniqueFd> data;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect((*upperd)->data_port());
    ASSERT_TRUE(fd.ok()) << fd.status();
    ExpectRoundTrip(fd->get());
    data.push_back(*std::move(fd));
  }
  std::shared_ptr<grpc::Channel> channel = AdminChannel(*admin_port);
  auto stub = admin::v1::AdminService::NewStub(channel);
  ASSERT_TRUE(GetStatus(*stub).ok());
  absl::StatusOr<std::vector<admin::v1::Connection>> connections =
      ListConnections(*stub);
  ASSERT_TRUE(connections.ok()) << connections.status();
  ASSERT_TRUE(CheckHealth(*channel, "").ok());
  ASSERT_TRUE(ReflectionListServices(*channel).ok());

  const pid_t pid = (*upperd)->pid();
  const std::map<pid_t, Task> threads = Threads(pid);
  ASSERT_TRUE(threads.contains(pid));
  const int base = threads.at(pid).nice;
  const int admin = std::min(19, base + admin_increment);
  std::map<std::string, int> grpc_threads;
  for (auto [tid, task] : threads) {
    if (task.comm == "upperd" && task.nice != base) {
      task = SettledTask(pid, tid, task);
    }
    std::printf("tid %d %-16s nice %d\n", tid, task.comm.c_str(), task.nice);
    if (task.comm == "upperd") {
      EXPECT_EQ(task.nice, base) << "upperd's own thread " << tid;
    } else {
      ++grpc_threads[task.comm];
      EXPECT_EQ(task.nice, admin) << task.comm << " " << tid;
    }
  }
  // gRPC's pollers and timer manager exist once a call was served.
  EXPECT_TRUE(grpc_threads.contains("grpcpp_sync_ser"));
  EXPECT_TRUE(grpc_threads.contains("grpc_global_tim"));
  // Whoever serves a data connection runs at upperd's nice: a worker thread
  // (thread mode) or a fork child, and the fork server.
  for (const admin::v1::Connection& c : *connections) {
    const pid_t tid = c.worker_tid() != 0 ? c.worker_tid() : c.worker_pid();
    std::optional<Task> task =
        c.worker_tid() != 0 && c.worker_pid() == pid
            ? ReadTask(absl::StrCat("/proc/", pid, "/task/", tid, "/stat"))
            : ReadTask(absl::StrCat("/proc/", tid, "/stat"));
    ASSERT_TRUE(task.has_value()) << "worker " << tid;
    EXPECT_EQ(task->nice, base) << "worker " << tid << " " << task->comm;
  }
  for (pid_t child : Descendants(pid)) {
    std::optional<Task> task = ReadTask(absl::StrCat("/proc/", child, "/stat"));
    if (!task) continue;  // gone meanwhile
    std::printf("descendant %d %-16s nice %d\n", child, task->comm.c_str(),
                task->nice);
    EXPECT_EQ(task->nice, base) << task->comm << " " << child;
  }
}

TEST(AdminNice, GrpcThreadsRunAtTheAdminNiceAndTheDataPlaneAtUpperds) {
  ExpectNices({"--mode=thread"}, 10);
}

TEST(AdminNice, ForkServerAndChildrenKeepUpperdsNice) {
  ExpectNices({"--mode=fork"}, 10);
}

TEST(AdminNice, AnIncrementOfZeroLeavesEveryThreadAtUpperdsNice) {
  ExpectNices({"--mode=thread", "--admin_nice=0"}, 0);
}

TEST(AdminNice, TheIncrementIsSettableFromTheEnvironment) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start({.env = {{"UPPER_ADMIN_NICE", "5"}}});
  ASSERT_TRUE(upperd.ok()) << upperd.status();
  ASSERT_TRUE((*upperd)->Port("admin").ok());
  const std::map<pid_t, Task> threads = Threads((*upperd)->pid());
  const int base = threads.at((*upperd)->pid()).nice;
  int grpc = 0;
  for (const auto& [tid, task] : threads) {
    if (task.comm == "upperd") continue;
    ++grpc;
    EXPECT_EQ(task.nice, std::min(19, base + 5)) << task.comm;
  }
  EXPECT_GT(grpc, 0);
}

}  // namespace
}  // namespace upper::testing
