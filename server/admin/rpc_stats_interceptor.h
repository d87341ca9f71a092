// A gRPC server interceptor that counts every finished call of the admin
// port into an RpcStats, by full method name and status code.
//
// Only the methods the port serves keep their name; every other path a peer
// sends (gRPC answers it UNIMPLEMENTED) is counted as kOtherMethod. A peer
// needs no token to send a path, so recording it verbatim would let anyone
// grow the stats, and /metrics with them, by one label per path.
//
// Thread-safe: gRPC creates one interceptor per call; all share the RpcStats,
// which must outlive the grpc::Server.
#pragma once

#include <memory>
#include <set>
#include <string>

#include "grpcpp/support/server_interceptor.h"
#include "server/admin/rpc_stats.h"

namespace upper {

inline constexpr char kOtherMethod[] = "other";

// `served`: full method names ("/grpc.health.v1.Health/Check") to count
// under their own name.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeRpcStatsInterceptorFactory(RpcStats& stats, std::set<std::string> served);

}  // namespace upper
