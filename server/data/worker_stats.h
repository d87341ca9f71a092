// ThreadCacheStats: what thread mode's workers are doing, for /metrics.
//
// A plain value, read by ThreadWorkers::stats() under its lock (so busy and
// idle are one consistent reading) and passed to the metrics plane through
// server_control.h, which does not see ThreadWorkers itself.
#pragma once

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

}  // namespace upper
