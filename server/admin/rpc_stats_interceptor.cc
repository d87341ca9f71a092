#include "server/admin/rpc_stats_interceptor.h"

#include <string>

namespace upper {
namespace {

class RpcStatsInterceptor : public grpc::experimental::Interceptor {
 public:
  RpcStatsInterceptor(RpcStats& stats, const char* method)
      : stats_(stats), method_(method != nullptr ? method : "") {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    // The status is final here: what the handler returned (or what gRPC
    // substituted, e.g. CANCELLED).
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      stats_.Record(method_, methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  RpcStats& stats_;
  std::string method_;
};

class RpcStatsInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcStatsInterceptorFactory(RpcStats& stats) : stats_(stats) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcStatsInterceptor(stats_, info->method());  // gRPC owns it
  }

 private:
  RpcStats& stats_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeRpcStatsInterceptorFactory(RpcStats& stats) {
  return std::make_unique<RpcStatsInterceptorFactory>(stats);
}

}  // namespace upper
