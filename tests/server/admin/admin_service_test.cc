// AdminServiceImpl in process, against FakeServerControl: every status code
// the service answers, without upperd and without the data plane.
//
// Unary methods are called directly, on a grpc::ServerContext built here
// (client metadata injected with gRPC's ServerContextTestSpouse). WatchStatus
// needs a real ServerWriter, so its tests serve the service on a loopback
// in-process grpc::Server and call it through a generated stub.
#include "server/admin/admin_service.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/test/server_context_test_spouse.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "server/base/config.h"
#include "tests/server/admin/fake_server_control.h"
#include "upper/admin/v1/admin.grpc.pb.h"

namespace upper {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kToken[] = "s3cret";
constexpr int kUnknownMode = 7;  // not a value of upper.admin.v1.Mode

Config TestConfig() {
  Config config;
  config.max_connections = 8;
  config.idle_timeout = absl::Seconds(42);
  return config;
}

// The `authorization` metadata a call carries; nullopt: none.
using Authorization = std::optional<std::string>;

// A ServerContext as gRPC hands it to a handler, carrying `authorization`.
class CallContext {
 public:
  explicit CallContext(const Authorization& authorization)
      : spouse_(&context_) {
    if (authorization)
      spouse_.AddClientMetadata("authorization", *authorization);
  }
  grpc::ServerContext* get() { return &context_; }

 private:
  grpc::ServerContext context_;
  grpc::testing::ServerContextTestSpouse spouse_;  // holds the metadata
};

template <typename Response>
struct Answer {
  grpc::Status status;
  Response response;
};

template <typename Request, typename Response>
Answer<Response> Call(AdminServiceImpl& service,
                      grpc::Status (AdminServiceImpl::*method)(
                          grpc::ServerContext*, const Request*, Response*),
                      const Request& request,
                      const Authorization& authorization) {
  CallContext context(authorization);
  Answer<Response> answer;
  answer.status = (service.*method)(context.get(), &request, &answer.response);
  return answer;
}

Answer<admin::v1::ServerStatus> GetStatus(
    AdminServiceImpl& service, const Authorization& authorization = {}) {
  return Call(service, &AdminServiceImpl::GetStatus,
              admin::v1::GetStatusRequest(), authorization);
}

Answer<admin::v1::ListConnectionsResponse> ListConnections(
    AdminServiceImpl& service, int mode,
    const Authorization& authorization = {}) {
  admin::v1::ListConnectionsRequest request;
  request.set_mode(static_cast<admin::v1::Mode>(mode));
  return Call(service, &AdminServiceImpl::ListConnections, request,
              authorization);
}

Answer<admin::v1::SetModeResponse> SetMode(
    AdminServiceImpl& service, int mode,
    const Authorization& authorization = {}) {
  admin::v1::SetModeRequest request;
  request.set_mode(static_cast<admin::v1::Mode>(mode));
  return Call(service, &AdminServiceImpl::SetMode, request, authorization);
}

Answer<admin::v1::CloseConnectionResponse> CloseConnection(
    AdminServiceImpl& service, uint64_t id,
    const Authorization& authorization = {}) {
  admin::v1::CloseConnectionRequest request;
  request.set_id(id);
  return Call(service, &AdminServiceImpl::CloseConnection, request,
              authorization);
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// --- GetStatus ---

TEST(AdminService, GetStatusReportsTheTablesTotals) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  const ConnectionInfo ended = fake.Connect(Mode::kThread, 40001);
  const ConnectionInfo thread = fake.Connect(Mode::kThread, 40002);
  fake.Connect(Mode::kFork, 40003);
  fake.table().Writer(thread.slot).Received(10);
  fake.table().Writer(thread.slot).Sent(7);
  fake.table().Release(ended.slot, CloseReason::kClient);
  fake.table().CountRejected(RejectReason::kLimit);

  const auto [status, s] = GetStatus(service);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(s.active_connections(), 2u);
  EXPECT_EQ(s.accepted_total(), 3u);
  EXPECT_EQ(s.closed_total(), 1u);
  EXPECT_EQ(s.closed_by_reason().at("client"), 1u);
  EXPECT_EQ(s.rejected_total(), 1u);
  EXPECT_EQ(s.rejected_by_reason().at("limit"), 1u);
  EXPECT_EQ(s.received_bytes_total(), 10u);
  EXPECT_EQ(s.sent_bytes_total(), 7u);
  ASSERT_EQ(s.per_mode_size(), 2);
  EXPECT_EQ(s.per_mode(0).mode(), admin::v1::MODE_FORK);
  EXPECT_EQ(s.per_mode(0).active_connections(), 1u);
  EXPECT_EQ(s.per_mode(1).mode(), admin::v1::MODE_THREAD);
  EXPECT_EQ(s.per_mode(1).active_connections(), 1u);
  EXPECT_EQ(s.per_mode(1).accepted_total(), 2u);
  EXPECT_EQ(s.per_mode(1).closed_total(), 1u);
}

TEST(AdminService, GetStatusReportsTheServersFactsAndTheConfig) {
  FakeServerControl fake(8, Mode::kFork);
  fake.set_data_address("[::1]:4242");
  AdminServiceImpl service(fake, TestConfig(), "");

  const auto [status, s] = GetStatus(service);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(s.mode(), admin::v1::MODE_FORK);
  EXPECT_EQ(s.data_address(), "[::1]:4242");
  EXPECT_FALSE(s.draining());
  EXPECT_EQ(s.max_connections(), 8u);
  EXPECT_EQ(TimeUtil::DurationToSeconds(s.idle_timeout()), 42);
  EXPECT_EQ(s.pid(), getpid());
  EXPECT_EQ(TimeUtil::TimestampToNanoseconds(s.started_at()),
            absl::ToUnixNanos(fake.started_at()));
  EXPECT_GE(TimeUtil::DurationToSeconds(s.uptime()), 5);
  EXPECT_EQ(s.active_connections(), 0u);
}

TEST(AdminService, GetStatusSaysDrainingOnceTheServerDrains) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  fake.set_draining(true);
  const auto [status, s] = GetStatus(service);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(s.draining());
}

// --- ListConnections ---

TEST(AdminService, ListConnectionsListsEveryLiveSlotOrderedById) {
  FakeServerControl fake(3);
  AdminServiceImpl service(fake, TestConfig(), "");
  const ConnectionInfo ended = fake.Connect(Mode::kThread, 40001);
  const ConnectionInfo fork = fake.Connect(Mode::kFork, 40002);
  const ConnectionInfo thread = fake.Connect(Mode::kThread, 40003);
  fake.table().Writer(thread.slot).Received(5);
  fake.table().Release(ended.slot, CloseReason::kClient);
  // The newest connection takes the first slot: slot order is not id order.
  const ConnectionInfo newest = fake.Connect(Mode::kThread, 40004);
  ASSERT_EQ(newest.slot, ended.slot);

  const auto [status, list] =
      ListConnections(service, admin::v1::MODE_UNSPECIFIED);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(list.connections_size(), 3);
  EXPECT_EQ(list.connections(0).id(), fork.id);
  EXPECT_EQ(list.connections(0).mode(), admin::v1::MODE_FORK);
  EXPECT_EQ(list.connections(0).peer_address(), "127.0.0.1");
  EXPECT_EQ(list.connections(0).peer_port(), 40002u);
  EXPECT_EQ(list.connections(1).id(), thread.id);
  EXPECT_EQ(list.connections(1).mode(), admin::v1::MODE_THREAD);
  EXPECT_EQ(list.connections(1).peer_port(), 40003u);
  EXPECT_EQ(list.connections(1).received_bytes(), 5u);
  EXPECT_EQ(list.connections(2).id(), newest.id);
}

TEST(AdminService, ListConnectionsOfOneModeListsOnlyThatMode) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  fake.Connect(Mode::kThread, 40001);
  const ConnectionInfo fork = fake.Connect(Mode::kFork, 40002);

  const auto [status, list] = ListConnections(service, admin::v1::MODE_FORK);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(list.connections_size(), 1);
  EXPECT_EQ(list.connections(0).id(), fork.id);
}

TEST(AdminService, ListConnectionsOfAnUnknownModeIsInvalidArgument) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  fake.Connect(Mode::kThread, 40001);
  const auto [status, list] = ListConnections(service, kUnknownMode);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(status.error_message(), "mode 7"))
      << status.error_message();
  EXPECT_EQ(list.connections_size(), 0);
}

// --- SetMode ---

TEST(AdminService, SetModeReturnsThePreviousAndNewModeAndSetsItOnTheServer) {
  FakeServerControl fake(8, Mode::kThread);
  AdminServiceImpl service(fake, TestConfig(), "");
  const auto [status, response] = SetMode(service, admin::v1::MODE_FORK);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.previous_mode(), admin::v1::MODE_THREAD);
  EXPECT_EQ(response.mode(), admin::v1::MODE_FORK);
  EXPECT_EQ(fake.set_mode_calls(), std::vector<Mode>{Mode::kFork});
  EXPECT_EQ(GetStatus(service).response.mode(), admin::v1::MODE_FORK);
}

TEST(AdminService, SetModeToUnspecifiedIsInvalidArgumentAndChangesNothing) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  const grpc::Status status =
      SetMode(service, admin::v1::MODE_UNSPECIFIED).status;
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(status.error_message(), "MODE_UNSPECIFIED"))
      << status.error_message();
  EXPECT_TRUE(fake.set_mode_calls().empty());
}

TEST(AdminService, SetModeToAnUnknownValueIsInvalidArgumentAndChangesNothing) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  const grpc::Status status = SetMode(service, kUnknownMode).status;
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(status.error_message(), "mode 7"))
      << status.error_message();
  EXPECT_TRUE(fake.set_mode_calls().empty());
}

TEST(AdminService, SetModeWhileDrainingIsFailedPreconditionAndChangesNothing) {
  FakeServerControl fake(8, Mode::kThread);
  AdminServiceImpl service(fake, TestConfig(), "");
  fake.set_draining(true);
  const grpc::Status status = SetMode(service, admin::v1::MODE_FORK).status;
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(fake.set_mode_calls().empty());
  EXPECT_EQ(fake.table().current_mode(), Mode::kThread);
}

TEST(AdminService, SetModeChecksTheModeBeforeTheDrain) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  fake.set_draining(true);
  EXPECT_EQ(SetMode(service, kUnknownMode).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// --- CloseConnection ---

TEST(AdminService, CloseConnectionOfALiveIdClosesItAsKilledAndReturnsIt) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  fake.Connect(Mode::kFork, 40001);
  const ConnectionInfo target = fake.Connect(Mode::kThread, 40002);

  const auto [status, response] = CloseConnection(service, target.id);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.connection().id(), target.id);
  EXPECT_EQ(response.connection().mode(), admin::v1::MODE_THREAD);
  EXPECT_EQ(response.connection().peer_address(), "127.0.0.1");
  EXPECT_EQ(response.connection().peer_port(), 40002u);
  const std::vector<FakeServerControl::CloseCall> calls = fake.close_calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].id, target.id);
  EXPECT_EQ(calls[0].reason, CloseReason::kKilled);
}

TEST(AdminService, CloseConnectionOfAnUnknownIdIsNotFoundWithoutAskingServer) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  const ConnectionInfo live = fake.Connect(Mode::kThread, 40001);
  const uint64_t unknown = live.id + 100;

  const grpc::Status status = CloseConnection(service, unknown).status;
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Contains(status.error_message(), std::to_string(unknown)))
      << status.error_message();
  EXPECT_TRUE(fake.close_calls().empty());
}

TEST(AdminService, CloseConnectionTheServerReportsNotLiveIsNotFound) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  const ConnectionInfo live = fake.Connect(Mode::kFork, 40001);
  fake.set_close_result(false);  // it ended between the snapshot and close

  EXPECT_EQ(CloseConnection(service, live.id).status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  ASSERT_EQ(fake.close_calls().size(), 1u);
  EXPECT_EQ(fake.close_calls()[0].id, live.id);
}

TEST(AdminService, CloseConnectionOfAnEndedConnectionIsNotFound) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  const ConnectionInfo live = fake.Connect(Mode::kThread, 40001);
  ASSERT_TRUE(CloseConnection(service, live.id).status.ok());
  EXPECT_EQ(CloseConnection(service, live.id).status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(fake.close_calls().size(), 1u);
}

// --- Token, unary methods ---

struct MethodCode {
  std::string method;
  grpc::StatusCode code;
};

// Calls every unary method with `authorization`; SetMode asks for fork and
// CloseConnection closes `live_id`, so each would answer OK if authorised.
std::vector<MethodCode> CallEveryUnaryMethod(
    AdminServiceImpl& service, uint64_t live_id,
    const Authorization& authorization) {
  return {
      {"GetStatus", GetStatus(service, authorization).status.error_code()},
      {"ListConnections",
       ListConnections(service, admin::v1::MODE_UNSPECIFIED, authorization)
           .status.error_code()},
      {"SetMode", SetMode(service, admin::v1::MODE_FORK, authorization)
                      .status.error_code()},
      {"CloseConnection",
       CloseConnection(service, live_id, authorization).status.error_code()},
  };
}

TEST(AdminServiceToken, EveryUnaryMethodIsUnauthenticatedWithoutMetadata) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), kToken);
  const ConnectionInfo live = fake.Connect(Mode::kThread, 40001);
  for (const MethodCode& c : CallEveryUnaryMethod(service, live.id, {})) {
    EXPECT_EQ(c.code, grpc::StatusCode::UNAUTHENTICATED) << c.method;
  }
  EXPECT_TRUE(fake.set_mode_calls().empty());
  EXPECT_TRUE(fake.close_calls().empty());
}

TEST(AdminServiceToken, EveryUnaryMethodIsUnauthenticatedForAWrongToken) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), kToken);
  const ConnectionInfo live = fake.Connect(Mode::kThread, 40001);
  for (const std::string wrong :
       {"Bearer wrong", "Bearer s3cre", "Bearer s3cret2", "s3cret",
        "Basic s3cret", ""}) {
    for (const MethodCode& c : CallEveryUnaryMethod(service, live.id, wrong)) {
      EXPECT_EQ(c.code, grpc::StatusCode::UNAUTHENTICATED)
          << c.method << " with '" << wrong << "'";
    }
  }
  EXPECT_TRUE(fake.set_mode_calls().empty());
  EXPECT_TRUE(fake.close_calls().empty());
}

TEST(AdminServiceToken, EveryUnaryMethodServesTheRightToken) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), kToken);
  const ConnectionInfo live = fake.Connect(Mode::kThread, 40001);
  const std::string right = std::string("Bearer ") + kToken;
  for (const MethodCode& c : CallEveryUnaryMethod(service, live.id, right)) {
    EXPECT_EQ(c.code, grpc::StatusCode::OK) << c.method;
  }
  EXPECT_EQ(fake.set_mode_calls().size(), 1u);
  EXPECT_EQ(fake.close_calls().size(), 1u);
}

TEST(AdminServiceToken, WithoutATokenConfiguredNoMetadataIsNeeded) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  const ConnectionInfo live = fake.Connect(Mode::kThread, 40001);
  for (const MethodCode& c : CallEveryUnaryMethod(service, live.id, {})) {
    EXPECT_EQ(c.code, grpc::StatusCode::OK) << c.method;
  }
}

// --- Served over a real in-process gRPC server (WatchStatus) ---

// The service on a loopback port of an in-process grpc::Server, with a stub.
// Ends every watch and shuts the server down (bounded) when destroyed.
class ServedAdmin {
 public:
  explicit ServedAdmin(std::string token = "")
      : service_(fake_, TestConfig(), std::move(token)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    stub_ = admin::v1::AdminService::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                            grpc::InsecureChannelCredentials()));
  }
  ~ServedAdmin() {
    service_.EndWatches();
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() +
                        std::chrono::seconds(5));
    }
  }
  bool started() const { return server_ != nullptr && port_ != 0; }
  FakeServerControl& fake() { return fake_; }
  AdminServiceImpl& service() { return service_; }
  admin::v1::AdminService::Stub& stub() { return *stub_; }

 private:
  FakeServerControl fake_;
  AdminServiceImpl service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<admin::v1::AdminService::Stub> stub_;
};

// Every client call ends by then at the latest, so no test can hang.
std::chrono::system_clock::time_point CallDeadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(30);
}

// One WatchStatus stream, from the client's side.
struct Watch {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<admin::v1::ServerStatus>> reader;
  admin::v1::ServerStatus last;

  bool Read() { return reader->Read(&last); }
  // Reads what is left, then the stream's status.
  grpc::Status Finish() {
    while (reader->Read(&last)) {
    }
    return reader->Finish();
  }
  grpc::Status Cancel() {
    context.TryCancel();
    return Finish();
  }
  // The status of a stream that should end before its first status; one
  // that runs instead fails the test and is cancelled, not waited for.
  grpc::Status Refusal() {
    if (!Read()) return reader->Finish();
    ADD_FAILURE() << "the stream sent a status";
    return Cancel();
  }
};

std::unique_ptr<Watch> OpenWatch(ServedAdmin& admin, absl::Duration interval,
                                 const Authorization& authorization = {}) {
  auto watch = std::make_unique<Watch>();
  watch->context.set_deadline(CallDeadline());
  if (authorization)
    watch->context.AddMetadata("authorization", *authorization);
  admin::v1::WatchStatusRequest request;
  *request.mutable_interval() =
      TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(interval));
  watch->reader = admin.stub().WatchStatus(&watch->context, request);
  return watch;
}

TEST(AdminServiceWatch, SendsStatusesAndEndsWithOkAfterADrainingStatus) {
  ServedAdmin admin;
  ASSERT_TRUE(admin.started());
  admin.fake().set_data_address("127.0.0.1:7777");
  std::unique_ptr<Watch> watch = OpenWatch(admin, absl::Milliseconds(100));
  ASSERT_TRUE(watch->Read());
  EXPECT_EQ(watch->last.data_address(), "127.0.0.1:7777");
  EXPECT_FALSE(watch->last.draining());
  ASSERT_TRUE(watch->Read()) << "a second status after the interval";

  admin.fake().set_draining(true);
  admin.service().EndWatches();
  const grpc::Status status = watch->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(watch->last.draining());
}

TEST(AdminServiceWatch, AnIntervalUnder100msIsInvalidArgument) {
  ServedAdmin admin;
  ASSERT_TRUE(admin.started());
  std::unique_ptr<Watch> watch = OpenWatch(admin, absl::Milliseconds(10));
  EXPECT_EQ(watch->Refusal().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Opens `n` watches and waits for each one's first status, so each holds
// its place. Watches wait a long time between statuses: they only sit.
std::vector<std::unique_ptr<Watch>> OpenRunningWatches(ServedAdmin& admin,
                                                       int n) {
  std::vector<std::unique_ptr<Watch>> watches;
  for (int i = 0; i < n; ++i) {
    watches.push_back(OpenWatch(admin, absl::Seconds(20)));
    EXPECT_TRUE(watches.back()->Read()) << "watch " << i;
  }
  return watches;
}

// Opens watches until one runs (its place is free), up to `patience`.
bool AWatchRunsWithin(ServedAdmin& admin, absl::Duration patience) {
  const absl::Time deadline = absl::Now() + patience;
  for (;;) {
    std::unique_ptr<Watch> watch = OpenWatch(admin, absl::Seconds(20));
    if (watch->Read()) {
      watch->Cancel();
      return true;
    }
    EXPECT_EQ(watch->Finish().error_code(),
              grpc::StatusCode::RESOURCE_EXHAUSTED);
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

TEST(AdminServiceWatch, OneWatchMoreThanTheCapIsResourceExhausted) {
  ServedAdmin admin;
  ASSERT_TRUE(admin.started());
  std::vector<std::unique_ptr<Watch>> watches =
      OpenRunningWatches(admin, AdminServiceImpl::kMaxWatches);

  std::unique_ptr<Watch> extra = OpenWatch(admin, absl::Seconds(20));
  const grpc::Status refused = extra->Refusal();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Contains(refused.error_message(), "64"))
      << refused.error_message();

  // A cancelled watch frees its place (once the service notices, within
  // its cancellation poll).
  EXPECT_EQ(watches.front()->Cancel().error_code(),
            grpc::StatusCode::CANCELLED);
  watches.erase(watches.begin());
  EXPECT_TRUE(AWatchRunsWithin(admin, absl::Seconds(5)));
  for (std::unique_ptr<Watch>& watch : watches) watch->Cancel();
}

// --- Token, WatchStatus and real metadata ---

TEST(AdminServiceToken, WatchStatusIsUnauthenticatedWithoutOrWithAWrongToken) {
  ServedAdmin admin(kToken);
  ASSERT_TRUE(admin.started());
  for (const Authorization& wrong :
       {Authorization(), Authorization("Bearer wrong")}) {
    std::unique_ptr<Watch> watch =
        OpenWatch(admin, absl::Milliseconds(100), wrong);
    EXPECT_EQ(watch->Refusal().error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << wrong.value_or("(none)");
  }
}

TEST(AdminServiceToken, WatchStatusStreamsForTheRightToken) {
  ServedAdmin admin(kToken);
  ASSERT_TRUE(admin.started());
  std::unique_ptr<Watch> watch = OpenWatch(admin, absl::Milliseconds(100),
                                           std::string("Bearer ") + kToken);
  EXPECT_TRUE(watch->Read());
  EXPECT_EQ(watch->Cancel().error_code(), grpc::StatusCode::CANCELLED);
}

// The in-process tests inject metadata; this checks that a real client's
// metadata is read the same way.
TEST(AdminServiceToken, TheTokenIsReadFromARealCallsMetadata) {
  ServedAdmin admin(kToken);
  ASSERT_TRUE(admin.started());
  for (const auto& [authorization, code] :
       {std::pair(Authorization(), grpc::StatusCode::UNAUTHENTICATED),
        std::pair(Authorization("Bearer wrong"),
                  grpc::StatusCode::UNAUTHENTICATED),
        std::pair(Authorization(std::string("Bearer ") + kToken),
                  grpc::StatusCode::OK)}) {
    grpc::ClientContext context;
    context.set_deadline(CallDeadline());
    if (authorization) context.AddMetadata("authorization", *authorization);
    admin::v1::ServerStatus status;
    EXPECT_EQ(admin.stub()
                  .GetStatus(&context, admin::v1::GetStatusRequest(), &status)
                  .error_code(),
              code)
        << authorization.value_or("(none)");
  }
}

}  // namespace
}  // namespace upper
