// ThreadCacheStats and ForkPoolStats: what each mode's workers are doing,
// for /metrics and GetStatus.
//
// A plain value, read by ThreadWorkers::stats() under its lock (so busy and
// idle are one consistent reading) and passed to the metrics plane through
// server_control.h, which does not see ThreadWorkers itself.
#pragma once

#include <algorithm>
#include <cstdint>

namespace upper {

struct ThreadCacheStats {
  uint64_t busy = 0;            // threads serving a connection
  uint64_t idle = 0;            // spare threads waiting for the next one
  uint64_t spawns_total = 0;    // threads created (pthread_create succeeded)
  uint64_t handoffs_total = 0;  // connections handed to a waiting spare
  // Thread exits by reason: idle longer than --thread_spare_timeout with
  // more than --thread_spare_min spares; told to stop (drain, destructor);
  // finished a connection while --thread_spare_max spares already waited.
  uint64_t exits_idle_timeout = 0;
  uint64_t exits_shutdown = 0;
  uint64_t exits_cache_full = 0;
};

// Fork mode's children (the fork server's pool, table_layout::Header). Busy
// children are the fork-mode connections being served; idle ones wait in the
// pool for the next connection (--fork_spare_min..--fork_spare_max).
struct ForkPoolStats {
  uint64_t busy = 0;
  uint64_t idle = 0;
  uint64_t spawns_total = 0;    // children forked, pooled or single-use
  uint64_t handoffs_total = 0;  // connections handed to an idle child
  // Children that left the pool, by reason (a crash is counted as one, in
  // upper_worker_crashes_total, not here): idle longer than
  // --fork_spare_timeout beyond --fork_spare_min; told to stop (drain);
  // finished a connection while --fork_spare_max children already waited;
  // served --fork_child_max_connections connections (1: every child).
  uint64_t exits_idle_timeout = 0;
  uint64_t exits_shutdown = 0;
  uint64_t exits_pool_full = 0;
  uint64_t exits_max_connections = 0;
};

// The fork pool's settings, as upperd hands them to its fork servers.
struct ForkPoolSettings {
  uint32_t spare_min = 0;
  uint32_t spare_max = 0;
  uint32_t spare_timeout_ms = 10000;
  uint32_t child_max_connections = 1;
  // A child goes back to the pool only when both allow it.
  bool pooled() const { return spare_max > 0 && child_max_connections != 1; }
  // The most children that can wait idle at once, for the start-up limit
  // check and the chart's budget: none unless pooled; spare_min are forked
  // ahead of any connection, and beyond them only children that served one
  // (at most max_connections at once) come back, up to spare_max.
  uint32_t MaxIdleChildren(uint32_t max_connections) const {
    if (!pooled()) return 0;
    return std::max(spare_min, std::min(spare_max, max_connections));
  }
};

// What the fork server publishes of its pool (ForkPoolStats without busy).
struct ForkPoolCounts {
  uint64_t idle = 0;
  uint64_t spawns = 0;
  uint64_t handoffs = 0;
  uint64_t exits[4] = {};  // by table_layout::ForkPoolExit
};

}  // namespace upper
