// A gRPC server interceptor that counts every finished call of the admin
// port into an RpcStats, by full method name and status code.
//
// Thread-safe: gRPC creates one interceptor per call; all share the RpcStats,
// which must outlive the grpc::Server.
#pragma once

#include <memory>

#include "grpcpp/support/server_interceptor.h"
#include "server/admin/rpc_stats.h"

namespace upper {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeRpcStatsInterceptorFactory(RpcStats& stats);

}  // namespace upper
