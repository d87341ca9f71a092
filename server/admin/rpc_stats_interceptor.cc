#include "server/admin/rpc_stats_interceptor.h"

#include <set>
#include <string>
#include <utility>

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
  RpcStatsInterceptorFactory(RpcStats& stats, std::set<std::string> served)
      : stats_(stats), served_(std::move(served)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const char* method = info->method();
    const bool known = method != nullptr && served_.count(method) != 0;
    // gRPC owns the interceptor.
    return new RpcStatsInterceptor(stats_, known ? method : kOtherMethod);
  }

 private:
  RpcStats& stats_;
  const std::set<std::string> served_;  // read-only: no lock needed
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeRpcStatsInterceptorFactory(RpcStats& stats, std::set<std::string> served) {
  return std::make_unique<RpcStatsInterceptorFactory>(stats, std::move(served));
}

}  // namespace upper
