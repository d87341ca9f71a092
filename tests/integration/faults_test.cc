// Faults against a real upperd: a fork child killed mid-stream, the fd limit,
// the process limit, a client that never reads, a thousand connections that
// reset at once, SIGTERM under load, SIGKILL of upperd in fork mode, and a
// client that resets while the server writes. Each checks that the fault
// costs only the connection it hits: others keep being served, slots, fds,
// threads and processes come back, refusals are counted (GetStatus and
// /metrics while upperd runs, its final "stopped" line as it exits), and
// upperd never crashes or spins.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/final_totals.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/mode_test_base.h"
#include "tests/support/proc.h"
#include "tests/support/stop_cleanly.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

// upperd's live status from its admin port, once `predicate` holds (workers
// and the reaper update the table a moment after a client sees its bytes);
// nullopt if it never does within 10 s, with the last status in `last`.
template <typename F>
std::optional<admin::v1::ServerStatus> UpperdStatusWhen(
    UpperdProcess& upperd, F predicate,
    admin::v1::ServerStatus* last = nullptr) {
  absl::StatusOr<uint16_t> port = upperd.Port("admin");
  if (!port.ok()) return std::nullopt;
  auto stub = admin::v1::AdminService::NewStub(AdminChannel(*port));
  admin::v1::ServerStatus seen = StatusWhen(*stub, predicate);
  if (last != nullptr) *last = seen;
  if (!predicate(seen)) return std::nullopt;
  return seen;
}

// Connections refused for `reason`; 0 when the status has no such entry
// (as a status is before GetStatus first answers).
uint64_t RejectedBy(const admin::v1::ServerStatus& status,
                    const std::string& reason) {
  const auto it = status.rejected_by_reason().find(reason);
  return it == status.rejected_by_reason().end() ? 0 : it->second;
}

// Zero active connections by GetStatus, and every accepted one closed.
void ExpectNoneActiveByGetStatus(UpperdProcess& upperd) {
  admin::v1::ServerStatus last;
  EXPECT_TRUE(UpperdStatusWhen(
                  upperd,
                  [](const admin::v1::ServerStatus& s) {
                    return s.active_connections() == 0 &&
                           s.closed_total() == s.accepted_total();
                  },
                  &last)
                  .has_value())
      << "GetStatus: " << last.ShortDebugString();
}

// Sends one byte and expects its upper-case echo: the connection is served.
bool Echoes(int fd, char c = 'x') {
  if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) return false;
  const char want = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
  return ReadExactly(fd, 1, absl::Now() + absl::Seconds(5)).value_or("") ==
         std::string(1, want);
}

// A connection that upperd accepted and closed unserved: EOF or a reset,
// never an echo.
bool IsRefused(int fd) {
  send(fd, "x", 1, MSG_NOSIGNAL);
  absl::StatusOr<std::string> rest =
      ReadUntilEof(fd, absl::Now() + absl::Seconds(5));
  return (rest.ok() && rest->empty()) ||
         absl::IsUnavailable(rest.status()) ||  // ECONNRESET
         absl::StrContains(rest.status().message(), "reset");
}

void SetLingerZero(int fd) {
  const linger abort_on_close = {1, 0};
  ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close,
                       sizeof(abort_on_close)),
            0);
}

// The alphabet stream SendUntilStalled sent, upper-cased, from offset 0.
std::string UpperAlphabet(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = 'A' + i % 26;
  return out;
}

// Waits for upperd's fork server and returns its pid.
pid_t ForkServerPid(UpperdProcess& upperd) {
  EXPECT_TRUE(upperd.WaitForLog("fork_server_started", absl::Seconds(5)).ok());
  std::vector<pid_t> family;
  Eventually(
      [&] {
        family = Descendants(upperd.pid());
        return family.size() == 1;
      },
      absl::Seconds(5));
  return family.empty() ? -1 : family.front();
}

// Fork children currently serving connections (upperd's descendants other
// than the fork server).
std::vector<pid_t> ForkChildren(UpperdProcess& upperd, pid_t fork_server) {
  std::vector<pid_t> children = Descendants(upperd.pid());
  children.erase(std::remove(children.begin(), children.end(), fork_server),
                 children.end());
  return children;
}

// What "no worker left" looks like from outside: thread mode, upperd is back
// to its idle thread count; fork mode, only the fork server is left.
struct IdleBaseline {
  int threads = 0;
  int fds = 0;
  std::vector<pid_t> descendants;
};

IdleBaseline MeasureIdle(UpperdProcess& upperd) {
  ForkServerPid(upperd);  // both modes start the fork server
  // One connection first: runtimes may start helper threads on first use
  // (ThreadSanitizer's background thread does), which then stay. Then wait
  // for the thread count to hold still for 200 ms.
  EXPECT_EQ(Exchange(upperd.data_port(), "warm", 4, 1, absl::Seconds(10))
                .value_or(""),
            "WARM");
  int threads = CountThreads(upperd.pid());
  for (int stable = 0, i = 0; stable < 10 && i < 200; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    const int now = CountThreads(upperd.pid());
    stable = now == threads ? stable + 1 : 0;
    threads = now;
  }
  EXPECT_TRUE(Eventually([&] { return Descendants(upperd.pid()).size() == 1; },
                         absl::Seconds(5)));
  return {threads, CountFds(upperd.pid()), Descendants(upperd.pid())};
}

bool BackToIdle(UpperdProcess& upperd, const IdleBaseline& idle) {
  return CountThreads(upperd.pid()) == idle.threads &&
         CountFds(upperd.pid()) == idle.fds &&
         Descendants(upperd.pid()) == idle.descendants;
}

class FaultsTest : public ModeTest {};

TEST(ForkChildKill, KilledChildEndsOnlyItsConnectionAndFreesItsSlot) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
      UpperdProcess::Start({.args = {"--mode=fork", "--max_connections=3"}});
  ASSERT_TRUE(started.ok()) << started.status();
  UpperdProcess& upperd = **started;
  const pid_t fork_server = ForkServerPid(upperd);

  absl::StatusOr<UniqueFd> victim = Connect(upperd.data_port());
  ASSERT_TRUE(victim.ok());
  ASSERT_TRUE(Echoes(victim->get()));
  const std::vector<pid_t> children = ForkChildren(upperd, fork_server);
  ASSERT_EQ(children.size(), 1u);
  const pid_t victim_child = children[0];

  std::vector<UniqueFd> others;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(upperd.data_port());
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(Echoes(fd->get()));
    others.push_back(*std::move(fd));
  }
  // Mid-stream: the victim has bytes in flight both ways.
  const std::string half = RandomPayload(100000, 1);
  ASSERT_EQ(send(victim->get(), half.data(), half.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(half.size()));

  ASSERT_EQ(kill(victim_child, SIGKILL), 0);
  const absl::Time killed = absl::Now();
  // The victim's client sees its connection end (EOF or reset), promptly.
  absl::StatusOr<std::string> rest =
      ReadUntilEof(victim->get(), killed + absl::Seconds(5));
  EXPECT_TRUE(rest.ok() || !absl::IsDeadlineExceeded(rest.status()))
      << rest.status();

  // Its slot is free within a second: with all 3 slots otherwise taken, a
  // new connection is served. (Each try that comes too early is refused.)
  UniqueFd replacement;
  EXPECT_TRUE(Eventually(
      [&] {
        absl::StatusOr<UniqueFd> fd = Connect(upperd.data_port());
        if (!fd.ok() || !Echoes(fd->get())) return false;
        replacement = *std::move(fd);
        return true;
      },
      absl::Seconds(1)))
      << "slot not freed within a second of the kill";

  // Everybody else is unaffected: a big exchange on each, exact.
  for (UniqueFd& fd : others) {
    const std::string payload = RandomPayload(200000, fd.get());
    std::mt19937_64 rng(fd.get());
    ASSERT_TRUE(SendSegmented(fd.get(), payload, 4096, rng, true).ok());
    absl::StatusOr<std::string> reply =
        ReadUntilEof(fd.get(), absl::Now() + absl::Seconds(10));
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_TRUE(*reply == ExpectedUpper(payload));
  }
  others.clear();
  replacement.Reset();
  victim->Reset();
  // The crash is counted where operators look: /metrics and GetStatus.
  absl::StatusOr<uint16_t> metrics_port = upperd.Port("metrics");
  ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
  absl::StatusOr<Scrape> scrape = Scrape::Get(*metrics_port);
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  EXPECT_EQ(scrape->Value("upper_worker_crashes_total"), 1);
  ExpectNoneActiveByGetStatus(upperd);
  const std::optional<admin::v1::ServerStatus> status = UpperdStatusWhen(
      upperd, [](const admin::v1::ServerStatus&) { return true; });
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->worker_crashes_total(), 1u);
  StopCleanly(upperd);
  EXPECT_EQ(FinalTotal(upperd, "worker_crashes"), 1u) << upperd.Log();
  EXPECT_EQ(FinalTotal(upperd, "active"), 0u);
  EXPECT_EQ(FinalTotal(upperd, "accepted"), FinalTotal(upperd, "closed"));
}

TEST(FdLimit, ConnectionsPastTheLimitAreRefusedCountedCheaplyThenRecover) {
  constexpr uint64_t kNoFile = 64;
  absl::StatusOr<std::unique_ptr<UpperdProcess>> started = UpperdProcess::Start(
      {.args = {"--mode=thread"}, .rlimit_nofile = kNoFile});
  ASSERT_TRUE(started.ok()) << started.status();
  UpperdProcess& upperd = **started;

  // Fill upperd's descriptor table: one fd per thread-mode connection.
  std::vector<UniqueFd> held;
  int refused = 0;
  for (uint64_t i = 0; i < 2 * kNoFile && refused == 0; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(upperd.data_port());
    ASSERT_TRUE(fd.ok()) << fd.status();
    if (Echoes(fd->get())) {
      held.push_back(*std::move(fd));
    } else {
      ++refused;
    }
  }
  ASSERT_EQ(refused, 1) << "never hit the fd limit";
  EXPECT_GT(held.size(), kNoFile / 2);
  EXPECT_LT(held.size(), kNoFile);

  // At the limit, a burst of connects is refused (EOF or reset), not left
  // hanging, and costs upperd little CPU: it backs off instead of spinning
  // on a queue it cannot take from.
  constexpr int kBurst = 200;
  const std::optional<double> cpu_before = CpuSeconds(upperd.pid());
  const absl::Time burst_start = absl::Now();
  std::vector<UniqueFd> burst;
  for (int i = 0; i < kBurst; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(upperd.data_port());
    ASSERT_TRUE(fd.ok()) << fd.status();
    burst.push_back(*std::move(fd));
  }
  for (UniqueFd& fd : burst) {
    EXPECT_TRUE(IsRefused(fd.get()));
    fd.Reset();
  }
  const absl::Duration burst_time = absl::Now() - burst_start;
  // Hammer for a further second: connect and drop at once, every half
  // millisecond (bounded below the listen backlog of 4096).
  int hammered = 0;
  for (const absl::Time end = absl::Now() + absl::Seconds(1);
       absl::Now() < end && hammered < 3000; ++hammered) {
    ASSERT_TRUE(Connect(upperd.data_port()).ok());
    absl::SleepFor(absl::Microseconds(500));
  }
  const std::optional<double> cpu_after = CpuSeconds(upperd.pid());
  const absl::Duration at_limit = absl::Now() - burst_start;
  ASSERT_TRUE(cpu_before && cpu_after);
  const double cpu = *cpu_after - *cpu_before;
  std::printf(
      "fd limit %d: %zu served, %d-connect burst refused in %s, %d "
      "connects dropped in 1 s; upperd CPU %.2f s over %s at the limit\n",
      static_cast<int>(kNoFile), held.size(), kBurst,
      absl::FormatDuration(burst_time).c_str(), hammered, cpu,
      absl::FormatDuration(at_limit).c_str());
  EXPECT_LT(cpu, 0.5);

  // Served clients never noticed.
  for (UniqueFd& fd : held) ASSERT_TRUE(Echoes(fd.get(), 'q'));
  // Recovery once clients leave: new connections are served again.
  held.clear();
  EXPECT_TRUE(Eventually(
      [&] {
        return Exchange(upperd.data_port(), "back", 4, 1, absl::Seconds(5))
                   .value_or("") == "BACK";
      },
      absl::Seconds(5)));
  ExpectNoneActiveByGetStatus(upperd);
  StopCleanly(upperd);
  EXPECT_GE(FinalTotal(upperd, "rejected_fd_exhausted").value_or(0),
            uint64_t{1 + kBurst})
      << upperd.Log();
  EXPECT_EQ(FinalTotal(upperd, "active"), 0u);
}

TEST(ProcessLimit, ForkFailureAtRlimitNprocIsRefusedCountedAndSurvived) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "root ignores RLIMIT_NPROC, so upperd must run under an "
                    "unprivileged uid, and only root can start it as one";
  }
  if (access("/usr/bin/setpriv", X_OK) != 0) {
    GTEST_SKIP() << "/usr/bin/setpriv (util-linux) is missing";
  }
  // A uid nothing else on the machine runs as, so RLIMIT_NPROC (a per-user
  // task count) counts upperd's processes only.
  uid_t uid = 61000 + static_cast<uid_t>(getpid() % 3000);
  while (CountTasksOfUid(uid) != 0) ++uid;
  absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
      UpperdProcess::Start({.args = {"--mode=fork"}, .run_as_uid = uid});
  ASSERT_TRUE(started.ok()) << started.status();
  UpperdProcess& upperd = **started;
  const pid_t fork_server = ForkServerPid(upperd);
  ASSERT_GT(fork_server, 0);

  // The fork server is the process that forks, so its limit is the one the
  // kernel checks: room for exactly two children beyond what uid runs now.
  const int tasks = CountTasksOfUid(uid);
  constexpr int kChildren = 2;
  // Set by a process of the same uid: lowering a limit needs no capability
  // then (root here may lack CAP_SYS_RESOURCE for prlimit(2) on others).
  const std::string set_limit =
      absl::StrCat("/usr/bin/setpriv --reuid=", uid, " --regid=", uid,
                   " --clear-groups /usr/bin/prlimit --pid=", fork_server,
                   " --nproc=", tasks + kChildren, ":", tasks + kChildren);
  ASSERT_EQ(std::system(set_limit.c_str()), 0) << set_limit;

  // Normally exactly kChildren fit; a sanitizer runtime's helper thread in
  // a child may take one of them.
  std::vector<UniqueFd> held;
  for (int i = 0; i < kChildren; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(upperd.data_port());
    ASSERT_TRUE(fd.ok());
    if (!Echoes(fd->get())) break;
    held.push_back(*std::move(fd));
  }
  ASSERT_GE(held.size(), 1u) << upperd.Log();
  constexpr int kRefused = 5;
  for (int i = 0; i < kRefused; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(upperd.data_port());
    ASSERT_TRUE(fd.ok());
    EXPECT_TRUE(IsRefused(fd->get())) << "connection " << i << " was served";
  }
  EXPECT_TRUE(upperd.WaitForLog("fork_failed", absl::Seconds(2)).ok());
  // Nobody crashed; the held connections still work; a freed process slot
  // is used again.
  EXPECT_EQ(kill(upperd.pid(), 0), 0);
  for (UniqueFd& fd : held) EXPECT_TRUE(Echoes(fd.get(), 'w'));
  held.pop_back();
  EXPECT_TRUE(Eventually(
      [&] {
        return Exchange(upperd.data_port(), "again", 5, 1, absl::Seconds(5))
                   .value_or("") == "AGAIN";
      },
      absl::Seconds(5)));
  held.clear();
  admin::v1::ServerStatus last;
  EXPECT_TRUE(UpperdStatusWhen(
                  upperd,
                  [](const admin::v1::ServerStatus& s) {
                    return s.active_connections() == 0 &&
                           RejectedBy(s, "fork_failed") >= kRefused;
                  },
                  &last)
                  .has_value())
      << last.ShortDebugString();
  StopCleanly(upperd);
  EXPECT_GE(FinalTotal(upperd, "rejected_fork_failed").value_or(0),
            uint64_t{kRefused});
  EXPECT_EQ(FinalTotal(upperd, "worker_crashes"), 0u);
  EXPECT_EQ(FinalTotal(upperd, "active"), 0u);
}

TEST(ForkServerFdLimit, SocketLostInHandOffIsRefusedCountedAndItsSlotFreed) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
      UpperdProcess::Start({.args = {"--mode=fork"}});
  ASSERT_TRUE(started.ok()) << started.status();
  UpperdProcess& upperd = **started;
  const pid_t fork_server = ForkServerPid(upperd);
  ASSERT_GT(fork_server, 0);

  // Lower the fork server's soft fd limit to its lowest free fd number, so
  // the next fd it is handed cannot be installed: the kernel drops it from
  // the message (MSG_CTRUNC). Lowering a soft limit of a process of our own
  // uid needs no capability.
  const std::map<int, std::string> fds = FdTargets(fork_server);
  int lowest_free = 0;
  while (fds.count(lowest_free) != 0) ++lowest_free;
  rlimit original;
  ASSERT_EQ(prlimit(fork_server, RLIMIT_NOFILE, nullptr, &original), 0)
      << std::strerror(errno);
  const rlimit low = {static_cast<rlim_t>(lowest_free), original.rlim_max};
  ASSERT_EQ(prlimit(fork_server, RLIMIT_NOFILE, &low, nullptr), 0)
      << std::strerror(errno);

  constexpr int kLost = 3;
  for (int i = 0; i < kLost; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(upperd.data_port());
    ASSERT_TRUE(fd.ok()) << fd.status();
    EXPECT_TRUE(IsRefused(fd->get())) << "connection " << i << " was served";
  }
  // Each lost socket's slot is freed and counted, not left active forever.
  admin::v1::ServerStatus last;
  EXPECT_TRUE(UpperdStatusWhen(
                  upperd,
                  [](const admin::v1::ServerStatus& s) {
                    return s.active_connections() == 0 &&
                           RejectedBy(s, "fd_exhausted") == kLost;
                  },
                  &last)
                  .has_value())
      << last.ShortDebugString() << "\n"
      << upperd.Log();
  EXPECT_TRUE(
      upperd.WaitForLog("fork_server_lost_socket", absl::Seconds(1)).ok());

  // With its limit back, the same fork server serves again.
  ASSERT_EQ(prlimit(fork_server, RLIMIT_NOFILE, &original, nullptr), 0)
      << std::strerror(errno);
  EXPECT_EQ(Exchange(upperd.data_port(), "again", 5, 1, absl::Seconds(5))
                .value_or(""),
            "AGAIN");
  EXPECT_EQ(ForkServerPid(upperd), fork_server);
  ExpectNoneActiveByGetStatus(upperd);
  StopCleanly(upperd);
  EXPECT_EQ(FinalTotal(upperd, "rejected_fd_exhausted"), uint64_t{kLost});
  EXPECT_EQ(FinalTotal(upperd, "active"), 0u);
}

TEST_P(FaultsTest, ClientThatNeverReadsIsThrottledWhileOthersAreServed) {
  auto upperd = StartUpperd();
  ASSERT_NE(upperd, nullptr);
  absl::StatusOr<UniqueFd> hog = Connect(upperd->data_port());
  ASSERT_TRUE(hog.ok());
  // upperd echoes until the hog's receive buffer is full, then blocks in
  // send and stops reading; the hog's own send buffer fills and it stalls.
  // What it got out is bounded by socket buffers, not by upperd's memory.
  constexpr uint64_t kNoBackpressure = 256 << 20;
  const uint64_t sent =
      SendUntilStalled(hog->get(), absl::Milliseconds(500), kNoBackpressure);
  EXPECT_LT(sent, kNoBackpressure) << "upperd never pushed back";
  std::printf("a client that never reads stalled after %llu bytes\n",
              static_cast<unsigned long long>(sent));

  // Meanwhile everybody else is served promptly.
  constexpr int kClients = 20;
  std::vector<std::future<absl::StatusOr<std::string>>> replies;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kClients; ++i) {
    replies.push_back(std::async(std::launch::async, [&, i] {
      return Exchange(upperd->data_port(), RandomPayload(65536, i), 8192, i,
                      absl::Seconds(10));
    }));
  }
  for (int i = 0; i < kClients; ++i) {
    absl::StatusOr<std::string> reply = replies[i].get();
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_TRUE(*reply == ExpectedUpper(RandomPayload(65536, i)));
  }
  std::printf("%d clients served in %s beside it\n", kClients,
              absl::FormatDuration(absl::Now() - start).c_str());

  // The hog is throttled, not dropped: its echo is intact when it reads.
  const size_t check = std::min<uint64_t>(sent, 1 << 20);
  fcntl(hog->get(), F_SETFL, fcntl(hog->get(), F_GETFL) & ~O_NONBLOCK);
  absl::StatusOr<std::string> echo =
      ReadExactly(hog->get(), check, absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_TRUE(*echo == UpperAlphabet(check));
  hog->Reset();
  ExpectNoneActiveByGetStatus(*upperd);
  StopCleanly(*upperd);
  EXPECT_EQ(FinalTotal(*upperd, "active"), 0u);
}

TEST_P(FaultsTest, ThousandConnectsThatResetAtOnceLeaveNothingBehind) {
  ASSERT_TRUE(RaiseFdLimit(4096).ok());  // upperd inherits it
  // Spares leave 10 ms after their connection (before the idle baseline is
  // measured), so "back to idle" means no worker thread left.
  auto upperd = StartUpperd({"--thread_spare_timeout=10ms"});
  ASSERT_NE(upperd, nullptr);
  const IdleBaseline idle = MeasureIdle(*upperd);

  constexpr int kConnections = 1000;
  std::vector<UniqueFd> fds;
  for (int i = 0; i < kConnections; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(upperd->data_port());
    ASSERT_TRUE(fd.ok()) << i << ": " << fd.status();
    SetLingerZero(fd->get());
    fds.push_back(*std::move(fd));
  }
  fds.clear();  // 1,000 RSTs at once

  absl::StatusOr<std::string> reply =
      Exchange(upperd->data_port(), "still here", 3, 1, absl::Seconds(10));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "STILL HERE");
  EXPECT_TRUE(
      Eventually([&] { return BackToIdle(*upperd, idle); }, absl::Seconds(10)))
      << CountThreads(upperd->pid()) << " threads (idle " << idle.threads
      << "), " << CountFds(upperd->pid()) << " fds (idle " << idle.fds << "), "
      << Descendants(upperd->pid()).size() << " descendants";
  EXPECT_TRUE(ZombieDescendants(upperd->pid()).empty());
  ExpectNoneActiveByGetStatus(*upperd);
  StopCleanly(*upperd);
  EXPECT_EQ(FinalTotal(*upperd, "active"), 0u);
  EXPECT_EQ(FinalTotal(*upperd, "accepted"), FinalTotal(*upperd, "closed"));
  EXPECT_EQ(FinalTotal(*upperd, "worker_crashes"), 0u);
}

TEST_P(FaultsTest, ClientResetWhileServerWritesEndsOnlyThatConnection) {
  // Spares leave 10 ms after their connection (before the idle baseline is
  // measured), so "back to idle" means no worker thread left.
  auto upperd = StartUpperd({"--thread_spare_timeout=10ms"});
  ASSERT_NE(upperd, nullptr);
  const IdleBaseline idle = MeasureIdle(*upperd);
  absl::StatusOr<UniqueFd> other = Connect(upperd->data_port());
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(Echoes(other->get()));
  for (int round = 0; round < 5; ++round) {
    absl::StatusOr<UniqueFd> resetter = Connect(upperd->data_port());
    ASSERT_TRUE(resetter.ok());
    // upperd is now blocked in send towards us, with unread data both ways.
    SendUntilStalled(resetter->get(), absl::Milliseconds(200), 64 << 20);
    SetLingerZero(resetter->get());
    resetter->Reset();
    ASSERT_TRUE(Echoes(other->get(), 'r')) << "round " << round;
  }
  other->Reset();
  EXPECT_TRUE(
      Eventually([&] { return BackToIdle(*upperd, idle); }, absl::Seconds(5)));
  ExpectNoneActiveByGetStatus(*upperd);
  StopCleanly(*upperd);
  EXPECT_EQ(FinalTotal(*upperd, "active"), 0u);
  EXPECT_EQ(FinalTotal(*upperd, "accepted"),
            7u);  // the warm-up, `other` and 5 resetters
  EXPECT_EQ(FinalTotal(*upperd, "closed"), 7u);
  EXPECT_EQ(FinalTotal(*upperd, "worker_crashes"), 0u);
}

// One client's exchange during SIGTERM: either all of it came back exactly,
// or it was refused before being served (no connection, or closed with
// nothing sent back). Anything in between is a broken promise.
struct Outcome {
  enum Kind { kComplete, kRefused, kBroken } kind = kBroken;
  uint64_t bytes = 0;
  std::string detail;
};

Outcome ExchangeDuringShutdown(uint16_t port, uint64_t seed) {
  absl::StatusOr<UniqueFd> fd = Connect(port);
  if (!fd.ok()) return {Outcome::kRefused, 0, ""};
  const std::string payload = RandomPayload(1 + seed % 100000, seed);
  const int raw = fd->get();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  auto reader = std::async(std::launch::async, [raw, deadline] {
    std::string got;
    char buffer[65536];
    while (absl::Now() < deadline) {
      pollfd p = {raw, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = recv(raw, buffer, sizeof(buffer), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got.append(buffer, static_cast<size_t>(n));
    }
    return got;
  });
  std::mt19937_64 rng(seed);
  const absl::Status sent = SendSegmented(raw, payload, 8192, rng, true);
  const std::string got = reader.get();
  if (got == ExpectedUpper(payload)) {
    return {Outcome::kComplete, got.size(), ""};
  }
  if (got.empty()) return {Outcome::kRefused, 0, ""};
  return {Outcome::kBroken, got.size(),
          absl::StrCat("got ", got.size(), " of ", payload.size(),
                       " bytes, send: ", sent.ToString())};
}

TEST_P(FaultsTest, SigtermDuringLoadDrainsAndFinishedClientsGotExactBytes) {
  auto upperd = StartUpperd({"--drain_timeout=20s"});
  ASSERT_NE(upperd, nullptr);
  constexpr int kClients = 16;
  std::atomic<int> completed{0};
  std::mutex mu;
  std::vector<Outcome> outcomes;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      // Each client keeps exchanging until upperd stops taking connections.
      for (uint64_t i = 0; i < 100000; ++i) {
        Outcome o = ExchangeDuringShutdown(
            upperd->data_port(), (static_cast<uint64_t>(c) << 32) | i);
        if (o.kind == Outcome::kComplete) ++completed;
        const bool stop = o.kind != Outcome::kComplete;
        std::lock_guard lock(mu);
        outcomes.push_back(std::move(o));
        if (stop) return;
      }
    });
  }
  EXPECT_TRUE(Eventually([&] { return completed >= 200; }, absl::Seconds(30)));
  upperd->Signal(SIGTERM);
  for (std::thread& t : clients) t.join();
  absl::StatusOr<int> code = upperd->WaitExit(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << upperd->Log();

  uint64_t exact_bytes = 0;
  int complete = 0, refused = 0;
  for (const Outcome& o : outcomes) {
    EXPECT_NE(o.kind, Outcome::kBroken) << o.detail;
    if (o.kind == Outcome::kComplete) {
      exact_bytes += o.bytes;
      ++complete;
    }
    if (o.kind == Outcome::kRefused) ++refused;
  }
  std::printf(
      "SIGTERM under load: %d exchanges complete (%llu bytes exact), "
      "%d refused while draining, 0 broken\n",
      complete, static_cast<unsigned long long>(exact_bytes), refused);
  // Every byte upperd sent went to a client whose exchange completed.
  EXPECT_EQ(FinalTotal(*upperd, "bytes_out"), exact_bytes);
  EXPECT_EQ(FinalTotal(*upperd, "active"), 0u);
}

TEST(UpperdKill, ForkChildrenHoldNoListenerAndANewUpperdBindsAtOnce) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> first =
      UpperdProcess::Start({.args = {"--mode=fork"}});
  ASSERT_TRUE(first.ok()) << first.status();
  const uint16_t port = (*first)->data_port();
  absl::StatusOr<uint16_t> admin_port = (*first)->Port("admin");
  absl::StatusOr<uint16_t> metrics_port = (*first)->Port("metrics");
  ASSERT_TRUE(admin_port.ok() && metrics_port.ok()) << (*first)->Log();
  const pid_t fork_server = ForkServerPid(**first);
  // Both endpoints in use before the kill, so the new upperd binds them
  // with the old connections' TIME_WAIT entries still there.
  auto first_admin =
      admin::v1::AdminService::NewStub(AdminChannel(*admin_port));
  ASSERT_TRUE(GetStatus(*first_admin).ok());
  ASSERT_TRUE(Scrape::Get(*metrics_port).ok());

  constexpr int kClients = 3;
  std::vector<UniqueFd> clients;
  for (int i = 0; i < kClients; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(port);
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(Echoes(fd->get()));
    clients.push_back(*std::move(fd));
  }
  const std::vector<pid_t> children = ForkChildren(**first, fork_server);
  ASSERT_EQ(children.size(), static_cast<size_t>(kClients));
  const std::set<uint64_t> listeners = ListeningTcpInodes();
  ASSERT_FALSE(listeners.empty());
  for (pid_t child : children) {
    // stdio and the connection on fd 3; nothing else, no listening socket.
    const std::map<int, std::string> fds = FdTargets(child);
    std::string shown;
    for (const auto& [fd, target] : fds)
      absl::StrAppend(&shown, fd, "->", target, " ");
    ASSERT_EQ(fds.size(), 4u) << shown;
    for (int fd = 0; fd <= 3; ++fd) ASSERT_TRUE(fds.contains(fd)) << shown;
    const std::optional<uint64_t> inode = SocketInode(fds.at(3));
    ASSERT_TRUE(inode.has_value()) << shown;
    EXPECT_FALSE(listeners.contains(*inode))
        << "child " << child << " holds a listener";
  }

  (*first)->Signal(SIGKILL);
  absl::StatusOr<int> code = (*first)->WaitExit(absl::Seconds(10));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, -SIGKILL);

  // A new upperd binds the same data, admin and metrics ports at once, no
  // retry, while the old children still serve their clients.
  absl::StatusOr<std::unique_ptr<UpperdProcess>> second = UpperdProcess::Start(
      {.args = {"--mode=fork", absl::StrCat("--data_port=", port),
                absl::StrCat("--admin_port=", *admin_port),
                absl::StrCat("--metrics_port=", *metrics_port)}});
  ASSERT_TRUE(second.ok()) << second.status();
  for (pid_t child : children) EXPECT_EQ(kill(child, 0), 0);
  EXPECT_EQ((*second)->Port("admin").value_or(0), *admin_port)
      << (*second)->Log();
  EXPECT_EQ((*second)->Port("metrics").value_or(0), *metrics_port);
  auto second_admin =
      admin::v1::AdminService::NewStub(AdminChannel(*admin_port));
  // gRPC clients share connections per target process-wide, so the first
  // call may still go out on the connection to the killed upperd and fail
  // UNAVAILABLE ("Socket closed"); the next one connects afresh.
  first_admin.reset();
  absl::StatusOr<admin::v1::ServerStatus> second_status;
  Eventually(
      [&] {
        second_status = GetStatus(*second_admin);
        return second_status.ok();
      },
      absl::Seconds(5));
  ASSERT_TRUE(second_status.ok()) << second_status.status();
  EXPECT_EQ(second_status->pid(), (*second)->pid());
  // The old children's connections are not the new upperd's.
  EXPECT_EQ(second_status->active_connections(), 0u);
  absl::StatusOr<Scrape> second_scrape = Scrape::Get(*metrics_port);
  ASSERT_TRUE(second_scrape.ok()) << second_scrape.status();
  EXPECT_EQ(second_scrape->Value("upper_connections_active{mode=\"fork\"}"), 0);
  for (pid_t child : children) EXPECT_EQ(kill(child, 0), 0);
  for (UniqueFd& fd : clients) {
    const std::string payload = RandomPayload(50000, fd.get());
    std::mt19937_64 rng(fd.get());
    ASSERT_TRUE(SendSegmented(fd.get(), payload, 4096, rng, true).ok());
    absl::StatusOr<std::string> reply =
        ReadUntilEof(fd.get(), absl::Now() + absl::Seconds(10));
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_TRUE(*reply == ExpectedUpper(payload));
  }
  absl::StatusOr<std::string> fresh =
      Exchange(port, "new upperd", 4, 2, absl::Seconds(10));
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(*fresh, "NEW UPPERD");
  clients.clear();
  StopCleanly(**second);
}

INSTANTIATE_TEST_SUITE_P(BothModes, FaultsTest,
                         ::testing::Values("thread", "fork"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace upper::testing
