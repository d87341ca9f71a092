#include "server/metrics/metrics.h"

#include <sys/socket.h>

#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/host_port.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"
#include "server/base/config.h"
#include "server/base/log.h"
#include "server/metrics/http_server.h"
#include "server/metrics/metrics_http_collector.h"
#include "server/metrics/metrics_process_collector.h"
#include "server/metrics/metrics_table_collector.h"

namespace upper {
namespace {

// The text exposition of every family the collectables report now.
std::string Exposition(
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables) {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& collectable : collectables) {
    std::vector<prometheus::MetricFamily> collected = collectable->Collect();
    families.insert(families.end(), std::make_move_iterator(collected.begin()),
                    std::make_move_iterator(collected.end()));
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return std::move(out).str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const Config& config, MetricsSources sources) {
  if (sources.table == nullptr) {
    return absl::InvalidArgumentError("metrics: no connection table");
  }
  // Config has checked this already; say it in --metrics_bind's words
  // rather than the listener's should a caller not have.
  if (!IsIpLiteral(StripBrackets(config.metrics_bind))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics_bind: '", config.metrics_bind,
                     "' is not an IPv4 or IPv6 address"));
  }
  std::unique_ptr<MetricsServer> server(
      new MetricsServer({std::make_shared<TableCollector>(std::move(sources)),
                         std::make_shared<ProcessCollector>()},
                        ""));
  // Runs on the server's thread, which http_ stops before *server goes.
  server->collectables_.push_back(std::make_shared<HttpCollector>(
      [started = &server->http_started_]() -> std::optional<HttpServerStats> {
        const HttpServer* http = started->load(std::memory_order_acquire);
        if (http == nullptr) return std::nullopt;
        return http->stats();
      }));
  absl::StatusOr<std::unique_ptr<HttpServer>> http = HttpServer::Start(
      config.metrics_bind, config.metrics_port, HttpServerOptions(),
      [collectables = &server->collectables_] {
        return Exposition(*collectables);
      });
  if (!http.ok()) {
    if (http.status().code() == absl::StatusCode::kResourceExhausted) {
      return http.status();
    }
    // "cannot listen on 127.0.0.1:9464 (bind): Address already in use"
    return absl::UnavailableError(
        absl::StrCat("--metrics_port: ", http.status().message()));
  }
  server->http_ = *std::move(http);
  server->http_started_.store(server->http_.get(), std::memory_order_release);
  server->address_ = server->http_->address();
  LogEvent(LogLevel::kInfo, "listening",
           {{"service", "metrics"},
            {"addr", server->address_},
            {"path", "/metrics"}});
  return server;
}

MetricsServer::MetricsServer(
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables,
    std::string address)
    : collectables_(std::move(collectables)), address_(std::move(address)) {}

MetricsServer::~MetricsServer() = default;

}  // namespace upper
