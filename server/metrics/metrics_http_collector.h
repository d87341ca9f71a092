// HttpCollector: the /metrics server's own figures (HttpServerStats of
// http_server.h) as upper_metrics_http_* families, so that an operator sees
// when slow or hostile peers are costing scrapes (evictions, timeouts) and
// what the endpoint answered:
//   upper_metrics_http_connections_accepted_total
//   upper_metrics_http_connections_refused_total      (no descriptor left)
//   upper_metrics_http_connections_closed_total{reason="evicted"|
//       "header_timeout"|"write_timeout"}             (closed by the server)
//   upper_metrics_http_connections                    (held, a gauge)
//   upper_metrics_http_responses_total{code="200"|...}
//
// Internal to upper_metrics (it exposes prometheus-cpp types).
//
// Thread-safety: Collect() may run on any thread; it reads the stats
// function, which must be thread-safe (HttpServer::stats() is).
#pragma once

#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/metrics/http_server.h"

namespace upper {

class HttpCollector : public prometheus::Collectable {
 public:
  // `stats` is called at every Collect(); while it returns nullopt (the
  // server is not started yet) the families are left out.
  using StatsFunction = std::function<std::optional<HttpServerStats>()>;
  explicit HttpCollector(StatsFunction stats) : stats_(std::move(stats)) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

  // The families for one snapshot (for unit tests).
  static std::vector<prometheus::MetricFamily> Families(
      const HttpServerStats& stats);

 private:
  StatsFunction stats_;
};

}  // namespace upper
