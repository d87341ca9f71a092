#include "server/metrics/metrics_http_collector.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "prometheus/client_metric.h"
#include "prometheus/metric_type.h"

namespace upper {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

void AddValue(MetricFamily& family, uint64_t value,
              std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric metric;
  metric.label = std::move(labels);
  if (family.type == MetricType::Counter) {
    metric.counter.value = static_cast<double>(value);
  } else {
    metric.gauge.value = static_cast<double>(value);
  }
  family.metric.push_back(std::move(metric));
}

}  // namespace

std::vector<MetricFamily> HttpCollector::Families(
    const HttpServerStats& stats) {
  std::vector<MetricFamily> families;
  MetricFamily accepted =
      Family("upper_metrics_http_connections_accepted_total",
             "Connections the /metrics server accepted.", MetricType::Counter);
  AddValue(accepted, stats.accepted);
  families.push_back(std::move(accepted));

  MetricFamily refused = Family(
      "upper_metrics_http_connections_refused_total",
      "Connections the /metrics server could not accept (no file descriptor "
      "left).",
      MetricType::Counter);
  AddValue(refused, stats.refused);
  families.push_back(std::move(refused));

  MetricFamily closed = Family(
      "upper_metrics_http_connections_closed_total",
      "Connections the /metrics server closed before they were done, by "
      "reason: evicted (to make room for a newer one), header_timeout (no "
      "complete request head in time: 408), write_timeout (the peer did not "
      "read its response in time).",
      MetricType::Counter);
  AddValue(closed, stats.evicted, {{"reason", "evicted"}});
  AddValue(closed, stats.header_timeouts, {{"reason", "header_timeout"}});
  AddValue(closed, stats.write_timeouts, {{"reason", "write_timeout"}});
  families.push_back(std::move(closed));

  MetricFamily open =
      Family("upper_metrics_http_connections",
             "Connections the /metrics server held when this scrape arrived "
             "(waiting for their request, being answered or closing; the "
             "scrape itself not included).",
             MetricType::Gauge);
  AddValue(open, stats.open);
  families.push_back(std::move(open));

  MetricFamily responses =
      Family("upper_metrics_http_responses_total",
             "Responses the /metrics server sent, by HTTP status code.",
             MetricType::Counter);
  for (size_t i = 0; i < kHttpServerCodeCount; ++i) {
    AddValue(responses, stats.responses_by_code[i],
             {{"code", absl::StrCat(kHttpServerCodes[i])}});
  }
  families.push_back(std::move(responses));
  return families;
}

std::vector<MetricFamily> HttpCollector::Collect() const {
  std::optional<HttpServerStats> stats = stats_ ? stats_() : std::nullopt;
  if (!stats) return {};
  return Families(*stats);
}

}  // namespace upper
