// Worker exits by reason, named once for every plane that reports them
// (/metrics' upper_worker_exits_total, GetStatus' WorkerPool), so the two
// always show the same reasons with the same names.
//
// Pure functions of a stats value; thread-safe.
#pragma once

#include <array>
#include <cstdint>

#include "server/data/worker_stats.h"

namespace upper {

struct WorkerExitCount {
  const char* reason;  // a label value, e.g. "idle_timeout"
  uint64_t count;
};

// Thread mode: idle_timeout, shutdown, cache_full.
inline std::array<WorkerExitCount, 3> ExitsByReason(const ThreadCacheStats& w) {
  return {{{"idle_timeout", w.exits_idle_timeout},
           {"shutdown", w.exits_shutdown},
           {"cache_full", w.exits_cache_full}}};
}

// Fork mode: idle_timeout, shutdown, pool_full, max_connections.
inline std::array<WorkerExitCount, 4> ExitsByReason(const ForkPoolStats& w) {
  return {{{"idle_timeout", w.exits_idle_timeout},
           {"shutdown", w.exits_shutdown},
           {"pool_full", w.exits_pool_full},
           {"max_connections", w.exits_max_connections}}};
}

}  // namespace upper
