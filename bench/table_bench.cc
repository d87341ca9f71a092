// upper-table-bench: the connection table's per-connection costs at 10,000,
// 100,000 and 1,000,000 slots (issue 15), in process, through the public API
// only, so the same source times any version of ConnectionTable.
//
// For each size: Allocate + Release of one connection on an empty table and
// on a full one (one slot freed, then taken again), a refused Allocate at the
// limit, Snapshot and LiveIds with the table full and with 100 live slots
// (on a fresh table), and the table's footprint: the memfd's size (virtual)
// and the pages it holds (touched, st_blocks), fresh and full.
//
// Prints one markdown table on stdout. Single-threaded: the allocator's
// thread does everything, as in upperd.
#include <netinet/in.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "server/data/connection_table.h"

namespace upper {
namespace {

using Clock = std::chrono::steady_clock;

sockaddr_in Peer() {
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(40000);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

std::optional<uint32_t> Take(ConnectionTable& table) {
  static const sockaddr_in peer = Peer();
  return table.Allocate(Mode::kThread, reinterpret_cast<const sockaddr*>(&peer),
                        sizeof(peer));
}

// Mean ns per call of `op`, repeated for at least `min_seconds` (and at
// least 3 calls), so that the slow old scans get a few samples only.
template <typename Op>
double NsPerCall(Op op, double min_seconds = 0.2) {
  const Clock::time_point start = Clock::now();
  uint64_t calls = 0;
  double elapsed = 0;
  do {
    for (int i = 0; i < 64 && (calls < 3 || elapsed < min_seconds); ++i) {
      op();
      ++calls;
    }
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (calls < 3 || elapsed < min_seconds);
  return elapsed * 1e9 / static_cast<double>(calls);
}

struct Footprint {
  double virtual_mib = 0;
  double touched_mib = 0;
};

Footprint MeasureFootprint(const ConnectionTable& table) {
  struct stat st = {};
  fstat(table.memfd(), &st);
  return {static_cast<double>(st.st_size) / (1 << 20),
          static_cast<double>(st.st_blocks) * 512 / (1 << 20)};
}

struct Row {
  uint32_t slots = 0;
  double alloc_release_empty_ns = 0;
  double alloc_release_full_ns = 0;
  double alloc_release_full_hot_ns = 0;
  double refusal_ns = 0;
  double snapshot_full_ms = 0;
  double live_ids_full_ms = 0;
  double snapshot_100_us = 0;
  double live_ids_100_us = 0;
  Footprint fresh;
  Footprint full;
};

std::unique_ptr<ConnectionTable> MakeTable(uint32_t slots) {
  absl::StatusOr<std::unique_ptr<ConnectionTable>> t =
      ConnectionTable::Create(slots);
  if (!t.ok()) {
    std::fprintf(stderr, "%s\n", t.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(t);
}

void MeasureSparse(uint32_t slots, Row& row) {
  std::unique_ptr<ConnectionTable> table = MakeTable(slots);
  row.fresh = MeasureFootprint(*table);
  row.alloc_release_empty_ns = NsPerCall([&] {
    const std::optional<uint32_t> s = Take(*table);
    table->Release(*s, CloseReason::kClient);
  });
  for (int i = 0; i < 100; ++i) (void)Take(*table);
  row.snapshot_100_us = NsPerCall([&] { (void)table->Snapshot(); }) / 1e3;
  row.live_ids_100_us = NsPerCall([&] { (void)table->LiveIds(); }) / 1e3;
}

void MeasureFull(uint32_t slots, Row& row) {
  std::unique_ptr<ConnectionTable> table = MakeTable(slots);
  for (uint32_t i = 0; i < slots; ++i) {
    if (!Take(*table)) {
      std::fprintf(stderr, "table of %u refused slot %u\n", slots, i);
      std::exit(1);
    }
  }
  row.full = MeasureFootprint(*table);
  row.refusal_ns = NsPerCall([&] {
    if (Take(*table)) std::exit(1);
  });
  std::mt19937 rng(slots);
  row.alloc_release_full_ns = NsPerCall([&] {
    table->Release(static_cast<uint32_t>(rng() % slots), CloseReason::kClient);
    if (!Take(*table)) std::exit(1);
  });
  // The same slot again and again: the algorithm's cost without the cache
  // and TLB misses of a random slot in a table of up to 183 MiB.
  const uint32_t hot = slots / 2;
  row.alloc_release_full_hot_ns = NsPerCall([&] {
    table->Release(hot, CloseReason::kClient);
    if (!Take(*table)) std::exit(1);
  });
  row.snapshot_full_ms = NsPerCall([&] { (void)table->Snapshot(); }, 0.5) / 1e6;
  row.live_ids_full_ms = NsPerCall([&] { (void)table->LiveIds(); }, 0.5) / 1e6;
}

void Print(const std::vector<Row>& rows, const char* label) {
  std::printf(
      "| %s slots | alloc+release, empty (ns) | alloc+release, full, random "
      "slot (ns) | alloc+release, full, same slot (ns) | "
      "refusal at the limit (ns) | refusals/s | Snapshot full (ms) | LiveIds "
      "full (ms) | Snapshot 100 live (us) | LiveIds 100 live (us) | virtual "
      "MiB | touched MiB fresh / full |\n",
      label);
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    std::printf(
        "| %u | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %.1f | %.1f | "
        "%.1f | "
        "%.2f / %.1f |\n",
        r.slots, r.alloc_release_empty_ns, r.alloc_release_full_ns,
        r.alloc_release_full_hot_ns, r.refusal_ns, 1e9 / r.refusal_ns,
        r.snapshot_full_ms, r.live_ids_full_ms, r.snapshot_100_us,
        r.live_ids_100_us, r.full.virtual_mib, r.fresh.touched_mib,
        r.full.touched_mib);
  }
}

}  // namespace
}  // namespace upper

int main(int argc, char** argv) {
  const char* label = argc > 1 ? argv[1] : "table";
  std::vector<upper::Row> rows;
  for (uint32_t slots : {10000u, 100000u, 1000000u}) {
    upper::Row row;
    row.slots = slots;
    upper::MeasureSparse(slots, row);
    upper::MeasureFull(slots, row);
    rows.push_back(row);
  }
  upper::Print(rows, label);
  return 0;
}
