#include "ctl/admin_client.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "ctl/health_check.h"
#include "google/protobuf/duration.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace upper::ctl {
namespace {

namespace admin = ::upper::admin::v1;

// Empty pages in a row tolerated: upperd sends one when every connection
// of a page ended while it was read (likely only with tiny page sizes under
// churn); a thousand in a row means the pages do not advance.
constexpr int kMaxEmptyPagesInARow = 1000;
// A bound on what one listing may hold in upperctl's memory (about 100
// bytes each): ten times the million connections the paging is sized for.
constexpr int kMaxListedConnections = 10'000'000;

std::shared_ptr<grpc::Channel> MakeChannel(const Target& target,
                                           const Options& options) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls_ca_pem;  // empty: gRPC's default roots
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  // Each upperctl call is one shot: a refused connection should fail the
  // call now, not after reconnect back-off.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // A private subchannel per channel: the fleet view wants one connection
  // per instance, never a shared one.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target.channel_target, credentials, args);
}

grpc::Status Stuck(absl::string_view why) {
  return grpc::Status(
      grpc::StatusCode::INTERNAL,
      absl::StrCat("ListConnections pages do not advance: ", why));
}

// Appends `page` to `all`, checking that the listing advances (ids ascend
// strictly across pages; the total is bounded), so a server that repeats
// pages cannot keep upperctl looping or growing.
grpc::Status AppendPage(const admin::ListConnectionsResponse& page,
                        admin::ListConnectionsResponse* all) {
  if (all->connections_size() + page.connections_size() >
      kMaxListedConnections) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("more than ", kMaxListedConnections,
                                     " connections: list one mode at a time"));
  }
  for (const admin::Connection& c : page.connections()) {
    if (!all->connections().empty() &&
        c.id() <= all->connections().rbegin()->id()) {
      return Stuck(absl::StrCat("id ", c.id(), " after id ",
                                all->connections().rbegin()->id()));
    }
    *all->add_connections() = c;
  }
  return grpc::Status::OK;
}

}  // namespace

AdminClient::AdminClient(const Target& target, const Options& options)
    : target_(target), token_(options.token), timeout_(options.timeout) {
  if (!target_.resolve_error.ok()) return;
  channel_ = MakeChannel(target_, options);
  stub_ = admin::AdminService::NewStub(channel_);
}

void AdminClient::Prepare(grpc::ClientContext& context, bool deadline) const {
  if (!token_.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  }
  if (deadline)
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
}

grpc::Status AdminClient::Unresolved() const {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      std::string(target_.resolve_error.message()));
}

template <typename Request, typename Response>
grpc::Status AdminClient::Call(UnaryMethod<Request, Response> method,
                               const Request& request, Response* response) {
  if (!stub_) return Unresolved();
  grpc::ClientContext context;
  Prepare(context);
  return (stub_.get()->*method)(&context, request, response);
}

grpc::Status AdminClient::GetStatus(admin::ServerStatus* status) {
  return Call(&Stub::GetStatus, admin::GetStatusRequest(), status);
}

grpc::Status AdminClient::ListConnections(admin::Mode mode, int32_t page_size,
                                          admin::ListConnectionsResponse* out) {
  admin::ListConnectionsRequest request;
  request.set_mode(mode);
  request.set_page_size(page_size);
  out->Clear();
  for (int empty_in_a_row = 0;;) {
    admin::ListConnectionsResponse page;
    if (grpc::Status s = Call(&Stub::ListConnections, request, &page);
        !s.ok()) {
      return s;
    }
    if (grpc::Status s = AppendPage(page, out); !s.ok()) return s;
    if (page.next_page_token().empty()) return grpc::Status::OK;
    empty_in_a_row = page.connections().empty() ? empty_in_a_row + 1 : 0;
    if (empty_in_a_row > kMaxEmptyPagesInARow ||
        page.next_page_token() == request.page_token()) {
      return Stuck("the same or only empty pages");
    }
    request.set_page_token(page.next_page_token());
  }
}

grpc::Status AdminClient::SetMode(admin::Mode mode,
                                  admin::SetModeResponse* out) {
  admin::SetModeRequest request;
  request.set_mode(mode);
  return Call(&Stub::SetMode, request, out);
}

grpc::Status AdminClient::CloseConnection(uint64_t id,
                                          admin::CloseConnectionResponse* out) {
  admin::CloseConnectionRequest request;
  request.set_id(id);
  return Call(&Stub::CloseConnection, request, out);
}

grpc::Status AdminClient::CheckHealth(std::string* serving) {
  if (!channel_) return Unresolved();
  grpc::ClientContext context;
  // grpc.health.v1 needs no token (upperd answers it without one), so the
  // token stays off the wire where it is not needed: a deadline only.
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  return upper::ctl::CheckHealth(channel_, &context, "", serving);
}

std::unique_ptr<grpc::ClientReader<admin::ServerStatus>>
AdminClient::WatchStatus(grpc::ClientContext* context,
                         absl::Duration interval) {
  if (!stub_) return nullptr;
  admin::WatchStatusRequest request;
  const int64_t nanos = absl::ToInt64Nanoseconds(interval);
  request.mutable_interval()->set_seconds(nanos / 1000000000);
  request.mutable_interval()->set_nanos(
      static_cast<int32_t>(nanos % 1000000000));
  return stub_->WatchStatus(context, request);
}

}  // namespace upper::ctl
