#include "server/metrics/metrics_table_collector.h"

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "common/build_info.h"
#include "prometheus/client_metric.h"
#include "prometheus/metric_type.h"
#include "server/base/mode.h"

namespace upper {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// The modes a connection can be served in (the table's index 0 is unused).
constexpr Mode kServingModes[] = {Mode::kFork, Mode::kThread};

constexpr CloseReason kCloseReasons[] = {
    CloseReason::kClient, CloseReason::kIdleTimeout, CloseReason::kKilled,
    CloseReason::kError, CloseReason::kDrain};

constexpr RejectReason kRejectReasons[] = {
    RejectReason::kLimit, RejectReason::kForkFailed,
    RejectReason::kThreadFailed, RejectReason::kFdExhausted,
    RejectReason::kDraining};

int Index(Mode mode) { return static_cast<int>(mode); }

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

ClientMetric::Label Label(std::string name, absl::string_view value) {
  return {std::move(name), std::string(value)};
}

void AddCounter(MetricFamily& family, std::vector<ClientMetric::Label> labels,
                uint64_t value) {
  ClientMetric metric;
  metric.label = std::move(labels);
  metric.counter.value = static_cast<double>(value);
  family.metric.push_back(std::move(metric));
}

void AddGauge(MetricFamily& family, std::vector<ClientMetric::Label> labels,
              double value) {
  ClientMetric metric;
  metric.label = std::move(labels);
  metric.gauge.value = value;
  family.metric.push_back(std::move(metric));
}

// Adds one histogram from the table's per-bucket (not cumulative) counts;
// `bounds` has one entry fewer than `counts` (the last bucket is +Inf) and
// is in units of `seconds_per_unit`. The count is the sum of the buckets, so
// it always equals the +Inf bucket even while a connection is being closed.
void AddHistogram(MetricFamily& family, std::vector<ClientMetric::Label> labels,
                  const uint64_t* bounds, const uint64_t* counts,
                  int bucket_count, double seconds_per_unit,
                  double sum_seconds) {
  ClientMetric metric;
  metric.label = std::move(labels);
  uint64_t cumulative = 0;
  for (int b = 0; b < bucket_count; ++b) {
    cumulative += counts[b];
    ClientMetric::Bucket bucket;
    bucket.cumulative_count = cumulative;
    bucket.upper_bound = b + 1 < bucket_count
                             ? static_cast<double>(bounds[b]) * seconds_per_unit
                             : std::numeric_limits<double>::infinity();
    metric.histogram.bucket.push_back(bucket);
  }
  metric.histogram.sample_count = cumulative;
  metric.histogram.sample_sum = sum_seconds;
  family.metric.push_back(std::move(metric));
}

}  // namespace

TableCollector::TableCollector(MetricsSources sources)
    : sources_(std::move(sources)) {}

std::vector<MetricFamily> TableCollector::Collect() const {
  const TableTotals t = sources_.table->ReadTotals();
  std::vector<MetricFamily> families;

  MetricFamily active =
      Family("upper_connections_active",
             "Connections being served now, by the mode serving them.",
             MetricType::Gauge);
  MetricFamily accepted =
      Family("upper_connections_accepted_total",
             "Connections accepted and handed to a worker, by mode.",
             MetricType::Counter);
  MetricFamily received =
      Family("upper_received_bytes_total",
             "Bytes read from clients, by the mode serving them.",
             MetricType::Counter);
  MetricFamily sent =
      Family("upper_sent_bytes_total",
             "Bytes written back to clients, by the mode serving them.",
             MetricType::Counter);
  MetricFamily closed = Family(
      "upper_connections_closed_total",
      "Served connections that ended, by mode and reason (client: EOF and "
      "all output sent; idle_timeout; killed: by an operator; error; drain: "
      "closed at the end of a shutdown drain).",
      MetricType::Counter);
  MetricFamily duration =
      Family("upper_connection_duration_seconds",
             "How long served connections lived, from accept to close.",
             MetricType::Histogram);
  MetricFamily mode =
      Family("upper_mode",
             "1 for the mode new connections are served in, 0 otherwise.",
             MetricType::Gauge);
  for (Mode m : kServingModes) {
    const int i = Index(m);
    const absl::string_view name = ModeName(m);
    AddGauge(active, {Label("mode", name)}, static_cast<double>(t.active[i]));
    AddCounter(accepted, {Label("mode", name)}, t.accepted_total[i]);
    AddCounter(received, {Label("mode", name)}, t.bytes_in_total[i]);
    AddCounter(sent, {Label("mode", name)}, t.bytes_out_total[i]);
    for (CloseReason r : kCloseReasons) {
      AddCounter(closed,
                 {Label("mode", name), Label("reason", CloseReasonName(r))},
                 t.closed_total[i][static_cast<int>(r)]);
    }
    AddHistogram(duration, {Label("mode", name)},
                 table_layout::kDurationBoundsMs, t.duration_buckets[i],
                 table_layout::kDurationBuckets, 1e-3,
                 static_cast<double>(t.duration_sum_ns[i]) * 1e-9);
    AddGauge(mode, {Label("mode", name)}, t.current_mode == m ? 1 : 0);
  }

  MetricFamily rejected = Family(
      "upper_connections_rejected_total",
      "Connections closed without being served, by reason (limit: "
      "--max_connections reached; fork_failed; thread_failed; fd_exhausted: "
      "accept hit the fd limit; draining: arrived during shutdown).",
      MetricType::Counter);
  for (RejectReason r : kRejectReasons) {
    AddCounter(rejected, {Label("reason", RejectReasonName(r))},
               t.rejected_total[static_cast<int>(r)]);
  }

  MetricFamily limit =
      Family("upper_connections_limit",
             "Connections that may be served at once (--max_connections).",
             MetricType::Gauge);
  AddGauge(limit, {}, sources_.table->capacity());

  MetricFamily switches = Family(
      "upper_mode_switches_total",
      "Times the mode for new connections was changed.", MetricType::Counter);
  AddCounter(switches, {}, t.mode_switches_total);

  MetricFamily crashes =
      Family("upper_worker_crashes_total",
             "Fork children that died from a signal or exited abnormally.",
             MetricType::Counter);
  AddCounter(crashes, {}, t.worker_crashes_total);

  MetricFamily restarts =
      Family("upper_fork_server_restarts_total",
             "Times the fork server helper died and was started again.",
             MetricType::Counter);
  AddCounter(restarts, {}, t.fork_server_restarts_total);

  MetricFamily fork_latency =
      Family("upper_fork_latency_seconds",
             "Time the fork server took to fork a child for a connection.",
             MetricType::Histogram);
  AddHistogram(fork_latency, {}, table_layout::kForkLatencyBoundsUs,
               t.fork_latency_buckets, table_layout::kForkLatencyBuckets, 1e-6,
               static_cast<double>(t.fork_latency_sum_ns) * 1e-9);

  MetricFamily draining =
      Family("upper_draining",
             "1 while upperd is shutting down and no longer accepting.",
             MetricType::Gauge);
  AddGauge(draining, {}, sources_.draining && sources_.draining() ? 1 : 0);

  MetricFamily build_info =
      Family("upper_build_info",
             "Always 1; the labels say which upperd build is running.",
             MetricType::Gauge);
  AddGauge(build_info,
           {Label("revision", Revision()), Label("version", Version())}, 1);

  families.push_back(std::move(active));
  families.push_back(std::move(limit));
  families.push_back(std::move(accepted));
  families.push_back(std::move(rejected));
  families.push_back(std::move(closed));
  families.push_back(std::move(received));
  families.push_back(std::move(sent));
  families.push_back(std::move(duration));
  families.push_back(std::move(mode));
  families.push_back(std::move(switches));
  families.push_back(std::move(crashes));
  families.push_back(std::move(restarts));
  families.push_back(std::move(fork_latency));
  families.push_back(std::move(draining));
  families.push_back(std::move(build_info));

  if (sources_.admin_requests) {
    MetricFamily admin =
        Family("upper_admin_requests_total",
               "Admin RPCs handled, by method and gRPC status code.",
               MetricType::Counter);
    for (const RequestCount& c : sources_.admin_requests()) {
      AddCounter(admin, {Label("code", c.code), Label("method", c.method)},
                 c.count);
    }
    families.push_back(std::move(admin));
  }
  return families;
}

}  // namespace upper
