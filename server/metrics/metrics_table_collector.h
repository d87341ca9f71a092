// TableCollector: every upper_* metric, read at scrape time.
//
// The figures live in the shared ConnectionTable, which thread workers and
// fork children update with relaxed atomics. This one Collectable reads the
// table (ReadTotals) each time Prometheus scrapes, so fork children are
// counted without any IPC, and nothing is double-bookkept in a registry.
// Histograms come from the table's own buckets (durations in ms, fork latency
// in us), converted to seconds.
//
// Internal to upper_metrics (it exposes prometheus-cpp types): main and the
// rest of upperd include server/metrics/metrics.h instead.
//
// Thread-safety: Collect() runs on the metrics server's thread, beside
// upperd's other threads; it only reads the table and calls the sources,
// which must be thread-safe. It is also safe to call from several threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/data/connection_table.h"
#include "server/metrics/metrics.h"

namespace upper {

class TableCollector : public prometheus::Collectable {
 public:
  // `sources.table` must outlive the collector.
  explicit TableCollector(MetricsSources sources);

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  // upper_workers, upper_worker_spawns_total, upper_worker_exits_total.
  void AddWorkerFamilies(const TableTotals& t,
                         std::vector<prometheus::MetricFamily>& families) const;

  MetricsSources sources_;
};

}  // namespace upper
