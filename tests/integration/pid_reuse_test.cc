// No signal by bare pid (issue 14): upperd never signals a stranger that got
// a recycled pid. upperd runs in fork mode as PID 1 of its own pid
// namespace; a fork-mode connection's child (namespace pid P) ends while the
// fork server is killed or stopped at `fork_server.after_peek` (it saw the
// exit with waitid(WNOWAIT) and has not yet released the slot). Then a DECOY
// is made inside upperd's namespace with exactly pid P (setns + clone3 with
// set_tid), and the test checks that neither `close <id>` nor the SIGTERM
// drain signals it.
//
// How this fails under the old order (waitpid, then release the slot): the
// fork server reaps P first, so P is free while the slot still names P. If
// the fork server dies (or stalls) between the reap and the release, the
// slot stays live with pid P; the decoy takes P; `close <id>` then finds the
// slot and sends kill(P, SIGTERM) to the decoy (instead of NOT_FOUND), and
// the drain SIGTERMs every live fork-mode slot's pid, the decoy again. The
// decoy blocks every signal and records each it receives, so either shows
// up as a recorded SIGTERM. The stop variant also checks the invariant
// itself: while the fork server is stopped after the peek, P is still an
// unreaped zombie, so clone3 with set_tid = P fails with EEXIST (under the
// old order it would succeed: P would already be free while the slot holds
// it).
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/unique_fd.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/proc.h"
#include "tests/support/subprocess.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

using admin::v1::ServerStatus;

constexpr absl::Duration kDrainTimeout = absl::Milliseconds(500);
// README, "Drain": upperd exits within --drain_timeout + 5 s.
constexpr absl::Duration kExitBound = absl::Seconds(5);

// A process of the test, inside upperd's pid namespace with a chosen pid,
// that blocks every signal and writes the number of each one it receives to
// a pipe the test reads. The destructor SIGKILLs and reaps it.
class Decoy {
 public:
  // The decoy with namespace pid `ns_pid` in the pid namespace of host pid
  // `init`, or nullptr and the errno of setns or clone3 in `*err` (EEXIST:
  // the pid is taken).
  static std::unique_ptr<Decoy> Start(pid_t init, pid_t ns_pid, int* err);
  ~Decoy() { End(); }

  pid_t pid() const { return pid_; }
  // Signal numbers recorded so far (non-blocking).
  std::string Recorded();
  // Waits for the decoy to exit on its own (e.g. the namespace's teardown);
  // its wait status, or nullopt (then it was SIGKILLed and reaped).
  std::optional<int> WaitExit(absl::Duration timeout);
  // SIGKILL and reap, if still ours.
  void End();

 private:
  Decoy(pid_t pid, UniqueFd record) : pid_(pid), record_(std::move(record)) {}
  pid_t pid_;
  UniqueFd record_;
  std::string recorded_;
};

// Only async-signal-safe calls: the decoy is a clone of a threaded process.
[[noreturn]] void DecoyMain(int record_fd) {
  sigset_t all;
  sigfillset(&all);  // already blocked: inherited from the cloning thread
  for (;;) {
    siginfo_t info;
    const int signo = sigwaitinfo(&all, &info);
    if (signo > 0) {
      const unsigned char byte = static_cast<unsigned char>(signo);
      (void)!write(record_fd, &byte, 1);
    }
  }
}

// setns(CLONE_NEWPID) changes the pid namespace of this thread's future
// children only, so a thread of its own does it and the clone3, then ends.
// Returns the decoy's host pid or -errno.
pid_t CloneIntoNamespace(pid_t init, pid_t ns_pid, int record_fd) {
  pid_t result = -EINVAL;
  std::thread cloner([&] {
    UniqueFd ns(open(absl::StrCat("/proc/", init, "/ns/pid").c_str(),
                     O_RDONLY | O_CLOEXEC));
    if (!ns || setns(ns.get(), CLONE_NEWPID) != 0) {
      result = -errno;
      return;
    }
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);  // the decoy starts blocked
    pid_t tid[1] = {ns_pid};
    clone_args args{};
    args.exit_signal = SIGCHLD;
    args.set_tid = reinterpret_cast<uintptr_t>(tid);
    args.set_tid_size = 1;
    const long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid == 0) DecoyMain(record_fd);
    result = pid > 0 ? static_cast<pid_t>(pid) : -errno;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  });
  cloner.join();
  return result;
}

std::unique_ptr<Decoy> Decoy::Start(pid_t init, pid_t ns_pid, int* err) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    *err = errno;
    return nullptr;
  }
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  const pid_t pid = CloneIntoNamespace(init, ns_pid, write_end.get());
  if (pid < 0) {
    *err = -pid;
    return nullptr;
  }
  *err = 0;
  return std::unique_ptr<Decoy>(new Decoy(pid, std::move(read_end)));
}

std::string Decoy::Recorded() {
  char buf[64];
  ssize_t n;
  while ((n = read(record_.get(), buf, sizeof(buf))) > 0) {
    recorded_.append(buf, static_cast<size_t>(n));
  }
  std::string names;
  for (unsigned char signo : recorded_) {
    absl::StrAppend(&names, names.empty() ? "" : ",", strsignal(signo));
  }
  return names;
}

std::optional<int> Decoy::WaitExit(absl::Duration timeout) {
  int status = 0;
  const bool exited = Eventually(
      [&] { return pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_; },
      timeout);
  if (!exited) return std::nullopt;
  pid_ = -1;
  return status;
}

void Decoy::End() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

// The namespace pid (last NSpid entry) of host pid `pid`, or 0.
pid_t NamespacePid(pid_t pid) {
  const std::optional<std::string> status =
      ReadProcFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status) return 0;
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (!absl::ConsumePrefix(&line, "NSpid:")) continue;
    const std::vector<absl::string_view> ids =
        absl::StrSplit(line, '\t', absl::SkipWhitespace());
    int value = 0;
    return !ids.empty() && absl::SimpleAtoi(ids.back(), &value) ? value : 0;
  }
  return 0;
}

class PidReuse : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    // set_tid needs root too (CAP_SYS_ADMIN over the namespace).
    absl::StatusOr<std::vector<std::string>> launcher = PidNamespaceLauncher();
    if (!launcher.ok()) GTEST_SKIP() << launcher.status();
    absl::StatusOr<std::string> dir = MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
        UpperdProcess::Start(
            {.args = {"--mode=fork", "--max_connections=4",
                      "--drain_timeout=500ms"},
             .env = {{"UPPER_FAULT_POINT",
                      absl::StrCat("fork_server.after_peek:", GetParam())},
                     {"UPPER_FAULT_POINT_ONCE_DIR", *dir}},
             .launcher = *launcher});
    ASSERT_TRUE(started.ok()) << started.status();
    upperd_ = *std::move(started);
    ASSERT_TRUE(
        Eventually([&] { return (init_ = NamespaceInit(upperd_->pid())) > 0; },
                   absl::Seconds(5)));
    absl::StatusOr<uint16_t> port = upperd_->Port("admin");
    ASSERT_TRUE(port.ok()) << port.status();
    stub_ = admin::v1::AdminService::NewStub(AdminChannel(*port));
  }

  void TearDown() override {
    if (upperd_ != nullptr && upperd_->running()) {
      kill(upperd_->pid(), SIGKILL);
      (void)upperd_->WaitExit(absl::Seconds(5));
    }
  }

  grpc::StatusCode Close(uint64_t id) {
    return CloseConnectionCode(*stub_, id);
  }

  std::unique_ptr<UpperdProcess> upperd_;
  pid_t init_ = 0;
  std::unique_ptr<admin::v1::AdminService::Stub> stub_;
};

TEST_P(PidReuse, ADecoyWithTheEndedChildsPidIsNeverSignalled) {
  const bool stop = std::string(GetParam()) == "stop";
  absl::StatusOr<UniqueFd> client = Connect(upperd_->data_port());
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_EQ(send(client->get(), "p", 1, MSG_NOSIGNAL), 1);
  ASSERT_EQ(ReadExactly(client->get(), 1, absl::Now() + absl::Seconds(5))
                .value_or(""),
            "P");
  uint64_t id = 0;
  pid_t child = 0;  // upperd's view: the namespace pid
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<std::vector<admin::v1::Connection>> list =
            ListConnections(*stub_);
        if (!list.ok() || list->size() != 1) return false;
        id = (*list)[0].id();
        child = (*list)[0].worker_pid();
        return child > 1;
      },
      absl::Seconds(5)));
  // ListConnections reports the pid in upperd's namespace: one of its
  // descendants has exactly that namespace pid.
  bool seen = false;
  for (pid_t pid : Descendants(init_)) seen |= NamespacePid(pid) == child;
  EXPECT_TRUE(seen) << "no descendant of upperd with namespace pid " << child;

  client->Reset();  // the child serves EOF and exits
  if (stop) {
    pid_t stopped = -1;
    ASSERT_TRUE(
        Eventually([&] { return (stopped = StoppedDescendant(init_)) > 0; },
                   absl::Seconds(5)))
        << upperd_->Log();
    // The slot is held, and so is the pid: still an unreaped zombie.
    const ServerStatus held = StatusWhen(
        *stub_,
        [](const ServerStatus& s) { return s.active_connections() == 1; },
        absl::Seconds(1));
    EXPECT_EQ(held.active_connections(), 1u) << held.ShortDebugString();
    int err = 0;
    const std::unique_ptr<Decoy> early = Decoy::Start(init_, child, &err);
    if (early == nullptr && err != EEXIST) {
      kill(stopped, SIGCONT);
      GTEST_SKIP() << "clone3 set_tid unsupported: " << std::strerror(err);
    }
    EXPECT_EQ(early, nullptr)
        << "pid " << child << " free while its slot is held";
    EXPECT_EQ(err, EEXIST) << std::strerror(err);
    ASSERT_EQ(kill(stopped, SIGCONT), 0);
  } else {
    ASSERT_TRUE(upperd_->WaitForLog("fork_server_died", absl::Seconds(5)).ok())
        << upperd_->Log();
  }
  const ServerStatus settled = StatusWhen(*stub_, [](const ServerStatus& s) {
    return s.active_connections() == 0;
  });
  ASSERT_EQ(settled.active_connections(), 0u) << settled.ShortDebugString();
  ASSERT_TRUE(Eventually([&] { return ZombieDescendants(init_).empty(); },
                         absl::Seconds(5)));

  // The pid is free now; the decoy takes it.
  int err = 0;
  const std::unique_ptr<Decoy> started = Decoy::Start(init_, child, &err);
  if (started == nullptr) {
    if (err == ENOSYS || err == EINVAL || err == EPERM) {
      GTEST_SKIP() << "clone3 set_tid unsupported: " << std::strerror(err);
    }
    FAIL() << "no decoy with pid " << child << ": " << std::strerror(err);
  }
  Decoy& decoy = *started;
  ASSERT_EQ(NamespacePid(decoy.pid()), child);
  // The recorder works: a signal of our own is seen.
  const std::string control = strsignal(SIGUSR2);
  ASSERT_EQ(kill(decoy.pid(), SIGUSR2), 0);
  ASSERT_TRUE(
      Eventually([&] { return decoy.Recorded() == control; }, absl::Seconds(5)))
      << decoy.Recorded();

  EXPECT_EQ(Close(id), grpc::StatusCode::NOT_FOUND);
  // Give a stray signal time to land before looking.
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(decoy.Recorded(), control) << "upperd signalled pid " << child;

  // The drain: upperd exits 0, and the decoy saw no SIGTERM before the
  // namespace's teardown SIGKILLed it (which it cannot record).
  // The namespace's init finishes exiting only once every process in it is
  // reaped, and the decoy is ours to reap: reap it first.
  ASSERT_EQ(kill(init_, SIGTERM), 0);
  const std::optional<int> status = decoy.WaitExit(kDrainTimeout + kExitBound);
  ASSERT_TRUE(status.has_value()) << "the decoy outlived its namespace";
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << *status;
  absl::StatusOr<int> code = upperd_->WaitExit(absl::Seconds(5));
  ASSERT_TRUE(code.ok()) << code.status() << upperd_->Log();
  EXPECT_EQ(*code, 0) << upperd_->Log();
  EXPECT_EQ(decoy.Recorded(), control) << "upperd signalled pid " << child;
}

INSTANTIATE_TEST_SUITE_P(ForkServerAfterPeek, PidReuse,
                         ::testing::Values("kill", "stop"),
                         [](const auto& info) {
                           return std::string(info.param);
                         });

}  // namespace
}  // namespace upper::testing
