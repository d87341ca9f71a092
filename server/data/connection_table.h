// ConnectionTable: the one shared record of every live connection.
//
// A memfd mapped MAP_SHARED holds a header of server-wide counters and a
// fixed array of slots, one per connection that may be live at once
// (--max_connections). upperd creates it before any thread or child exists;
// the fork server maps the same memfd, and fork children inherit the mapping.
// So threads, fork children, the admin plane and the metrics collector all see
// the same numbers without any message per byte.
//
// Process- and thread-safety: every field is a naturally aligned 32- or 64-bit
// integer accessed only through std::atomic_ref (lock-free, address-free, so
// valid across processes). Writers per field:
//   - Allocate(): upperd's listener thread only (the one allocator). It takes
//     the lowest free slot from the free-slot map (table_layout::FreeMap*) in
//     O(levels) (4 at 1,000,000 slots) and refuses at the limit by reading
//     one word; releasers in any process hand slots back with an atomic OR.
//   - Abandon(): whoever holds a slot whose worker never started: the
//     listener, or the fork server the listener handed it to.
//   - SlotWriter (bytes, activity, close reason): the connection's worker,
//     a thread in upperd or a fork child. Async-signal-safe: no locks, no
//     allocation, only atomics and clock_gettime.
//   - Release(): whoever reaps the worker: the worker thread itself, or the
//     process that waited for the fork child. Exactly one per allocation.
//   - Header counters: upperd's side (allocator, thread workers, its orphan
//     releases and its recovery after a fork-server death) with fetch_add in
//     the shared block; the fork server only in its ledger
//     (table_layout::ForkServerLedger), one committed store per transition,
//     so that a SIGKILL at any instruction neither loses nor doubles a count.
//     Fork children count bytes only, in their own slot's cumulative
//     counters (single writer: plain relaxed load and store).
// Readers (Snapshot(), LiveIds(), ReadTotals()) may run at any time in any
// thread; a slot that is reused while being read is detected by its generation
// and skipped.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "server/base/mode.h"
#include "server/data/table_layout.h"
#include "server/data/worker_stats.h"

namespace upper {

inline uint64_t NowNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);  // async-signal-safe (POSIX.1-2008)
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u +
         static_cast<uint64_t>(ts.tv_nsec);
}

// What a worker writes into its own slot while it serves. Cheap to copy,
// async-signal-safe, valid while the slot is allocated to this worker; it
// remembers the generation it was made for, so a stale writer cannot claim
// the slot's next connection.
class SlotWriter {
 public:
  SlotWriter(table_layout::Header* header, table_layout::Slot* slot)
      : header_(header),
        slot_(slot),
        mode_(LoadRelaxed(slot->mode)),
        generation_(LoadRelaxed(slot->generation)) {}
  // A writer for connection `generation` only: a pool child handed a slot
  // that was abandoned and reused meanwhile fails its Claim().
  SlotWriter(table_layout::Header* header, table_layout::Slot* slot,
             uint32_t generation)
      : header_(header),
        slot_(slot),
        mode_(LoadRelaxed(slot->mode)),
        generation_(generation) {}

  // Counts bytes in the slot's cumulative counters (table_layout::Slot):
  // this writer is their only one while it serves, so a relaxed load and
  // store suffice; no read-modify-write, no line shared with other workers.
  void Received(uint64_t n) {
    Bump(slot_->bytes_in_cum[mode_], n);
    Touch();
  }
  void Sent(uint64_t n) {
    Bump(slot_->bytes_out_cum[mode_], n);
    Touch();
  }
  enum class ClaimResult {
    kClaimed,         // this call moved the word (and counted it accepted)
    kAlreadyClaimed,  // the word names `pid` already: the other side won
    kLost,            // abandoned, or another connection: do not serve
  };
  // Claims the connection for worker `pid` (thread `tid`, or 0 for a fork
  // child): moves the worker word from unstarted or forking to `pid`. A fork
  // child and its parent both claim; the one whose compare-and-swap wins
  // counts the connection accepted, so it is counted once even if the other
  // dies. After a fork-server death upperd abandons unclaimed slots with the
  // same compare-and-swap, so exactly one of "served" and "abandoned" wins.
  // With `count_accepted` (thread workers) the winner counts the connection
  // accepted in the shared block and marks it counted; fork mode passes
  // false: the fork server counts it in its ledger (CountForkAccepted), or
  // upperd's recovery does, so a SIGKILL between the claim and the count
  // loses nothing.
  ClaimResult Claim(int32_t pid, int32_t tid, bool count_accepted = true);
  // True if admin or the drain asked this connection to end. Sequentially
  // consistent after Claim(): RequestClose() sets the request and then reads
  // the worker word, so at least one side sees the other (a worker that
  // claims after a close finds it here; one that claimed before is signalled).
  bool CloseRequested() const;
  void SetCloseReason(CloseReason reason) {
    StoreRelaxed(slot_->close_reason, static_cast<uint32_t>(reason));
  }
  void SetCloseReasonIfUnset(CloseReason reason) {
    uint32_t none = 0;
    std::atomic_ref<uint32_t>(slot_->close_reason)
        .compare_exchange_strong(none, static_cast<uint32_t>(reason),
                                 std::memory_order_relaxed);
  }
  // A pool child, after its last write to the slot and before it reports
  // "done" over its socket: a release, so that the fork server's acquire
  // (ConnectionTable::AcquireWorkerWrites) sees the bytes and the reason
  // it wrote (a socket message is no C++ synchronisation).
  void PublishFinished() {
    std::atomic_ref<uint32_t>(slot_->close_reason)
        .fetch_or(0, std::memory_order_release);
  }
  uint32_t send_timeout_ms() const {
    return LoadRelaxed(header_->send_timeout_ms);
  }
  uint32_t idle_timeout_ms() const {
    return LoadRelaxed(header_->idle_timeout_ms);
  }
  uint32_t generation() const { return generation_; }

 private:
  static void Bump(uint64_t& counter, uint64_t n) {
    StoreRelaxed(counter, LoadRelaxed(counter) + n);
  }
  void Touch() {
    StoreRelaxed(slot_->last_active_mono_ns, NowNs(CLOCK_MONOTONIC_COARSE));
  }

  table_layout::Header* header_;
  table_layout::Slot* slot_;
  uint32_t mode_;
  uint32_t generation_;
};

// A fork child that exited in a way no close or drain explains: killed by a
// signal nobody sent on purpose, or a non-zero exit status.
struct WorkerCrash {
  uint64_t id = 0;
  int32_t pid = 0;
  int status = 0;  // as from waitpid
};

// What RequestClose() did.
enum class CloseRequestResult {
  kNotFound,          // not live: ended, or the slot holds another now
  kRequested,         // this call asked for it
  kAlreadyRequested,  // an earlier close (drain, admin) asked first
};

// A consistent copy of one live slot, for listing and admin.
struct ConnectionInfo {
  uint32_t slot = 0;
  uint32_t generation = 0;
  uint64_t id = 0;
  Mode mode = Mode::kUnspecified;
  int32_t pid = 0;  // 0 until a worker claimed it
  int32_t tid = 0;
  std::string peer;  // "127.0.0.1:40000" or "[::1]:40000"
  uint64_t started_unix_ns = 0;
  uint64_t started_mono_ns = 0;
  uint64_t last_active_mono_ns = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

// Which connection a live slot holds, without the rest of its row: what
// paging (ListConnections) scans, cheaply, before reading whole rows.
struct LiveConnectionId {
  uint64_t id = 0;
  uint32_t slot = 0;
  Mode mode = Mode::kUnspecified;
};

// Server-wide figures, read field by field (each monotonic on its own).
struct TableTotals {
  Mode current_mode = Mode::kUnspecified;
  uint64_t active[kModeCount] = {};     // allocated - freed (table_layout.h)
  uint64_t allocated[kModeCount] = {};  // as read after the frees
  uint64_t accepted_total[kModeCount] = {};
  uint64_t closed_total[kModeCount][kCloseReasonCount] = {};
  uint64_t rejected_total[kRejectReasonCount] = {};
  uint64_t bytes_in_total[kModeCount] = {};
  uint64_t bytes_out_total[kModeCount] = {};
  uint64_t duration_buckets[kModeCount][table_layout::kDurationBuckets] = {};
  uint64_t duration_sum_ns[kModeCount] = {};
  uint64_t worker_crashes_total = 0;
  uint64_t mode_switches_total = 0;
  uint64_t fork_server_restarts_total = 0;
  uint64_t fork_server_hangs_total = 0;  // killed by upperd's watchdog
  uint64_t fork_server_log_lines_dropped = 0;
  uint64_t fork_latency_buckets[table_layout::kForkLatencyBuckets] = {};
  uint64_t fork_latency_sum_ns = 0;
  uint64_t fork_latency_count = 0;

  uint64_t ActiveTotal() const;
};

class ConnectionTable {
 public:
  // Creates the table in a new memfd sized for `capacity` slots.
  static absl::StatusOr<std::unique_ptr<ConnectionTable>> Create(
      uint32_t capacity);
  // Maps an existing table from `memfd` (the fork server's side); checks the
  // magic and version. Takes no ownership of `memfd`.
  static absl::StatusOr<std::unique_ptr<ConnectionTable>> Attach(int memfd);

  ~ConnectionTable();
  ConnectionTable(const ConnectionTable&) = delete;
  ConnectionTable& operator=(const ConnectionTable&) = delete;

  int memfd() const { return memfd_; }
  uint32_t capacity() const { return capacity_; }

  // --- Allocator (upperd's listener thread only; Abandon() also by the
  // fork server for a slot handed to it) ---
  // Takes a free slot for a connection from `peer`, to be served in `mode`.
  // Returns the slot index, or nullopt when all slots are taken.
  std::optional<uint32_t> Allocate(Mode mode, const sockaddr* peer,
                                   socklen_t peer_len);
  // Frees a slot whose connection was never served; counts `reason`. A
  // close asked for meanwhile wins: the connection counts as accepted and
  // closed for that reason, as the caller was told.
  void Abandon(uint32_t slot, RejectReason reason);
  // Counts a connection refused before any slot was taken.
  void CountRejected(RejectReason reason);

  // --- Fork hand-off (fork server, and upperd after its death) ---
  // Marks connection `generation` in `slot` as being forked, just before
  // fork(). False if the slot is not that connection, unstarted.
  bool BeginFork(uint32_t slot, uint32_t generation);
  // Abandons connection `generation` in `slot` if no worker has claimed it
  // (unstarted or forking), counted as `reason`, or finishes an abandon a
  // dead fork server began. A child forked for it fails its Claim() and
  // exits unserved. False if a worker serves it (or it is not live).
  bool AbandonUnclaimed(uint32_t slot, uint32_t generation,
                        RejectReason reason);

  // --- Workers ---
  SlotWriter Writer(uint32_t slot);
  SlotWriter Writer(uint32_t slot, uint32_t generation);
  // The fork server, on a pool child's "done" for `slot`: pairs with its
  // SlotWriter::PublishFinished.
  void AcquireWorkerWrites(uint32_t slot) const;
  // Frees a served slot. The close reason is the one asked for by admin or
  // drain if any, else `reason`. Updates closed totals and the duration
  // histogram. Called once per served connection by its reaper.
  void Release(uint32_t slot, CloseReason reason);
  // Frees the slot of a fork child that exited with wait `status` (peeked
  // with WNOWAIT, not yet reaped: its pid is not reusable until the slot is
  // free). Counts and returns a crash: a signal with no close asked for, or a
  // non-zero exit.
  std::optional<WorkerCrash> ReleaseExitedChild(uint32_t slot, int status);
  // The fork server's count of its own claim (kClaimed or kAlreadyClaimed)
  // of connection `generation` in `slot`, with the fork's latency: one
  // ledger transition, which also marks the slot's acceptance counted.
  void CountForkAccepted(uint32_t slot, uint32_t generation,
                         uint64_t fork_latency_ns);
  // The slot served by process `pid`, if any (for reaping orphans). O(1)
  // once RecoverForkServerLedger has run in this mapping (orphans exist only
  // after a fork-server death; recovery maps each live child's pid to its
  // slot); before that, a walk over live slots. Allocator's thread only.
  std::optional<uint32_t> FindByPid(pid_t pid) const;
  // True while `slot` still holds connection `generation` served by `pid`
  // and not yet released: with exits released before they are reaped, the
  // pid then still names that child (see ForkWorkers::Shutdown).
  bool HoldsWorker(uint32_t slot, uint32_t generation, int32_t pid) const;

  // --- Admin ---
  Mode current_mode() const;
  // Sets the mode for new connections; returns the previous one.
  Mode SetMode(Mode mode);
  void SetIdleTimeoutMs(uint32_t ms);
  void SetSendTimeoutMs(uint32_t ms);
  // Marks `slot` (if it still holds connection `id`) to be closed for
  // `reason`; the slot's copy in `info` unless kNotFound.
  CloseRequestResult RequestClose(uint32_t slot, uint64_t id,
                                  CloseReason reason,
                                  ConnectionInfo* info = nullptr);
  // Takes back a request this caller made (nothing could be signalled).
  // False if the connection ended meanwhile, counted as requested.
  bool WithdrawClose(uint32_t slot, uint32_t generation, CloseReason reason);
  void CountForkLatency(uint64_t ns);
  // --- The fork server's ledger (table_layout::ForkServerLedger) ---
  // Makes this mapping the ledger's writer: what the fork server counts
  // (Abandon, ReleaseExitedChild, CountForkLatency, CountForkAccepted) goes
  // into ledger transitions. The fork server calls it once, after Attach.
  void BecomeLedgerWriter() { ledger_writer_ = true; }
  // upperd, after the fork server died and before another is spawned (no
  // ledger writer lives): finishes or discards the transition the dead one
  // was in (redoes its slot change if it committed), abandons its unclaimed
  // slots (counted `reason`, or the close asked for), then counts accepted,
  // in the shared block, every live fork slot a child claimed whose
  // acceptance the dead one did not count. Needs the allocator's thread (no
  // slot may be allocated meanwhile).
  void RecoverForkServerLedger(RejectReason reason = RejectReason::kForkFailed);
  // Tests only: where a ledger writer's transitions stop, as if it died there.
  // kBeforeFreeBit: a committed free stored the slot's state but died
  // before publishing its free bit (recovery must re-publish it).
  // kBetweenFreeBits: it died after the level-0 OR of that bit, before the
  // summary ORs above it (recovery must re-publish it all the same).
  enum class LedgerStop {
    kNone,
    kBeforeCommit,
    kAfterCommit,
    kBeforeFreeBit,
    kBetweenFreeBits
  };
  void StopLedgerTransitionsForTest(LedgerStop stop) { ledger_stop_ = stop; }
  void CountWorkerCrash();
  void CountForkServerRestart();
  // A fork server killed by upperd's watchdog (ForkWorkers).
  void CountForkServerHang();
  // --- The fork server's acknowledgements (table_layout::Header) ---
  // The fork server, after each hand-off datagram it took and handled: one
  // more acknowledged (single writer, release store).
  void AckForkRequest();
  // upperd's watchdog: the acknowledgements so far (acquire load).
  uint64_t ForkRequestsAcked() const;
  // The fork server: its own dropped log lines so far are `dropped` (it adds
  // them to the value it found at its start).
  uint64_t ForkServerLogLinesDropped() const;
  void SetForkServerLogLinesDropped(uint64_t dropped);
  // --- The fork pool (table_layout::Header::fork_spare_min and after) ---
  // upperd, before it spawns a fork server; the fork server at its start.
  void SetForkPoolSettings(const ForkPoolSettings& settings);
  ForkPoolSettings fork_pool_settings() const;
  // The live fork server only: what it found at its start, and then what
  // it did since (idle is the gauge, the rest counters).
  ForkPoolCounts ReadForkPoolCounts() const;
  void PublishForkPoolCounts(const ForkPoolCounts& counts);
  // upperd, after a fork server died (its idle children went with it).
  void ZeroForkPoolIdle();
  // Any reader: the pool's counts, with busy = active fork connections.
  ForkPoolStats ReadForkPool() const;

  // --- Readers (any thread, any process) ---
  // Readers walk only slots the free map shows taken, up to the high-water
  // mark of slots ever used: O(high_water / 64 + live), never the capacity.
  std::vector<ConnectionInfo> Snapshot() const;
  // The id, slot and mode of every live slot, in slot order; no peer is
  // formatted, so it costs a few loads a slot. A row read later with Read()
  // may have ended (or been reused: compare its id).
  std::vector<LiveConnectionId> LiveIds() const;
  std::optional<ConnectionInfo> Read(uint32_t slot) const;
  // The live connection `id`, if any; one pass of LiveIds()' loads, one
  // Read() of the slot found.
  std::optional<ConnectionInfo> Find(uint64_t id) const;
  TableTotals ReadTotals() const;

 private:
  ConnectionTable(int memfd, bool owns_memfd, void* base, size_t size);
  table_layout::Slot& slot(uint32_t index) const { return slots_[index]; }
  uint32_t IndexOf(const table_layout::Slot& s) const {
    return static_cast<uint32_t>(&s - slots_);
  }
  // --- The free-slot map (connection_table.cc has the race argument) ---
  void InitFreeMap();
  // The allocator's claim of the lowest free slot; nullopt when none.
  std::optional<uint32_t> TakeFreeSlot();
  // Clears the summary bit of an empty word at `level` (and keeps it if a
  // releaser filled the word meanwhile).
  void RetireSummaryBit(int level, uint32_t word);
  // A releaser's hand-back, after the slot's state was stored free: its bit
  // ORed into the lowest `levels` levels (all of them but in tests).
  void PublishFree(uint32_t index,
                   int levels = table_layout::kMaxFreeMapLevels);
  // After a fork-server death: publishes every free fork slot again (the
  // dead one may have set none or only some of its bits). Allocator's
  // thread only.
  void RepublishFreeForkSlots();
  uint32_t high_water() const;
  // Calls f(index) for every slot below the high-water mark whose free bit
  // is clear: every live slot, plus slots being allocated or released.
  template <typename F>
  void ForEachTakenSlot(F f) const;
  // Sums the slots' cumulative byte counters into `t`.
  void SumBytes(TableTotals& t) const;
  // Maps the pid of every live, claimed fork slot to it (orphans_).
  void MapOrphans();
  // Slot `index`'s id and mode if it is live (a consistent read), else
  // nullopt.
  std::optional<LiveConnectionId> ReadLiveId(uint32_t index) const;
  // Closes the slot to close requests; the reason one asked for, or 0.
  uint32_t SealCloseRequest(table_layout::Slot& s);
  // Counts the end of a served connection in `mode` and its duration.
  void CountClosed(const table_layout::Slot& s, uint32_t mode, uint32_t reason);
  void FreeSlot(table_layout::Slot& s, uint32_t mode);
  // Ledger transitions (the fork server's): step (a) returns the next block,
  // a copy of the current one, for the caller to add its deltas to;
  // steps (b) to (e) commit it and make `op`'s slot change.
  table_layout::LedgerCounters& BeginLedgerTransition();
  void CommitLedgerTransition(table_layout::LedgerOp op, uint32_t slot,
                              uint32_t generation, const char* before_commit,
                              const char* after_commit);
  void ApplyLedgerOp(uint32_t op, uint32_t slot, uint32_t generation);
  void LedgerRelease(uint32_t slot, CloseReason reason, bool crashed);
  void LedgerAbandon(uint32_t slot, RejectReason reason);
  // The ledger's committed block, a consistent copy (seqlock read).
  void ReadLedger(table_layout::LedgerCounters* out) const;
  void CountUncountedForkClaims();

  int memfd_;
  bool owns_memfd_;
  void* base_;
  size_t size_;
  table_layout::Header* header_;
  table_layout::Slot* slots_;
  uint32_t capacity_;
  table_layout::FreeMapHeader* free_map_;
  uint64_t* levels_[table_layout::kMaxFreeMapLevels] = {};
  int level_count_ = 0;
  // pid -> {slot, generation} of fork children alive at a fork-server death
  // (allocator's thread only; see FindByPid).
  struct OrphanSlot {
    uint32_t slot;
    uint32_t generation;
  };
  mutable std::unordered_map<pid_t, OrphanSlot> orphans_;
  bool orphans_mapped_ = false;
  bool ledger_writer_ = false;
  LedgerStop ledger_stop_ = LedgerStop::kNone;
};

// Formats a peer address stored in a slot ("1.2.3.4:5" or "[::1]:5").
std::string FormatPeer(const uint64_t packed[3]);

}  // namespace upper
