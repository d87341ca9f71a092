#include "server/admin/token_auth_processor.h"

#include <string>
#include <utility>

#include "server/admin/admin_token.h"
#include "server/admin/rpc_stats_interceptor.h"
#include "server/base/log.h"

namespace upper {

bool IsOpenMethod(absl::string_view path) {
  return path == "/grpc.health.v1.Health/Check";
}

void AuthFailureLog::Record(absl::string_view method, absl::string_view reason,
                            absl::string_view peer) {
  uint64_t suppressed = 0;
  if (!limit_.Admit(suppressed)) return;
  LogEvent(LogLevel::kWarning, "admin_auth_failed",
           {{"method", method},
            {"reason", reason},
            {"peer", peer.empty() ? "-" : peer},
            {"suppressed", suppressed}});
}

TokenAuthProcessor::TokenAuthProcessor(std::string token,
                                       std::set<std::string> served,
                                       RpcStats& stats)
    : token_(std::move(token)), served_(std::move(served)), stats_(stats) {}

grpc::Status TokenAuthProcessor::Check(absl::string_view path,
                                       const absl::string_view* authorization,
                                       absl::string_view peer) {
  if (IsOpenMethod(path)) return grpc::Status::OK;
  if (authorization != nullptr && BearerTokenMatches(token_, *authorization)) {
    return grpc::Status::OK;
  }
  const std::string method =
      served_.count(std::string(path)) != 0 ? std::string(path) : kOtherMethod;
  stats_.Record(method, grpc::StatusCode::UNAUTHENTICATED);
  log_.Record(method, authorization != nullptr ? "wrong_token" : "no_token",
              peer);
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      authorization != nullptr
                          ? "wrong token in 'authorization' metadata (expected "
                            "'Bearer <token>')"
                          : "this upperd requires a token: send metadata "
                            "'authorization: Bearer <token>'");
}

}  // namespace upper
