// How upper-admin-bench reports one probe's latencies.
#include <string>

#include "bench/admin_bench.h"

namespace upper::bench {

void AddLatencies(const std::string& name, const Histogram& latencies,
                  double elapsed_s, uint64_t max_ns, Report& report) {
  const double calls = static_cast<double>(latencies.count());
  report.Add(name + "_calls", calls);
  report.Add(name + "_calls_per_s", elapsed_s > 0 ? calls / elapsed_s : 0);
  report.Add(name + "_p50_us", latencies.PercentileUs(0.50));
  report.Add(name + "_p99_us", latencies.PercentileUs(0.99));
  report.Add(name + "_p999_us", latencies.PercentileUs(0.999));
  report.Add(name + "_max_us", static_cast<double>(max_ns) / 1000.0);
}

}  // namespace upper::bench
