// TokenAuthProcessor: checks the admin bearer token on a call's headers,
// inside gRPC's server auth filter (admin_credentials.h installs it).
//
// Why here and not in the handlers: the filter runs when a call's HEADERS
// arrive, before the call is matched to one of the sync server's threads and
// before any message is read. A call it refuses never takes a thread, never
// has a message parsed, and ends with UNAUTHENTICATED at once. A check in the
// handler (AdminServiceImpl::Authorize, kept as a second line) comes after
// both: a peer without a token could hold one thread per stream it opened
// (measured in tests/integration/admin_hostile_peer_test.cc).
//
// Open without a token: only grpc.health.v1.Health/Check, which the
// kubelet's gRPC probes (and grpc-health-probe) call, which reveals nothing
// but SERVING, and which ends at once. Everything else needs the token:
// AdminService, reflection (it describes the API), unknown paths, and
// Health/Watch, a stream that a peer may hold as long as it likes (measured:
// 4,800 unauthenticated Watch streams on 300 connections grew upperd by
// 94 MiB, ~20 KiB each, with no bound but the peer's patience).
//
// Each refusal is counted in RpcStats as (method, UNAUTHENTICATED), so it
// shows in upper_admin_requests_total, and logged as `admin_auth_failed`:
// at most one line a second, which says how many were not logged since.
//
// Thread-safe: gRPC calls Check() from its own threads, concurrently.
#pragma once

#include <set>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "server/admin/rpc_stats.h"
#include "server/base/log_rate_limit.h"

namespace upper {

// Logs refusals, at most one line per `interval`, the rest counted.
class AuthFailureLog {
 public:
  explicit AuthFailureLog(absl::Duration interval = absl::Seconds(1))
      : limit_(1, interval) {}
  void Record(absl::string_view method, absl::string_view reason,
              absl::string_view peer);

 private:
  LogRateLimit limit_;
};

class TokenAuthProcessor {
 public:
  // `served`: full method names counted under their own name (as in
  // rpc_stats_interceptor.h); `stats` must outlive the grpc::Server.
  TokenAuthProcessor(std::string token, std::set<std::string> served,
                     RpcStats& stats);

  // OK, or UNAUTHENTICATED (counted and logged) for a call of `path` whose
  // `authorization` value (nullptr: none sent) is not the bearer token.
  // `peer`: what the auth context knows of the caller, for the log.
  grpc::Status Check(absl::string_view path,
                     const absl::string_view* authorization,
                     absl::string_view peer);

 private:
  const std::string token_;
  const std::set<std::string> served_;  // read-only: no lock needed
  RpcStats& stats_;
  AuthFailureLog log_;
};

// True for the paths callable without a token (health's Check).
bool IsOpenMethod(absl::string_view path);

}  // namespace upper
