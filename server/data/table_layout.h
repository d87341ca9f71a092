// table_layout: the bytes of the connection table's shared mapping.
//
// upperd, upperd-fork-server and every fork child map the same memfd, so
// this layout is a binary contract between programs: kMagic and kVersion
// name its shape, and ConnectionTable::Attach refuses a mapping of another
// version. Fields appended to the header within a version (the watchdog's
// and the fork server's counters) rely on the build id (Header::build_id),
// which a mismatched fork server refuses, so two programs of different
// builds never share a table. Every field is a naturally aligned 32- or
// 64-bit integer, read and written only through std::atomic_ref (the
// helpers below), which is lock-free and address-free, so valid across
// processes.
#pragma once

#include <atomic>
#include <cstdint>

#include "server/base/mode.h"

namespace upper {

namespace table_layout {

inline constexpr uint64_t kMagic = 0x7570706572746231;  // "uppertb1"
// 2: close_request holds a generation; 3: the worker word (pid with its
// generation, forking and abandoned states) and the publication fence; 4: the
// fork server's ledger, `active` derived from allocated and freed counts, the
// slot's accepted_counted word and a close seal that keeps the reason; 5:
// CloseReason::kSendTimeout and RejectReason::kForkQueueFull (one more
// counter each in the header and the ledger), send_timeout_ms, the fork
// server's acknowledgement counter and the hang count at the end of the
// header, the free-slot map after the slots, cumulative per-mode byte
// counters in a 192-byte slot, no byte totals in the header.
inline constexpr uint32_t kVersion = 5;

// Why a fork child left the pool (Header::fork_pool_exits), in order.
enum class ForkPoolExit : uint32_t {
  kIdleTimeout,     // idle beyond --fork_spare_min for --fork_spare_timeout
  kShutdown,        // the pool was stopped (drain), or told to exit
  kPoolFull,        // finished while --fork_spare_max children waited
  kMaxConnections,  // served --fork_child_max_connections connections
};
inline constexpr size_t kForkPoolExitReasonCount = 4;

// Histogram bucket upper bounds of fork latency, in microseconds; one more
// bucket counts everything above the last bound.
inline constexpr uint64_t kForkLatencyBoundsUs[] = {50,   100,  250,   500,
                                                    1000, 2500, 10000, 100000};
inline constexpr int kForkLatencyBuckets =
    sizeof(kForkLatencyBoundsUs) / sizeof(kForkLatencyBoundsUs[0]) + 1;

// Histogram bucket upper bounds of connection duration, in milliseconds.
inline constexpr uint64_t kDurationBoundsMs[] = {1,     10,    100,    1000,
                                                 10000, 60000, 300000, 1800000};
inline constexpr int kDurationBuckets =
    sizeof(kDurationBoundsMs) / sizeof(kDurationBoundsMs[0]) + 1;

enum SlotState : uint32_t { kFree = 0, kActive = 1 };

// One connection. 192 bytes (three cache lines), cache-line aligned, so a
// busy worker's writes (bytes, last_active) never share a line with a
// neighbouring slot. It was 128 bytes before the cumulative byte counters
// (below): 64 MiB more address space at 1,000,000 slots, touched only up to
// the high-water mark of slots ever used (FreeMapHeader).
//
// Publication (correct on weakly ordered CPUs, not only x86-64): the
// allocator bumps `generation`, then issues a release fence, then writes the
// other fields, then stores `state` with release. A reader loads `state`
// and `generation` with acquire, copies the fields, issues an acquire fence
// and loads both again: if any field it copied was written by a later
// allocation, that write comes after the allocator's fence, so the reader's
// fence makes the bumped generation visible to its second load and the copy
// is discarded (the seqlock argument; fence-fence synchronisation of
// [atomics.fences]). `worker` carries the generation it belongs to in the
// same 64-bit word as the pid, so a pid is never paired with another
// connection's generation.
struct alignas(64) Slot {
  // Written by the allocator, read-only while active.
  uint32_t state;       // SlotState
  uint32_t generation;  // bumped on every allocation
  uint64_t id;          // connection id, unique for the server's life
  // WorkerWord(generation, value): who serves the connection. value is
  // kWorkerUnstarted at allocation; the fork server moves it to
  // kWorkerForking just before fork(), and the child or its parent to the
  // child's pid (thread workers: upperd's pid); after a fork-server death
  // upperd moves an unstarted or forking slot to kWorkerAbandoned. Every
  // move is a compare-and-swap from the value expected, so exactly one of
  // "a child serves it" and "it was abandoned" happens.
  uint64_t worker;
  uint32_t mode;  // Mode
  int32_t tid;    // the serving thread (thread mode) or 0
  // CloseReason asked for by admin or drain (low 7 bits; 0 none) and the
  // seal (bit 7: released, no more requests) under the low 24 bits of the
  // generation it was asked for (above): one word, so that a
  // compare-and-swap targets one connection, never a slot's next one, and a
  // close racing the end either lands before Release (counted) or fails
  // (NOT_FOUND). The seal keeps the reason, so sealing twice (a releaser that
  // died after sealing, then its recovery) reads the same reason. Helpers
  // below the struct.
  uint32_t close_request;
  // The generation whose acceptance has been counted (by a thread worker's
  // claim, a fork-server ledger transition, or upperd's recovery); any other
  // value: not counted yet. A new allocation's generation never matches it.
  uint32_t accepted_counted;
  uint64_t peer[3];          // PackedPeer: family, port, 16 address bytes
  uint64_t started_unix_ns;  // CLOCK_REALTIME at accept
  uint64_t started_mono_ns;  // CLOCK_MONOTONIC at accept
  // The slot's bytes_*_cum[mode] at allocation: the connection's own bytes
  // are the cumulative counter minus this base. Read by the allocator after
  // the previous worker's last write, which happens-before the releaser's
  // publication of the free bit that the allocator acquires (FreeMap).
  uint64_t bytes_in_base;
  uint64_t bytes_out_base;
  // Written by the worker.
  uint64_t last_active_mono_ns;
  uint32_t close_reason;  // CloseReason the worker ended with
  uint32_t padding1;
  // Bytes received and sent by every connection this slot ever held, per
  // mode: never reset, written only by the slot's one worker of the moment
  // with a relaxed load and store (no read-modify-write, no shared line).
  // Each is monotonic, so server totals (the sum over slots up to the
  // high-water mark) are exact and monotonic for any one reader, with no
  // fold at release that a reader could see before or after a slot it
  // already summed.
  uint64_t bytes_in_cum[kModeCount];
  uint64_t bytes_out_cum[kModeCount];
};
static_assert(sizeof(Slot) == 192);

// The seal bit of close_request: set once by the releaser, the reason kept.
inline constexpr uint32_t kCloseSealed = 0x80;
// close_request's value for `generation` with `reason` (0: none asked).
constexpr uint32_t CloseRequestWord(uint32_t generation, uint32_t reason) {
  return (generation << 8) | (reason & 0xFF);
}
constexpr uint32_t CloseRequestReason(uint32_t word) { return word & 0x7F; }
constexpr bool CloseRequestSealed(uint32_t word) {
  return (word & kCloseSealed) != 0;
}
static_assert(kCloseReasonCount <= 0x7F);

// Values of a worker word besides a pid (pids are below 2^22 on Linux).
inline constexpr uint32_t kWorkerUnstarted = 0;
inline constexpr uint32_t kWorkerForking = 0xFFFFFFFF;
inline constexpr uint32_t kWorkerAbandoned = 0xFFFFFFFE;
constexpr uint64_t WorkerWord(uint32_t generation, uint32_t value) {
  return (static_cast<uint64_t>(generation) << 32) | value;
}
constexpr uint32_t WorkerGeneration(uint64_t word) {
  return static_cast<uint32_t>(word >> 32);
}
constexpr uint32_t WorkerValue(uint64_t word) {
  return static_cast<uint32_t>(word);
}
// The pid in a worker word, or 0 when it holds no pid.
constexpr int32_t WorkerPid(uint64_t word) {
  const uint32_t value = WorkerValue(word);
  return value == kWorkerUnstarted || value == kWorkerForking ||
                 value == kWorkerAbandoned
             ? 0
             : static_cast<int32_t>(value);
}

// What the fork server counts, in one block of its ledger (below).
struct LedgerCounters {
  uint64_t accepted[kModeCount];
  uint64_t closed[kModeCount][kCloseReasonCount];
  uint64_t rejected[kRejectReasonCount];
  uint64_t duration_buckets[kModeCount][kDurationBuckets];
  uint64_t duration_sum_ns[kModeCount];
  uint64_t freed[kModeCount];
  uint64_t worker_crashes;
  uint64_t fork_latency_buckets[kForkLatencyBuckets];
  uint64_t fork_latency_sum_ns;
  uint64_t fork_latency_count;
};

// The slot change a ledger transition makes after its commit.
enum LedgerOp : uint32_t {
  kLedgerNone = 0,
  kLedgerAccept = 1,  // set the slot's accepted_counted to `generation`
  kLedgerFree = 2,    // free the slot (state = kFree)
};

// The transition in progress: written before the commit, cleared (op =
// kLedgerNone) after the slot change.
struct LedgerPending {
  uint32_t op;  // LedgerOp
  uint32_t slot;
  uint32_t generation;  // the connection the slot change is for
  uint32_t padding;
  uint64_t next;  // the commit sequence number the transition commits
};

// The fork server's ledger: every counter the fork server writes, kept
// crash-consistent against a SIGKILL at any instruction.
//
// Single writer: the live fork server (upperd writes it only in
// RecoverForkServerLedger, after the fork server died and before another is
// spawned). A transition: (a) a release fence, then copies[next & 1] =
// copies[current & 1] + the deltas (next = current + 1); (b) pending =
// {op, slot, generation, next}; (c) current = next with release: THE commit,
// one store; (d) the slot change, idempotent and guarded by the slot's
// generation; (e) pending.op = kLedgerNone. A death before (c) counted
// nothing and changed no slot (upperd does both later, in its own block); a
// death after it counted everything, and recovery redoes (d).
//
// Readers take copies[current & 1] seqlock-style: load current (acquire),
// copy the block, acquire fence, load current again, retry if it moved. A
// copy torn by the next-but-one transition, which rewrites that block, read
// a value stored after the writer's fence (a) that follows the commit of
// current + 1, so the second load sees current + 1 or later (fence-fence
// synchronisation); current is a sequence number, never reused, so no ABA.
// Each block only ever holds a committed version or the one being built
// from the latest plus non-negative deltas, so a reader gets one committed
// version, never older than one it read before (coherence of `current`):
// every counter is monotonic.
struct alignas(64) ForkServerLedger {
  uint64_t current;  // commit sequence number; copies[current & 1] is live
  LedgerPending pending;
  LedgerCounters copies[2];
};

struct alignas(64) Header {
  uint64_t magic;
  uint32_t version;
  uint32_t capacity;
  uint32_t current_mode;     // Mode for new connections
  uint32_t idle_timeout_ms;  // 0 = off; read by workers at start
  uint32_t send_timeout_ms;  // 0 = off; read by workers at start
  uint32_t reserved;         // keeps next_id's alignment explicit
  uint64_t next_id;
  // active[mode] is derived: allocated[mode] - freed[mode] -
  // ledger.copies[current].freed[mode] (ConnectionTable::ReadTotals).
  //
  // Why a reader never sees more frees than allocations (C++ memory model,
  // not x86): the allocator adds to allocated (relaxed) before it publishes
  // the slot with its release store of state = kActive. Every freer loads
  // that state with acquire before it counts the free, so the allocation's
  // add happens-before the free's count. upperd's freers add to freed with
  // release (a release sequence of RMWs); the fork server counts in a ledger
  // version it commits with a release store. ReadTotals loads both freed
  // counts first with acquire (freed here; current, the ledger's), so every
  // allocation whose free it counted happens-before its later relaxed load
  // of allocated, which therefore sees them all (write-read coherence):
  // allocated >= freed as observed, and active is never negative.
  uint64_t allocated[kModeCount];  // upperd's allocator
  uint64_t freed[kModeCount];      // upperd's releases and abandons
  uint64_t accepted_total[kModeCount];
  uint64_t closed_total[kModeCount][kCloseReasonCount];
  uint64_t rejected_total[kRejectReasonCount];
  // (Byte totals are summed from the slots: Slot::bytes_in_cum.)
  uint64_t duration_buckets[kModeCount][kDurationBuckets];
  uint64_t duration_sum_ns[kModeCount];
  uint64_t worker_crashes_total;
  uint64_t mode_switches_total;
  uint64_t fork_server_restarts_total;
  uint64_t fork_latency_buckets[kForkLatencyBuckets];
  uint64_t fork_latency_sum_ns;
  uint64_t fork_latency_count;
  // Last, so that the fields above keep their offsets: the build that
  // created the table (kBuildId, table_build_id.h, generated by
  // server/data/CMakeLists.txt). Attach refuses a table of another build, so
  // a fork server started from an upgraded binary never reads a layout it
  // was not compiled for. Added without a kVersion bump of its own: the
  // Slot change of the same release (issue 14) bumps it.
  uint64_t build_id;
  // What the fork server counts (accepted, closed, rejected, durations,
  // frees, crashes and fork latency of fork mode) is here, not in the
  // fields above; totals are the sum of both.
  ForkServerLedger ledger;
  // The fork server's progress, for upperd's watchdog (ForkWorkers): how
  // many hand-off datagrams fork servers have taken off the control socket
  // and handled (forked, refused, or found stale or malformed), over the
  // table's life. Single writer: the live fork server, a plain load and a
  // store with release after each request (no read-modify-write needed);
  // a new fork server continues from the value it finds, which no one else
  // writes (the previous one is dead before a new one is spawned). upperd
  // loads it with acquire, so whatever the fork server wrote for a request
  // (its BeginFork, its ledger commit) is visible once its ack is. Only
  // progress matters to upperd: it compares the value with the one it saw
  // last, and with the number it sent since the current fork server began.
  uint64_t fork_requests_acked;
  // Fork servers upperd killed because they took no hand-off for
  // --fork_server_timeout with work outstanding (upperd only, fetch_add).
  uint64_t fork_server_hangs_total;
  // Log lines fork servers dropped because stderr would not take them at
  // once (server/base/log.h, MakeLogNeverWait), over the table's life.
  // Single writer, the live fork server (relaxed load and store); a new one
  // continues from the value it finds, as with fork_requests_acked.
  uint64_t fork_server_log_lines_dropped;
  // The fork pool (README "Fork pool"). Its settings: upperd writes them
  // before it spawns a fork server, which reads them once at its start.
  uint32_t fork_spare_min;
  uint32_t fork_spare_max;  // 0: no pool, a fresh child per connection
  uint32_t fork_spare_timeout_ms;
  uint32_t fork_child_max_connections;  // 1: no pool either
  // What the pool does. Single writer, the live fork server (relaxed load
  // and store); a new one continues the counters from the values it finds.
  // fork_pool_idle is a gauge: upperd zeroes it after a fork server died
  // (its idle children exit with it) and before it spawns the next.
  uint64_t fork_pool_idle;
  uint64_t fork_pool_spawns;
  uint64_t fork_pool_handoffs;
  uint64_t fork_pool_exits[kForkPoolExitReasonCount];
};

// The free-slot map, after the slots: a header, then a hierarchy of bitmaps.
// Level 0 has one bit per slot, set while the slot is free and publishable;
// level k+1 has one bit per word of level k, set while that word may be
// non-zero. The top level is one word, so a refusal at the limit reads one
// word; an allocation reads one word per level (4 at 1,000,000 slots) and
// takes the lowest free slot, so the memory touched stays at the peak
// concurrency. Protocol and race argument: ConnectionTable
// (connection_table.cc, TakeFreeSlot and PublishFree).
inline constexpr int kMaxFreeMapLevels = 6;  // 64^6 > 2^32 slots

struct alignas(64) FreeMapHeader {
  // One more than the highest slot index ever allocated: every slot at or
  // above it is free and was never touched. Written by the allocator (only
  // grows), read by iterations and totals with acquire.
  uint32_t high_water;
  uint32_t levels;  // how many bitmap levels follow (checked by Attach)
};

// Where each level's words are, counted in uint64_t words after the
// FreeMapHeader; level 0 first.
struct FreeMapGeometry {
  int levels = 0;
  uint32_t words[kMaxFreeMapLevels] = {};
  uint64_t first_word[kMaxFreeMapLevels] = {};
  uint64_t total_words = 0;
};

constexpr FreeMapGeometry FreeMapGeometryFor(uint32_t capacity) {
  FreeMapGeometry g;
  uint64_t bits = capacity;
  do {
    const auto words = static_cast<uint32_t>((bits + 63) / 64);
    g.words[g.levels] = words;
    g.first_word[g.levels] = g.total_words;
    g.total_words += words;
    ++g.levels;
    bits = words;
  } while (bits > 1);
  return g;
}
static_assert(FreeMapGeometryFor(1000000).levels == 4);
static_assert(FreeMapGeometryFor(1).levels == 1);
static_assert(FreeMapGeometryFor(64).levels == 1);
static_assert(FreeMapGeometryFor(65).levels == 2);
static_assert(FreeMapGeometryFor(0xFFFFFFFF).levels <= kMaxFreeMapLevels);

}  // namespace table_layout

// Relaxed atomic access to a field of the shared mapping.
template <typename T>
inline T LoadRelaxed(const T& field) {
  return std::atomic_ref<T>(const_cast<T&>(field))
      .load(std::memory_order_relaxed);
}
template <typename T>
inline void StoreRelaxed(T& field, T value) {
  std::atomic_ref<T>(field).store(value, std::memory_order_relaxed);
}
template <typename T>
inline void AddRelaxed(T& field, T delta) {
  std::atomic_ref<T>(field).fetch_add(delta, std::memory_order_relaxed);
}

// The header's premise, checked for each CPU the table is built for (x86-64,
// and aarch64 in .ci/arm64): every field's atomic access is lock-free (a
// lock would live in one process, not in the mapping) and needs no more
// than the field's natural alignment.
static_assert(std::atomic_ref<uint32_t>::is_always_lock_free &&
              std::atomic_ref<uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<uint32_t>::required_alignment ==
                  alignof(uint32_t) &&
              std::atomic_ref<uint64_t>::required_alignment ==
                  alignof(uint64_t));

}  // namespace upper
