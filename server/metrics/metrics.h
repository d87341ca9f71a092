// MetricsServer: upperd's Prometheus /metrics endpoint.
//
// A prometheus-cpp pull Exposer (civetweb) on --metrics_bind:--metrics_port
// serving two collectors that read their figures at scrape time: the shared
// connection table (every upper_* metric, fork children included, without
// IPC) and /proc/self (the standard process_* metrics). Nothing is counted on
// the data path for metrics' sake.
//
// Start it after DataPlane::Create: civetweb starts threads, and the fork
// server must be spawned (and the signal mask set) before any thread exists.
//
// prometheus-cpp and civetweb types stay out of this header (forward
// declarations and unique_ptr, as prometheus-cpp's own exposer.h does).
//
// Thread-safety: Start and the destructor from one thread; scrapes run on
// civetweb's threads and call the sources concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/admin/rpc_stats.h"

namespace prometheus {
class Collectable;
class Exposer;
}  // namespace prometheus

namespace upper {

class ConnectionTable;
struct Config;

// Where the figures come from. Every callback may be called from several
// scrape threads at once and must be thread-safe.
struct MetricsSources {
  // Required; must outlive the MetricsServer.
  const ConnectionTable* table = nullptr;
  // upper_draining; reported as 0 when unset.
  std::function<bool()> draining;
  // upper_admin_requests_total{method,code}, usually RpcStats::Snapshot of
  // the admin server; the family is left out when unset (no admin plane).
  // Methods are labelled by their full name without the leading slash
  // ("upper.admin.v1.AdminService/GetStatus"), codes by StatusCodeName.
  std::function<std::vector<RpcCount>()> admin_requests;
};

class MetricsServer {
 public:
  // Listens on config.metrics_bind:config.metrics_port (port 0: any free
  // port) and logs `listening service=metrics addr=<ip:port>`.
  // Errors: InvalidArgument when --metrics_bind is not an IPv4 address
  // (Debian's civetweb has no IPv6);
  // Unavailable naming the address and --metrics_port when it cannot listen.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const Config& config, MetricsSources sources);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // "ip:port" with the real port, e.g. "127.0.0.1:9464".
  const std::string& address() const { return address_; }

 private:
  MetricsServer(
      std::vector<std::shared_ptr<prometheus::Collectable>> collectables,
      std::unique_ptr<prometheus::Exposer> exposer, std::string address);

  // The exposer holds weak pointers to these; it is stopped first.
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string address_;
};

}  // namespace upper
