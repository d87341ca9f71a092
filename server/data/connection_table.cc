#include "server/data/connection_table.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/fault_point.h"
#include "common/host_port.h"
#include "common/unique_fd.h"
#include "server/data/table_build_id.h"

namespace upper {
namespace {

using table_layout::ForkServerLedger;
using table_layout::Header;
using table_layout::LedgerCounters;
using table_layout::Slot;

// The header, the slots, then the free-slot map (table_layout.h).
size_t SlotsEnd(uint32_t capacity) {
  return sizeof(Header) + static_cast<size_t>(capacity) * sizeof(Slot);
}
size_t TableSize(uint32_t capacity) {
  return SlotsEnd(capacity) + sizeof(table_layout::FreeMapHeader) +
         table_layout::FreeMapGeometryFor(capacity).total_words *
             sizeof(uint64_t);
}

// The free map's words are read-modify-written by releasers in several
// processes and the allocator; sequentially consistent, for the argument at
// TakeFreeSlot.
std::atomic_ref<uint64_t> MapWord(uint64_t& word) {
  return std::atomic_ref<uint64_t>(word);
}

template <typename T>
T LoadAcquire(const T& field) {
  return std::atomic_ref<T>(const_cast<T&>(field))
      .load(std::memory_order_acquire);
}
template <typename T>
void StoreRelease(T& field, T value) {
  std::atomic_ref<T>(field).store(value, std::memory_order_release);
}

// A counter of the ledger's block being built: its single writer adds with
// a load and a store, no read-modify-write needed.
void Bump(uint64_t& field, uint64_t delta) {
  StoreRelaxed(field, LoadRelaxed(field) + delta);
}
void Add(uint64_t& field, uint64_t delta) { AddRelaxed(field, delta); }

// Calls f(a.x, b.x) for every counter x of two ledger blocks.
template <typename A, typename B, typename F>
void ZipCounters(A& a, B& b, F f) {
  for (int m = 0; m < kModeCount; ++m) {
    f(a.accepted[m], b.accepted[m]);
    for (int r = 0; r < kCloseReasonCount; ++r)
      f(a.closed[m][r], b.closed[m][r]);
    for (int i = 0; i < table_layout::kDurationBuckets; ++i) {
      f(a.duration_buckets[m][i], b.duration_buckets[m][i]);
    }
    f(a.duration_sum_ns[m], b.duration_sum_ns[m]);
    f(a.freed[m], b.freed[m]);
  }
  for (int r = 0; r < kRejectReasonCount; ++r) f(a.rejected[r], b.rejected[r]);
  f(a.worker_crashes, b.worker_crashes);
  for (int i = 0; i < table_layout::kForkLatencyBuckets; ++i) {
    f(a.fork_latency_buckets[i], b.fork_latency_buckets[i]);
  }
  f(a.fork_latency_sum_ns, b.fork_latency_sum_ns);
  f(a.fork_latency_count, b.fork_latency_count);
}

// Counts the end of a connection of slot `s` in `mode` for `reason`, with its
// duration, into the given counters (shared block or ledger block) by `add`.
template <typename AddFn>
void CountClosedInto(
    uint64_t (&closed)[kModeCount][kCloseReasonCount],
    uint64_t (&buckets)[kModeCount][table_layout::kDurationBuckets],
    uint64_t (&sum)[kModeCount], const Slot& s, uint32_t mode, uint32_t reason,
    AddFn add) {
  add(closed[mode][reason], uint64_t{1});
  const uint64_t duration_ns =
      NowNs(CLOCK_MONOTONIC) - LoadRelaxed(s.started_mono_ns);
  const uint64_t duration_ms = duration_ns / 1000000;
  int bucket = 0;
  while (bucket < table_layout::kDurationBuckets - 1 &&
         duration_ms >= table_layout::kDurationBoundsMs[bucket]) {
    ++bucket;
  }
  add(buckets[mode][bucket], uint64_t{1});
  add(sum[mode], duration_ns);
}

// Counts a fork latency of `ns` into the given histogram by `add`.
template <typename AddFn>
void CountForkLatencyInto(
    uint64_t (&buckets)[table_layout::kForkLatencyBuckets], uint64_t& sum,
    uint64_t& count, uint64_t ns, AddFn add) {
  const uint64_t us = ns / 1000;
  int bucket = 0;
  while (bucket < table_layout::kForkLatencyBuckets - 1 &&
         us > table_layout::kForkLatencyBoundsUs[bucket]) {
    ++bucket;
  }
  add(buckets[bucket], uint64_t{1});
  add(sum, ns);
  add(count, uint64_t{1});
}

void PackPeer(const sockaddr* addr, socklen_t len, uint64_t out[3]) {
  unsigned char bytes[24] = {};
  if (addr != nullptr && addr->sa_family == AF_INET &&
      len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    bytes[0] = 4;
    std::memcpy(&bytes[2], &in->sin_port, 2);
    std::memcpy(&bytes[4], &in->sin_addr, 4);
  } else if (addr != nullptr && addr->sa_family == AF_INET6 &&
             len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    bytes[0] = 6;
    std::memcpy(&bytes[2], &in6->sin6_port, 2);
    std::memcpy(&bytes[4], &in6->sin6_addr, 16);
  }
  std::memcpy(out, bytes, sizeof(bytes));
}

}  // namespace

std::string FormatPeer(const uint64_t packed[3]) {
  unsigned char bytes[24];
  std::memcpy(bytes, packed, sizeof(bytes));
  uint16_t port_be;
  std::memcpy(&port_be, &bytes[2], 2);
  const int family =
      bytes[0] == 4 ? AF_INET : (bytes[0] == 6 ? AF_INET6 : AF_UNSPEC);
  const std::string host = FormatIp(family, &bytes[4]);
  if (host.empty()) return "unknown";
  return JoinHostPort(host, ntohs(port_be));
}

uint64_t TableTotals::ActiveTotal() const {
  uint64_t total = 0;
  for (uint64_t n : active) total += n;
  return total;
}

absl::StatusOr<std::unique_ptr<ConnectionTable>> ConnectionTable::Create(
    uint32_t capacity) {
  if (capacity == 0) {
    return absl::InvalidArgumentError("connection table needs a slot");
  }
  UniqueFd fd(
      memfd_create("upper-connections", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return ErrnoStatus("memfd_create", errno);
  const size_t size = TableSize(capacity);
  if (RetryOnEintr([&] { return ftruncate(fd.get(), size); }) != 0) {
    return ErrnoStatus("ftruncate", errno);
  }
  // Attachers trust the size: forbid changing it.
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) !=
      0) {
    return ErrnoStatus("fcntl(F_ADD_SEALS)", errno);
  }
  void* base =
      mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) return ErrnoStatus("mmap", errno);
  auto* header = static_cast<Header*>(base);
  // The memfd starts zeroed: every counter and slot is already 0 / kFree.
  header->version = table_layout::kVersion;
  header->capacity = capacity;
  header->current_mode = static_cast<uint32_t>(Mode::kUnspecified);
  header->next_id = 1;
  header->build_id = table_layout::kBuildId;
  auto table = std::unique_ptr<ConnectionTable>(
      new ConnectionTable(fd.Release(), /*owns_memfd=*/true, base, size));
  table->InitFreeMap();
  StoreRelease(header->magic, table_layout::kMagic);
  return table;
}

absl::StatusOr<std::unique_ptr<ConnectionTable>> ConnectionTable::Attach(
    int memfd) {
  struct stat st;
  if (fstat(memfd, &st) != 0) return ErrnoStatus("fstat", errno);
  const auto size = static_cast<size_t>(st.st_size);
  if (size < sizeof(Header)) {
    return absl::FailedPreconditionError("connection table is too small");
  }
  void* base =
      mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (base == MAP_FAILED) return ErrnoStatus("mmap", errno);
  auto table = std::unique_ptr<ConnectionTable>(
      new ConnectionTable(memfd, /*owns_memfd=*/false, base, size));
  const Header* header = static_cast<Header*>(base);
  if (LoadAcquire(header->magic) != table_layout::kMagic ||
      header->version != table_layout::kVersion ||
      TableSize(header->capacity) != size) {
    return absl::FailedPreconditionError(
        "connection table has an unknown layout");
  }
  if (header->build_id != table_layout::kBuildId) {
    return absl::FailedPreconditionError(absl::StrCat(
        "connection table from another build (ours ",
        absl::Hex(table_layout::kBuildId, absl::kZeroPad16), ", table ",
        absl::Hex(header->build_id, absl::kZeroPad16), ")"));
  }
  return table;
}

ConnectionTable::ConnectionTable(int memfd, bool owns_memfd, void* base,
                                 size_t size)
    : memfd_(memfd),
      owns_memfd_(owns_memfd),
      base_(base),
      size_(size),
      header_(static_cast<Header*>(base)),
      slots_(
          reinterpret_cast<Slot*>(static_cast<char*>(base) + sizeof(Header))),
      capacity_(static_cast<Header*>(base)->capacity),
      free_map_(reinterpret_cast<table_layout::FreeMapHeader*>(
          static_cast<char*>(base) + SlotsEnd(capacity_))) {
  // Pointers only: Attach checks the size against the capacity before any
  // of them is used.
  const table_layout::FreeMapGeometry g =
      table_layout::FreeMapGeometryFor(capacity_);
  auto* words = reinterpret_cast<uint64_t*>(free_map_ + 1);
  level_count_ = g.levels;
  for (int level = 0; level < g.levels; ++level) {
    levels_[level] = words + g.first_word[level];
  }
}

ConnectionTable::~ConnectionTable() {
  munmap(base_, size_);
  if (owns_memfd_) close(memfd_);
}

// --- The free-slot map ---
//
// Bits: level 0 has a bit per slot, set while the slot is free and may be
// handed out; level k+1 a bit per word of level k, set while that word may
// be non-zero (a set summary bit over an empty word is allowed, and cleaned
// lazily; the converse is not, except while a releaser is between its two
// ORs). Only the allocator (one thread) clears bits; releasers (upperd's
// workers, the fork server, upperd's orphan and recovery paths) only set
// them. So a bit the allocator read as set stays set until it clears it.
//
// Releaser: store state = kFree (release), then fetch_or its bit into level
// 0, then into level 1, ... up to the top (PublishFree), all seq_cst.
// Allocator: from the top word down, take the lowest set bit; at level 0
// fetch_and it away (seq_cst, so acquire): it reads the value of the
// releaser's fetch_or or of a later RMW in that word's release sequence, so
// the release and every write before it (the state, the last byte counts)
// happen-before the new allocation. Lowest set bit at every level: the
// lowest free slot, so the touched part of the table stays at the peak of
// concurrent connections.
//
// Clearing a summary bit (RetireSummaryBit) when the word below was read
// empty: fetch_and the parent bit away (A1), then reload the word (A2), and
// fetch_or the parent bit back if the word is non-zero. The race: a releaser
// sets the word (R1) and then the parent bit (R2). All four are seq_cst, so
// they lie in one total order S consistent with each word's modification
// order. If A2 does not see R1, A2 precedes R1 in S (a seq_cst load reads
// the last store before it in S), so A1 < A2 < R1 < R2: R2 follows A1 in
// the parent's modification order and the bit ends set. If A2 sees R1, the
// allocator sets the bit back itself. Either way a non-empty word keeps its
// summary bit once both are done. The grandparent bit stays set: the
// allocator just descended through it, and only the allocator clears bits.
//
// A refusal is one load of the top word when it is zero; a stale summary
// bit costs one restart of the descent, and each is created by an
// allocation that emptied a word, so allocation is O(levels) amortised.
//
// Faults: a releaser killed between its state store and its ORs leaves a
// free slot unpublished. Only the fork server can die so (upperd's own
// releasers die with the table); RecoverForkServerLedger then re-publishes
// every free fork-mode slot, whatever its bits say: one killed between its
// level-0 OR and the summary ORs above it left a set bit that no summary
// leads to (RepublishFreeForkSlots).
void ConnectionTable::InitFreeMap() {
  StoreRelaxed(free_map_->levels, static_cast<uint32_t>(level_count_));
  uint64_t bits = capacity_;  // set bits at this level: all slots free
  for (int level = 0; level < level_count_; ++level) {
    const auto words = static_cast<uint32_t>((bits + 63) / 64);
    for (uint32_t w = 0; w < words; ++w) {
      const uint64_t in_word = std::min<uint64_t>(64, bits - uint64_t{w} * 64);
      StoreRelaxed(levels_[level][w],
                   in_word == 64 ? ~uint64_t{0} : (uint64_t{1} << in_word) - 1);
    }
    bits = words;
  }
}

std::optional<uint32_t> ConnectionTable::TakeFreeSlot() {
  const int top = level_count_ - 1;
  for (;;) {
    uint32_t word = 0;
    int level = top;
    for (;;) {
      const uint64_t bits =
          MapWord(levels_[level][word]).load(std::memory_order_seq_cst);
      if (bits == 0) break;
      const uint32_t child = word * 64 + std::countr_zero(bits);
      if (level > 0) {
        word = child;
        --level;
        continue;
      }
      const uint64_t bit = uint64_t{1} << (child % 64);
      MapWord(levels_[0][word]).fetch_and(~bit, std::memory_order_seq_cst);
      // Always free (only a free slot gets its bit); checked anyway, so that
      // a broken releaser could leak a slot but never hand one out twice.
      if (LoadAcquire(slot(child).state) == table_layout::kFree) return child;
      level = -1;  // look again
      break;
    }
    if (level < 0) continue;
    if (level == top) return std::nullopt;  // the whole map is empty
    RetireSummaryBit(level, word);
  }
}

void ConnectionTable::RetireSummaryBit(int level, uint32_t word) {
  std::atomic_ref<uint64_t> parent = MapWord(levels_[level + 1][word / 64]);
  const uint64_t bit = uint64_t{1} << (word % 64);
  parent.fetch_and(~bit, std::memory_order_seq_cst);  // A1
  if (MapWord(levels_[level][word]).load(std::memory_order_seq_cst) != 0) {
    parent.fetch_or(bit, std::memory_order_seq_cst);  // A2 saw a release
  }
}

void ConnectionTable::PublishFree(uint32_t index, int levels) {
  uint32_t position = index;  // the bit's number at this level
  for (int level = 0; level < std::min(levels, level_count_); ++level) {
    MapWord(levels_[level][position / 64])
        .fetch_or(uint64_t{1} << (position % 64), std::memory_order_seq_cst);
    position /= 64;
  }
}

uint32_t ConnectionTable::high_water() const {
  return LoadAcquire(free_map_->high_water);
}

void ConnectionTable::RepublishFreeForkSlots() {
  // Runs on the allocator's thread with no fork server alive: no allocation
  // is between its claim and its publication, and no fork-mode release is
  // in flight (upperd's own fork-mode frees, orphans and abandons, run on
  // this thread). A thread-mode slot may be mid-release in a worker: skipped
  // by its mode, as that worker sets its bit itself; re-publishing it here
  // could let the allocator take it before that worker's late OR.
  // Every free fork slot is published again, even with its level-0 bit set:
  // a releaser killed between that OR and its summary ORs leaves the bit
  // unreachable (a summary bit retired meanwhile), and PublishFree is
  // idempotent.
  const uint32_t end = high_water();
  for (uint32_t i = 0; i < end; ++i) {
    const Slot& s = slot(i);
    if (LoadAcquire(s.state) == table_layout::kFree &&
        LoadRelaxed(s.mode) == static_cast<uint32_t>(Mode::kFork)) {
      PublishFree(i);
    }
  }
}

template <typename F>
void ConnectionTable::ForEachTakenSlot(F f) const {
  const uint32_t end = high_water();
  for (uint32_t w = 0; w * 64 < end; ++w) {
    uint64_t taken = ~LoadAcquire(levels_[0][w]);
    const uint32_t in_word = std::min<uint32_t>(64, end - w * 64);
    if (in_word < 64) taken &= (uint64_t{1} << in_word) - 1;
    while (taken != 0) {
      if (!f(w * 64 + std::countr_zero(taken))) return;
      taken &= taken - 1;
    }
  }
}

void ConnectionTable::SumBytes(TableTotals& t) const {
  // Every slot up to the high-water mark, live or not: a released slot keeps
  // its cumulative counts. Each counter is monotonic (one writer at a time,
  // only adding; the next writer starts from the value its predecessor left,
  // which happens-before it), and the high-water mark only grows, so a
  // reader's successive sums never decrease (read-read coherence of each
  // counter), and once connections ended (happened-before the read) the sum
  // is exact.
  const uint32_t end = high_water();
  for (uint32_t i = 0; i < end; ++i) {
    const Slot& s = slot(i);
    for (int m = 0; m < kModeCount; ++m) {
      t.bytes_in_total[m] += LoadRelaxed(s.bytes_in_cum[m]);
      t.bytes_out_total[m] += LoadRelaxed(s.bytes_out_cum[m]);
    }
  }
}

std::optional<uint32_t> ConnectionTable::Allocate(Mode mode,
                                                  const sockaddr* peer,
                                                  socklen_t peer_len) {
  // O(levels): the lowest free slot from the free map; at the limit, one
  // load of its top word.
  const std::optional<uint32_t> taken = TakeFreeSlot();
  if (!taken) return std::nullopt;
  {
    const uint32_t index = *taken;
    Slot& s = slot(index);
    // Before the slot's publication below, so that any reader that sees the
    // connection walks up to it.
    if (index >= LoadRelaxed(free_map_->high_water)) {
      StoreRelease(free_map_->high_water, index + 1);
    }
    const auto mode_value = static_cast<uint32_t>(mode);
    const uint32_t generation = LoadRelaxed(s.generation) + 1;
    StoreRelaxed(s.generation, generation);
    // Readers that see any field below also see the new generation (see
    // table_layout.h): they discard a copy that mixes two connections.
    std::atomic_thread_fence(std::memory_order_release);
    StoreRelaxed(s.id, std::atomic_ref<uint64_t>(header_->next_id)
                           .fetch_add(1, std::memory_order_relaxed));
    StoreRelaxed(s.mode, mode_value);
    StoreRelaxed(s.worker, table_layout::WorkerWord(
                               generation, table_layout::kWorkerUnstarted));
    StoreRelaxed(s.tid, int32_t{0});
    StoreRelaxed(s.close_request,
                 table_layout::CloseRequestWord(generation, 0));
    uint64_t packed[3];
    PackPeer(peer, peer_len, packed);
    for (int i = 0; i < 3; ++i) StoreRelaxed(s.peer[i], packed[i]);
    const uint64_t now_mono = NowNs(CLOCK_MONOTONIC);
    StoreRelaxed(s.started_unix_ns, NowNs(CLOCK_REALTIME));
    StoreRelaxed(s.started_mono_ns, now_mono);
    StoreRelaxed(s.last_active_mono_ns, NowNs(CLOCK_MONOTONIC_COARSE));
    // The previous worker's last byte counts happen-before this load: it
    // wrote them before its release, which published the free bit that
    // TakeFreeSlot acquired (for a fork child: before its exit, which its
    // releaser saw through wait).
    StoreRelaxed(s.bytes_in_base, LoadRelaxed(s.bytes_in_cum[mode_value]));
    StoreRelaxed(s.bytes_out_base, LoadRelaxed(s.bytes_out_cum[mode_value]));
    StoreRelaxed(s.close_reason, uint32_t{0});
    // Before the publication: a freer, which loads this state with acquire,
    // counts its free after this add (the order of table_layout.h).
    AddRelaxed(header_->allocated[mode_value], uint64_t{1});
    StoreRelease(s.state, static_cast<uint32_t>(table_layout::kActive));
    return index;
  }
}

void ConnectionTable::Abandon(uint32_t index, RejectReason reason) {
  if (ledger_writer_) {
    LedgerAbandon(index, reason);
    return;
  }
  Slot& s = slot(index);
  const uint32_t mode = LoadRelaxed(s.mode);
  const uint32_t requested = SealCloseRequest(s);
  if (requested != 0) {
    // The close was answered OK before the worker existed: keep the word.
    AddRelaxed(header_->accepted_total[mode], uint64_t{1});
    CountClosed(s, mode, requested);
  } else {
    CountRejected(reason);
  }
  FreeSlot(s, mode);
}

void ConnectionTable::CountRejected(RejectReason reason) {
  AddRelaxed(header_->rejected_total[static_cast<uint32_t>(reason)],
             uint64_t{1});
}

bool ConnectionTable::BeginFork(uint32_t index, uint32_t generation) {
  uint64_t expected =
      table_layout::WorkerWord(generation, table_layout::kWorkerUnstarted);
  return std::atomic_ref<uint64_t>(slot(index).worker)
      .compare_exchange_strong(
          expected,
          table_layout::WorkerWord(generation, table_layout::kWorkerForking),
          std::memory_order_seq_cst);
}

bool ConnectionTable::AbandonUnclaimed(uint32_t index, uint32_t generation,
                                       RejectReason reason) {
  Slot& s = slot(index);
  if (LoadAcquire(s.state) != table_layout::kActive) return false;
  std::atomic_ref<uint64_t> worker(s.worker);
  const uint64_t abandoned =
      table_layout::WorkerWord(generation, table_layout::kWorkerAbandoned);
  uint64_t seen = worker.load(std::memory_order_seq_cst);
  for (;;) {
    if (table_layout::WorkerGeneration(seen) != generation) return false;
    const uint32_t value = table_layout::WorkerValue(seen);
    // Abandoned but still active: its abandoner died before freeing it.
    if (value == table_layout::kWorkerAbandoned) break;
    if (value != table_layout::kWorkerUnstarted &&
        value != table_layout::kWorkerForking) {
      return false;  // a worker claimed it
    }
    if (worker.compare_exchange_weak(seen, abandoned,
                                     std::memory_order_seq_cst)) {
      break;
    }
  }
  Abandon(index, reason);
  return true;
}

SlotWriter ConnectionTable::Writer(uint32_t index) {
  return SlotWriter(header_, &slot(index));
}

SlotWriter ConnectionTable::Writer(uint32_t index, uint32_t generation) {
  return SlotWriter(header_, &slot(index), generation);
}

void ConnectionTable::AcquireWorkerWrites(uint32_t index) const {
  (void)std::atomic_ref<uint32_t>(slot(index).close_reason)
      .load(std::memory_order_acquire);
}

uint32_t ConnectionTable::SealCloseRequest(Slot& s) {
  // Setting the seal closes the slot to requests: a RequestClose after it
  // fails its compare-and-swap (NOT_FOUND), one before it is counted by the
  // caller. The reason stays, so a second seal (a releaser that died after
  // the first one, then its recovery) returns it again.
  return table_layout::CloseRequestReason(
      std::atomic_ref<uint32_t>(s.close_request)
          .fetch_or(table_layout::kCloseSealed, std::memory_order_acq_rel));
}

void ConnectionTable::CountClosed(const Slot& s, uint32_t mode,
                                  uint32_t reason) {
  CountClosedInto(header_->closed_total, header_->duration_buckets,
                  header_->duration_sum_ns, s, mode, reason, Add);
}

void ConnectionTable::FreeSlot(Slot& s, uint32_t mode) {
  // Acquire: reads the allocator's publication of this connection (the slot
  // is ours: nobody else writes its state while it is active), so the
  // allocation's count happens-before the free's. Release: a reader that
  // sees this count with acquire sees that allocation's too (table_layout.h).
  if (LoadAcquire(s.state) != table_layout::kActive) return;
  std::atomic_ref<uint64_t>(header_->freed[mode])
      .fetch_add(1, std::memory_order_release);
  StoreRelease(s.state, static_cast<uint32_t>(table_layout::kFree));
  PublishFree(IndexOf(s));
}

LedgerCounters& ConnectionTable::BeginLedgerTransition() {
  ForkServerLedger& l = header_->ledger;
  const uint64_t current = LoadRelaxed(l.current);  // our own last store
  // (a) A reader whose copy of the block below mixes in a value stored after
  // this fence sees the commit of `current` on its second load (the seqlock
  // argument of table_layout.h), and retries.
  std::atomic_thread_fence(std::memory_order_release);
  LedgerCounters& next = l.copies[(current + 1) & 1];
  ZipCounters(next, l.copies[current & 1],
              [](uint64_t& to, const uint64_t& from) {
                StoreRelaxed(to, LoadRelaxed(from));
              });
  return next;
}

void ConnectionTable::CommitLedgerTransition(table_layout::LedgerOp op,
                                             uint32_t index,
                                             uint32_t generation,
                                             const char* before_commit,
                                             const char* after_commit) {
  ForkServerLedger& l = header_->ledger;
  const uint64_t next = LoadRelaxed(l.current) + 1;
  // (b) What to redo if we die after the commit.
  StoreRelaxed(l.pending.slot, index);
  StoreRelaxed(l.pending.generation, generation);
  StoreRelaxed(l.pending.next, next);
  StoreRelaxed(l.pending.op, static_cast<uint32_t>(op));
  if (ledger_stop_ == LedgerStop::kBeforeCommit) return;
  UPPER_FAULT_POINT("table.ledger.before_commit");
  UPPER_FAULT_POINT(before_commit);
  // (c) The commit: one store. Release: a reader that loads it with acquire
  // sees the block and everything this process saw before (allocations).
  StoreRelease(l.current, next);
  if (ledger_stop_ == LedgerStop::kAfterCommit) return;
  UPPER_FAULT_POINT("table.ledger.after_commit");
  UPPER_FAULT_POINT(after_commit);
  // (d) The slot change, (e) done.
  ApplyLedgerOp(op, index, generation);
  StoreRelaxed(l.pending.op, static_cast<uint32_t>(table_layout::kLedgerNone));
}

void ConnectionTable::ApplyLedgerOp(uint32_t op, uint32_t index,
                                    uint32_t generation) {
  if (index >= capacity_) return;
  Slot& s = slot(index);
  // Idempotent: only while the slot still holds that connection (a redo
  // after the slot was freed, or freed and allocated again, does nothing).
  if (LoadAcquire(s.state) != table_layout::kActive ||
      LoadRelaxed(s.generation) != generation) {
    return;
  }
  if (op == table_layout::kLedgerAccept) {
    StoreRelaxed(s.accepted_counted, generation);
  } else if (op == table_layout::kLedgerFree) {
    StoreRelease(s.state, static_cast<uint32_t>(table_layout::kFree));
    // A death here leaves the slot free with its bit clear: not lost, as
    // RecoverForkServerLedger re-publishes it (RepublishFreeForkSlots).
    if (ledger_stop_ == LedgerStop::kBeforeFreeBit) return;
    UPPER_FAULT_POINT("table.ledger.free.before_bit");
    PublishFree(
        index, ledger_stop_ == LedgerStop::kBetweenFreeBits ? 1 : level_count_);
  }
}

void ConnectionTable::LedgerRelease(uint32_t index, CloseReason reason,
                                    bool crashed) {
  Slot& s = slot(index);
  // Acquire: the allocation's count happens-before the free counted below.
  if (LoadAcquire(s.state) != table_layout::kActive) return;
  const uint32_t generation = LoadRelaxed(s.generation);
  const uint32_t mode = LoadRelaxed(s.mode);
  const uint32_t requested = SealCloseRequest(s);
  LedgerCounters& next = BeginLedgerTransition();
  if (crashed) Bump(next.worker_crashes, 1);
  CountClosedInto(
      next.closed, next.duration_buckets, next.duration_sum_ns, s, mode,
      requested != 0 ? requested : static_cast<uint32_t>(reason), Bump);
  Bump(next.freed[mode], 1);
  CommitLedgerTransition(table_layout::kLedgerFree, index, generation,
                         "table.ledger.release.before_commit",
                         "table.ledger.release.after_commit");
}

void ConnectionTable::LedgerAbandon(uint32_t index, RejectReason reason) {
  Slot& s = slot(index);
  if (LoadAcquire(s.state) != table_layout::kActive) return;
  const uint32_t generation = LoadRelaxed(s.generation);
  const uint32_t mode = LoadRelaxed(s.mode);
  const uint32_t requested = SealCloseRequest(s);
  LedgerCounters& next = BeginLedgerTransition();
  if (requested != 0) {
    // As in Abandon(): the close was answered OK before the worker existed.
    Bump(next.accepted[mode], 1);
    CountClosedInto(next.closed, next.duration_buckets, next.duration_sum_ns, s,
                    mode, requested, Bump);
  } else {
    Bump(next.rejected[static_cast<uint32_t>(reason)], 1);
  }
  Bump(next.freed[mode], 1);
  CommitLedgerTransition(table_layout::kLedgerFree, index, generation,
                         "table.ledger.abandon.before_commit",
                         "table.ledger.abandon.after_commit");
}

void ConnectionTable::CountForkAccepted(uint32_t index, uint32_t generation,
                                        uint64_t fork_latency_ns) {
  const uint32_t mode = LoadRelaxed(slot(index).mode);
  LedgerCounters& next = BeginLedgerTransition();
  Bump(next.accepted[mode], 1);
  CountForkLatencyInto(next.fork_latency_buckets, next.fork_latency_sum_ns,
                       next.fork_latency_count, fork_latency_ns, Bump);
  CommitLedgerTransition(table_layout::kLedgerAccept, index, generation,
                         "table.ledger.accept.before_commit",
                         "table.ledger.accept.after_commit");
}

void ConnectionTable::ReadLedger(LedgerCounters* out) const {
  const ForkServerLedger& l = header_->ledger;
  for (;;) {
    const uint64_t current = LoadAcquire(l.current);
    ZipCounters(
        *out, l.copies[current & 1],
        [](uint64_t& to, const uint64_t& from) { to = LoadRelaxed(from); });
    std::atomic_thread_fence(std::memory_order_acquire);
    if (LoadRelaxed(l.current) == current) return;
  }
}

void ConnectionTable::RecoverForkServerLedger(RejectReason reason) {
  // The dead writer's stores are all visible: upperd saw its exit through
  // waitid, and the kernel orders a process's stores before its death is
  // reported (exit and wait are full barriers).
  ForkServerLedger& l = header_->ledger;
  const uint32_t op = LoadRelaxed(l.pending.op);
  if (op != table_layout::kLedgerNone &&
      LoadRelaxed(l.current) == LoadRelaxed(l.pending.next)) {
    // Committed: counted; redo its slot change. Else nothing was counted
    // nor changed, and the block it was building is overwritten next time.
    ApplyLedgerOp(op, LoadRelaxed(l.pending.slot),
                  LoadRelaxed(l.pending.generation));
  }
  StoreRelaxed(l.pending.op, static_cast<uint32_t>(table_layout::kLedgerNone));
  // Unclaimed slots are abandoned (or their abandon finished) first, so that
  // no child claims one after the count below.
  for (const ConnectionInfo& c : Snapshot()) {
    if (c.mode == Mode::kFork && c.pid == 0) {
      AbandonUnclaimed(c.slot, c.generation, reason);
    }
  }
  CountUncountedForkClaims();
  RepublishFreeForkSlots();
  MapOrphans();
}

void ConnectionTable::CountUncountedForkClaims() {
  ForEachTakenSlot([&](uint32_t i) {
    Slot& s = slot(i);
    if (LoadAcquire(s.state) != table_layout::kActive ||
        LoadRelaxed(s.mode) != static_cast<uint32_t>(Mode::kFork)) {
      return true;
    }
    const uint32_t generation = LoadRelaxed(s.generation);
    const uint64_t worker = LoadAcquire(s.worker);
    if (table_layout::WorkerGeneration(worker) != generation ||
        table_layout::WorkerPid(worker) == 0 ||
        LoadRelaxed(s.accepted_counted) == generation) {
      return true;
    }
    AddRelaxed(header_->accepted_total[static_cast<uint32_t>(Mode::kFork)],
               uint64_t{1});
    StoreRelaxed(s.accepted_counted, generation);
    return true;
  });
}

void ConnectionTable::MapOrphans() {
  // Every child of the dead fork server that will ever claim has claimed:
  // the unclaimed ones were abandoned above, and a Claim after that fails.
  // So this map holds every orphan whose exit upperd will reap.
  orphans_.clear();
  ForEachTakenSlot([&](uint32_t i) {
    const Slot& s = slot(i);
    if (LoadAcquire(s.state) != table_layout::kActive ||
        LoadRelaxed(s.mode) != static_cast<uint32_t>(Mode::kFork)) {
      return true;
    }
    const uint32_t generation = LoadRelaxed(s.generation);
    const uint64_t worker = LoadAcquire(s.worker);
    const int32_t pid = table_layout::WorkerPid(worker);
    if (table_layout::WorkerGeneration(worker) == generation && pid != 0) {
      orphans_[pid] = OrphanSlot{i, generation};
    }
    return true;
  });
  orphans_mapped_ = true;
}

void ConnectionTable::Release(uint32_t index, CloseReason reason) {
  Slot& s = slot(index);
  const uint32_t mode = LoadRelaxed(s.mode);
  const uint32_t requested = SealCloseRequest(s);
  CountClosed(s, mode,
              requested != 0 ? requested : static_cast<uint32_t>(reason));
  FreeSlot(s, mode);
}

std::optional<WorkerCrash> ConnectionTable::ReleaseExitedChild(uint32_t index,
                                                               int status) {
  const Slot& s = slot(index);
  // A seal by a releaser that died keeps the reason: the same answer.
  const bool close_asked =
      table_layout::CloseRequestReason(LoadRelaxed(s.close_request)) != 0;
  CloseReason reason = CloseReason::kError;
  bool crashed = false;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    const uint32_t worker_reason = LoadRelaxed(s.close_reason);
    if (worker_reason != 0) reason = static_cast<CloseReason>(worker_reason);
  } else {
    // A non-zero exit, or a signal no close or drain sent (they ask first).
    crashed = WIFEXITED(status) || !close_asked;
  }
  std::optional<WorkerCrash> crash;
  if (crashed) {
    crash = WorkerCrash{LoadRelaxed(s.id),
                        table_layout::WorkerPid(LoadRelaxed(s.worker)), status};
  }
  if (ledger_writer_) {
    LedgerRelease(index, reason, crashed);
  } else {
    if (crashed) CountWorkerCrash();
    Release(index, reason);
  }
  return crash;
}

std::optional<uint32_t> ConnectionTable::FindByPid(pid_t pid) const {
  const auto holds = [&](uint32_t i) {
    const Slot& s = slot(i);
    return LoadAcquire(s.state) == table_layout::kActive &&
           LoadRelaxed(s.mode) == static_cast<uint32_t>(Mode::kFork) &&
           table_layout::WorkerPid(LoadAcquire(s.worker)) == pid;
  };
  if (orphans_mapped_) {
    // O(1): a pid exits once, so its entry goes with this lookup.
    const auto it = orphans_.find(pid);
    if (it == orphans_.end()) return std::nullopt;
    const OrphanSlot orphan = it->second;
    orphans_.erase(it);
    if (!holds(orphan.slot) ||
        LoadRelaxed(slot(orphan.slot).generation) != orphan.generation) {
      return std::nullopt;
    }
    return orphan.slot;
  }
  // No fork server died in this mapping's life, so no orphan exists; a walk
  // over the live slots for any other caller.
  std::optional<uint32_t> found;
  ForEachTakenSlot([&](uint32_t i) {
    if (holds(i)) found = i;
    return !found.has_value();
  });
  return found;
}

bool ConnectionTable::HoldsWorker(uint32_t index, uint32_t generation,
                                  int32_t pid) const {
  const Slot& s = slot(index);
  const uint32_t request =
      std::atomic_ref<uint32_t>(const_cast<uint32_t&>(s.close_request))
          .load(std::memory_order_seq_cst);
  return LoadAcquire(s.state) == table_layout::kActive &&
         std::atomic_ref<uint64_t>(const_cast<uint64_t&>(s.worker))
                 .load(std::memory_order_seq_cst) ==
             table_layout::WorkerWord(generation, static_cast<uint32_t>(pid)) &&
         !table_layout::CloseRequestSealed(request);
}

Mode ConnectionTable::current_mode() const {
  return static_cast<Mode>(LoadRelaxed(header_->current_mode));
}

Mode ConnectionTable::SetMode(Mode mode) {
  const auto previous = static_cast<Mode>(
      std::atomic_ref<uint32_t>(header_->current_mode)
          .exchange(static_cast<uint32_t>(mode), std::memory_order_relaxed));
  // Setting the start mode is not a switch.
  if (previous != mode && previous != Mode::kUnspecified) {
    AddRelaxed(header_->mode_switches_total, uint64_t{1});
  }
  return previous;
}

void ConnectionTable::SetIdleTimeoutMs(uint32_t ms) {
  StoreRelaxed(header_->idle_timeout_ms, ms);
}

void ConnectionTable::SetSendTimeoutMs(uint32_t ms) {
  StoreRelaxed(header_->send_timeout_ms, ms);
}

CloseRequestResult ConnectionTable::RequestClose(uint32_t index, uint64_t id,
                                                 CloseReason reason,
                                                 ConnectionInfo* out) {
  if (index >= capacity_) return CloseRequestResult::kNotFound;
  std::optional<ConnectionInfo> info = Read(index);
  if (!info || info->id != id) return CloseRequestResult::kNotFound;
  if (out != nullptr) *out = *info;
  // Only the generation read above, still open: not the slot's next
  // connection, not one already released (whose end was counted otherwise).
  // Sequentially consistent: the caller reads the worker word next (see
  // SlotWriter::CloseRequested).
  uint32_t expected = table_layout::CloseRequestWord(info->generation, 0);
  if (std::atomic_ref<uint32_t>(slot(index).close_request)
          .compare_exchange_strong(
              expected,
              table_layout::CloseRequestWord(info->generation,
                                             static_cast<uint32_t>(reason)),
              std::memory_order_seq_cst)) {
    return CloseRequestResult::kRequested;
  }
  // Already asked for (drain, or an earlier admin close) and still live: it
  // ends counted as that first reason.
  const uint32_t current = table_layout::CloseRequestReason(expected);
  if (expected >> 8 == (info->generation & 0xFFFFFF) && current != 0 &&
      !table_layout::CloseRequestSealed(expected)) {
    return CloseRequestResult::kAlreadyRequested;
  }
  return CloseRequestResult::kNotFound;
}

bool ConnectionTable::WithdrawClose(uint32_t index, uint32_t generation,
                                    CloseReason reason) {
  uint32_t expected =
      table_layout::CloseRequestWord(generation, static_cast<uint32_t>(reason));
  return std::atomic_ref<uint32_t>(slot(index).close_request)
      .compare_exchange_strong(expected,
                               table_layout::CloseRequestWord(generation, 0),
                               std::memory_order_seq_cst);
}

void ConnectionTable::CountForkLatency(uint64_t ns) {
  if (ledger_writer_) {
    LedgerCounters& next = BeginLedgerTransition();
    CountForkLatencyInto(next.fork_latency_buckets, next.fork_latency_sum_ns,
                         next.fork_latency_count, ns, Bump);
    CommitLedgerTransition(table_layout::kLedgerNone, 0, 0,
                           "table.ledger.latency.before_commit",
                           "table.ledger.latency.after_commit");
    return;
  }
  CountForkLatencyInto(header_->fork_latency_buckets,
                       header_->fork_latency_sum_ns,
                       header_->fork_latency_count, ns, Add);
}

void ConnectionTable::CountWorkerCrash() {
  AddRelaxed(header_->worker_crashes_total, uint64_t{1});
}

void ConnectionTable::CountForkServerRestart() {
  AddRelaxed(header_->fork_server_restarts_total, uint64_t{1});
}

void ConnectionTable::CountForkServerHang() {
  AddRelaxed(header_->fork_server_hangs_total, uint64_t{1});
}

void ConnectionTable::AckForkRequest() {
  // One writer (table_layout.h): load, add, release store; no RMW needed.
  StoreRelease(header_->fork_requests_acked,
               LoadRelaxed(header_->fork_requests_acked) + 1);
}

uint64_t ConnectionTable::ForkRequestsAcked() const {
  return LoadAcquire(header_->fork_requests_acked);
}

uint64_t ConnectionTable::ForkServerLogLinesDropped() const {
  return LoadRelaxed(header_->fork_server_log_lines_dropped);
}

void ConnectionTable::SetForkServerLogLinesDropped(uint64_t dropped) {
  StoreRelaxed(header_->fork_server_log_lines_dropped, dropped);
}

static_assert(std::size(ForkPoolCounts{}.exits) ==
              table_layout::kForkPoolExitReasonCount);

void ConnectionTable::SetForkPoolSettings(const ForkPoolSettings& settings) {
  StoreRelaxed(header_->fork_spare_min, settings.spare_min);
  StoreRelaxed(header_->fork_spare_max, settings.spare_max);
  StoreRelaxed(header_->fork_spare_timeout_ms, settings.spare_timeout_ms);
  StoreRelaxed(header_->fork_child_max_connections,
               settings.child_max_connections);
}

ForkPoolSettings ConnectionTable::fork_pool_settings() const {
  return {.spare_min = LoadRelaxed(header_->fork_spare_min),
          .spare_max = LoadRelaxed(header_->fork_spare_max),
          .spare_timeout_ms = LoadRelaxed(header_->fork_spare_timeout_ms),
          .child_max_connections =
              LoadRelaxed(header_->fork_child_max_connections)};
}

ForkPoolCounts ConnectionTable::ReadForkPoolCounts() const {
  ForkPoolCounts counts;
  counts.idle = LoadRelaxed(header_->fork_pool_idle);
  counts.spawns = LoadRelaxed(header_->fork_pool_spawns);
  counts.handoffs = LoadRelaxed(header_->fork_pool_handoffs);
  for (size_t i = 0; i < table_layout::kForkPoolExitReasonCount; ++i) {
    counts.exits[i] = LoadRelaxed(header_->fork_pool_exits[i]);
  }
  return counts;
}

void ConnectionTable::PublishForkPoolCounts(const ForkPoolCounts& counts) {
  StoreRelaxed(header_->fork_pool_idle, counts.idle);
  StoreRelaxed(header_->fork_pool_spawns, counts.spawns);
  StoreRelaxed(header_->fork_pool_handoffs, counts.handoffs);
  for (size_t i = 0; i < table_layout::kForkPoolExitReasonCount; ++i) {
    StoreRelaxed(header_->fork_pool_exits[i], counts.exits[i]);
  }
}

void ConnectionTable::ZeroForkPoolIdle() {
  StoreRelaxed(header_->fork_pool_idle, uint64_t{0});
}

ForkPoolStats ConnectionTable::ReadForkPool() const {
  using table_layout::ForkPoolExit;
  const ForkPoolCounts c = ReadForkPoolCounts();
  const auto exits = [&c](ForkPoolExit e) {
    return c.exits[static_cast<size_t>(e)];
  };
  return {.busy = ReadTotals().active[static_cast<size_t>(Mode::kFork)],
          .idle = c.idle,
          .spawns_total = c.spawns,
          .handoffs_total = c.handoffs,
          .exits_idle_timeout = exits(ForkPoolExit::kIdleTimeout),
          .exits_shutdown = exits(ForkPoolExit::kShutdown),
          .exits_pool_full = exits(ForkPoolExit::kPoolFull),
          .exits_max_connections = exits(ForkPoolExit::kMaxConnections)};
}

std::optional<ConnectionInfo> ConnectionTable::Read(uint32_t index) const {
  const Slot& s = slot(index);
  if (LoadAcquire(s.state) != table_layout::kActive) return std::nullopt;
  ConnectionInfo info;
  info.slot = index;
  info.generation = LoadAcquire(s.generation);
  info.id = LoadRelaxed(s.id);
  info.mode = static_cast<Mode>(LoadRelaxed(s.mode));
  const uint64_t worker = LoadRelaxed(s.worker);
  info.pid = table_layout::WorkerGeneration(worker) == info.generation
                 ? table_layout::WorkerPid(worker)
                 : 0;
  info.tid = LoadRelaxed(s.tid);
  uint64_t packed[3];
  for (int i = 0; i < 3; ++i) packed[i] = LoadRelaxed(s.peer[i]);
  info.started_unix_ns = LoadRelaxed(s.started_unix_ns);
  info.started_mono_ns = LoadRelaxed(s.started_mono_ns);
  info.last_active_mono_ns = LoadRelaxed(s.last_active_mono_ns);
  const uint32_t mode = static_cast<uint32_t>(info.mode) % kModeCount;
  info.bytes_in =
      LoadRelaxed(s.bytes_in_cum[mode]) - LoadRelaxed(s.bytes_in_base);
  info.bytes_out =
      LoadRelaxed(s.bytes_out_cum[mode]) - LoadRelaxed(s.bytes_out_base);
  // Seqlock-style check: if the slot was freed or reused while we copied it,
  // the copy may mix two connections; report it as gone instead.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (LoadRelaxed(s.state) != table_layout::kActive ||
      LoadRelaxed(s.generation) != info.generation) {
    return std::nullopt;
  }
  info.peer = FormatPeer(packed);
  return info;
}

std::vector<ConnectionInfo> ConnectionTable::Snapshot() const {
  std::vector<ConnectionInfo> out;
  ForEachTakenSlot([&](uint32_t i) {
    if (std::optional<ConnectionInfo> info = Read(i)) {
      out.push_back(std::move(*info));
    }
    return true;
  });
  return out;
}

std::optional<LiveConnectionId> ConnectionTable::ReadLiveId(
    uint32_t index) const {
  const Slot& s = slot(index);
  if (LoadAcquire(s.state) != table_layout::kActive) return std::nullopt;
  const uint32_t generation = LoadAcquire(s.generation);
  LiveConnectionId live;
  live.id = LoadRelaxed(s.id);
  live.slot = index;
  live.mode = static_cast<Mode>(LoadRelaxed(s.mode));
  // As in Read(): a slot freed or reused meanwhile is skipped.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (LoadRelaxed(s.state) != table_layout::kActive ||
      LoadRelaxed(s.generation) != generation) {
    return std::nullopt;
  }
  return live;
}

std::vector<LiveConnectionId> ConnectionTable::LiveIds() const {
  std::vector<LiveConnectionId> out;
  ForEachTakenSlot([&](uint32_t i) {
    if (std::optional<LiveConnectionId> live = ReadLiveId(i)) {
      out.push_back(*live);
    }
    return true;
  });
  return out;
}

std::optional<ConnectionInfo> ConnectionTable::Find(uint64_t id) const {
  std::optional<uint32_t> found;
  ForEachTakenSlot([&](uint32_t i) {
    const std::optional<LiveConnectionId> live = ReadLiveId(i);
    if (live && live->id == id) found = i;
    return !found.has_value();
  });
  if (!found) return std::nullopt;
  // Ids are never reused, so at most one slot can hold this one; it may
  // have ended between the two reads.
  std::optional<ConnectionInfo> info = Read(*found);
  if (info && info->id == id) return info;
  return std::nullopt;
}

// Each figure is the shared block's plus the ledger's committed block: a
// sum of two counters each monotonic on its own (the ledger's by its
// seqlock read of one committed version, table_layout.h), so monotonic too,
// however the two reads interleave with writers.
TableTotals ConnectionTable::ReadTotals() const {
  TableTotals t;
  const Header& h = *header_;
  // The frees first, with acquire; the allocations after (table_layout.h).
  LedgerCounters l;
  ReadLedger(&l);
  uint64_t freed[kModeCount];
  for (int m = 0; m < kModeCount; ++m) freed[m] = LoadAcquire(h.freed[m]);
  t.current_mode = static_cast<Mode>(LoadRelaxed(h.current_mode));
  for (int m = 0; m < kModeCount; ++m) {
    t.allocated[m] = LoadRelaxed(h.allocated[m]);
    t.active[m] = t.allocated[m] - freed[m] - l.freed[m];
    t.accepted_total[m] = LoadRelaxed(h.accepted_total[m]) + l.accepted[m];
    for (int r = 0; r < kCloseReasonCount; ++r) {
      t.closed_total[m][r] = LoadRelaxed(h.closed_total[m][r]) + l.closed[m][r];
    }
    for (int b = 0; b < table_layout::kDurationBuckets; ++b) {
      t.duration_buckets[m][b] =
          LoadRelaxed(h.duration_buckets[m][b]) + l.duration_buckets[m][b];
    }
    t.duration_sum_ns[m] =
        LoadRelaxed(h.duration_sum_ns[m]) + l.duration_sum_ns[m];
  }
  for (int r = 0; r < kRejectReasonCount; ++r) {
    t.rejected_total[r] = LoadRelaxed(h.rejected_total[r]) + l.rejected[r];
  }
  t.worker_crashes_total =
      LoadRelaxed(h.worker_crashes_total) + l.worker_crashes;
  t.mode_switches_total = LoadRelaxed(h.mode_switches_total);
  t.fork_server_restarts_total = LoadRelaxed(h.fork_server_restarts_total);
  t.fork_server_hangs_total = LoadRelaxed(h.fork_server_hangs_total);
  t.fork_server_log_lines_dropped =
      LoadRelaxed(h.fork_server_log_lines_dropped);
  for (int b = 0; b < table_layout::kForkLatencyBuckets; ++b) {
    t.fork_latency_buckets[b] =
        LoadRelaxed(h.fork_latency_buckets[b]) + l.fork_latency_buckets[b];
  }
  t.fork_latency_sum_ns =
      LoadRelaxed(h.fork_latency_sum_ns) + l.fork_latency_sum_ns;
  t.fork_latency_count =
      LoadRelaxed(h.fork_latency_count) + l.fork_latency_count;
  SumBytes(t);
  return t;
}

SlotWriter::ClaimResult SlotWriter::Claim(int32_t pid, int32_t tid,
                                          bool count_accepted) {
  std::atomic_ref<uint64_t> worker(slot_->worker);
  const uint64_t mine =
      table_layout::WorkerWord(generation_, static_cast<uint32_t>(pid));
  uint64_t seen = worker.load(std::memory_order_seq_cst);
  for (;;) {
    if (seen == mine) return ClaimResult::kAlreadyClaimed;
    if (table_layout::WorkerGeneration(seen) != generation_) {
      return ClaimResult::kLost;
    }
    const uint32_t value = table_layout::WorkerValue(seen);
    if (value != table_layout::kWorkerUnstarted &&
        value != table_layout::kWorkerForking) {
      return ClaimResult::kLost;  // abandoned
    }
    if (worker.compare_exchange_weak(seen, mine, std::memory_order_seq_cst)) {
      // Only once the slot is ours: a writer that lost (its slot abandoned
      // and perhaps reused) must not write into the next connection's slot.
      StoreRelaxed(slot_->tid, tid);
      if (count_accepted) {
        AddRelaxed(header_->accepted_total[mode_], uint64_t{1});
        StoreRelaxed(slot_->accepted_counted, generation_);
      }
      return ClaimResult::kClaimed;
    }
  }
}

bool SlotWriter::CloseRequested() const {
  const uint32_t word = std::atomic_ref<uint32_t>(slot_->close_request)
                            .load(std::memory_order_seq_cst);
  const uint32_t reason = table_layout::CloseRequestReason(word);
  return word >> 8 == (generation_ & 0xFFFFFF) && reason != 0 &&
         !table_layout::CloseRequestSealed(word);
}

}  // namespace upper
