// ProcessCollector: the standard process_* metrics of the Prometheus client
// libraries (process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds), read from /proc/self at scrape time, and
// upper_log_lines_dropped_total, upperd's count of log lines dropped at a
// full log buffer (server/base/log.h).
// They describe upperd itself; fork children are short-lived processes of
// their own and are not included.
//
// Internal to upper_metrics (it exposes prometheus-cpp types).
//
// Thread-safety: Collect() may run on several threads at once; it keeps no
// state. A figure that cannot be read (e.g. /proc not mounted) is left out of
// that scrape rather than failing it.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace upper {

// The fields of /proc/<pid>/stat that the metrics need, in the kernel's units.
struct ProcStat {
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  uint64_t start_ticks_since_boot = 0;
  uint64_t virtual_bytes = 0;
  uint64_t resident_pages = 0;
};

// Parses the one line of /proc/<pid>/stat (the command name may hold spaces
// and parentheses).
absl::StatusOr<ProcStat> ParseProcStat(absl::string_view text);

class ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace upper
