// Fork mode through every fault of the hand-off (issue 14), against a real
// upperd. Fault points (common/fault_point.h) kill the fork server or stop a
// child at the exact instruction of each window: between fork() and the
// claim of the slot, between the peek at a child's exit and the release of
// its slot, between the release and the reap. Close races are run a
// thousand times in both modes. Each test asserts the invariants of
// docs/guarantees.md: no slot leaked, no counter below zero, no served
// connection counted as refused (nor a refused one served), every close
// answered by what happened, no zombie, and a clean drain.
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/mode_test_base.h"
#include "tests/support/proc.h"
#include "tests/support/stop_cleanly.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

using admin::v1::ServerStatus;

uint64_t Reason(const google::protobuf::Map<std::string, uint64_t>& by,
                const std::string& reason) {
  const auto it = by.find(reason);
  return it == by.end() ? 0 : it->second;
}

// One upperd in fork mode with fault points armed (each fires once across
// upperd, its fork servers and their children), and its admin stub.
class ForkFault : public ::testing::Test {
 protected:
  // Without `once`, each fork server arms the points afresh (a point that
  // needs no file: the once marker cannot be made at an fd limit).
  void Start(const std::string& faults, int max_connections = 2,
             bool once = true) {
    absl::StatusOr<std::string> dir = MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
        UpperdProcess::Start(
            {.args = {"--mode=fork",
                      absl::StrCat("--max_connections=", max_connections),
                      "--drain_timeout=2s"},
             .env = {{"UPPER_FAULT_POINT", faults},
                     {"UPPER_FAULT_POINT_ONCE_DIR", once ? *dir : ""}}});
    ASSERT_TRUE(started.ok()) << started.status();
    upperd_ = *std::move(started);
    absl::StatusOr<uint16_t> port = upperd_->Port("admin");
    ASSERT_TRUE(port.ok()) << port.status();
    stub_ = admin::v1::AdminService::NewStub(AdminChannel(*port));
  }

  template <typename F>
  ServerStatus StatusWhen(F predicate) {
    return upper::testing::StatusWhen(*stub_, predicate);
  }

  // Waits until the fork server died and its replacement started.
  void ExpectForkServerReplaced() {
    ASSERT_TRUE(upperd_->WaitForLog("fork_server_died", absl::Seconds(5)).ok())
        << upperd_->Log();
    ASSERT_TRUE(
        upperd_->WaitForLog("fork_server_restarted", absl::Seconds(5)).ok())
        << upperd_->Log();
  }

  // Nothing active, nothing held: every served connection closed, no zombie
  // below upperd, and the table's counters add up.
  ServerStatus ExpectSettled(uint64_t accepted, uint64_t fork_failed) {
    const ServerStatus s = StatusWhen([&](const ServerStatus& s) {
      return s.active_connections() == 0 && s.accepted_total() == accepted &&
             s.closed_total() == accepted &&
             Reason(s.rejected_by_reason(), "fork_failed") == fork_failed;
    });
    EXPECT_EQ(s.active_connections(), 0u) << s.ShortDebugString();
    EXPECT_EQ(s.accepted_total(), accepted) << s.ShortDebugString();
    EXPECT_EQ(s.closed_total(), accepted) << s.ShortDebugString();
    EXPECT_EQ(Reason(s.rejected_by_reason(), "fork_failed"), fork_failed)
        << s.ShortDebugString();
    EXPECT_EQ(s.worker_crashes_total(), 0u) << upperd_->Log();
    EXPECT_TRUE(
        Eventually([&] { return ZombieDescendants(upperd_->pid()).empty(); },
                   absl::Seconds(5)));
    return s;
  }

  // A new connection is served, exactly, after the fault.
  void ExpectServed() {
    EXPECT_EQ(Exchange(upperd_->data_port(), "after the fault", 5, 1,
                       absl::Seconds(10))
                  .value_or(""),
              "AFTER THE FAULT");
  }

  // One exchange with the fork server killed at `fault`: the connection is
  // counted accepted once, and the slot then serves the next one.
  void ExpectAnExchangeCountedOnce(const std::string& fault) {
    Start(fault, /*max_connections=*/1);
    EXPECT_EQ(Exchange(upperd_->data_port(), "abc", 3, 1, absl::Seconds(10))
                  .value_or(""),
              "ABC");
    ExpectForkServerReplaced();
    ExpectSettled(/*accepted=*/1, /*fork_failed=*/0);
    ExpectServed();
    ExpectSettled(/*accepted=*/2, /*fork_failed=*/0);
    StopCleanly(*upperd_);
  }

  std::unique_ptr<UpperdProcess> upperd_;
  std::unique_ptr<admin::v1::AdminService::Stub> stub_;
};

// Sends one byte; true if it comes back upper-cased, false on EOF or reset
// (the connection was closed unserved).
bool Served(int fd) {
  if (send(fd, "q", 1, MSG_NOSIGNAL) != 1) return false;
  absl::StatusOr<std::string> got =
      ReadExactly(fd, 1, absl::Now() + absl::Seconds(10));
  return got.ok() && *got == "Q";
}

// The window of "a live child treated as never forked": the fork server is
// killed right after fork(), while its child is stopped before it claimed
// the slot. upperd abandons the slot (refused, fork_failed); the slot then
// serves the next connection; the stray child, resumed, finds its claim lost
// and exits without serving or touching the next connection's slot.
TEST_F(ForkFault, AStrayChildOfADeadForkServerNeverServesNorFreesTheNextSlot) {
  Start("fork_server.after_fork:kill,fork_child.before_claim:stop",
        /*max_connections=*/1);
  absl::StatusOr<UniqueFd> stray_client = Connect(upperd_->data_port());
  ASSERT_TRUE(stray_client.ok());
  pid_t stray = -1;
  ASSERT_TRUE(Eventually(
      [&] { return (stray = StoppedDescendant(upperd_->pid())) > 0; },
      absl::Seconds(5)));
  ExpectForkServerReplaced();
  StatusWhen([](const ServerStatus& s) {
    return Reason(s.rejected_by_reason(), "fork_failed") == 1;
  });

  // The only slot serves the next connection while the stray child waits.
  absl::StatusOr<UniqueFd> next = Connect(upperd_->data_port());
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(Served(next->get())) << upperd_->Log();
  ASSERT_EQ(kill(stray, SIGCONT), 0);
  // The stray child exits unserved: its client sees the end, no echo.
  EXPECT_FALSE(Served(stray_client->get()));
  EXPECT_TRUE(Eventually([&] { return kill(stray, 0) != 0; }, absl::Seconds(5)))
      << "the stray child is still there (or a zombie)";
  // The next connection is untouched: still served, still counted active.
  EXPECT_TRUE(Served(next->get()));
  const ServerStatus live = StatusWhen(
      [](const ServerStatus& s) { return s.active_connections() == 1; });
  EXPECT_EQ(live.active_connections(), 1u) << live.ShortDebugString();
  next->Reset();
  stray_client->Reset();
  ExpectSettled(/*accepted=*/1, /*fork_failed=*/1);
  ExpectServed();
  StopCleanly(*upperd_);
}

// The fork server dies right after fork(), its child running: the child
// claims the slot itself or upperd abandons it first, never both. Whatever
// the client saw is what was counted.
TEST_F(ForkFault, DeathAfterForkCountsTheConnectionAsWhatTheClientSaw) {
  Start("fork_server.after_fork:kill");
  absl::StatusOr<UniqueFd> client = Connect(upperd_->data_port());
  ASSERT_TRUE(client.ok());
  const bool served = Served(client->get());
  ExpectForkServerReplaced();
  client->Reset();
  ExpectSettled(/*accepted=*/served ? 1 : 0, /*fork_failed=*/served ? 0 : 1);
  ExpectServed();
  StopCleanly(*upperd_);
}

// The fork server dies after marking the slot as forking, before fork():
// no child exists; the connection is refused and its slot freed.
TEST_F(ForkFault, DeathBeforeForkRefusesTheConnectionAndFreesTheSlot) {
  Start("fork_server.before_fork:kill", /*max_connections=*/1);
  absl::StatusOr<UniqueFd> client = Connect(upperd_->data_port());
  ASSERT_TRUE(client.ok());
  EXPECT_FALSE(Served(client->get()));
  ExpectForkServerReplaced();
  client->Reset();
  ExpectSettled(/*accepted=*/0, /*fork_failed=*/1);
  ExpectServed();
  StopCleanly(*upperd_);
}

// "A reaped child whose slot is never released": the fork server dies after
// it saw the child's exit and before it released the slot. The zombie goes
// to upperd (the subreaper), which releases the slot by the child's pid,
// still unreaped and so still its own, then reaps it.
TEST_F(ForkFault, DeathBetweenThePeekAndTheReleaseLeavesNoSlotHeld) {
  Start("fork_server.after_peek:kill", /*max_connections=*/1);
  ASSERT_EQ(Exchange(upperd_->data_port(), "abc", 3, 1, absl::Seconds(10))
                .value_or(""),
            "ABC");
  ExpectForkServerReplaced();
  const ServerStatus s = ExpectSettled(/*accepted=*/1, /*fork_failed=*/0);
  EXPECT_EQ(Reason(s.closed_by_reason(), "client"), 1u) << s.ShortDebugString();
  ExpectServed();  // the only slot is free again
  StopCleanly(*upperd_);
}

// The fork server dies after releasing the slot and before reaping the
// child: upperd reaps the zombie and releases nothing twice.
TEST_F(ForkFault, DeathBetweenTheReleaseAndTheReapReleasesOnce) {
  Start("fork_server.before_reap:kill", /*max_connections=*/1);
  ASSERT_EQ(Exchange(upperd_->data_port(), "abc", 3, 1, absl::Seconds(10))
                .value_or(""),
            "ABC");
  ExpectForkServerReplaced();
  const ServerStatus s = ExpectSettled(/*accepted=*/1, /*fork_failed=*/0);
  EXPECT_EQ(s.closed_total(), 1u) << s.ShortDebugString();
  ExpectServed();
  StopCleanly(*upperd_);
}

// --- The fork server's ledger: killed inside a transition ---

// The fork server killed at `point` of the release of a served connection
// that admin closed: counted accepted once, closed `killed` once, active 0
// (never huge), the slot serves the next connection.
void ExpectReleaseDeathCountedOnce(std::unique_ptr<UpperdProcess>& upperd,
                                   admin::v1::AdminService::Stub& stub) {
  absl::StatusOr<UniqueFd> client = Connect(upperd->data_port());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(Served(client->get()));
  uint64_t id = 0;
  ASSERT_TRUE(Eventually([&] { return (id = OnlyLiveConnectionId(stub)) != 0; },
                         absl::Seconds(5)));
  ASSERT_EQ(CloseConnectionCode(stub, id), grpc::StatusCode::OK);
  ASSERT_TRUE(upperd->WaitForLog("fork_server_died", absl::Seconds(5)).ok())
      << upperd->Log();
  client->Reset();
  const ServerStatus s =
      upper::testing::StatusWhen(stub, [](const ServerStatus& s) {
        return s.active_connections() == 0 && s.closed_total() == 1;
      });
  EXPECT_EQ(s.active_connections(), 0u) << s.ShortDebugString();
  EXPECT_EQ(s.accepted_total(), 1u) << s.ShortDebugString();
  EXPECT_EQ(s.closed_total(), 1u) << s.ShortDebugString();
  EXPECT_EQ(Reason(s.closed_by_reason(), "killed"), 1u) << s.ShortDebugString();
}

// Killed after the release's commit: upperd's recovery frees the slot the
// ledger already counted; the orphan's reap finds no slot to release again.
TEST_F(ForkFault, DeathAfterAReleaseCommitFreesTheSlotAndCountsItOnce) {
  Start("table.ledger.release.after_commit:kill", /*max_connections=*/1);
  ExpectReleaseDeathCountedOnce(upperd_, *stub_);
  ExpectForkServerReplaced();
  ExpectServed();
  ExpectSettled(/*accepted=*/2, /*fork_failed=*/0);
  StopCleanly(*upperd_);
}

// Killed before the release's commit: nothing was counted; upperd releases
// the orphan's slot itself, with the close reason the seal kept.
TEST_F(ForkFault, DeathBeforeAReleaseCommitIsReleasedOnceByUpperd) {
  Start("table.ledger.release.before_commit:kill", /*max_connections=*/1);
  ExpectReleaseDeathCountedOnce(upperd_, *stub_);
  ExpectForkServerReplaced();
  ExpectServed();
  ExpectSettled(/*accepted=*/2, /*fork_failed=*/0);
  StopCleanly(*upperd_);
}

// Killed around the commit of a child's acceptance: counted once, by the
// ledger or by upperd's recovery, and closed once when the child ends.
TEST_F(ForkFault, DeathBeforeAnAcceptCommitIsCountedByUpperdsRecovery) {
  ExpectAnExchangeCountedOnce("table.ledger.accept.before_commit:kill");
}

TEST_F(ForkFault, DeathAfterAnAcceptCommitIsNotCountedAgain) {
  ExpectAnExchangeCountedOnce("table.ledger.accept.after_commit:kill");
}

// The fork server, upperd's only child while idle.
pid_t ForkServerOf(pid_t upperd) {
  for (pid_t pid : Descendants(upperd)) {
    const std::optional<ProcStat> stat = ReadProcStat(pid);
    if (stat && stat->ppid == upperd) return pid;
  }
  return -1;
}

// The fork server abandons a connection whose socket it could not receive
// (at its fd limit, set from here while it is stopped) after a close was
// answered OK, and is killed at `point` of that abandon: the close is
// counted `killed` once (accepted once, no refusal), the slot freed once.
void ExpectAbandonDeathCountedOnce(std::unique_ptr<UpperdProcess>& upperd,
                                   admin::v1::AdminService::Stub& stub) {
  const pid_t server = ForkServerOf(upperd->pid());
  ASSERT_GT(server, 0);
  ASSERT_EQ(kill(server, SIGSTOP), 0);
  ASSERT_TRUE(Eventually(
      [&] {
        const std::optional<ProcStat> stat = ReadProcStat(server);
        return stat && stat->state == 'T';
      },
      absl::Seconds(5)));
  // Its lowest free descriptor as its limit: the next one it gets fails, so
  // the kernel drops the passed socket (MSG_CTRUNC).
  const std::map<int, std::string> fds = FdTargets(server);
  int lowest_free = 0;
  while (fds.count(lowest_free) != 0) ++lowest_free;
  const rlimit limit = {static_cast<rlim_t>(lowest_free),
                        static_cast<rlim_t>(lowest_free)};
  ASSERT_EQ(prlimit(server, RLIMIT_NOFILE, &limit, nullptr), 0);
  absl::StatusOr<UniqueFd> client = Connect(upperd->data_port());
  ASSERT_TRUE(client.ok());
  uint64_t id = 0;
  ASSERT_TRUE(Eventually([&] { return (id = OnlyLiveConnectionId(stub)) != 0; },
                         absl::Seconds(5)));
  ASSERT_EQ(CloseConnectionCode(stub, id), grpc::StatusCode::OK);
  ASSERT_EQ(kill(server, SIGCONT), 0);
  // Only the abandon's point is armed: the death proves the fork server
  // took that path (it logs fork_server_lost_socket after the abandon).
  ASSERT_TRUE(upperd->WaitForLog("fork_server_died", absl::Seconds(5)).ok())
      << upperd->Log();
  EXPECT_FALSE(Served(client->get()));
  client->Reset();
  const ServerStatus s =
      upper::testing::StatusWhen(stub, [](const ServerStatus& s) {
        return s.active_connections() == 0 && s.closed_total() == 1;
      });
  EXPECT_EQ(s.active_connections(), 0u) << s.ShortDebugString();
  EXPECT_EQ(s.accepted_total(), 1u) << s.ShortDebugString();
  EXPECT_EQ(s.closed_total(), 1u) << s.ShortDebugString();
  EXPECT_EQ(Reason(s.closed_by_reason(), "killed"), 1u) << s.ShortDebugString();
  EXPECT_EQ(s.rejected_total(), 0u) << s.ShortDebugString();
}

TEST_F(ForkFault, DeathAfterAnAbandonCommitCountsTheAnsweredCloseOnce) {
  Start("table.ledger.abandon.after_commit:kill", /*max_connections=*/1,
        /*once=*/false);
  ExpectAbandonDeathCountedOnce(upperd_, *stub_);
  ExpectForkServerReplaced();
  ExpectServed();
  ExpectSettled(/*accepted=*/2, /*fork_failed=*/0);
  StopCleanly(*upperd_);
}

TEST_F(ForkFault, DeathBeforeAnAbandonCommitCountsTheAnsweredCloseOnce) {
  Start("table.ledger.abandon.before_commit:kill", /*max_connections=*/1,
        /*once=*/false);
  ExpectAbandonDeathCountedOnce(upperd_, *stub_);
  ExpectForkServerReplaced();
  ExpectServed();
  ExpectSettled(/*accepted=*/2, /*fork_failed=*/0);
  StopCleanly(*upperd_);
}

// --- Close races, both modes ---

// A mode, with its ready workers when the parameter says so (issue 16):
// "fork_pool" and "thread_cache" keep up to 64 idle.
std::vector<std::string> ModeArgs(const std::string& param) {
  if (param == "fork_pool") {
    return {"--mode=fork", "--fork_spare_min=2", "--fork_spare_max=64",
            "--fork_spare_timeout=1s", "--fork_child_max_connections=1000"};
  }
  if (param == "thread_cache") {
    return {"--mode=thread", "--thread_spare_min=2", "--thread_spare_max=64",
            "--thread_spare_timeout=1s"};
  }
  return {absl::StrCat("--mode=", param)};
}

class CloseRace : public ModeTest {
 protected:
  void SetUp() override {
    std::vector<std::string> args = ModeArgs(GetParam());
    args.push_back("--max_connections=64");
    absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
        UpperdProcess::Start({.args = args});
    ASSERT_TRUE(started.ok()) << started.status();
    upperd_ = *std::move(started);
    absl::StatusOr<uint16_t> port = upperd_->Port("admin");
    ASSERT_TRUE(port.ok()) << port.status();
    stub_ = admin::v1::AdminService::NewStub(AdminChannel(*port));
  }

  grpc::StatusCode Close(uint64_t id) {
    return CloseConnectionCode(*stub_, id);
  }
  uint64_t LiveId() { return OnlyLiveConnectionId(*stub_); }

  std::unique_ptr<UpperdProcess> upperd_;
  std::unique_ptr<admin::v1::AdminService::Stub> stub_;
};

constexpr int kRaces = 1000;

// A close racing the connection's own end: OK exactly when it was counted
// `killed`, NOT_FOUND exactly when it ended on its own.
TEST_P(CloseRace, ClosesRacingTheEndAreAnsweredAsCounted) {
  int ok = 0;
  for (int i = 0; i < kRaces; ++i) {
    absl::StatusOr<UniqueFd> client = Connect(upperd_->data_port());
    ASSERT_TRUE(client.ok());
    ASSERT_TRUE(Served(client->get()));
    uint64_t id = 0;
    ASSERT_TRUE(
        Eventually([&] { return (id = LiveId()) != 0; }, absl::Seconds(5)));
    std::thread end([&] { client->Reset(); });
    const grpc::StatusCode code = Close(id);
    end.join();
    ASSERT_TRUE(code == grpc::StatusCode::OK ||
                code == grpc::StatusCode::NOT_FOUND)
        << code;
    if (code == grpc::StatusCode::OK) ++ok;
    // Before the next round, this one has ended.
    ASSERT_TRUE(Eventually([&] { return LiveId() == 0; }, absl::Seconds(5)));
  }
  const ServerStatus s = upper::testing::StatusWhen(
      *stub_,
      [](const ServerStatus& s) { return s.active_connections() == 0; });
  EXPECT_EQ(Reason(s.closed_by_reason(), "killed"), static_cast<uint64_t>(ok))
      << s.ShortDebugString();
  EXPECT_EQ(s.closed_total(), static_cast<uint64_t>(kRaces));
  EXPECT_EQ(s.accepted_total(), static_cast<uint64_t>(kRaces));
  EXPECT_EQ(s.worker_crashes_total(), 0u);
  RecordProperty("closes_ok", ok);
  StopCleanly(*upperd_);
}

// A close of a connection accepted a moment ago, before its worker exists:
// OK means it ends (the worker sees the request when it starts) and is
// counted `killed`; NOT_FOUND means upperd had not taken it yet, and it is
// then served as usual.
TEST_P(CloseRace, ClosesOfJustAcceptedConnectionsEndThemOrFindNothing) {
  // Connection ids are given out in order; learn where they stand.
  uint64_t next_id = 0;
  {
    absl::StatusOr<UniqueFd> first = Connect(upperd_->data_port());
    ASSERT_TRUE(first.ok() && Served(first->get()));
    next_id = LiveId() + 1;
  }
  ASSERT_TRUE(Eventually([&] { return LiveId() == 0; }, absl::Seconds(5)));
  int ok = 0;
  for (int i = 0; i < kRaces; ++i, ++next_id) {
    absl::StatusOr<UniqueFd> client = Connect(upperd_->data_port());
    ASSERT_TRUE(client.ok());
    const grpc::StatusCode code = Close(next_id);
    if (code == grpc::StatusCode::OK) {
      ++ok;
      // It ends, promptly, whatever it had time to echo.
      absl::StatusOr<std::string> rest =
          ReadUntilEof(client->get(), absl::Now() + absl::Seconds(5));
      ASSERT_FALSE(absl::IsDeadlineExceeded(rest.status()))
          << "connection " << next_id << " closed OK but still served";
    } else {
      ASSERT_EQ(code, grpc::StatusCode::NOT_FOUND);
      ASSERT_TRUE(Served(client->get()));
    }
    client->Reset();
    ASSERT_TRUE(Eventually([&] { return LiveId() == 0; }, absl::Seconds(5)));
  }
  const ServerStatus s = upper::testing::StatusWhen(
      *stub_,
      [](const ServerStatus& s) { return s.active_connections() == 0; });
  EXPECT_EQ(Reason(s.closed_by_reason(), "killed"), static_cast<uint64_t>(ok))
      << s.ShortDebugString();
  EXPECT_EQ(s.closed_total(), s.accepted_total());
  EXPECT_EQ(s.accepted_total(), static_cast<uint64_t>(kRaces + 1));
  EXPECT_EQ(s.worker_crashes_total(), 0u);
  RecordProperty("closes_ok", ok);
  StopCleanly(*upperd_);
}

INSTANTIATE_TEST_SUITE_P(BothModes, CloseRace,
                         ::testing::Values("thread", "fork", "thread_cache",
                                           "fork_pool"),
                         [](const auto& info) { return info.param; });

// --- Chaos: the fork server killed and stopped at random under load ---

constexpr absl::Duration kChaosLength = absl::Seconds(30);
constexpr int kChaosClients = 200;

// One client's share of the chaos: churn of short exchanges, and every
// tenth a 256 KiB stream. Each exchange either came back exactly or was
// refused before any byte (EOF or reset, nothing echoed); never partial.
struct ChaosTally {
  std::atomic<uint64_t> exact{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> broken{0};
  std::atomic<uint64_t> unconnected{0};
};

void ChaosClient(uint16_t port, int index, absl::Time until, ChaosTally& t) {
  for (int round = 0; absl::Now() < until; ++round) {
    const size_t size =
        round % 10 == 9 ? 256 * 1024 : 64 + (index * 37 + round) % 4000;
    const std::string payload = RandomPayload(size, index * 100000 + round);
    absl::StatusOr<UniqueFd> fd = Connect(port);
    if (!fd.ok()) {
      t.unconnected.fetch_add(1);  // never reached upperd
      continue;
    }
    std::mt19937_64 rng(round);
    const absl::Status sent =
        SendSegmented(fd->get(), payload, 16384, rng, true);
    absl::StatusOr<std::string> reply =
        ReadUntilEof(fd->get(), absl::Now() + absl::Seconds(20));
    if (reply.ok() && *reply == ExpectedUpper(payload)) {
      t.exact.fetch_add(1);
    } else if ((reply.ok() && reply->empty()) ||
               (!reply.ok() && !absl::IsDeadlineExceeded(reply.status()) &&
                !sent.ok())) {
      t.refused.fetch_add(1);
    } else if (!reply.ok() && !absl::IsDeadlineExceeded(reply.status())) {
      t.refused.fetch_add(1);  // reset before any byte: refused unserved
    } else {
      t.broken.fetch_add(1);
    }
  }
}

// The current fork server's pid, from its own start line.
pid_t CurrentForkServer(const UpperdProcess& upperd) {
  int pid = 0;
  const std::optional<std::string> text =
      upperd.Field("fork_server_started", "pid");
  return text && absl::SimpleAtoi(*text, &pid) ? pid : -1;
}

// With a fresh child per connection, and with the pool: then the kills
// also land while children wait idle, report "done", or take a hand-off.
class ForkChaos : public ::testing::TestWithParam<std::string> {};

TEST_P(ForkChaos, KilledAndStoppedForkServerUnderChurnLeavesEverythingExact) {
  std::vector<std::string> args =
      ModeArgs(GetParam() == "pool" ? "fork_pool" : "fork");
  args.push_back("--max_connections=512");
  args.push_back("--drain_timeout=5s");
  absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
      UpperdProcess::Start({.args = args});
  ASSERT_TRUE(started.ok()) << started.status();
  UpperdProcess& upperd = **started;
  ASSERT_TRUE(upperd.WaitForLog("fork_server_started", absl::Seconds(5)).ok());
  const absl::Time until = absl::Now() + kChaosLength;
  ChaosTally tally;
  std::vector<std::thread> clients;
  for (int i = 0; i < kChaosClients; ++i) {
    clients.emplace_back(ChaosClient, upperd.data_port(), i, until,
                         std::ref(tally));
  }
  std::mt19937 rng(14);
  int kills = 0, stops = 0;
  std::set<pid_t> killed;
  while (absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(200 + rng() % 500));
    // Only the fork server that logged the last start line and that this
    // test has not killed yet: upperd reaps a killed one at once, and its
    // pid may then be reused by anyone (a kill of it could hit a stranger).
    const pid_t server = CurrentForkServer(upperd);
    if (server <= 0 || killed.contains(server)) continue;
    if (rng() % 2 == 0) {  // between kills: a stop and a resume
      kill(server, SIGSTOP);
      absl::SleepFor(absl::Milliseconds(50 + rng() % 150));
      kill(server, SIGCONT);
      ++stops;
      continue;
    }
    if (kill(server, SIGKILL) == 0) ++kills;
    killed.insert(server);
  }
  for (std::thread& c : clients) c.join();
  RecordProperty("exact", static_cast<int>(tally.exact.load()));
  RecordProperty("refused", static_cast<int>(tally.refused.load()));
  RecordProperty("kills", kills);
  RecordProperty("stops", stops);
  EXPECT_EQ(tally.broken.load(), 0u);
  EXPECT_GT(tally.exact.load(), 0u);
  EXPECT_GT(kills, 5);

  absl::StatusOr<uint16_t> port = upperd.Port("admin");
  ASSERT_TRUE(port.ok());
  auto stub = admin::v1::AdminService::NewStub(AdminChannel(*port));
  const ServerStatus s = upper::testing::StatusWhen(
      *stub,
      [](const ServerStatus& s) {
        return s.active_connections() == 0 &&
               s.closed_total() == s.accepted_total();
      },
      absl::Seconds(20));
  EXPECT_EQ(s.active_connections(), 0u) << s.ShortDebugString() << "\n"
                                        << upperd.Log();
  EXPECT_EQ(s.closed_total(), s.accepted_total()) << s.ShortDebugString();
  // Every exchange a client saw is counted once: served or refused.
  EXPECT_EQ(s.accepted_total() + s.rejected_total(),
            tally.exact.load() + tally.refused.load())
      << s.ShortDebugString();
  EXPECT_GE(s.accepted_total(), tally.exact.load());
  EXPECT_EQ(s.worker_crashes_total(), 0u) << s.ShortDebugString();
  EXPECT_TRUE(
      Eventually([&] { return ZombieDescendants(upperd.pid()).empty(); },
                 absl::Seconds(5)));
  // Served again once the last fork server killed is replaced (<= 1 s).
  EXPECT_TRUE(Eventually(
      [&] {
        return Exchange(upperd.data_port(), "still exact", 5, 1,
                        absl::Seconds(10))
                   .value_or("") == "STILL EXACT";
      },
      absl::Seconds(10)));
  StopCleanly(upperd);
  printf("chaos: %llu exact, %llu refused, %d fork-server kills, %d stops\n",
         static_cast<unsigned long long>(tally.exact.load()),
         static_cast<unsigned long long>(tally.refused.load()), kills, stops);
}

INSTANTIATE_TEST_SUITE_P(Children, ForkChaos,
                         ::testing::Values("per_connection", "pool"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace upper::testing
