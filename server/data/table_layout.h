// table_layout: the bytes of the connection table's shared mapping.
//
// upperd, upperd-fork-server and every fork child map the same memfd, so
// this layout is a binary contract between programs: kMagic and kVersion
// change with any change to it, and ConnectionTable::Attach refuses a
// mapping of another version. Every field is a naturally aligned 32- or
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
// generation, forking and abandoned states) and the publication fence.
inline constexpr uint32_t kVersion = 3;

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

// One connection. 128 bytes, cache-line aligned, so a busy worker's writes
// (bytes, last_active) never share a line with a neighbouring slot.
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
  // CloseReason asked for by admin or drain (low 8 bits; 0 none, 0xFF
  // released) under the low 24 bits of the generation it was asked for
  // (above): one word, so that a compare-and-swap targets one connection,
  // never a slot's next one, and a close racing the end either lands before
  // Release (counted) or fails (NOT_FOUND). Helpers below the struct.
  uint32_t close_request;
  uint32_t padding0;
  uint64_t peer[3];          // PackedPeer: family, port, 16 address bytes
  uint64_t started_unix_ns;  // CLOCK_REALTIME at accept
  uint64_t started_mono_ns;  // CLOCK_MONOTONIC at accept
  // Written by the worker.
  uint64_t bytes_in;
  uint64_t bytes_out;
  uint64_t last_active_mono_ns;
  uint32_t close_reason;  // CloseReason the worker ended with
  uint32_t padding1;
};
static_assert(sizeof(Slot) == 128);

inline constexpr uint32_t kCloseReleased = 0xFF;
// close_request's value for `generation` with `reason` (0: none asked).
constexpr uint32_t CloseRequestWord(uint32_t generation, uint32_t reason) {
  return (generation << 8) | (reason & 0xFF);
}
constexpr uint32_t CloseRequestReason(uint32_t word) { return word & 0xFF; }

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

struct alignas(64) Header {
  uint64_t magic;
  uint32_t version;
  uint32_t capacity;
  uint32_t current_mode;     // Mode for new connections
  uint32_t idle_timeout_ms;  // 0 = off; read by workers at start
  uint64_t next_id;
  uint64_t active[kModeCount];
  uint64_t accepted_total[kModeCount];
  uint64_t closed_total[kModeCount][kCloseReasonCount];
  uint64_t rejected_total[kRejectReasonCount];
  uint64_t bytes_in_total[kModeCount];
  uint64_t bytes_out_total[kModeCount];
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
};

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
