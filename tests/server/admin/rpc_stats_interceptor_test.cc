#include "server/admin/rpc_stats_interceptor.h"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "upper/admin/v1/admin.grpc.pb.h"

namespace upper {
namespace {

// A real gRPC server on loopback, in-process, with the interceptor, serving
// the callback-based default health service and a sync service whose
// methods are all UNIMPLEMENTED (the sync path AdminServiceImpl uses).
class InterceptedServer {
 public:
  explicit InterceptedServer(RpcStats& stats) {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&unimplemented_admin_);
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(MakeRpcStatsInterceptorFactory(
        stats, {"/grpc.health.v1.Health/Check",
                "/upper.admin.v1.AdminService/GetStatus"}));
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
    server_ = builder.BuildAndStart();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials());
  }
  ~InterceptedServer() {
    if (server_) server_->Shutdown();
  }
  bool started() const { return server_ != nullptr && port_ != 0; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  admin::v1::AdminService::Service unimplemented_admin_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

grpc::StatusCode CheckHealth(grpc::Channel& channel, const std::string& name) {
  auto stub = grpc::health::v1::Health::NewStub(
      std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(name);
  grpc::health::v1::HealthCheckResponse response;
  return stub->Check(&context, request, &response).error_code();
}

// Calls `path` with an empty request through the generic stub, as a peer
// that names any method it likes would.
grpc::StatusCode CallPath(const std::shared_ptr<grpc::Channel>& channel,
                          const std::string& path) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  grpc::Slice empty("");  // a default ByteBuffer is no message at all
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable done_cv;
  std::optional<grpc::Status> status;
  stub.UnaryCall(&context, path, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mu);
                   status = std::move(s);
                   done_cv.notify_one();
                 });
  std::unique_lock<std::mutex> lock(mu);
  done_cv.wait(lock, [&] { return status.has_value(); });
  return status->error_code();
}

uint64_t CountOf(const RpcStats& stats, const std::string& method, int code) {
  for (const RpcCount& c : stats.Snapshot()) {
    if (c.method == method && c.code == code) return c.count;
  }
  return 0;
}

TEST(RpcStatsInterceptor, CountsEveryFinishedCallByMethodAndCode) {
  RpcStats stats;
  InterceptedServer server(stats);
  ASSERT_TRUE(server.started());
  // The status is recorded before it is sent, so it is counted by the time
  // the client has it.
  ASSERT_EQ(CheckHealth(*server.channel(), ""), grpc::StatusCode::OK);
  ASSERT_EQ(CheckHealth(*server.channel(), ""), grpc::StatusCode::OK);
  ASSERT_EQ(CheckHealth(*server.channel(), "no.such.Service"),
            grpc::StatusCode::NOT_FOUND);
  auto admin = admin::v1::AdminService::NewStub(server.channel());
  grpc::ClientContext context;
  admin::v1::ServerStatus status;
  ASSERT_EQ(admin->GetStatus(&context, admin::v1::GetStatusRequest(), &status)
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);

  EXPECT_EQ(CountOf(stats, "/grpc.health.v1.Health/Check", grpc::OK), 2u);
  EXPECT_EQ(CountOf(stats, "/grpc.health.v1.Health/Check", grpc::NOT_FOUND),
            1u);
  EXPECT_EQ(CountOf(stats, "/upper.admin.v1.AdminService/GetStatus",
                    grpc::UNIMPLEMENTED),
            1u);
  EXPECT_EQ(stats.Snapshot().size(), 3u);
}

// A peer may send any path, with no token: each unknown one must not become
// a label of its own (that would grow /metrics without bound).
TEST(RpcStatsInterceptor, MethodsNotServedAreCountedAsOther) {
  RpcStats stats;
  InterceptedServer server(stats);
  ASSERT_TRUE(server.started());
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(CallPath(server.channel(), "/evil.Service/M" + std::to_string(i)),
              grpc::StatusCode::UNIMPLEMENTED);
  }
  // ListConnections is a method of the server but not in its `served` set:
  // counted as other too.
  auto admin = admin::v1::AdminService::NewStub(server.channel());
  grpc::ClientContext context;
  admin::v1::ListConnectionsResponse list;
  ASSERT_EQ(admin
                ->ListConnections(&context, admin::v1::ListConnectionsRequest(),
                                  &list)
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);

  EXPECT_EQ(CountOf(stats, kOtherMethod, grpc::UNIMPLEMENTED), 51u);
  EXPECT_EQ(stats.Snapshot().size(), 1u);
}

}  // namespace
}  // namespace upper
