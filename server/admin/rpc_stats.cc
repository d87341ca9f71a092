#include "server/admin/rpc_stats.h"

#include "absl/strings/str_cat.h"

namespace upper {

void RpcStats::Record(absl::string_view method, int code) {
  std::lock_guard lock(mu_);
  ++counts_[{std::string(method), code}];
}

std::vector<RpcCount> RpcStats::Snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<RpcCount> out;
  out.reserve(counts_.size());
  for (const auto& [key, count] : counts_) {
    out.push_back({key.first, key.second, count});
  }
  return out;
}

std::string StatusCodeName(int code) {
  // Indexed by grpc::StatusCode (0..16), which gRPC guarantees stable.
  static constexpr absl::string_view kNames[] = {"OK",
                                                 "CANCELLED",
                                                 "UNKNOWN",
                                                 "INVALID_ARGUMENT",
                                                 "DEADLINE_EXCEEDED",
                                                 "NOT_FOUND",
                                                 "ALREADY_EXISTS",
                                                 "PERMISSION_DENIED",
                                                 "RESOURCE_EXHAUSTED",
                                                 "FAILED_PRECONDITION",
                                                 "ABORTED",
                                                 "OUT_OF_RANGE",
                                                 "UNIMPLEMENTED",
                                                 "INTERNAL",
                                                 "UNAVAILABLE",
                                                 "DATA_LOSS",
                                                 "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) {
    return std::string(kNames[code]);
  }
  return absl::StrCat("UNKNOWN_CODE_", code);
}

}  // namespace upper
