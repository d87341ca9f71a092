// A hung fork server (issue 15), against a real upperd: the fork server is
// SIGSTOPped (as one blocked on a full stderr pipe or frozen by a cgroup).
// The event loop never waits on it: thread-mode connections are accepted
// and served, every byte exact; fork-mode connections past the socket
// buffer and upperd's bounded queue are refused at once (fork_queue_full);
// SIGTERM is acted on at once; the watchdog kills the stopped fork server
// within --fork_server_timeout and its replacement serves. The stale one,
// resumed through a pidfd opened while it was alive (never a bare pid that
// may have been reaped and reused), is gone: nothing is served twice, and
// every connection is counted once (accepted and closed, or refused).
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
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

using admin::v1::ServerStatus;

// More fork-mode connections than the control socket's buffer (~278 here)
// and upperd's queue (ForkWorkers::kQueueLimit, 2,048) hold together, so
// that some are refused at once.
constexpr int kFlood = 2600;
// ForkWorkers::kStallGrace: how long a fork server may take no hand-off
// before a full queue refuses.
constexpr absl::Duration kStallGrace = absl::Milliseconds(250);

uint64_t Reason(const ServerStatus& s, const std::string& reason) {
  const auto it = s.rejected_by_reason().find(reason);
  return it == s.rejected_by_reason().end() ? 0 : it->second;
}

// The current fork server's pid, from its own start line.
pid_t CurrentForkServer(const UpperdProcess& upperd) {
  int pid = 0;
  const std::optional<std::string> text =
      upperd.Field("fork_server_started", "pid");
  return text && absl::SimpleAtoi(*text, &pid) ? pid : -1;
}

// A stopped fork server, held by a pidfd opened while it was upperd's live,
// idle child (no work outstanding, so upperd's watchdog leaves it alone and
// nothing reaps it before the pidfd names it).
struct StoppedForkServer {
  pid_t pid = -1;
  UniqueFd pidfd;
};

StoppedForkServer StopForkServer(UpperdProcess& upperd) {
  StoppedForkServer stopped;
  EXPECT_TRUE(upperd.WaitForLog("fork_server_started", absl::Seconds(5)).ok());
  stopped.pid = CurrentForkServer(upperd);
  EXPECT_GT(stopped.pid, 0);
  if (stopped.pid <= 0) return stopped;
  stopped.pidfd.Reset(
      static_cast<int>(syscall(SYS_pidfd_open, stopped.pid, 0)));
  EXPECT_TRUE(stopped.pidfd.valid()) << std::strerror(errno);
  EXPECT_EQ(
      syscall(SYS_pidfd_send_signal, stopped.pidfd.get(), SIGSTOP, nullptr, 0),
      0);
  EXPECT_TRUE(Eventually(
      [&] {
        const std::optional<ProcStat> stat = ReadProcStat(stopped.pid);
        return stat && stat->state == 'T';
      },
      absl::Seconds(5)));
  return stopped;
}

// SIGCONT to the stale fork server through its pidfd: it must be dead
// (ESRCH), and nothing below upperd a zombie.
void ExpectStaleForkServerGone(StoppedForkServer& stale, pid_t upperd) {
  ASSERT_TRUE(stale.pidfd.valid());
  EXPECT_NE(
      syscall(SYS_pidfd_send_signal, stale.pidfd.get(), SIGCONT, nullptr, 0),
      0);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_TRUE(Eventually([&] { return ZombieDescendants(upperd).empty(); },
                         absl::Seconds(5)));
}

void SetMode(admin::v1::AdminService::Stub& stub, admin::v1::Mode mode) {
  admin::v1::SetModeRequest request;
  request.set_mode(mode);
  admin::v1::SetModeResponse response;
  auto context = Context();
  ASSERT_TRUE(stub.SetMode(context.get(), request, &response).ok());
}

// A client that sent one byte: what it then saw.
struct FloodTally {
  int served = 0;   // the byte came back upper-cased
  int refused = 0;  // EOF or reset with no data
  int other = 0;    // anything else (a failure)
};

// Opens `count` connections, each sending "x" at once; returns their fds.
std::vector<UniqueFd> Flood(uint16_t port, int count) {
  std::vector<UniqueFd> fds;
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(port);
    if (!fd.ok()) break;
    if (send(fd->get(), "x", 1, MSG_NOSIGNAL) != 1) break;
    fds.push_back(*std::move(fd));
  }
  EXPECT_EQ(fds.size(), static_cast<size_t>(count));
  return fds;
}

// kFlood connections to a stopped fork server: the socket's buffer and the
// queue fill, then, once it has taken nothing for kStallGrace, the last 200
// are refused at once (fork_queue_full).
std::vector<UniqueFd> StalledFlood(uint16_t port) {
  std::vector<UniqueFd> fds = Flood(port, kFlood - 200);
  absl::SleepFor(kStallGrace + absl::Milliseconds(100));
  for (UniqueFd& fd : Flood(port, 200)) fds.push_back(std::move(fd));
  return fds;
}

// Reads each flood connection's answer (bounded by `deadline`).
FloodTally Collect(std::vector<UniqueFd>& fds, absl::Time deadline) {
  FloodTally t;
  for (UniqueFd& fd : fds) {
    absl::StatusOr<std::string> got = ReadUntilEof(fd.get(), deadline);
    if (got.ok() && got->empty()) {
      ++t.refused;
    } else if (got.ok() && *got == "X") {
      ++t.served;
    } else if (!got.ok() && !absl::IsDeadlineExceeded(got.status())) {
      ++t.refused;  // reset before any byte: closed unserved
    } else {
      ++t.other;
    }
    fd.Reset();
  }
  return t;
}

class ForkServerHang : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> args) {
    ASSERT_TRUE(RaiseFdLimit(8192).ok());  // upperd inherits it
    args.push_back("--max_connections=4000");
    absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
        UpperdProcess::Start({.args = std::move(args)});
    ASSERT_TRUE(started.ok()) << started.status();
    upperd_ = *std::move(started);
    absl::StatusOr<uint16_t> port = upperd_->Port("admin");
    ASSERT_TRUE(port.ok()) << port.status();
    stub_ = admin::v1::AdminService::NewStub(AdminChannel(*port));
    absl::StatusOr<uint16_t> metrics = upperd_->Port("metrics");
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    metrics_port_ = *metrics;
  }

  // Nothing active, and every connection counted once: accepted == closed,
  // fork-mode acceptances == the flood clients served, refusals of the
  // flood == the fork refusals counted.
  ServerStatus ExpectSettled(const FloodTally& flood) {
    const ServerStatus s = StatusWhen(*stub_, [&](const ServerStatus& s) {
      return s.active_connections() == 0 &&
             s.closed_total() == s.accepted_total() &&
             Reason(s, "fork_failed") + Reason(s, "fork_queue_full") ==
                 static_cast<uint64_t>(flood.refused);
    });
    EXPECT_EQ(s.active_connections(), 0u) << s.ShortDebugString();
    EXPECT_EQ(s.closed_total(), s.accepted_total()) << s.ShortDebugString();
    EXPECT_EQ(Reason(s, "fork_failed") + Reason(s, "fork_queue_full"),
              static_cast<uint64_t>(flood.refused))
        << s.ShortDebugString();
    EXPECT_EQ(s.worker_crashes_total(), 0u) << s.ShortDebugString();
    return s;
  }

  // After the watchdog replaced `stale`: fork mode serves again, the stale
  // fork server is gone, everything is counted once, and one hang counted.
  ServerStatus ExpectReplacedAndSettled(StoppedForkServer& stale,
                                        const FloodTally& flood) {
    EXPECT_EQ(
        Exchange(upperd_->data_port(), "served again", 4, 1, absl::Seconds(10))
            .value_or(""),
        "SERVED AGAIN");
    ExpectStaleForkServerGone(stale, upperd_->pid());
    const ServerStatus s = ExpectSettled(flood);
    EXPECT_EQ(Metric("upper_fork_server_hangs_total"), 1);
    return s;
  }

  double Metric(const std::string& series) {
    absl::StatusOr<Scrape> scrape = Scrape::Get(metrics_port_);
    EXPECT_TRUE(scrape.ok()) << scrape.status();
    return scrape.ok() ? scrape->Value(series) : -1;
  }

  std::unique_ptr<UpperdProcess> upperd_;
  std::unique_ptr<admin::v1::AdminService::Stub> stub_;
  uint16_t metrics_port_ = 0;
};

// Thread-mode clients, each a new connection (the accept path the stopped
// fork server used to block), until `stop`; counts exact exchanges and
// failures, and the slowest exchange.
struct ThreadClients {
  std::atomic<bool> stop{false};
  std::atomic<int> exact{0};
  std::atomic<int> failed{0};
  std::atomic<int64_t> slowest_us{0};
  std::vector<std::thread> threads;

  void Run(uint16_t port, int count) {
    for (int i = 0; i < count; ++i) {
      threads.emplace_back([this, port, i] {
        for (uint64_t n = 0; !stop.load() && n < 100000; ++n) {
          const std::string data = RandomPayload(4096, i * 100000 + n);
          const absl::Time start = absl::Now();
          absl::StatusOr<std::string> got =
              Exchange(port, data, 1500, n, absl::Seconds(10));
          const int64_t us = absl::ToInt64Microseconds(absl::Now() - start);
          if (us > slowest_us.load()) slowest_us.store(us);
          (got.ok() && *got == ExpectedUpper(data) ? exact : failed)
              .fetch_add(1);
        }
      });
    }
  }
  void Join() {
    stop.store(true);
    for (std::thread& t : threads) t.join();
  }
};

// Mixed load: fork-mode clients flood a stopped fork server (socket buffer
// full, queue full, the rest refused at once), then thread mode serves new
// connections exactly while the fork server is still stopped; the watchdog
// replaces it and fork mode serves again.
TEST_F(ForkServerHang, ThreadModeServesAndForkModeIsRefusedUntilReplaced) {
  constexpr absl::Duration kTimeout = absl::Seconds(3);
  Start({"--mode=thread", "--fork_server_timeout=3s", "--drain_timeout=2s"});
  StoppedForkServer stale = StopForkServer(*upperd_);
  ASSERT_TRUE(stale.pidfd.valid());
  SetMode(*stub_, admin::v1::MODE_FORK);
  const absl::Time flood_start = absl::Now();
  // The socket's buffer and the queue fill; once the stopped fork server has
  // taken nothing for kStallGrace, the rest is refused at once.
  std::vector<UniqueFd> flood = StalledFlood(upperd_->data_port());
  // Past the queue, refused at once: a connection opened now sees its end.
  const ServerStatus full = StatusWhen(*stub_, [](const ServerStatus& s) {
    return Reason(s, "fork_queue_full") > 0;
  });
  EXPECT_GT(Reason(full, "fork_queue_full"), 0u) << full.ShortDebugString();
  SetMode(*stub_, admin::v1::MODE_THREAD);

  ThreadClients clients;
  clients.Run(upperd_->data_port(), 4);
  absl::SleepFor(absl::Milliseconds(800));
  const bool still_stopped =
      upperd_->Log().find("fork_server_unresponsive") == std::string::npos;
  clients.Join();
  RecordProperty("thread_exchanges", clients.exact.load());
  RecordProperty("slowest_thread_exchange_us",
                 static_cast<int>(clients.slowest_us.load()));
  EXPECT_EQ(clients.failed.load(), 0);
  EXPECT_GT(clients.exact.load(), 0);
  // The exchanges above ran with the fork server stopped (on a machine slow
  // enough to reach the timeout first, they still had to be exact).
  if (still_stopped) {
    EXPECT_LT(clients.slowest_us.load(), 1000000);
  }

  ASSERT_TRUE(
      upperd_->WaitForLog("fork_server_unresponsive", absl::Seconds(10)).ok())
      << upperd_->Log();
  ASSERT_TRUE(
      upperd_->WaitForLog("fork_server_restarted", absl::Seconds(5)).ok())
      << upperd_->Log();
  const absl::Duration replaced = absl::Now() - flood_start;
  RecordProperty("replaced_after_ms",
                 static_cast<int>(absl::ToInt64Milliseconds(replaced)));
  EXPECT_LT(replaced, kTimeout * 1.1 + absl::Seconds(2)) << upperd_->Log();
  const FloodTally tally = Collect(flood, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(tally.other, 0);
  EXPECT_EQ(tally.served + tally.refused, kFlood);

  SetMode(*stub_, admin::v1::MODE_FORK);
  const ServerStatus s = ExpectReplacedAndSettled(stale, tally);
  EXPECT_EQ(PerMode(s, admin::v1::MODE_FORK).accepted_total(),
            static_cast<uint64_t>(tally.served) + 1)
      << s.ShortDebugString();
  EXPECT_EQ(
      Metric("upper_connections_rejected_total{reason=\"fork_queue_full\"}"),
      static_cast<double>(Reason(s, "fork_queue_full")));
  StopCleanly(*upperd_);
  EXPECT_EQ(FinalTotal(*upperd_, "active"), 0u);
  EXPECT_EQ(FinalTotal(*upperd_, "fork_server_hangs"), 1u);
  EXPECT_EQ(FinalTotal(*upperd_, "rejected_fork_queue_full"),
            Reason(s, "fork_queue_full"));
}

// The watchdog with a 1 s timeout: an idle stopped fork server (nothing
// outstanding) is left alone; one hand-off it does not take gets it killed
// within the timeout (sampled every tenth of it), the connection refused,
// and the replacement serves the next one.
TEST_F(ForkServerHang, WatchdogReplacesAStoppedForkServerWithinItsTimeout) {
  Start({"--mode=fork", "--fork_server_timeout=1s"});
  StoppedForkServer stale = StopForkServer(*upperd_);
  ASSERT_TRUE(stale.pidfd.valid());
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(upperd_->Log().find("fork_server_unresponsive"), std::string::npos)
      << "an idle fork server was killed";

  const absl::Time sent = absl::Now();
  std::vector<UniqueFd> one = Flood(upperd_->data_port(), 1);
  ASSERT_TRUE(
      upperd_->WaitForLog("fork_server_restarted", absl::Seconds(10)).ok())
      << upperd_->Log();
  const absl::Duration replaced = absl::Now() - sent;
  RecordProperty("replaced_after_ms",
                 static_cast<int>(absl::ToInt64Milliseconds(replaced)));
  EXPECT_GE(replaced, absl::Milliseconds(900));
  EXPECT_LT(replaced, absl::Milliseconds(1100) + absl::Milliseconds(500))
      << upperd_->Log();
  const std::optional<std::string> outstanding =
      upperd_->Field("fork_server_unresponsive", "outstanding");
  EXPECT_EQ(outstanding.value_or(""), "1") << upperd_->Log();
  const FloodTally tally = Collect(one, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(tally.refused, 1);

  const ServerStatus s = ExpectReplacedAndSettled(stale, tally);
  EXPECT_EQ(s.accepted_total(), 1u) << s.ShortDebugString();
  EXPECT_EQ(Reason(s, "fork_failed"), 1u) << s.ShortDebugString();
  EXPECT_EQ(Metric("upper_fork_server_restarts_total"), 1);
  StopCleanly(*upperd_);
}

// The smallest timeouts still fire: the loop's ordinary gaps between looks
// (poll rounds up to whole milliseconds) must not read as a frozen loop.
TEST_F(ForkServerHang, ATenMillisecondTimeoutStillReplacesAStoppedForkServer) {
  Start({"--mode=fork", "--fork_server_timeout=10ms"});
  StoppedForkServer stale = StopForkServer(*upperd_);
  ASSERT_TRUE(stale.pidfd.valid());
  std::vector<UniqueFd> one = Flood(upperd_->data_port(), 1);
  ASSERT_TRUE(
      upperd_->WaitForLog("fork_server_restarted", absl::Seconds(10)).ok())
      << upperd_->Log();
  const FloodTally tally = Collect(one, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(tally.refused, 1);
  ExpectReplacedAndSettled(stale, tally);
  StopCleanly(*upperd_);
}

// upperd's own loop frozen with a hand-off outstanding (the whole pod
// frozen by a cgroup, a paused VM; here upperd and its fork server both
// SIGSTOPped, upperd for longer than the timeout): on waking, the loop has
// no evidence of a hang, since it did not look meanwhile. It starts the
// wait again, and a fork server that then takes the hand-off within the
// timeout is not killed.
TEST_F(ForkServerHang, AFrozenLoopDoesNotCondemnTheForkServerOnWaking) {
  Start({"--mode=fork", "--fork_server_timeout=2s"});
  StoppedForkServer frozen = StopForkServer(*upperd_);
  ASSERT_TRUE(frozen.pidfd.valid());
  std::vector<UniqueFd> one = Flood(upperd_->data_port(), 1);
  // upperd accepts and hands the connection off: outstanding from now on.
  const ServerStatus accepted = StatusWhen(*stub_, [](const ServerStatus& s) {
    return s.active_connections() == 1;
  });
  ASSERT_EQ(accepted.active_connections(), 1u) << accepted.ShortDebugString();
  absl::SleepFor(absl::Milliseconds(100));  // the loop samples it
  upperd_->Signal(SIGSTOP);
  absl::SleepFor(absl::Seconds(3));  // longer than the timeout
  upperd_->Signal(SIGCONT);
  absl::SleepFor(absl::Milliseconds(300));  // well within the timeout
  ASSERT_EQ(
      syscall(SYS_pidfd_send_signal, frozen.pidfd.get(), SIGCONT, nullptr, 0),
      0);
  shutdown(one[0].get(), SHUT_WR);  // served, it then ends
  const FloodTally tally = Collect(one, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(tally.served, 1) << upperd_->Log();
  EXPECT_EQ(upperd_->Log().find("fork_server_unresponsive"), std::string::npos)
      << upperd_->Log();
  EXPECT_EQ(Metric("upper_fork_server_hangs_total"), 0);
  ExpectSettled(tally);
  StopCleanly(*upperd_);
}

// SIGTERM with a stopped fork server, its socket buffer and upperd's queue
// full and the watchdog off: the drain begins at once (the draining line),
// and upperd still exits 0 with every connection counted (the queued ones
// closed by the drain, the ones in the socket recovered when the fork
// server is killed at the end).
TEST_F(ForkServerHang, SigtermIsActedOnAtOnceWithHandOffsQueued) {
  Start({"--mode=fork", "--fork_server_timeout=0", "--drain_timeout=500ms"});
  StoppedForkServer stale = StopForkServer(*upperd_);
  ASSERT_TRUE(stale.pidfd.valid());
  std::vector<UniqueFd> flood = StalledFlood(upperd_->data_port());
  const ServerStatus full = StatusWhen(*stub_, [](const ServerStatus& s) {
    return Reason(s, "fork_queue_full") > 0 &&
           Reason(s, "fork_queue_full") + s.active_connections() ==
               static_cast<uint64_t>(kFlood);
  });
  ASSERT_GT(Reason(full, "fork_queue_full"), 0u) << full.ShortDebugString();
  const absl::Time term = absl::Now();
  upperd_->Signal(SIGTERM);
  ASSERT_TRUE(upperd_->WaitForLog("draining", absl::Seconds(5)).ok());
  const absl::Duration seen = absl::Now() - term;
  RecordProperty("draining_after_us",
                 static_cast<int>(absl::ToInt64Microseconds(seen)));
  EXPECT_LT(seen, absl::Milliseconds(500));
  absl::StatusOr<int> code = upperd_->WaitExit(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status() << upperd_->Log();
  EXPECT_EQ(*code, 0);
  const FloodTally tally = Collect(flood, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(tally.served, 0);
  EXPECT_EQ(tally.refused, kFlood);
  EXPECT_EQ(FinalTotal(*upperd_, "active"), 0u) << upperd_->Log();
  EXPECT_EQ(FinalTotal(*upperd_, "accepted"), FinalTotal(*upperd_, "closed"));
  EXPECT_EQ(FinalTotal(*upperd_, "accepted").value_or(0) +
                FinalTotal(*upperd_, "rejected").value_or(0),
            static_cast<uint64_t>(kFlood))
      << upperd_->Log();
  EXPECT_EQ(FinalTotal(*upperd_, "rejected_fork_queue_full"),
            Reason(full, "fork_queue_full"));
  ExpectStaleForkServerGone(stale, upperd_->pid());
}

}  // namespace
}  // namespace upper::testing
