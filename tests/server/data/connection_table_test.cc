#include "server/data/connection_table.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace upper {
namespace {

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

std::unique_ptr<ConnectionTable> MakeTable(uint32_t capacity) {
  absl::StatusOr<std::unique_ptr<ConnectionTable>> table =
      ConnectionTable::Create(capacity);
  EXPECT_TRUE(table.ok()) << table.status();
  return *std::move(table);
}

// Rounds of each two-thread race: 20,000 unless UPPER_TEST_RACE_ROUNDS says
// otherwise (.ci/arm64 runs fewer under qemu-user, where starting a thread
// costs ~3.5x as much and the emulation cannot reorder more than the host).
int RaceRounds() {
  const char* env = std::getenv("UPPER_TEST_RACE_ROUNDS");
  const int rounds = env != nullptr ? std::atoi(env) : 0;
  return rounds > 0 ? rounds : 20000;
}

std::optional<uint32_t> AllocateFrom(ConnectionTable& table, Mode mode,
                                     uint16_t port) {
  const sockaddr_in peer = Loopback(port);
  return table.Allocate(mode, reinterpret_cast<const sockaddr*>(&peer),
                        sizeof(peer));
}

TEST(ConnectionTable, AllocatedSlotIsListedWithItsPeerAndMode) {
  auto table = MakeTable(4);
  const std::optional<uint32_t> slot = AllocateFrom(*table, Mode::kFork, 4242);
  ASSERT_TRUE(slot);
  const std::vector<ConnectionInfo> live = table->Snapshot();
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].slot, *slot);
  EXPECT_EQ(live[0].peer, "127.0.0.1:4242");
  EXPECT_EQ(live[0].mode, Mode::kFork);
  EXPECT_GT(live[0].id, 0u);
  EXPECT_GT(live[0].started_unix_ns, 0u);
  EXPECT_EQ(table->ReadTotals().active[static_cast<int>(Mode::kFork)], 1u);
}

TEST(ConnectionTable, LiveIdsNameEveryLiveSlotAsSnapshotDoes) {
  auto table = MakeTable(4);
  const std::optional<uint32_t> a = AllocateFrom(*table, Mode::kFork, 1);
  const std::optional<uint32_t> b = AllocateFrom(*table, Mode::kThread, 2);
  const std::optional<uint32_t> c = AllocateFrom(*table, Mode::kThread, 3);
  ASSERT_TRUE(a && b && c);
  table->Release(*b, CloseReason::kClient);
  const std::vector<ConnectionInfo> rows = table->Snapshot();
  const std::vector<LiveConnectionId> ids = table->LiveIds();
  ASSERT_EQ(ids.size(), 2u);
  ASSERT_EQ(rows.size(), 2u);
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(ids[i].id, rows[i].id);
    EXPECT_EQ(ids[i].slot, rows[i].slot);
    EXPECT_EQ(ids[i].mode, rows[i].mode);
  }
  EXPECT_EQ(ids[0].slot, *a);
  EXPECT_EQ(ids[0].mode, Mode::kFork);
  EXPECT_EQ(ids[1].slot, *c);
}

TEST(ConnectionTable, FindReturnsTheLiveRowOfAnIdAndNothingOnceItEnded) {
  auto table = MakeTable(2);  // full: the release below frees the only slot
  const std::optional<uint32_t> a = AllocateFrom(*table, Mode::kFork, 1);
  const std::optional<uint32_t> b = AllocateFrom(*table, Mode::kThread, 2);
  ASSERT_TRUE(a && b);
  const ConnectionInfo first = *table->Read(*a);
  const ConnectionInfo second = *table->Read(*b);

  const std::optional<ConnectionInfo> found = table->Find(second.id);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->slot, *b);
  EXPECT_EQ(found->peer, second.peer);
  EXPECT_EQ(found->mode, Mode::kThread);
  EXPECT_FALSE(table->Find(second.id + 100));

  // Released and reused: the slot holds a new id, the old one is gone.
  table->Release(*a, CloseReason::kClient);
  const std::optional<uint32_t> reused = AllocateFrom(*table, Mode::kFork, 3);
  ASSERT_EQ(reused, a);
  EXPECT_FALSE(table->Find(first.id));
  EXPECT_EQ(table->Find(table->Read(*a)->id)->slot, *a);
}

TEST(ConnectionTable, Ipv6PeerIsFormattedInBrackets) {
  auto table = MakeTable(1);
  sockaddr_in6 peer = {};
  peer.sin6_family = AF_INET6;
  peer.sin6_port = htons(80);
  peer.sin6_addr = in6addr_loopback;
  ASSERT_TRUE(table->Allocate(
      Mode::kThread, reinterpret_cast<const sockaddr*>(&peer), sizeof(peer)));
  EXPECT_EQ(table->Snapshot().at(0).peer, "[::1]:80");
}

TEST(ConnectionTable, ExhaustionReturnsNothingUntilASlotIsReleased) {
  auto table = MakeTable(3);
  std::vector<uint32_t> slots;
  for (int i = 0; i < 3; ++i) {
    std::optional<uint32_t> slot = AllocateFrom(*table, Mode::kThread, 1);
    ASSERT_TRUE(slot);
    slots.push_back(*slot);
  }
  EXPECT_FALSE(AllocateFrom(*table, Mode::kThread, 1));
  table->Release(slots[1], CloseReason::kClient);
  const std::optional<uint32_t> again = AllocateFrom(*table, Mode::kThread, 1);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, slots[1]);
}

TEST(ConnectionTable, ReleasedSlotIsReusedWithNewGenerationAndId) {
  auto table = MakeTable(1);
  const uint32_t slot = *AllocateFrom(*table, Mode::kThread, 1);
  const ConnectionInfo first = *table->Read(slot);
  table->Release(slot, CloseReason::kClient);
  EXPECT_FALSE(table->Read(slot));
  ASSERT_EQ(*AllocateFrom(*table, Mode::kThread, 2), slot);
  const ConnectionInfo second = *table->Read(slot);
  EXPECT_NE(second.generation, first.generation);
  EXPECT_GT(second.id, first.id);
  EXPECT_EQ(second.bytes_in, 0u);
}

TEST(ConnectionTable, ReleaseCountsCloseReasonAndDuration) {
  auto table = MakeTable(2);
  const uint32_t slot = *AllocateFrom(*table, Mode::kThread, 1);
  ASSERT_EQ(table->Writer(slot).Claim(getpid(), 0),
            SlotWriter::ClaimResult::kClaimed);
  table->Release(slot, CloseReason::kIdleTimeout);
  const TableTotals t = table->ReadTotals();
  const int thread = static_cast<int>(Mode::kThread);
  EXPECT_EQ(t.accepted_total[thread], 1u);
  EXPECT_EQ(t.active[thread], 0u);
  EXPECT_EQ(t.closed_total[thread][static_cast<int>(CloseReason::kIdleTimeout)],
            1u);
  uint64_t observations = 0;
  for (uint64_t n : t.duration_buckets[thread]) observations += n;
  EXPECT_EQ(observations, 1u);
}

TEST(ConnectionTable, RequestedCloseReasonWinsOverTheWorkers) {
  auto table = MakeTable(2);
  const uint32_t slot = *AllocateFrom(*table, Mode::kThread, 1);
  const uint64_t id = table->Read(slot)->id;
  EXPECT_EQ(table->RequestClose(slot, id + 1, CloseReason::kKilled),
            CloseRequestResult::kNotFound);
  ASSERT_EQ(table->RequestClose(slot, id, CloseReason::kKilled),
            CloseRequestResult::kRequested);
  table->Release(slot, CloseReason::kClient);
  const TableTotals t = table->ReadTotals();
  EXPECT_EQ(t.closed_total[static_cast<int>(Mode::kThread)]
                          [static_cast<int>(CloseReason::kKilled)],
            1u);
}

uint64_t ClosedAs(const ConnectionTable& table, CloseReason reason) {
  return table.ReadTotals()
      .closed_total[static_cast<int>(Mode::kThread)][static_cast<int>(reason)];
}

TEST(ConnectionTable, ACloseAfterTheConnectionEndedIsNotFoundAndNotCounted) {
  auto table = MakeTable(1);
  const uint32_t slot = *AllocateFrom(*table, Mode::kThread, 1);
  const uint64_t id = table->Read(slot)->id;
  table->Release(slot, CloseReason::kClient);
  EXPECT_EQ(table->RequestClose(slot, id, CloseReason::kKilled),
            CloseRequestResult::kNotFound);
  EXPECT_EQ(ClosedAs(*table, CloseReason::kKilled), 0u);
  EXPECT_EQ(ClosedAs(*table, CloseReason::kClient), 1u);
}

TEST(ConnectionTable, ACloseOfAnEndedConnectionNeverMarksTheSlotsNextOne) {
  auto table = MakeTable(1);
  const uint32_t slot = *AllocateFrom(*table, Mode::kThread, 1);
  const uint64_t first = table->Read(slot)->id;
  table->Release(slot, CloseReason::kClient);
  ASSERT_EQ(*AllocateFrom(*table, Mode::kThread, 2), slot);
  EXPECT_EQ(table->RequestClose(slot, first, CloseReason::kKilled),
            CloseRequestResult::kNotFound);
  table->Release(slot, CloseReason::kClient);
  EXPECT_EQ(ClosedAs(*table, CloseReason::kKilled), 0u);
  EXPECT_EQ(ClosedAs(*table, CloseReason::kClient), 2u);
}

// The race of issue 13: closes and the connection's own end in two threads,
// many times. Every close that returned the connection is counted killed,
// every NOT_FOUND is not: the counts equal what the callers were told.
TEST(ConnectionTable, KilledCountEqualsTheClosesThatFoundTheConnection) {
  auto table = MakeTable(1);
  const int rounds = RaceRounds();
  uint64_t found = 0;
  for (int i = 0; i < rounds; ++i) {
    const uint32_t slot = *AllocateFrom(*table, Mode::kThread, 1);
    const uint64_t id = table->Read(slot)->id;
    std::thread end([&] { table->Release(slot, CloseReason::kClient); });
    if (table->RequestClose(slot, id, CloseReason::kKilled) ==
        CloseRequestResult::kRequested) {
      ++found;
    }
    end.join();
  }
  EXPECT_EQ(ClosedAs(*table, CloseReason::kKilled), found);
  EXPECT_EQ(ClosedAs(*table, CloseReason::kClient), rounds - found);
}

TEST(ConnectionTable, AbandonCountsARejectionNotAClose) {
  auto table = MakeTable(1);
  const uint32_t slot = *AllocateFrom(*table, Mode::kFork, 1);
  table->Abandon(slot, RejectReason::kForkFailed);
  const TableTotals t = table->ReadTotals();
  EXPECT_EQ(t.ActiveTotal(), 0u);
  EXPECT_EQ(t.rejected_total[static_cast<int>(RejectReason::kForkFailed)], 1u);
  EXPECT_EQ(t.accepted_total[static_cast<int>(Mode::kFork)], 0u);
  EXPECT_TRUE(AllocateFrom(*table, Mode::kFork, 1));
}

TEST(ConnectionTable, ExitedChildIsReleasedByHowItEnded) {
  auto table = MakeTable(4);
  const int fork = static_cast<int>(Mode::kFork);
  // Clean exit: the worker's own reason.
  uint32_t slot = *AllocateFrom(*table, Mode::kFork, 1);
  table->Writer(slot).SetCloseReason(CloseReason::kClient);
  table->ReleaseExitedChild(slot, /*status=*/0);
  // Killed by a signal nobody asked for: a crash.
  slot = *AllocateFrom(*table, Mode::kFork, 1);
  table->ReleaseExitedChild(slot, SIGSEGV);  // WIFSIGNALED, WTERMSIG=SIGSEGV
  // Killed on request: the requested reason, no crash.
  slot = *AllocateFrom(*table, Mode::kFork, 1);
  table->RequestClose(slot, table->Read(slot)->id, CloseReason::kDrain);
  table->ReleaseExitedChild(slot, SIGTERM);
  const TableTotals t = table->ReadTotals();
  EXPECT_EQ(t.closed_total[fork][static_cast<int>(CloseReason::kClient)], 1u);
  EXPECT_EQ(t.closed_total[fork][static_cast<int>(CloseReason::kError)], 1u);
  EXPECT_EQ(t.closed_total[fork][static_cast<int>(CloseReason::kDrain)], 1u);
  EXPECT_EQ(t.worker_crashes_total, 1u);
  EXPECT_EQ(t.ActiveTotal(), 0u);
}

TEST(ConnectionTable, ModeSwitchesAreCountedAfterTheStartMode) {
  auto table = MakeTable(1);
  EXPECT_EQ(table->SetMode(Mode::kFork), Mode::kUnspecified);
  EXPECT_EQ(table->SetMode(Mode::kFork), Mode::kFork);
  EXPECT_EQ(table->SetMode(Mode::kThread), Mode::kFork);
  EXPECT_EQ(table->current_mode(), Mode::kThread);
  EXPECT_EQ(table->ReadTotals().mode_switches_total, 1u);
}

TEST(ConnectionTable, ConcurrentWritersLoseNoByte) {
  auto table = MakeTable(8);
  constexpr int kWriters = 8;
  constexpr int kWrites = 100000;
  std::vector<uint32_t> slots;
  for (int i = 0; i < kWriters; ++i) {
    slots.push_back(*AllocateFrom(*table, Mode::kThread, 1));
  }
  std::vector<std::thread> writers;
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&, slot = slots[i]] {
      SlotWriter w = table->Writer(slot);
      for (int n = 0; n < kWrites; ++n) {
        w.Received(3);
        w.Sent(3);
      }
    });
  }
  // A reader runs meanwhile, as admin and metrics do.
  for (int i = 0; i < 100; ++i) (void)table->Snapshot();
  for (auto& t : writers) t.join();
  const TableTotals t = table->ReadTotals();
  const int thread = static_cast<int>(Mode::kThread);
  EXPECT_EQ(t.bytes_in_total[thread], uint64_t{3} * kWriters * kWrites);
  EXPECT_EQ(t.bytes_out_total[thread], uint64_t{3} * kWriters * kWrites);
  for (uint32_t slot : slots) {
    EXPECT_EQ(table->Read(slot)->bytes_in, uint64_t{3} * kWrites);
  }
}

TEST(ConnectionTable, ForkChildWritesAreSeenByTheParentAndAnAttachedMap) {
  auto table = MakeTable(2);
  const uint32_t slot = *AllocateFrom(*table, Mode::kFork, 1);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    SlotWriter w = table->Writer(slot);
    w.Claim(getpid(), 0);
    w.Received(1000);
    w.Sent(999);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  const ConnectionInfo info = *table->Read(slot);
  EXPECT_EQ(info.pid, pid);
  EXPECT_EQ(info.bytes_in, 1000u);
  EXPECT_EQ(info.bytes_out, 999u);

  absl::StatusOr<std::unique_ptr<ConnectionTable>> attached =
      ConnectionTable::Attach(table->memfd());
  ASSERT_TRUE(attached.ok()) << attached.status();
  EXPECT_EQ((*attached)->capacity(), 2u);
  EXPECT_EQ((*attached)->Read(slot)->bytes_out, 999u);
  EXPECT_EQ((*attached)->FindByPid(pid), slot);
}

TEST(ConnectionTable, AttachRejectsAForeignFile) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  EXPECT_FALSE(ConnectionTable::Attach(fds[0]).ok());
  close(fds[0]);
  close(fds[1]);
}

// --- The fork hand-off (issue 14) ---

uint64_t Accepted(const ConnectionTable& table, Mode mode) {
  return table.ReadTotals().accepted_total[static_cast<int>(mode)];
}
uint64_t Rejected(const ConnectionTable& table, RejectReason reason) {
  return table.ReadTotals().rejected_total[static_cast<int>(reason)];
}

TEST(ForkHandOff, TheChildAndItsParentBothClaimAndTheConnectionCountsOnce) {
  auto table = MakeTable(1);
  const uint32_t slot = *AllocateFrom(*table, Mode::kFork, 1);
  SlotWriter writer = table->Writer(slot);
  ASSERT_TRUE(table->BeginFork(slot, writer.generation()));
  EXPECT_EQ(table->Read(slot)->pid, 0);  // forking: no pid to signal yet
  EXPECT_EQ(writer.Claim(4242, 0), SlotWriter::ClaimResult::kClaimed);
  EXPECT_EQ(writer.Claim(4242, 0), SlotWriter::ClaimResult::kAlreadyClaimed);
  EXPECT_EQ(table->Read(slot)->pid, 4242);
  EXPECT_EQ(Accepted(*table, Mode::kFork), 1u);
  // A claimed slot is never abandoned: its child serves it.
  EXPECT_FALSE(table->AbandonUnclaimed(slot, writer.generation(),
                                       RejectReason::kForkFailed));
  EXPECT_EQ(table->ReadTotals().ActiveTotal(), 1u);
}

TEST(ForkHandOff, AnAbandonedSlotCannotBeClaimedByAStrayChild) {
  auto table = MakeTable(1);
  const uint32_t slot = *AllocateFrom(*table, Mode::kFork, 1);
  SlotWriter stray = table->Writer(slot);
  ASSERT_TRUE(table->BeginFork(slot, stray.generation()));
  // The fork server died mid-fork: upperd abandons the slot.
  ASSERT_TRUE(table->AbandonUnclaimed(slot, stray.generation(),
                                      RejectReason::kForkFailed));
  EXPECT_EQ(stray.Claim(4242, 0), SlotWriter::ClaimResult::kLost);
  EXPECT_EQ(Rejected(*table, RejectReason::kForkFailed), 1u);
  EXPECT_EQ(Accepted(*table, Mode::kFork), 0u);
  // The slot's next connection is not the stray child's either.
  ASSERT_EQ(*AllocateFrom(*table, Mode::kFork, 2), slot);
  EXPECT_EQ(stray.Claim(4242, 0), SlotWriter::ClaimResult::kLost);
  EXPECT_EQ(table->Read(slot)->pid, 0);
  EXPECT_FALSE(table->FindByPid(4242));
}

// The window of "a live child treated as never forked", raced for real:
// the child's claim against upperd's abandon, many times. Exactly one wins
// each round, and the counters say which.
TEST(ForkHandOff, ClaimAndAbandonRaceHasExactlyOneWinner) {
  auto table = MakeTable(1);
  const int rounds = RaceRounds();
  uint64_t claimed = 0;
  for (int i = 0; i < rounds; ++i) {
    const uint32_t slot = *AllocateFrom(*table, Mode::kFork, 1);
    SlotWriter writer = table->Writer(slot);
    ASSERT_TRUE(table->BeginFork(slot, writer.generation()));
    SlotWriter::ClaimResult result;
    std::thread child([&] { result = writer.Claim(1000 + i % 1000, 0); });
    const bool abandoned = table->AbandonUnclaimed(slot, writer.generation(),
                                                   RejectReason::kForkFailed);
    child.join();
    ASSERT_NE(abandoned, result == SlotWriter::ClaimResult::kClaimed);
    if (!abandoned) {
      ++claimed;
      table->ReleaseExitedChild(slot, 0);
    }
  }
  EXPECT_EQ(Accepted(*table, Mode::kFork), claimed);
  EXPECT_EQ(Rejected(*table, RejectReason::kForkFailed), rounds - claimed);
  EXPECT_EQ(table->ReadTotals().ActiveTotal(), 0u);
}

TEST(ForkHandOff, ACloseBeforeTheClaimIsSeenByTheWorker) {
  auto table = MakeTable(1);
  const uint32_t slot = *AllocateFrom(*table, Mode::kFork, 1);
  SlotWriter writer = table->Writer(slot);
  ASSERT_EQ(
      table->RequestClose(slot, table->Read(slot)->id, CloseReason::kKilled),
      CloseRequestResult::kRequested);
  ASSERT_EQ(writer.Claim(4242, 0), SlotWriter::ClaimResult::kClaimed);
  EXPECT_TRUE(writer.CloseRequested());
  table->ReleaseExitedChild(slot, 0);
  const TableTotals t = table->ReadTotals();
  EXPECT_EQ(t.closed_total[static_cast<int>(Mode::kFork)]
                          [static_cast<int>(CloseReason::kKilled)],
            1u);
  EXPECT_EQ(t.worker_crashes_total, 0u);
}

TEST(ForkHandOff, AnAbandonAfterAnAnsweredCloseCountsTheClose) {
  auto table = MakeTable(1);
  const uint32_t slot = *AllocateFrom(*table, Mode::kFork, 1);
  const uint32_t generation = table->Read(slot)->generation;
  ASSERT_EQ(
      table->RequestClose(slot, table->Read(slot)->id, CloseReason::kKilled),
      CloseRequestResult::kRequested);
  ASSERT_TRUE(
      table->AbandonUnclaimed(slot, generation, RejectReason::kForkFailed));
  const TableTotals t = table->ReadTotals();
  const int fork = static_cast<int>(Mode::kFork);
  EXPECT_EQ(t.closed_total[fork][static_cast<int>(CloseReason::kKilled)], 1u);
  EXPECT_EQ(t.accepted_total[fork], 1u);
  EXPECT_EQ(Rejected(*table, RejectReason::kForkFailed), 0u);
}

TEST(ForkHandOff, AWithdrawnCloseIsNotCounted) {
  auto table = MakeTable(1);
  const uint32_t slot = *AllocateFrom(*table, Mode::kFork, 1);
  const ConnectionInfo info = *table->Read(slot);
  ASSERT_EQ(table->RequestClose(slot, info.id, CloseReason::kKilled),
            CloseRequestResult::kRequested);
  EXPECT_TRUE(
      table->WithdrawClose(slot, info.generation, CloseReason::kKilled));
  table->Release(slot, CloseReason::kClient);
  EXPECT_EQ(ClosedAs(*table, CloseReason::kKilled), 0u);
  // Released first: the withdraw fails, the close was counted.
  const uint32_t next = *AllocateFrom(*table, Mode::kFork, 1);
  const ConnectionInfo second = *table->Read(next);
  ASSERT_EQ(table->RequestClose(next, second.id, CloseReason::kKilled),
            CloseRequestResult::kRequested);
  table->Release(next, CloseReason::kClient);
  EXPECT_FALSE(
      table->WithdrawClose(next, second.generation, CloseReason::kKilled));
}

TEST(ForkHandOff, HoldsWorkerOnlyWhileTheSlotNamesThatChildUnreleased) {
  auto table = MakeTable(1);
  const uint32_t slot = *AllocateFrom(*table, Mode::kFork, 1);
  SlotWriter writer = table->Writer(slot);
  const uint32_t generation = writer.generation();
  EXPECT_FALSE(table->HoldsWorker(slot, generation, 4242));  // unclaimed
  writer.Claim(4242, 0);
  EXPECT_TRUE(table->HoldsWorker(slot, generation, 4242));
  EXPECT_FALSE(table->HoldsWorker(slot, generation, 4243));
  table->ReleaseExitedChild(slot, 0);
  EXPECT_FALSE(table->HoldsWorker(slot, generation, 4242));
}

TEST(ForkHandOff, CrashesAreSignalsNobodyAskedForAndNonZeroExits) {
  auto table = MakeTable(1);
  const auto exit_with = [&](int status, bool close_first) {
    const uint32_t slot = *AllocateFrom(*table, Mode::kFork, 1);
    SlotWriter writer = table->Writer(slot);
    writer.Claim(4242, 0);
    if (close_first) {
      table->RequestClose(slot, table->Read(slot)->id, CloseReason::kDrain);
    }
    return table->ReleaseExitedChild(slot, status);
  };
  const std::optional<WorkerCrash> segv = exit_with(SIGSEGV, false);
  ASSERT_TRUE(segv.has_value());
  EXPECT_EQ(segv->pid, 4242);
  EXPECT_EQ(segv->status, SIGSEGV);
  EXPECT_TRUE(exit_with(SIGKILL, false).has_value());  // e.g. the OOM killer
  EXPECT_TRUE(exit_with(1 << 8, false).has_value());   // exit 1
  EXPECT_FALSE(exit_with(SIGKILL, true).has_value());  // the drain's SIGKILL
  EXPECT_FALSE(exit_with(0, false).has_value());
  EXPECT_EQ(table->ReadTotals().worker_crashes_total, 3u);
}

// The header's build id as another build would have written it, through the
// memfd as a fork server of that build would see it.
void WriteBuildId(int memfd, uint64_t build_id) {
  void* base = mmap(nullptr, sizeof(table_layout::Header),
                    PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  ASSERT_NE(base, MAP_FAILED);
  static_cast<table_layout::Header*>(base)->build_id = build_id;
  munmap(base, sizeof(table_layout::Header));
}

TEST(ConnectionTable, CreateWritesThisBuildsIdAndAttachAcceptsIt) {
  std::unique_ptr<ConnectionTable> table = MakeTable(2);
  void* base = mmap(nullptr, sizeof(table_layout::Header), PROT_READ,
                    MAP_SHARED, table->memfd(), 0);
  ASSERT_NE(base, MAP_FAILED);
  EXPECT_NE(static_cast<table_layout::Header*>(base)->build_id, 0u);
  munmap(base, sizeof(table_layout::Header));
  EXPECT_TRUE(ConnectionTable::Attach(table->memfd()).ok());
}

TEST(ConnectionTable, AttachRefusesATableFromAnotherBuild) {
  std::unique_ptr<ConnectionTable> table = MakeTable(2);
  WriteBuildId(table->memfd(), 0x0123456789abcdef);
  absl::StatusOr<std::unique_ptr<ConnectionTable>> attached =
      ConnectionTable::Attach(table->memfd());
  ASSERT_FALSE(attached.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(attached.status()))
      << attached.status();
  EXPECT_TRUE(absl::StrContains(attached.status().message(),
                                "connection table from another build (ours "))
      << attached.status();
  EXPECT_TRUE(absl::StrContains(attached.status().message(),
                                ", table 0123456789abcdef)"))
      << attached.status();
}

// --- The fork server's ledger (issue 14): a fork server killed inside a
// transition, simulated by a second mapping that stops where it would die ---

// The fork server's side of `table`: the same memfd, as the ledger writer.
std::unique_ptr<ConnectionTable> ForkServerSide(const ConnectionTable& table) {
  absl::StatusOr<std::unique_ptr<ConnectionTable>> attached =
      ConnectionTable::Attach(table.memfd());
  EXPECT_TRUE(attached.ok()) << attached.status();
  (*attached)->BecomeLedgerWriter();
  return *std::move(attached);
}

constexpr int kFork = static_cast<int>(Mode::kFork);

uint64_t ClosedTotal(const TableTotals& t, Mode mode) {
  uint64_t n = 0;
  for (uint64_t c : t.closed_total[static_cast<int>(mode)]) n += c;
  return n;
}

// A fork slot served by child 4242, its acceptance counted by `server`.
uint32_t ServedForkSlot(ConnectionTable& table, ConnectionTable& server) {
  const uint32_t slot = *AllocateFrom(table, Mode::kFork, 1);
  SlotWriter writer = table.Writer(slot);
  EXPECT_TRUE(server.BeginFork(slot, writer.generation()));
  EXPECT_EQ(writer.Claim(4242, 0, /*count_accepted=*/false),
            SlotWriter::ClaimResult::kClaimed);
  server.CountForkAccepted(slot, writer.generation(), 1000);
  return slot;
}

TEST(ForkServerLedger, ACommittedReleaseIsFinishedByRecoveryNotCountedAgain) {
  auto table = MakeTable(1);
  auto server = ForkServerSide(*table);
  const uint32_t slot = ServedForkSlot(*table, *server);
  ASSERT_EQ(
      table->RequestClose(slot, table->Read(slot)->id, CloseReason::kKilled),
      CloseRequestResult::kRequested);
  server->StopLedgerTransitionsForTest(
      ConnectionTable::LedgerStop::kAfterCommit);
  server->ReleaseExitedChild(slot, SIGTERM);  // dies after the commit
  TableTotals t = table->ReadTotals();
  EXPECT_EQ(t.active[kFork], 0u);  // counted freed, not yet free
  EXPECT_EQ(t.closed_total[kFork][static_cast<int>(CloseReason::kKilled)], 1u);
  ASSERT_TRUE(table->Read(slot).has_value());
  table->RecoverForkServerLedger();
  EXPECT_FALSE(table->Read(slot).has_value());
  EXPECT_FALSE(table->FindByPid(4242));  // the orphan path finds nothing
  table->RecoverForkServerLedger();      // idempotent
  t = table->ReadTotals();
  EXPECT_EQ(t.active[kFork], 0u);
  EXPECT_EQ(t.accepted_total[kFork], 1u);
  EXPECT_EQ(ClosedTotal(t, Mode::kFork), 1u);
  EXPECT_EQ(t.closed_total[kFork][static_cast<int>(CloseReason::kKilled)], 1u);
  EXPECT_EQ(t.worker_crashes_total, 0u);
  // A respawned fork server continues from the ledger as it is.
  auto respawned = ForkServerSide(*table);
  const uint32_t next = ServedForkSlot(*table, *respawned);
  respawned->ReleaseExitedChild(next, 0);
  t = table->ReadTotals();
  EXPECT_EQ(t.active[kFork], 0u);
  EXPECT_EQ(t.accepted_total[kFork], 2u);
  EXPECT_EQ(ClosedTotal(t, Mode::kFork), 2u);
  EXPECT_EQ(t.fork_latency_count, 2u);
}

TEST(ForkServerLedger, AReleaseThatDiedBeforeItsCommitIsCountedOnceByUpperd) {
  auto table = MakeTable(1);
  auto server = ForkServerSide(*table);
  const uint32_t slot = ServedForkSlot(*table, *server);
  ASSERT_EQ(
      table->RequestClose(slot, table->Read(slot)->id, CloseReason::kKilled),
      CloseRequestResult::kRequested);
  server->StopLedgerTransitionsForTest(
      ConnectionTable::LedgerStop::kBeforeCommit);
  server->ReleaseExitedChild(slot, SIGTERM);  // sealed, nothing counted
  TableTotals t = table->ReadTotals();
  EXPECT_EQ(t.active[kFork], 1u);
  EXPECT_EQ(ClosedTotal(t, Mode::kFork), 0u);
  table->RecoverForkServerLedger();  // discards the transition
  EXPECT_EQ(table->ReadTotals().accepted_total[kFork], 1u);
  // The orphan path: the zombie is upperd's now; its slot is still live.
  const std::optional<uint32_t> found = table->FindByPid(4242);
  ASSERT_EQ(found, slot);
  EXPECT_FALSE(table->ReleaseExitedChild(*found, SIGTERM).has_value());
  t = table->ReadTotals();
  EXPECT_EQ(t.active[kFork], 0u);
  EXPECT_EQ(t.accepted_total[kFork], 1u);
  EXPECT_EQ(ClosedTotal(t, Mode::kFork), 1u);
  // The seal kept the reason asked for before the death.
  EXPECT_EQ(t.closed_total[kFork][static_cast<int>(CloseReason::kKilled)], 1u);
  EXPECT_EQ(t.worker_crashes_total, 0u);
}

TEST(ForkServerLedger, AnAcceptNotCommittedIsCountedByRecoveryOnce) {
  for (const auto stop : {ConnectionTable::LedgerStop::kBeforeCommit,
                          ConnectionTable::LedgerStop::kAfterCommit}) {
    auto table = MakeTable(2);
    auto server = ForkServerSide(*table);
    server->StopLedgerTransitionsForTest(stop);
    const uint32_t slot = ServedForkSlot(*table, *server);
    EXPECT_EQ(table->ReadTotals().accepted_total[kFork],
              stop == ConnectionTable::LedgerStop::kAfterCommit ? 1u : 0u);
    table->RecoverForkServerLedger();
    table->RecoverForkServerLedger();
    EXPECT_EQ(table->ReadTotals().accepted_total[kFork], 1u);
    table->ReleaseExitedChild(slot, 0);  // upperd reaps the orphan
    const TableTotals t = table->ReadTotals();
    EXPECT_EQ(t.active[kFork], 0u);
    EXPECT_EQ(ClosedTotal(t, Mode::kFork), 1u);
    EXPECT_EQ(t.accepted_total[kFork], 1u);
  }
}

TEST(ForkServerLedger, AnAbandonKilledAtEitherSideOfItsCommitCountsOnce) {
  for (const auto stop : {ConnectionTable::LedgerStop::kBeforeCommit,
                          ConnectionTable::LedgerStop::kAfterCommit}) {
    auto table = MakeTable(1);
    auto server = ForkServerSide(*table);
    const uint32_t slot = *AllocateFrom(*table, Mode::kFork, 1);
    const ConnectionInfo info = *table->Read(slot);
    // A close answered before the claim: the abandon counts it, not a refusal.
    ASSERT_EQ(table->RequestClose(slot, info.id, CloseReason::kKilled),
              CloseRequestResult::kRequested);
    ASSERT_TRUE(server->BeginFork(slot, info.generation));
    server->StopLedgerTransitionsForTest(stop);
    ASSERT_TRUE(server->AbandonUnclaimed(slot, info.generation,
                                         RejectReason::kForkFailed));
    table->RecoverForkServerLedger();
    table->RecoverForkServerLedger();
    EXPECT_FALSE(table->Read(slot).has_value());
    const TableTotals t = table->ReadTotals();
    EXPECT_EQ(t.active[kFork], 0u);
    EXPECT_EQ(t.accepted_total[kFork], 1u);
    EXPECT_EQ(ClosedTotal(t, Mode::kFork), 1u);
    EXPECT_EQ(t.closed_total[kFork][static_cast<int>(CloseReason::kKilled)],
              1u);
    EXPECT_EQ(Rejected(*table, RejectReason::kForkFailed), 0u);
    EXPECT_TRUE(AllocateFrom(*table, Mode::kFork, 2));
  }
}

TEST(ForkServerLedger, RecoveryAbandonsUnclaimedSlotsAndCountsClaimedOnes) {
  auto table = MakeTable(2);
  auto server = ForkServerSide(*table);
  const uint32_t unclaimed = *AllocateFrom(*table, Mode::kFork, 1);
  ASSERT_TRUE(server->BeginFork(unclaimed, table->Read(unclaimed)->generation));
  const uint32_t claimed = *AllocateFrom(*table, Mode::kFork, 2);
  // The child claimed; its fork server died before counting it.
  ASSERT_EQ(table->Writer(claimed).Claim(4242, 0, /*count_accepted=*/false),
            SlotWriter::ClaimResult::kClaimed);
  table->RecoverForkServerLedger();
  const TableTotals t = table->ReadTotals();
  EXPECT_EQ(t.accepted_total[kFork], 1u);
  EXPECT_EQ(Rejected(*table, RejectReason::kForkFailed), 1u);
  EXPECT_EQ(t.active[kFork], 1u);
  EXPECT_FALSE(table->Read(unclaimed).has_value());
  EXPECT_EQ(table->Read(claimed)->pid, 4242);
}

// A reader racing a fork server's transitions and upperd's allocations:
// active is never above allocated nor below zero, and no total goes back.
TEST(ForkServerLedger, ReadTotalsNeverSeesMoreFreesThanAllocations) {
  auto table = MakeTable(2);
  auto server = ForkServerSide(*table);
  const int rounds = RaceRounds();
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < rounds; ++i) {
      const uint32_t slot = ServedForkSlot(*table, *server);
      server->ReleaseExitedChild(slot, 0);
      const uint32_t thread_slot = *AllocateFrom(*table, Mode::kThread, 1);
      table->Writer(thread_slot).Claim(4243, 1);
      table->Release(thread_slot, CloseReason::kClient);
    }
    done = true;
  });
  TableTotals last;
  uint64_t reads = 0;
  while (!done) {
    const TableTotals t = table->ReadTotals();
    for (int m = 0; m < kModeCount; ++m) {
      ASSERT_LE(t.active[m], t.allocated[m]) << "mode " << m;
      ASSERT_LE(t.active[m], uint64_t{1} << 62) << "mode " << m;
      ASSERT_GE(t.accepted_total[m], last.accepted_total[m]);
      ASSERT_GE(t.duration_sum_ns[m], last.duration_sum_ns[m]);
      for (int r = 0; r < kCloseReasonCount; ++r) {
        ASSERT_GE(t.closed_total[m][r], last.closed_total[m][r]);
      }
    }
    ASSERT_GE(t.fork_latency_count, last.fork_latency_count);
    last = t;
    ++reads;
  }
  writer.join();
  const TableTotals t = table->ReadTotals();
  EXPECT_EQ(t.ActiveTotal(), 0u);
  EXPECT_EQ(t.accepted_total[kFork], static_cast<uint64_t>(rounds));
  EXPECT_EQ(ClosedTotal(t, Mode::kFork), static_cast<uint64_t>(rounds));
  EXPECT_GT(reads, 0u);
}

// --- O(1) slots (issue 15): the free-slot map ---

namespace o1 {

// Takes every slot of `table`; fails the test on a slot handed out twice.
std::vector<uint32_t> AllocateAll(ConnectionTable& table, Mode mode) {
  std::vector<uint32_t> slots;
  std::vector<bool> seen(table.capacity());
  while (std::optional<uint32_t> s = AllocateFrom(table, mode, 1)) {
    EXPECT_LT(*s, table.capacity());
    EXPECT_FALSE(seen[*s]) << "slot " << *s << " handed out twice";
    seen[*s] = true;
    slots.push_back(*s);
  }
  return slots;
}

}  // namespace o1

TEST(FreeSlotMap, TakesTheLowestFreeSlot) {
  auto table = MakeTable(200);
  for (uint32_t i = 0; i < 130; ++i) {
    ASSERT_EQ(AllocateFrom(*table, Mode::kThread, 1), i);
  }
  table->Release(70, CloseReason::kClient);
  table->Release(3, CloseReason::kClient);
  table->Release(129, CloseReason::kClient);
  EXPECT_EQ(AllocateFrom(*table, Mode::kThread, 1), 3u);
  EXPECT_EQ(AllocateFrom(*table, Mode::kThread, 1), 70u);
  EXPECT_EQ(AllocateFrom(*table, Mode::kThread, 1), 129u);
  EXPECT_EQ(AllocateFrom(*table, Mode::kThread, 1), 130u);
}

// Capacities around word and level boundaries: every slot handed out once,
// the full table refuses, and after releases from several threads in a
// random order every slot is handed out again, once.
TEST(FreeSlotMap, FillRefuseReleaseFromThreadsAndRefillEverySlot) {
  for (uint32_t capacity : {1u, 63u, 64u, 65u, 4095u, 4097u, 70000u}) {
    auto table = MakeTable(capacity);
    std::vector<uint32_t> slots = o1::AllocateAll(*table, Mode::kThread);
    ASSERT_EQ(slots.size(), capacity);
    EXPECT_FALSE(AllocateFrom(*table, Mode::kThread, 1));
    std::shuffle(slots.begin(), slots.end(), std::mt19937(capacity));
    constexpr int kThreads = 4;
    std::vector<std::thread> releasers;
    for (int t = 0; t < kThreads; ++t) {
      releasers.emplace_back([&, t] {
        for (size_t i = t; i < slots.size(); i += kThreads) {
          table->Release(slots[i], CloseReason::kClient);
        }
      });
    }
    for (auto& r : releasers) r.join();
    EXPECT_EQ(table->ReadTotals().ActiveTotal(), 0u);
    EXPECT_TRUE(table->LiveIds().empty());
    EXPECT_EQ(o1::AllocateAll(*table, Mode::kThread).size(), capacity)
        << "capacity " << capacity;
  }
}

TEST(FreeSlotMap, SlotsReleasedByAForkedChildAreHandedOutAgain) {
  auto table = MakeTable(300);
  const std::vector<uint32_t> slots = o1::AllocateAll(*table, Mode::kFork);
  ASSERT_EQ(slots.size(), 300u);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    for (uint32_t s = 1; s < 300; s += 2)
      table->Release(s, CloseReason::kClient);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  std::vector<uint32_t> again = o1::AllocateAll(*table, Mode::kThread);
  ASSERT_EQ(again.size(), 150u);
  for (size_t i = 0; i < again.size(); ++i) EXPECT_EQ(again[i], 2 * i + 1);
}

// The allocator (this thread) churns while releasers in other threads hand
// slots back: an ownership flag per slot catches any double hand-out.
TEST(FreeSlotMap, NoSlotIsHandedOutTwiceWhileThreadsRelease) {
  constexpr uint32_t kCapacity = 64 * 3 + 5;
  auto table = MakeTable(kCapacity);
  std::vector<std::atomic<int>> owned(kCapacity);
  std::mutex mu;
  std::vector<uint32_t> queue;
  std::atomic<bool> done{false};
  std::vector<std::thread> releasers;
  for (int t = 0; t < 3; ++t) {
    releasers.emplace_back([&] {
      while (!done.load()) {
        uint32_t s;
        {
          std::lock_guard<std::mutex> lock(mu);
          if (queue.empty()) continue;
          s = queue.back();
          queue.pop_back();
        }
        owned[s].store(0);
        table->Release(s, CloseReason::kClient);
      }
    });
  }
  int handed = 0;
  const int rounds = RaceRounds() * 5;
  while (handed < rounds) {
    std::optional<uint32_t> s = AllocateFrom(*table, Mode::kThread, 1);
    if (!s) continue;
    ASSERT_EQ(owned[*s].exchange(1), 0) << "slot " << *s << " handed out twice";
    std::lock_guard<std::mutex> lock(mu);
    queue.push_back(*s);
    ++handed;
  }
  done.store(true);
  for (auto& r : releasers) r.join();
}

TEST(FreeSlotMap, RecoveryRepublishesAFreeSlotWhoseBitADeadForkServerLost) {
  auto table = MakeTable(2);
  auto server = ForkServerSide(*table);
  const uint32_t slot = ServedForkSlot(*table, *server);
  ASSERT_TRUE(AllocateFrom(*table, Mode::kThread, 1));  // the table is full
  server->StopLedgerTransitionsForTest(
      ConnectionTable::LedgerStop::kBeforeFreeBit);
  server->ReleaseExitedChild(slot, 0);  // dies between the state and the bit
  EXPECT_FALSE(table->Read(slot).has_value());
  EXPECT_FALSE(AllocateFrom(*table, Mode::kThread, 1));  // its bit is lost
  table->RecoverForkServerLedger();
  EXPECT_EQ(AllocateFrom(*table, Mode::kThread, 1), slot);
  EXPECT_FALSE(AllocateFrom(*table, Mode::kThread, 1));
  const TableTotals t = table->ReadTotals();
  EXPECT_EQ(ClosedTotal(t, Mode::kFork), 1u);
  EXPECT_EQ(t.active[kFork], 0u);
}

// The fork server dies between the level-0 OR of a freed slot's bit and the
// summary OR above it, after the allocator retired that summary bit (the
// word below was empty): the level-0 bit is set but unreachable. Recovery
// re-publishes every free fork slot, whatever its level-0 bit says.
TEST(FreeSlotMap, RecoveryRepublishesASlotWhoseSummaryBitADeadForkServerLost) {
  auto table = MakeTable(128);  // two levels: 2 words under 1
  auto server = ForkServerSide(*table);
  const uint32_t slot = ServedForkSlot(*table, *server);
  ASSERT_LT(slot, 64u);  // in level-0 word 0
  while (AllocateFrom(*table, Mode::kThread, 1)) {
  }
  // That refusal emptied the top word: both summary bits retired.
  server->StopLedgerTransitionsForTest(
      ConnectionTable::LedgerStop::kBetweenFreeBits);
  server->ReleaseExitedChild(slot, 0);  // dies between the two ORs
  EXPECT_FALSE(table->Read(slot).has_value());
  EXPECT_FALSE(AllocateFrom(*table, Mode::kThread, 1));  // unreachable
  table->RecoverForkServerLedger();
  EXPECT_EQ(AllocateFrom(*table, Mode::kThread, 1), slot);
  EXPECT_FALSE(AllocateFrom(*table, Mode::kThread, 1));
  EXPECT_EQ(table->ReadTotals().active[kFork], 0u);
}

TEST(FreeSlotMap, FindByPidAfterAForkServerDeathUsesItsMap) {
  auto table = MakeTable(4);
  auto server = ForkServerSide(*table);
  const uint32_t slot = ServedForkSlot(*table, *server);  // pid 4242
  table->RecoverForkServerLedger();  // its fork server died
  EXPECT_FALSE(table->FindByPid(4243));
  EXPECT_EQ(table->FindByPid(4242), slot);
  table->ReleaseExitedChild(slot, 0);
  EXPECT_FALSE(table->FindByPid(4242));
}

TEST(FreeSlotMap, AMillionSlotsCreateAllocateIterateAndRelease) {
  constexpr uint32_t kSlots = 1000000;
  auto table = MakeTable(kSlots);
  EXPECT_TRUE(table->LiveIds().empty());
  for (uint32_t i = 0; i < kSlots; ++i) {
    ASSERT_EQ(AllocateFrom(*table, Mode::kThread, 1), i);
  }
  EXPECT_FALSE(AllocateFrom(*table, Mode::kThread, 1));
  EXPECT_EQ(table->LiveIds().size(), kSlots);
  EXPECT_EQ(table->Snapshot().size(), kSlots);
  for (uint32_t i = kSlots; i-- > 0;) table->Release(i, CloseReason::kClient);
  EXPECT_TRUE(table->LiveIds().empty());
  EXPECT_EQ(table->ReadTotals().ActiveTotal(), 0u);
  EXPECT_EQ(AllocateFrom(*table, Mode::kThread, 1), 0u);
}

// --- Byte counters without shared-line atomics (issue 15) ---

uint64_t BytesIn(const TableTotals& t) {
  uint64_t n = 0;
  for (uint64_t b : t.bytes_in_total) n += b;
  return n;
}

// Connections served by worker threads, allocated by this thread, as in
// upperd: each receives `bytes(id)` and sends one more. A reader thread checks
// that the totals never decrease meanwhile.
TEST(SlotBytes, TotalsAreExactAndNeverDecreaseWhileConnectionsChurn) {
  constexpr uint32_t kCapacity = 100;
  constexpr int kConnections = 20000;
  auto table = MakeTable(kCapacity);
  std::mutex mu;
  std::vector<uint32_t> queue;
  std::atomic<bool> done{false};
  std::atomic<bool> decreased{false};
  std::thread reader([&] {
    uint64_t last_in = 0;
    uint64_t last_out = 0;
    while (!done.load()) {
      const TableTotals t = table->ReadTotals();
      const uint64_t in = BytesIn(t);
      uint64_t out = 0;
      for (uint64_t b : t.bytes_out_total) out += b;
      if (in < last_in || out < last_out) decreased.store(true);
      last_in = in;
      last_out = out;
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < 3; ++t) {
    workers.emplace_back([&] {
      for (;;) {
        uint32_t s;
        {
          std::lock_guard<std::mutex> lock(mu);
          if (queue.empty()) {
            if (done.load()) return;
            continue;
          }
          s = queue.back();
          queue.pop_back();
        }
        SlotWriter w = table->Writer(s);
        const uint64_t n = 1 + s % 7;
        for (int i = 0; i < 3; ++i) w.Received(n);
        w.Sent(3 * n + 1);
        const std::optional<ConnectionInfo> info = table->Read(s);
        EXPECT_EQ(info->bytes_in, 3 * n);  // only this connection's bytes
        EXPECT_EQ(info->bytes_out, 3 * n + 1);
        table->Release(s, CloseReason::kClient);
      }
    });
  }
  uint64_t expected_in = 0;
  for (int c = 0; c < kConnections;) {
    const Mode mode = c % 2 == 0 ? Mode::kThread : Mode::kFork;
    std::optional<uint32_t> s = AllocateFrom(*table, mode, 1);
    if (!s) continue;
    expected_in += 3 * (1 + *s % 7);
    std::lock_guard<std::mutex> lock(mu);
    queue.push_back(*s);
    ++c;
  }
  while (table->ReadTotals().ActiveTotal() != 0) std::this_thread::yield();
  done.store(true);
  for (auto& w : workers) w.join();
  reader.join();
  EXPECT_FALSE(decreased.load());
  const TableTotals t = table->ReadTotals();
  EXPECT_EQ(BytesIn(t), expected_in);
  uint64_t out = 0;
  for (uint64_t b : t.bytes_out_total) out += b;
  EXPECT_EQ(out, expected_in + kConnections);
}

TEST(SlotBytes, ASlotReusedInTheOtherModeCountsEachConnectionApart) {
  auto table = MakeTable(1);
  const uint32_t slot = *AllocateFrom(*table, Mode::kThread, 1);
  table->Writer(slot).Received(100);
  table->Writer(slot).Sent(90);
  table->Release(slot, CloseReason::kClient);
  ASSERT_EQ(AllocateFrom(*table, Mode::kFork, 1), slot);
  EXPECT_EQ(table->Read(slot)->bytes_in, 0u);
  table->Writer(slot).Received(7);
  ASSERT_EQ(table->Snapshot().size(), 1u);
  EXPECT_EQ(table->Snapshot()[0].bytes_in, 7u);
  EXPECT_EQ(table->Snapshot()[0].bytes_out, 0u);
  table->Release(slot, CloseReason::kClient);
  ASSERT_EQ(AllocateFrom(*table, Mode::kThread, 1), slot);
  table->Writer(slot).Sent(5);
  EXPECT_EQ(table->Read(slot)->bytes_out, 5u);
  const TableTotals t = table->ReadTotals();
  EXPECT_EQ(t.bytes_in_total[static_cast<int>(Mode::kThread)], 100u);
  EXPECT_EQ(t.bytes_out_total[static_cast<int>(Mode::kThread)], 95u);
  EXPECT_EQ(t.bytes_in_total[kFork], 7u);
}

}  // namespace
}  // namespace upper
