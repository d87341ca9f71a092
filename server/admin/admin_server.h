// AdminServer: upperd's gRPC admin endpoint on --admin_bind:--admin_port.
// Serves upper.admin.v1.AdminService, the standard grpc.health.v1.Health
// service (SERVING; NOT_SERVING for "" and "upper.admin.v1.AdminService" once
// upperd drains) and server reflection, optionally over TLS
// (--admin_tls_cert/--admin_tls_key) and with a bearer token
// (--admin_token_file) checked on every call's headers before it takes a
// thread (token_auth_processor.h): everything but Health/Check needs it. Counts
// every call by method and status code in rpc_stats(), for the metrics plane.
//
// Lifecycle: Start() after DataPlane::Create() (which must run before any
// thread exists, and gRPC starts threads) and before DataPlane::Run(); Stop()
// after Run() returns. On the drain, health flips and WatchStatus streams end.
//
// Thread-safe: rpc_stats() and address() may be read from any thread.
// Start()/Stop() from the main thread. Must be destroyed before `server`.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/admin/admin_files.h"
#include "server/admin/rpc_stats.h"
#include "server/base/config.h"
#include "server/data/server_control.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace upper {

class AdminServiceImpl;

class AdminServer {
 public:
  // Binds and starts serving with `files` (read and checked by
  // LoadAdminFiles before any port was bound); logs `listening
  // service=admin addr=<ip:port>` with the bound port. Unavailable when the
  // address cannot be bound (exit 1).
  static absl::StatusOr<std::unique_ptr<AdminServer>> Start(
      const Config& config, AdminFiles files, ServerControl& server);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Reports NOT_SERVING and ends WatchStatus streams, then stops serving:
  // calls still running after `grace` are cancelled. gRPC also waits that
  // long for clients that keep their channel open, so the grace is short:
  // by now streams have ended and unary calls take microseconds. Idempotent.
  void Stop(absl::Duration grace = absl::Milliseconds(250));

  // The bound address, e.g. "127.0.0.1:50051".
  const std::string& address() const { return address_; }
  const RpcStats& rpc_stats() const { return *rpc_stats_; }

 private:
  AdminServer() = default;
  // Runs on the event loop's thread when the drain starts: must not block.
  void OnDrain();

  ServerControl* server_ = nullptr;
  std::string address_;
  std::unique_ptr<RpcStats> rpc_stats_;  // outlives grpc_server_'s calls
  std::unique_ptr<AdminServiceImpl> service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  bool stopped_ = false;
};

}  // namespace upper
