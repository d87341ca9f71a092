#include "server/admin/admin_server.h"

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/host_port.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "server/admin/admin_credentials.h"
#include "server/admin/admin_service.h"
#include "server/admin/grpc_log.h"
#include "server/admin/rpc_stats_interceptor.h"
#include "server/admin/token_auth_processor.h"
#include "server/base/log.h"
#include "upper/admin/v1/admin.pb.h"

namespace upper {
namespace {

// Bounds on what any peer, authenticated or not, can make the admin server
// spend before a handler (and so the token check) runs (issue 12). Admin
// requests are a few bytes; a token is under 1 KiB.
constexpr int kMaxReceiveMessageBytes = 64 * 1024;
constexpr int kMaxMetadataBytes = 16 * 1024;
// Streams per connection, sent in the server's SETTINGS. A conforming
// client queues beyond it; gRPC 1.51 closes the connection of a peer that
// opens more once it acknowledged the SETTINGS, but admits every stream
// opened before that acknowledgement (so only kMaxThreads bounds those).
constexpr int kMaxConcurrentStreams = 16;
// Threads of the sync server, pollers included; a running stream holds one.
// At the bound a new call, authenticated or not, is answered at once with
// RESOURCE_EXHAUSTED "Server Threadpool Exhausted" (measured: 200 streams
// opened before the SETTINGS ack take upperd from 11 to 42 threads, not
// 211). Above kMaxConcurrentStreams, so that a peer that honours the
// SETTINGS leaves room for others, and kMaxWatches plus room for unary
// calls.
constexpr int kMaxThreads = 32;
static_assert(kMaxThreads > kMaxConcurrentStreams);
static_assert(kMaxThreads >= AdminServiceImpl::kMaxWatches + 16);

// Applies the bounds above. Compression is refused altogether: gRPC 1.51
// inflates a whole compressed message before it checks the receive limit
// against the inflated size, so even a body under the 64 KiB limit would
// inflate to ~64 MiB. With gzip and deflate disabled, a message sent with
// either is answered UNIMPLEMENTED ("Compression algorithm 'gzip' is
// disabled.") on its headers, without being inflated (measured by
// tests/integration/admin_hostile_peer_test.cc).
void BoundResources(grpc::ServerBuilder& builder) {
  builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_DEFLATE, false);
  builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_GZIP, false);
  builder.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, kMaxMetadataBytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             kMaxConcurrentStreams);
  // Rapid reset (CVE-2023-44487) and its cousins. gRPC 1.51 has no bound
  // on RST_STREAM: a peer that opens and cancels streams is never sent a
  // GOAWAY, and every pair costs a server call that is queued until the
  // sync server gets to it (CPU, and ~15 KiB each while queued: measured in
  // docs/guarantees.md). No channel argument of 1.51 bounds that; the CPU
  // share of the threads that pay for it is (--admin_nice, see
  // admin_thread_priority.h). What 1.51 does bound, set here:
  // - a peer that connects and never sends the HTTP/2 preface and SETTINGS
  //   is disconnected after 10 s (the default is 120 s); upperctl, the
  //   kubelet's probe and grpcurl send theirs within a round trip, so 10 s
  //   is generous even for TLS over a slow link;
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, 10'000);
  // - PING floods: more than 2 pings within 5 min while the server sends
  //   no data end the connection with GOAWAY(ENHANCE_YOUR_CALM,
  //   "too_many_pings"). These are 1.51's defaults, set explicitly so that a
  //   library upgrade cannot loosen them; no upper client sends keepalive
  //   pings, and the server's own data and headers reset the strike count,
  //   so a busy WatchStatus stream is never struck;
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5 * 60'000);
  // - a connection with no call for 5 min is sent a GOAWAY and closed, so
  //   peers cannot keep admin connections (fds, transports) open for free;
  //   an operator's upperctl makes one call and leaves, a watch is a call.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 5 * 60'000);
  grpc::ResourceQuota quota("upper-admin");
  quota.SetMaxThreads(kMaxThreads);
  builder.SetResourceQuota(quota);
}

// The names health reports on: the whole server, and the admin service.
constexpr const char* kHealthNames[] = {"", "upper.admin.v1.AdminService"};

// Every method the admin port serves, by full name: AdminService's from its
// descriptor, plus gRPC's health and reflection services. The RPC stats
// count only these by name (see rpc_stats_interceptor.h).
std::set<std::string> ServedMethods() {
  std::set<std::string> served = {
      "/grpc.health.v1.Health/Check",
      "/grpc.health.v1.Health/Watch",
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
  };
  const google::protobuf::ServiceDescriptor* admin =
      admin::v1::ServerStatus::descriptor()->file()->FindServiceByName(
          "AdminService");
  for (int i = 0; admin != nullptr && i < admin->method_count(); ++i) {
    served.insert(
        absl::StrCat("/", admin->full_name(), "/", admin->method(i)->name()));
  }
  return served;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(
    const Config& config, AdminFiles files, ServerControl& server) {
  RouteGrpcLogsToUpperLog();
  std::string token = std::move(files.token);
  std::unique_ptr<AdminServer> admin(new AdminServer());
  admin->server_ = &server;
  admin->rpc_stats_ = std::make_unique<RpcStats>();
  std::shared_ptr<TokenAuthProcessor> auth;
  if (!token.empty()) {
    auth = std::make_shared<TokenAuthProcessor>(token, ServedMethods(),
                                                *admin->rpc_stats_);
  }
  const std::shared_ptr<grpc::ServerCredentials> credentials =
      std::make_shared<AdminCredentials>(std::move(files.tls), std::move(auth));
  admin->service_ =
      std::make_unique<AdminServiceImpl>(server, config, std::move(token));

  // Both are process-wide switches read when a ServerBuilder is made.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second upperd would then share the
  // port silently and answer half the calls. A port in use must be an error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  BoundResources(builder);
  int selected_port = 0;
  builder.AddListeningPort(JoinHostPort(config.admin_bind, config.admin_port),
                           credentials, &selected_port);
  builder.RegisterService(admin->service_.get());
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      MakeRpcStatsInterceptorFactory(*admin->rpc_stats_, ServedMethods()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  admin->grpc_server_ = builder.BuildAndStart();
  if (admin->grpc_server_ == nullptr || selected_port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", JoinHostPort(config.admin_bind, config.admin_port),
        " (--admin_bind/--admin_port)"));
  }
  admin->address_ = JoinHostPort(config.admin_bind, selected_port);
  grpc::HealthCheckServiceInterface* health =
      admin->grpc_server_->GetHealthCheckService();
  for (const char* name : kHealthNames) health->SetServingStatus(name, true);

  AdminServer* raw = admin.get();
  server.SetDrainListener([raw] { raw->OnDrain(); });
  LogEvent(LogLevel::kInfo, "listening",
           {{"service", "admin"},
            {"addr", admin->address_},
            {"tls", config.admin_tls_cert.empty() ? "off" : "on"},
            {"auth", config.admin_token_file.empty() ? "none" : "token"}});
  return admin;
}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::OnDrain() {
  // SetServingStatus only takes the health service's own lock: no blocking.
  grpc::HealthCheckServiceInterface* health =
      grpc_server_->GetHealthCheckService();
  for (const char* name : kHealthNames) health->SetServingStatus(name, false);
  service_->EndWatches();
}

void AdminServer::Stop(absl::Duration grace) {
  if (stopped_ || grpc_server_ == nullptr) return;
  stopped_ = true;
  server_->SetDrainListener(nullptr);  // Run() has returned: no race
  OnDrain();
  grpc_server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  grpc_server_->Wait();
}

}  // namespace upper
