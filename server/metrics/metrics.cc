#include "server/metrics/metrics.h"

#include <sys/socket.h>

#include <exception>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "CivetServer.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "civetweb.h"
#include "common/host_port.h"
#include "prometheus/exposer.h"
#include "server/base/config.h"
#include "server/base/log.h"
#include "server/metrics/metrics_process_collector.h"
#include "server/metrics/metrics_table_collector.h"

namespace upper {
namespace {

// Scrapes are rare and cheap; two threads let a slow scraper not block
// another (civetweb's default would start 50).
constexpr int kExposerThreads = 2;

// Ports of metrics servers being stopped. prometheus-cpp's ~Exposer removes
// the /metrics handler before it stops civetweb, so a scrape arriving in
// between would get a 404, which reads as "this target has no metrics". The
// gate answers those scrapes 503 instead: an honest "shutting down". Keyed
// by port because civetweb's callbacks get no pointer of ours (prometheus-cpp
// passes no user data); any thread may read it, the destructor writes it.
std::mutex stopping_mu;
std::set<int>& StoppingPorts() {
  static std::set<int>* ports = new std::set<int>;  // never destroyed
  return *ports;
}

// civetweb's begin_request: 0 lets the request through to its handler; a
// status code means this callback has answered it.
int RefuseWhileStopping(mg_connection* connection) {
  const mg_request_info* request = mg_get_request_info(connection);
  {
    std::lock_guard lock(stopping_mu);
    if (request == nullptr || !StoppingPorts().contains(request->server_port)) {
      return 0;
    }
  }
  constexpr char kBody[] = "upperd is shutting down\n";
  mg_printf(connection,
            "HTTP/1.1 503 Service Unavailable\r\n"
            "Content-Type: text/plain\r\nContent-Length: %zu\r\n"
            "Connection: close\r\n\r\n%s",
            sizeof(kBody) - 1, kBody);
  return 503;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const Config& config, MetricsSources sources) {
  if (sources.table == nullptr) {
    return absl::InvalidArgumentError("metrics: no connection table");
  }
  // Debian's civetweb is built without IPv6 (mg_check_feature(8) == 0): an
  // IPv6 address would fail as a vague bind error, so say why up front.
  // Nor is civetweb's dual-stack "+port" form a way out: without IPv6 it
  // silently listens on IPv4 only (mg_get_server_ports reports protocol 1).
  const int family = IpLiteralFamily(config.metrics_bind);
  if (family == AF_INET6) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics_bind: '", config.metrics_bind,
        "' is IPv6; the metrics server (civetweb) listens on IPv4 only"));
  }
  if (family != AF_INET) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics_bind: '", config.metrics_bind, "' is not an IPv4 address"));
  }
  const std::string requested =
      JoinHostPort(config.metrics_bind, config.metrics_port);
  // prometheus-cpp reports a failure to listen by throwing from the
  // constructor (civetweb returns no context); turn it into a status here.
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    // civetweb copies the callbacks when it starts.
    CivetCallbacks callbacks;
    callbacks.begin_request = RefuseWhileStopping;
    exposer = std::make_unique<prometheus::Exposer>(requested, kExposerThreads,
                                                    &callbacks);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "--metrics_port: cannot listen on ", requested, ": ", e.what()));
  }
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(absl::StrCat(
        "--metrics_port: cannot listen on ", requested, ": no listening port"));
  }
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables = {
      std::make_shared<TableCollector>(std::move(sources)),
      std::make_shared<ProcessCollector>()};
  for (const auto& collectable : collectables) {
    exposer->RegisterCollectable(collectable);
  }
  std::string address = JoinHostPort(config.metrics_bind, ports.front());
  LogEvent(LogLevel::kInfo, "listening",
           {{"service", "metrics"}, {"addr", address}, {"path", "/metrics"}});
  return std::unique_ptr<MetricsServer>(new MetricsServer(
      std::move(collectables), std::move(exposer), std::move(address)));
}

MetricsServer::MetricsServer(
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables,
    std::unique_ptr<prometheus::Exposer> exposer, std::string address)
    : collectables_(std::move(collectables)),
      exposer_(std::move(exposer)),
      address_(std::move(address)) {}

MetricsServer::~MetricsServer() {
  const std::vector<int> ports = exposer_->GetListeningPorts();
  {
    std::lock_guard lock(stopping_mu);
    StoppingPorts().insert(ports.begin(), ports.end());
  }
  exposer_.reset();  // civetweb has stopped: no callback runs after this
  std::lock_guard lock(stopping_mu);
  for (int port : ports) StoppingPorts().erase(port);
}

}  // namespace upper
