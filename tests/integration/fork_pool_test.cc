// Fork mode's pool of ready children (issue 16) against a real upperd: a
// burst grows the pool to at most --fork_spare_max idle children and it
// shrinks to --fork_spare_min after --fork_spare_timeout (the fork server's
// children back to that count); thousands of connections through one
// reused child each get exactly their own bytes back; a child serves at
// most --fork_child_max_connections; a crash ends only the connection its
// child serves; a close meant for a connection the child already finished
// never ends the next one; the drain sends idle children away at once; and
// the fork server killed in the pool's own windows (after a hand-off,
// before a "done" is released) leaves every count exact.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/final_totals.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/proc.h"
#include "tests/support/stop_cleanly.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

const std::string kIdle = "upper_workers{mode=\"fork\",state=\"idle\"}";
const std::string kBusy = "upper_workers{mode=\"fork\",state=\"busy\"}";
const std::string kSpawns = "upper_worker_spawns_total{mode=\"fork\"}";
std::string Exits(const std::string& reason) {
  return absl::StrCat("upper_worker_exits_total{mode=\"fork\",reason=\"",
                      reason, "\"}");
}

struct Server {
  std::unique_ptr<UpperdProcess> upperd;
  uint16_t metrics_port = 0;
  std::unique_ptr<admin::v1::AdminService::Stub> stub;
};

Server StartForkMode(std::vector<std::string> args,
                     std::map<std::string, std::string> env = {}) {
  args.push_back("--mode=fork");
  args.push_back("--drain_timeout=5s");
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start({.args = args, .env = env});
  EXPECT_TRUE(upperd.ok()) << upperd.status();
  if (!upperd.ok()) return {};
  absl::StatusOr<uint16_t> metrics = (*upperd)->Port("metrics");
  absl::StatusOr<uint16_t> admin = (*upperd)->Port("admin");
  EXPECT_TRUE(metrics.ok() && admin.ok());
  return {*std::move(upperd), metrics.value_or(0),
          admin::v1::AdminService::NewStub(AdminChannel(admin.value_or(0)))};
}

double Metric(uint16_t port, const std::string& series) {
  absl::StatusOr<Scrape> scrape = Scrape::Get(port);
  return scrape.ok() ? scrape->Value(series) : -1;
}

// The fork server: upperd's child.
pid_t ForkServerOf(pid_t upperd) {
  for (pid_t pid : Descendants(upperd)) {
    const std::optional<ProcStat> stat = ReadProcStat(pid);
    if (stat && stat->ppid == upperd) return pid;
  }
  return -1;
}

// The fork server's children (busy and idle), by /proc.
int CountChildren(pid_t upperd) {
  const pid_t server = ForkServerOf(upperd);
  int n = 0;
  for (pid_t pid : Descendants(upperd)) {
    const std::optional<ProcStat> stat = ReadProcStat(pid);
    if (stat && stat->ppid == server && stat->state != 'Z') ++n;
  }
  return n;
}

// Opens `n` connections at once and sees each served; the caller closes.
std::vector<UniqueFd> OpenServed(uint16_t port, int n) {
  std::vector<UniqueFd> fds;
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(port);
    EXPECT_TRUE(fd.ok()) << fd.status();
    if (fd.ok()) fds.push_back(*std::move(fd));
  }
  for (UniqueFd& fd : fds) {
    EXPECT_EQ(send(fd.get(), "q", 1, MSG_NOSIGNAL), 1);
    EXPECT_EQ(
        ReadExactly(fd.get(), 1, absl::Now() + absl::Seconds(10)).value_or(""),
        "Q");
  }
  return fds;
}

bool Served(int fd) {
  if (send(fd, "q", 1, MSG_NOSIGNAL) != 1) return false;
  absl::StatusOr<std::string> got =
      ReadExactly(fd, 1, absl::Now() + absl::Seconds(10));
  return got.ok() && *got == "Q";
}

// The pid of the child serving the only live connection, by ListConnections
// (once an earlier connection's release is done), or -1.
pid_t OnlyWorkerPid(admin::v1::AdminService::Stub& stub) {
  pid_t pid = -1;
  Eventually(
      [&] {
        absl::StatusOr<std::vector<admin::v1::Connection>> list =
            ListConnections(stub);
        pid = list.ok() && list->size() == 1 ? (*list)[0].worker_pid() : -1;
        return pid > 0;
      },
      absl::Seconds(5));
  return pid;
}

TEST(ForkPool, BurstGrowsAtMostToMaxIdleAndShrinksToMinAfterTimeout) {
  Server s = StartForkMode({"--fork_spare_min=2", "--fork_spare_max=8",
                            "--fork_spare_timeout=1s",
                            "--fork_child_max_connections=1000"});
  ASSERT_NE(s.upperd, nullptr);
  const pid_t upperd = s.upperd->pid();
  ASSERT_TRUE(
      Eventually([&] { return CountChildren(upperd) == 2; }, absl::Seconds(5)))
      << "the minimum is forked ahead of any connection";
  EXPECT_EQ(Metric(s.metrics_port, kIdle), 2);
  {
    std::vector<UniqueFd> burst = OpenServed(s.upperd->data_port(), 32);
    EXPECT_EQ(Metric(s.metrics_port, kBusy), 32);
    EXPECT_GE(CountChildren(upperd), 32);
  }  // all 32 close at once
  ASSERT_TRUE(Eventually([&] { return Metric(s.metrics_port, kBusy) == 0; },
                         absl::Seconds(10)));
  // Back in the pool up to the maximum; the rest sent away.
  ASSERT_TRUE(
      Eventually([&] { return CountChildren(upperd) <= 8; }, absl::Seconds(5)));
  EXPECT_LE(Metric(s.metrics_port, kIdle), 8);
  EXPECT_TRUE(Eventually(
      [&] { return Metric(s.metrics_port, Exits("pool_full")) >= 24; },
      absl::Seconds(5)));
  // Beyond the minimum they leave after 1 s idle; two stay.
  EXPECT_TRUE(Eventually([&] { return Metric(s.metrics_port, kIdle) == 2; },
                         absl::Seconds(5)));
  EXPECT_TRUE(
      Eventually([&] { return CountChildren(upperd) == 2; }, absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(Metric(s.metrics_port, kIdle), 2);
  EXPECT_EQ(CountChildren(upperd), 2);
  EXPECT_GE(Metric(s.metrics_port, Exits("idle_timeout")), 1);
  StopCleanly(*s.upperd);
}

TEST(ForkPool, NoByteOfOneConnectionIsReadableByTheNextInTheSameChild) {
  Server s = StartForkMode({"--fork_spare_min=1", "--fork_spare_max=1",
                            "--fork_spare_timeout=1h",
                            "--fork_child_max_connections=1000000"});
  ASSERT_NE(s.upperd, nullptr);
  constexpr int kConnections = 3000;
  for (int i = 0; i < kConnections; ++i) {
    // Long and short in turn, so a short one follows a long one in the
    // same child and would show any byte left in its buffer.
    const size_t size = (i % 2 == 0) ? 8192 + i % 977 : 1 + i % 61;
    const std::string payload = RandomPayload(size, 5000 + i);
    absl::StatusOr<std::string> reply =
        Exchange(s.upperd->data_port(), payload, 4096, i, absl::Seconds(10));
    ASSERT_TRUE(reply.ok()) << "connection " << i << ": " << reply.status();
    ASSERT_EQ(reply->size(), payload.size()) << "connection " << i;
    ASSERT_TRUE(*reply == ExpectedUpper(payload)) << "connection " << i;
  }
  // Sequential connections, one spare: the child was reused (a new one only
  // when a connection came before the last one's child was back).
  const double spawns = Metric(s.metrics_port, kSpawns);
  EXPECT_GE(spawns, 1);
  EXPECT_LT(spawns, kConnections / 2);
  StopCleanly(*s.upperd);
  EXPECT_EQ(FinalTotal(*s.upperd, "accepted"), uint64_t{kConnections});
  EXPECT_EQ(FinalTotal(*s.upperd, "active"), 0u);
  EXPECT_EQ(FinalTotal(*s.upperd, "worker_crashes"), 0u);
}

TEST(ForkPool, AChildServesAtMostMaxConnectionsThenIsReplaced) {
  Server s = StartForkMode({"--fork_spare_min=1", "--fork_spare_max=4",
                            "--fork_spare_timeout=1h",
                            "--fork_child_max_connections=5"});
  ASSERT_NE(s.upperd, nullptr);
  std::map<pid_t, int> served_by;
  for (int i = 0; i < 50; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(s.upperd->data_port());
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(Served(fd->get())) << i;
    ++served_by[OnlyWorkerPid(*s.stub)];
  }
  EXPECT_EQ(served_by.count(-1), 0u);
  // 50 connections, 5 each at most (so at least 10 children), and reused.
  EXPECT_GE(served_by.size(), 10u);
  int reused = 0;
  for (const auto& [pid, n] : served_by) {
    EXPECT_LE(n, 5) << "child " << pid;
    if (n > 1) ++reused;
  }
  EXPECT_GT(reused, 0);
  EXPECT_TRUE(Eventually(
      [&] { return Metric(s.metrics_port, Exits("max_connections")) >= 9; },
      absl::Seconds(5)));
  StopCleanly(*s.upperd);
  EXPECT_EQ(FinalTotal(*s.upperd, "accepted"), 50u);
  EXPECT_EQ(FinalTotal(*s.upperd, "worker_crashes"), 0u);
}

TEST(ForkPool, ACrashMidConnectionEndsOnlyThatConnectionAndIsReplaced) {
  Server s = StartForkMode({"--fork_spare_min=2", "--fork_spare_max=4",
                            "--fork_spare_timeout=1h",
                            "--fork_child_max_connections=1000"});
  ASSERT_NE(s.upperd, nullptr);
  // Both children have served before: the crash hits a reused child.
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(Exchange(s.upperd->data_port(), "warm", 4, i, absl::Seconds(5))
                  .value_or(""),
              "WARM");
  }
  absl::StatusOr<UniqueFd> a = Connect(s.upperd->data_port());
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(Served(a->get()));
  const pid_t a_child = OnlyWorkerPid(*s.stub);
  ASSERT_GT(a_child, 0);
  absl::StatusOr<UniqueFd> b = Connect(s.upperd->data_port());
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(Served(b->get()));
  // SIGKILL, as the OOM killer sends (a SIGSEGV from outside would be
  // reported by the sanitizers' handler as a fault of theirs).
  ASSERT_EQ(kill(a_child, SIGKILL), 0);
  // A ends, with an EOF or a reset (whichever the kernel sends for a dead
  // process's socket), and serves nothing more.
  (void)ReadUntilEof(a->get(), absl::Now() + absl::Seconds(5));
  EXPECT_FALSE(Served(a->get()));
  EXPECT_TRUE(Served(b->get())) << "the other child's connection lives on";
  EXPECT_TRUE(Eventually(
      [&] { return Metric(s.metrics_port, "upper_worker_crashes_total") == 1; },
      absl::Seconds(5)));
  // The pool is topped up again to its minimum, B's busy child counted
  // (it comes back), and serves.
  EXPECT_TRUE(Eventually([&] { return Metric(s.metrics_port, kIdle) >= 1; },
                         absl::Seconds(5)));
  EXPECT_EQ(Exchange(s.upperd->data_port(), "after", 5, 7, absl::Seconds(5))
                .value_or(""),
            "AFTER");
  b->Reset();
  a->Reset();
  StopCleanly(*s.upperd);
  EXPECT_EQ(FinalTotal(*s.upperd, "active"), 0u);
  EXPECT_EQ(FinalTotal(*s.upperd, "worker_crashes"), 1u);
}

// upperd's close names the connection (ChildCloseSignal with its tag): one
// that arrives after the child finished that connection and took the next
// is ignored; the next one's own close ends it, counted as asked.
TEST(ForkPool, ACloseMeantForAFinishedConnectionNeverEndsTheChildsNextOne) {
  Server s = StartForkMode({"--fork_spare_min=1", "--fork_spare_max=1",
                            "--fork_spare_timeout=1h",
                            "--fork_child_max_connections=1000"});
  ASSERT_NE(s.upperd, nullptr);
  absl::StatusOr<UniqueFd> a = Connect(s.upperd->data_port());
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(Served(a->get()));
  const pid_t child = OnlyWorkerPid(*s.stub);
  ASSERT_GT(child, 0);
  a->Reset();
  ASSERT_TRUE(Eventually([&] { return Metric(s.metrics_port, kIdle) == 1; },
                         absl::Seconds(5)));
  absl::StatusOr<UniqueFd> b = Connect(s.upperd->data_port());
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(Served(b->get()));
  ASSERT_EQ(OnlyWorkerPid(*s.stub), child) << "the same child serves B";
  // Stale closes: tags of no connection it serves now.
  for (uint64_t tag : {uint64_t{0}, uint64_t{1}, ~uint64_t{0} - 7}) {
    sigval value;
    value.sival_ptr = reinterpret_cast<void*>(static_cast<uintptr_t>(tag));
    ASSERT_EQ(sigqueue(child, SIGRTMIN, value), 0);
  }
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_TRUE(Served(b->get())) << "B survives closes meant for others";
  // B's own close, by admin, ends it.
  const uint64_t id = OnlyLiveConnectionId(*s.stub);
  ASSERT_NE(id, 0u);
  ASSERT_EQ(CloseConnectionCode(*s.stub, id), grpc::StatusCode::OK);
  EXPECT_TRUE(ReadUntilEof(b->get(), absl::Now() + absl::Seconds(5)).ok());
  b->Reset();
  StopCleanly(*s.upperd);
  EXPECT_EQ(FinalTotal(*s.upperd, "accepted"), 2u);
  EXPECT_EQ(FinalTotal(*s.upperd, "worker_crashes"), 0u);
}

TEST(ForkPool, SigtermSendsIdleChildrenAwayAtOnceAndDrainsBusyOnes) {
  Server s = StartForkMode({"--fork_spare_min=3", "--fork_spare_max=8",
                            "--fork_spare_timeout=1h",
                            "--fork_child_max_connections=1000"});
  ASSERT_NE(s.upperd, nullptr);
  std::vector<UniqueFd> fds = OpenServed(s.upperd->data_port(), 4);
  ASSERT_EQ(fds.size(), 4u);
  fds.resize(2);  // two end and wait in the pool; two stay busy
  ASSERT_TRUE(Eventually([&] { return Metric(s.metrics_port, kIdle) >= 2; },
                         absl::Seconds(10)));
  const pid_t upperd = s.upperd->pid();
  ASSERT_GE(CountChildren(upperd), 4);
  s.upperd->Signal(SIGTERM);
  ASSERT_TRUE(s.upperd->WaitForLog("draining", absl::Seconds(10)).ok());
  // Idle children leave at once; the two busy ones are served through the
  // drain's grace, then closed.
  EXPECT_TRUE(
      Eventually([&] { return CountChildren(upperd) <= 2; }, absl::Seconds(2)))
      << CountChildren(upperd) << " children";
  for (UniqueFd& fd : fds) EXPECT_TRUE(Served(fd.get()));
  EXPECT_TRUE(
      Eventually([&] { return Metric(s.metrics_port, Exits("shutdown")) >= 2; },
                 absl::Seconds(2)));
  fds.clear();
  absl::StatusOr<int> code = s.upperd->WaitExit(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status() << "\n" << s.upperd->Log();
  EXPECT_EQ(*code, 0) << s.upperd->Log();
  EXPECT_EQ(FinalTotal(*s.upperd, "active"), 0u);
  EXPECT_EQ(FinalTotal(*s.upperd, "accepted"), 4u);
  EXPECT_EQ(FinalTotal(*s.upperd, "worker_crashes"), 0u);
}

// The fork server killed while a pool child serves: the child, an orphan
// of upperd now, goes on serving its connection to the end, then exits
// (its "done" has no one to go to), and upperd releases the slot once.
TEST(ForkPool, ABusyChildOutlivesItsForkServerAndIsReleasedOnce) {
  Server s = StartForkMode({"--fork_spare_min=2", "--fork_spare_max=4",
                            "--fork_spare_timeout=1h",
                            "--fork_child_max_connections=1000"});
  ASSERT_NE(s.upperd, nullptr);
  ASSERT_TRUE(Eventually([&] { return Metric(s.metrics_port, kIdle) == 2; },
                         absl::Seconds(5)));
  absl::StatusOr<UniqueFd> a = Connect(s.upperd->data_port());
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(Served(a->get()));
  const pid_t child = OnlyWorkerPid(*s.stub);
  ASSERT_GT(child, 0);
  const pid_t server = ForkServerOf(s.upperd->pid());
  ASSERT_GT(server, 0);
  ASSERT_EQ(kill(server, SIGKILL), 0);
  ASSERT_TRUE(s.upperd->WaitForLog("fork_server_died", absl::Seconds(5)).ok());
  ASSERT_TRUE(
      s.upperd->WaitForLog("fork_server_restarted", absl::Seconds(5)).ok());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Served(a->get()));
  EXPECT_EQ(OnlyWorkerPid(*s.stub), child);
  a->Reset();
  EXPECT_TRUE(Eventually([&] { return Metric(s.metrics_port, kBusy) == 0; },
                         absl::Seconds(5)));
  EXPECT_TRUE(Eventually(
      [&] {
        const std::optional<ProcStat> stat = ReadProcStat(child);
        return !stat || stat->ppid != s.upperd->pid();
      },
      absl::Seconds(5)))
      << "the orphan exits and is reaped";
  EXPECT_EQ(Exchange(s.upperd->data_port(), "next", 4, 3, absl::Seconds(5))
                .value_or(""),
            "NEXT");
  StopCleanly(*s.upperd);
  EXPECT_EQ(FinalTotal(*s.upperd, "accepted"), 2u);
  EXPECT_EQ(FinalTotal(*s.upperd, "closed"), 2u);
  EXPECT_EQ(FinalTotal(*s.upperd, "active"), 0u);
  EXPECT_EQ(FinalTotal(*s.upperd, "worker_crashes"), 0u);
  EXPECT_TRUE(ZombieDescendants(s.upperd->pid()).empty());
}

// The fork server killed in the pool's windows, fault points firing once:
// every connection counted accepted once and closed once, nothing left.
void ExpectPoolFaultCountedOnce(const std::string& fault) {
  absl::StatusOr<std::string> dir = MakeTempDir();
  ASSERT_TRUE(dir.ok());
  Server s = StartForkMode(
      {"--fork_spare_min=1", "--fork_spare_max=2", "--fork_spare_timeout=1h",
       "--fork_child_max_connections=1000", "--max_connections=2"},
      {{"UPPER_FAULT_POINT", fault}, {"UPPER_FAULT_POINT_ONCE_DIR", *dir}});
  ASSERT_NE(s.upperd, nullptr);
  // Each connection goes to an idle child (waited for): the fault fires in
  // the first hand-off or the first "done". What the client saw is what is
  // counted.
  uint64_t served = 0;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(Eventually([&] { return Metric(s.metrics_port, kIdle) >= 1; },
                           absl::Seconds(5)));
    absl::StatusOr<std::string> reply =
        Exchange(s.upperd->data_port(), "abc", 3, i, absl::Seconds(10));
    if (reply.ok() && !reply->empty()) {
      EXPECT_EQ(*reply, "ABC");
      ++served;
    }
  }
  ASSERT_TRUE(s.upperd->WaitForLog("fork_server_died", absl::Seconds(5)).ok())
      << s.upperd->Log();
  ASSERT_TRUE(
      s.upperd->WaitForLog("fork_server_restarted", absl::Seconds(5)).ok())
      << s.upperd->Log();
  EXPECT_TRUE(Eventually([&] { return Metric(s.metrics_port, kBusy) == 0; },
                         absl::Seconds(10)))
      << s.upperd->Log();
  EXPECT_EQ(Exchange(s.upperd->data_port(), "after", 5, 9, absl::Seconds(10))
                .value_or(""),
            "AFTER");
  StopCleanly(*s.upperd);
  const uint64_t accepted = FinalTotal(*s.upperd, "accepted").value_or(0);
  EXPECT_GE(accepted, served + 1);
  EXPECT_EQ(FinalTotal(*s.upperd, "closed"), accepted) << s.upperd->Log();
  EXPECT_EQ(FinalTotal(*s.upperd, "active"), 0u);
  EXPECT_EQ(FinalTotal(*s.upperd, "worker_crashes"), 0u);
  EXPECT_TRUE(ZombieDescendants(s.upperd->pid()).empty());
}

TEST(ForkPoolFault, DeathRightAfterAHandOffCountsTheConnectionOnce) {
  ExpectPoolFaultCountedOnce("fork_server.after_handoff:kill");
}

TEST(ForkPoolFault, DeathBeforeADoneIsReleasedLeavesItToUpperdOnce) {
  ExpectPoolFaultCountedOnce("fork_server.before_done_release:kill");
}

}  // namespace
}  // namespace upper::testing
