// RpcStats: how many admin-port RPCs finished, by full method name
// ("/upper.admin.v1.AdminService/GetStatus") and gRPC status code.
//
// Filled by the admin server's interceptor (rpc_stats_interceptor.h) for
// every service on the admin port (AdminService, health, reflection); read by
// whoever exports it (the metrics plane) through Snapshot().
//
// Thread-safe: Record() and Snapshot() may run concurrently from any thread.
// The set of keys is small (methods x codes seen), so one mutex suffices.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace upper {

// One (method, code) pair and how many calls ended with it.
struct RpcCount {
  std::string method;  // full method name, e.g. "/grpc.health.v1.Health/Check"
  int code = 0;        // grpc::StatusCode value
  uint64_t count = 0;
};

class RpcStats {
 public:
  void Record(absl::string_view method, int code);
  // Every pair recorded so far, ordered by method then code.
  std::vector<RpcCount> Snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> counts_;  // under mu_
};

// The canonical upper-case name of a gRPC status code ("OK",
// "INVALID_ARGUMENT"), as gRPC tools print it; "UNKNOWN_CODE_<n>" otherwise.
std::string StatusCodeName(int code);

}  // namespace upper
