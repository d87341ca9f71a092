#include "server/metrics/metrics_table_collector.h"

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/build_info.h"
#include "prometheus/client_metric.h"
#include "prometheus/metric_type.h"
#include "server/admin/rpc_stats.h"
#include "server/base/mode.h"
#include "server/data/worker_exits.h"

namespace upper {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// The modes a connection can be served in (the table's index 0 is unused).
constexpr Mode kServingModes[] = {Mode::kFork, Mode::kThread};

constexpr CloseReason kCloseReasons[] = {
    CloseReason::kClient, CloseReason::kIdleTimeout, CloseReason::kKilled,
    CloseReason::kError,  CloseReason::kDrain,       CloseReason::kSendTimeout};

constexpr RejectReason kRejectReasons[] = {
    RejectReason::kLimit,        RejectReason::kForkFailed,
    RejectReason::kThreadFailed, RejectReason::kFdExhausted,
    RejectReason::kDraining,     RejectReason::kForkQueueFull};

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

// One family per function below, each read from the same TableTotals so a
// scrape is one consistent read of the table; Collect() puts them in order.

MetricFamily ActiveFamily(const TableTotals& t) {
  MetricFamily family =
      Family("upper_connections_active",
             "Connections being served now, by the mode serving them.",
             MetricType::Gauge);
  for (Mode m : kServingModes) {
    AddGauge(family, {Label("mode", ModeName(m))},
             static_cast<double>(t.active[Index(m)]));
  }
  return family;
}

// Busy and idle workers per mode. Fork mode's busy children are its active
// connections in the table; its idle ones wait in the fork server's pool.
MetricFamily WorkersFamily(const TableTotals& t, const ThreadCacheStats& w,
                           const ForkPoolStats& f) {
  MetricFamily family = Family(
      "upper_workers",
      "Workers by mode and state: busy serve a connection, idle wait for "
      "the next one (thread mode's spare threads, fork mode's pooled "
      "children).",
      MetricType::Gauge);
  AddGauge(family, {Label("mode", "fork"), Label("state", "busy")},
           static_cast<double>(t.active[Index(Mode::kFork)]));
  AddGauge(family, {Label("mode", "fork"), Label("state", "idle")},
           static_cast<double>(f.idle));
  AddGauge(family, {Label("mode", "thread"), Label("state", "busy")},
           static_cast<double>(w.busy));
  AddGauge(family, {Label("mode", "thread"), Label("state", "idle")},
           static_cast<double>(w.idle));
  return family;
}

MetricFamily WorkerSpawnsFamily(const ThreadCacheStats& w,
                                const ForkPoolStats& f) {
  MetricFamily family =
      Family("upper_worker_spawns_total",
             "Workers created, by mode (threads started, children forked); a "
             "connection handed to an idle worker creates none.",
             MetricType::Counter);
  AddCounter(family, {Label("mode", "fork")}, f.spawns_total);
  AddCounter(family, {Label("mode", "thread")}, w.spawns_total);
  return family;
}

MetricFamily WorkerExitsFamily(const ThreadCacheStats& w,
                               const ForkPoolStats& f) {
  MetricFamily family = Family(
      "upper_worker_exits_total",
      "Workers that exited, by mode and reason: idle_timeout (an idle worker "
      "beyond --thread_spare_min or --fork_spare_min waited its timeout), "
      "shutdown (drain or stop), cache_full (thread: --thread_spare_max "
      "spares already waited), pool_full (fork: --fork_spare_max children "
      "already waited), max_connections (fork: a child served "
      "--fork_child_max_connections).",
      MetricType::Counter);
  for (const WorkerExitCount& e : ExitsByReason(f)) {
    AddCounter(family, {Label("mode", "fork"), Label("reason", e.reason)},
               e.count);
  }
  for (const WorkerExitCount& e : ExitsByReason(w)) {
    AddCounter(family, {Label("mode", "thread"), Label("reason", e.reason)},
               e.count);
  }
  return family;
}

MetricFamily LimitFamily(uint32_t capacity) {
  MetricFamily family =
      Family("upper_connections_limit",
             "Connections that may be served at once (--max_connections).",
             MetricType::Gauge);
  AddGauge(family, {}, capacity);
  return family;
}

// A counter family with one sample per serving mode, from `by_mode`.
MetricFamily PerModeCounterFamily(std::string name, std::string help,
                                  const uint64_t (&by_mode)[kModeCount]) {
  MetricFamily family =
      Family(std::move(name), std::move(help), MetricType::Counter);
  for (Mode m : kServingModes) {
    AddCounter(family, {Label("mode", ModeName(m))}, by_mode[Index(m)]);
  }
  return family;
}

MetricFamily RejectedFamily(const TableTotals& t) {
  MetricFamily family = Family(
      "upper_connections_rejected_total",
      "Connections closed without being served, by reason (limit: "
      "--max_connections reached; fork_failed; thread_failed; fd_exhausted: "
      "accept hit the fd limit; draining: arrived during shutdown; "
      "fork_queue_full: the fork server took no hand-off and upperd's queue "
      "of them was full).",
      MetricType::Counter);
  for (RejectReason r : kRejectReasons) {
    AddCounter(family, {Label("reason", RejectReasonName(r))},
               t.rejected_total[static_cast<int>(r)]);
  }
  return family;
}

MetricFamily ClosedFamily(const TableTotals& t) {
  MetricFamily family = Family(
      "upper_connections_closed_total",
      "Served connections that ended, by mode and reason (client: EOF and "
      "all output sent; idle_timeout: nothing received; killed: by an "
      "operator; error; drain: closed at the end of a shutdown drain; "
      "send_timeout: the peer accepted no byte).",
      MetricType::Counter);
  for (Mode m : kServingModes) {
    for (CloseReason r : kCloseReasons) {
      AddCounter(
          family,
          {Label("mode", ModeName(m)), Label("reason", CloseReasonName(r))},
          t.closed_total[Index(m)][static_cast<int>(r)]);
    }
  }
  return family;
}

MetricFamily DurationFamily(const TableTotals& t) {
  MetricFamily family =
      Family("upper_connection_duration_seconds",
             "How long served connections lived, from accept to close.",
             MetricType::Histogram);
  for (Mode m : kServingModes) {
    const int i = Index(m);
    AddHistogram(family, {Label("mode", ModeName(m))},
                 table_layout::kDurationBoundsMs, t.duration_buckets[i],
                 table_layout::kDurationBuckets, 1e-3,
                 static_cast<double>(t.duration_sum_ns[i]) * 1e-9);
  }
  return family;
}

MetricFamily ModeFamily(const TableTotals& t) {
  MetricFamily family =
      Family("upper_mode",
             "1 for the mode new connections are served in, 0 otherwise.",
             MetricType::Gauge);
  for (Mode m : kServingModes) {
    AddGauge(family, {Label("mode", ModeName(m))}, t.current_mode == m ? 1 : 0);
  }
  return family;
}

// A counter family with a single unlabelled sample.
MetricFamily SingleCounterFamily(std::string name, std::string help,
                                 uint64_t value) {
  MetricFamily family =
      Family(std::move(name), std::move(help), MetricType::Counter);
  AddCounter(family, {}, value);
  return family;
}

MetricFamily ForkLatencyFamily(const TableTotals& t) {
  MetricFamily family =
      Family("upper_fork_latency_seconds",
             "Time the fork server took to start a connection's child: a fork, "
             "or a hand-off to an idle pool child (--fork_spare_max).",
             MetricType::Histogram);
  AddHistogram(family, {}, table_layout::kForkLatencyBoundsUs,
               t.fork_latency_buckets, table_layout::kForkLatencyBuckets, 1e-6,
               static_cast<double>(t.fork_latency_sum_ns) * 1e-9);
  return family;
}

MetricFamily DrainingFamily(const std::function<bool()>& draining) {
  MetricFamily family =
      Family("upper_draining",
             "1 while upperd is shutting down and no longer accepting.",
             MetricType::Gauge);
  AddGauge(family, {}, draining && draining() ? 1 : 0);
  return family;
}

MetricFamily BuildInfoFamily() {
  MetricFamily family =
      Family("upper_build_info",
             "Always 1; the labels say which upperd build is running.",
             MetricType::Gauge);
  AddGauge(family, {Label("revision", Revision()), Label("version", Version())},
           1);
  return family;
}

MetricFamily AdminRequestsFamily(const std::vector<RpcCount>& counts) {
  MetricFamily family =
      Family("upper_admin_requests_total",
             "Admin RPCs handled, by method and gRPC status code.",
             MetricType::Counter);
  for (const RpcCount& c : counts) {
    absl::string_view method = c.method;
    absl::ConsumePrefix(&method, "/");
    AddCounter(family,
               {Label("code", StatusCodeName(c.code)), Label("method", method)},
               c.count);
  }
  return family;
}

}  // namespace

TableCollector::TableCollector(MetricsSources sources)
    : sources_(std::move(sources)) {}

void TableCollector::AddWorkerFamilies(
    const TableTotals& t, std::vector<MetricFamily>& families) const {
  const ThreadCacheStats threads =
      sources_.thread_workers ? sources_.thread_workers() : ThreadCacheStats{};
  const ForkPoolStats forks =
      sources_.fork_workers ? sources_.fork_workers() : ForkPoolStats{};
  families.push_back(WorkersFamily(t, threads, forks));
  families.push_back(WorkerSpawnsFamily(threads, forks));
  families.push_back(WorkerExitsFamily(threads, forks));
}

std::vector<MetricFamily> TableCollector::Collect() const {
  const TableTotals t = sources_.table->ReadTotals();
  std::vector<MetricFamily> families;
  families.push_back(ActiveFamily(t));
  AddWorkerFamilies(t, families);
  families.push_back(LimitFamily(sources_.table->capacity()));
  families.push_back(PerModeCounterFamily(
      "upper_connections_accepted_total",
      "Connections accepted and handed to a worker, by mode.",
      t.accepted_total));
  families.push_back(RejectedFamily(t));
  families.push_back(ClosedFamily(t));
  families.push_back(PerModeCounterFamily(
      "upper_received_bytes_total",
      "Bytes read from clients, by the mode serving them.", t.bytes_in_total));
  families.push_back(PerModeCounterFamily(
      "upper_sent_bytes_total",
      "Bytes written back to clients, by the mode serving them.",
      t.bytes_out_total));
  families.push_back(DurationFamily(t));
  families.push_back(ModeFamily(t));
  families.push_back(
      SingleCounterFamily("upper_mode_switches_total",
                          "Times the mode for new connections was changed.",
                          t.mode_switches_total));
  families.push_back(SingleCounterFamily(
      "upper_worker_crashes_total",
      "Fork children that died from a signal or exited abnormally.",
      t.worker_crashes_total));
  families.push_back(SingleCounterFamily(
      "upper_fork_server_restarts_total",
      "Times the fork server helper died and was started again.",
      t.fork_server_restarts_total));
  families.push_back(SingleCounterFamily(
      "upper_fork_server_hangs_total",
      "Times the fork server took no hand-off for --fork_server_timeout with "
      "work outstanding and was killed (each is also a restart).",
      t.fork_server_hangs_total));
  families.push_back(SingleCounterFamily(
      "upper_fork_server_log_lines_dropped_total",
      "Log lines fork servers dropped because stderr would not take them at "
      "once (its reader stuck); upperd's own are "
      "upper_log_lines_dropped_total.",
      t.fork_server_log_lines_dropped));
  families.push_back(ForkLatencyFamily(t));
  families.push_back(DrainingFamily(sources_.draining));
  families.push_back(BuildInfoFamily());
  if (sources_.admin_requests) {
    families.push_back(AdminRequestsFamily(sources_.admin_requests()));
  }
  return families;
}

}  // namespace upper
