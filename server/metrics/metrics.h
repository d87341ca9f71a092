// MetricsServer: upperd's Prometheus /metrics endpoint.
//
// Our own small HTTP/1.1 server (http_server.h: bounded, one thread, dual
// stack on "::") on --metrics_bind:--metrics_port, serving in prometheus-cpp's
// text format (TextSerializer) two collectors that read their figures at scrape
// time: the shared connection table (every upper_* metric, fork children
// included, without IPC), /proc/self (the standard process_* metrics) and
// the HTTP server's own counts (upper_metrics_http_*).
// Nothing is counted on the data path for metrics' sake.
//
// Start it after DataPlane::Create: it starts a thread, and the fork server
// must be spawned (and the signal mask set) before any thread exists.
//
// prometheus-cpp types stay out of this header (forward declarations and
// unique_ptr, as prometheus-cpp's own exposer.h does).
//
// Stopping (the destructor) closes the port: a scrape after that is refused
// by the kernel, one in flight is cut; no scrape ever gets a partial body
// announced as whole, nor a 404.
//
// Thread-safety: Start and the destructor from one thread; scrapes run on
// the server's one thread, so the sources are called from that thread only
// (one scrape at a time).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/admin/rpc_stats.h"
#include "server/data/worker_stats.h"

namespace prometheus {
class Collectable;
}  // namespace prometheus

namespace upper {

class ConnectionTable;
class HttpServer;
struct Config;

// Where the figures come from. Every callback is called on the metrics
// server's thread, concurrently with the rest of upperd, and must be
// thread-safe with respect to it.
struct MetricsSources {
  // Required; must outlive the MetricsServer.
  const ConnectionTable* table = nullptr;
  // upper_draining; reported as 0 when unset.
  std::function<bool()> draining;
  // upper_workers{mode="thread"}, upper_worker_spawns_total and
  // upper_worker_exits_total; zeros when unset.
  std::function<ThreadCacheStats()> thread_workers;
  // The same for mode="fork" (busy excepted: it is the table's active fork
  // connections); zeros when unset.
  std::function<ForkPoolStats()> fork_workers;
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
  // IPv6 addresses listen dual stack ("::" serves IPv4 clients too).
  // Errors: InvalidArgument when --metrics_bind is not an IPv4 or IPv6
  // literal; Unavailable naming the address and --metrics_port when it
  // cannot listen; ResourceExhausted when its thread cannot start.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const Config& config, MetricsSources sources);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // "ip:port" with the real port, e.g. "127.0.0.1:9464", "[::]:9464".
  const std::string& address() const { return address_; }

 private:
  MetricsServer(
      std::vector<std::shared_ptr<prometheus::Collectable>> collectables,
      std::string address);

  // The server's thread calls these; it is stopped (declared after them)
  // before they go.
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  std::string address_;
  // http_ once it is started, for the upper_metrics_http_* collector (a
  // scrape may run before Start has stored http_).
  std::atomic<const HttpServer*> http_started_{nullptr};
  std::unique_ptr<HttpServer> http_;
};

}  // namespace upper
