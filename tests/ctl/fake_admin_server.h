// FakeAdminServer: a TEST DOUBLE of upperd's admin port, for testing
// upperctl while the real AdminService is built on another branch.
//
// A real grpc::Server on 127.0.0.1 (a free port) with AdminService answering
// from canned state (a ServerStatus, a list of connections, the mode) and
// the default grpc.health.v1 service. ListConnections pages (page_size,
// default 1000; its token is a plain index, not the real server's). When given
// a token it refuses every AdminService call without "authorization: Bearer
// <token>", like upperd with --admin_token_file; it records each call's
// authorization header, and that of each grpc.health.v1 Check (through a
// server interceptor: the health service is gRPC's own). Its rules (SetMode
// takes only FORK/THREAD, CloseConnection wants a known id, WatchStatus streams
// every interval until cancelled) follow the contract in admin.proto, so tests
// against it keep their value once the real server exists;
// tests/integration/upperctl_e2e_test.cc covers that.
//
// Thread-safe: gRPC threads serve while the test changes the state.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "grpcpp/server.h"
#include "upper/admin/v1/admin.grpc.pb.h"

namespace upper::testing {

// A meeting point for GetStatus calls across servers: each call waits (up
// to 10 s) until `expected` calls have arrived, and fails with ABORTED if
// they do not. A client that queries a fleet one instance after the other
// can never get past it; one that queries concurrently always does.
struct StatusGate {
  explicit StatusGate(int expected) : expected(expected) {}
  bool ArriveAndWait();

  const int expected;
  std::mutex mu;
  std::condition_variable all_here;
  int arrived = 0;  // under mu
};

class FakeAdminServer {
 public:
  // Empty `token`: no auth.
  explicit FakeAdminServer(std::string token = "");
  ~FakeAdminServer();

  uint16_t port() const { return port_; }
  std::string address() const;  // "127.0.0.1:<port>"

  // A typical status: thread mode, 3 active (fork 1, thread 2), 120
  // accepted, 1.5 KiB received, 3 MiB sent, up 3m12s, pid `pid`; workers
  // fork busy 1 idle 2 spawns 10, thread busy 2 idle 4 spawns 6.
  static upper::admin::v1::ServerStatus CannedStatus(int pid = 4242);
  // Two connections: id 7 (fork) and id 9 (thread).
  static std::vector<upper::admin::v1::Connection> CannedConnections();

  void SetStatus(upper::admin::v1::ServerStatus status);
  void SetConnections(std::vector<upper::admin::v1::Connection> connections);
  void SetServing(bool serving);
  // WatchStatus ends with OK after this many updates (as on drain); 0: never.
  void EndWatchAfter(int updates);
  // Every GetStatus passes `gate` first (shared by several servers).
  void SetStatusGate(std::shared_ptr<StatusGate> gate);

  upper::admin::v1::ServerStatus status() const;
  std::vector<upper::admin::v1::Connection> connections() const;
  // Every ListConnections request, in order (one per page).
  std::vector<upper::admin::v1::ListConnectionsRequest> list_requests() const;
  // The authorization metadata of every AdminService call ("" if none).
  std::vector<std::string> authorizations() const;
  // The authorization metadata of every health Check ("" if none).
  std::vector<std::string> health_authorizations() const;

 private:
  class Service;
  struct HealthLog;
  std::unique_ptr<Service> service_;
  std::shared_ptr<HealthLog> health_log_;
  std::unique_ptr<grpc::Server> server_;
  uint16_t port_ = 0;
};

}  // namespace upper::testing
