// AdminServiceImpl in process, against FakeServerControl: every status code
// the service answers, without upperd and without the data plane.
//
// The unary methods are called directly, on a grpc::ServerContext built here
// (client metadata injected with gRPC's ServerContextTestSpouse); WatchStatus
// is in admin_service_served_test.cc.
#include "server/admin/admin_service.h"

#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/test/server_context_test_spouse.h"
#include "gtest/gtest.h"
#include "server/base/config.h"
#include "tests/server/admin/admin_service_test_support.h"
#include "tests/server/admin/fake_server_control.h"
#include "upper/admin/v1/admin.grpc.pb.h"

namespace upper {
namespace {

using google::protobuf::util::TimeUtil;
using testing::Authorization;
using testing::Contains;
using testing::kToken;
using testing::kUnknownMode;
using testing::TestConfig;

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
    AdminServiceImpl& service, const admin::v1::ListConnectionsRequest& request,
    const Authorization& authorization = {}) {
  return Call(service, &AdminServiceImpl::ListConnections, request,
              authorization);
}

Answer<admin::v1::ListConnectionsResponse> ListConnections(
    AdminServiceImpl& service, int mode,
    const Authorization& authorization = {}) {
  admin::v1::ListConnectionsRequest request;
  request.set_mode(static_cast<admin::v1::Mode>(mode));
  return ListConnections(service, request, authorization);
}

admin::v1::ListConnectionsRequest PageRequest(int page_size,
                                              std::string token = "",
                                              int mode = 0) {
  admin::v1::ListConnectionsRequest request;
  request.set_mode(static_cast<admin::v1::Mode>(mode));
  request.set_page_size(page_size);
  request.set_page_token(std::move(token));
  return request;
}

// The receive limits a page must fit: the admin server's for the request
// (admin_server.cc), gRPC's client default for the response.
constexpr size_t kAdminReceiveLimit = 64 * 1024;
constexpr size_t kClientReceiveLimit = 4 * 1024 * 1024;

// Follows next_page_token from the first page; returns every id listed, or
// fails the test. Checks each page against the receive limits.
std::vector<uint64_t> ListAllIds(AdminServiceImpl& service, int page_size,
                                 int mode, int* pages) {
  std::vector<uint64_t> ids;
  admin::v1::ListConnectionsRequest request = PageRequest(page_size, "", mode);
  for (*pages = 0; *pages < 100000; ++*pages) {
    EXPECT_LT(request.ByteSizeLong(), kAdminReceiveLimit);
    const auto [status, page] = ListConnections(service, request);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (!status.ok()) return ids;
    EXPECT_LT(page.ByteSizeLong(), kClientReceiveLimit);
    for (const admin::v1::Connection& c : page.connections()) {
      ids.push_back(c.id());
    }
    if (page.next_page_token().empty()) {
      ++*pages;
      return ids;
    }
    request.set_page_token(page.next_page_token());
  }
  ADD_FAILURE() << "the pages never ended";
  return ids;
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

TEST(AdminService, GetStatusReportsTheDataPlanesResourceLimits) {
  FakeServerControl fake;
  fake.set_resource_limits({.open_files = 4096,
                            .open_files_hard = 4096,
                            .max_processes = 777,
                            .pids_limit = 300,
                            .memory_limit_bytes = 268435456});
  AdminServiceImpl service(fake, TestConfig(), "");
  const auto [status, s] = GetStatus(service);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(s.limits().open_files_limit(), 4096u);
  EXPECT_EQ(s.limits().open_files_hard_limit(), 4096u);
  EXPECT_EQ(s.limits().max_processes(), 777u);
  EXPECT_EQ(s.limits().pids_limit(), 300u);
  EXPECT_EQ(s.limits().memory_limit_bytes(), 268435456u);
}

TEST(AdminService, GetStatusReportsTheDataPlanesWorkers) {
  FakeServerControl fake;
  fake.Connect(Mode::kFork, 4000);
  fake.set_workers({.busy = 2, .idle = 3, .spawns_total = 5},
                   {.idle = 4, .spawns_total = 6, .exits_pool_full = 1});
  AdminServiceImpl service(fake, TestConfig(), "");
  const auto [status, s] = GetStatus(service);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(s.workers_size(), 2);
  EXPECT_EQ(s.workers(0).mode(), admin::v1::MODE_FORK);
  EXPECT_EQ(s.workers(0).busy(), 1u);  // the table's live fork connection
  EXPECT_EQ(s.workers(0).idle(), 4u);
  EXPECT_EQ(s.workers(0).spawns_total(), 6u);
  EXPECT_EQ(s.workers(0).exits_by_reason().at("pool_full"), 1u);
  EXPECT_EQ(s.workers(1).mode(), admin::v1::MODE_THREAD);
  EXPECT_EQ(s.workers(1).busy(), 2u);
  EXPECT_EQ(s.workers(1).idle(), 3u);
  EXPECT_EQ(s.workers(1).spawns_total(), 5u);
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

TEST(AdminService, ListConnectionsWithoutPageSizeGivesTheDefaultPageAndAToken) {
  // An old client's request: neither page_size nor page_token.
  FakeServerControl fake(1500);
  AdminServiceImpl service(fake, TestConfig(), "");
  for (int i = 0; i < 1500; ++i) fake.Connect(Mode::kThread, 40000);
  const auto [status, first] =
      ListConnections(service, admin::v1::MODE_UNSPECIFIED);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(first.connections_size(), 1000);
  EXPECT_FALSE(first.next_page_token().empty());
  const auto [again, last] =
      ListConnections(service, PageRequest(0, first.next_page_token()));
  ASSERT_TRUE(again.ok()) << again.error_message();
  EXPECT_EQ(last.connections_size(), 500);
  EXPECT_EQ(last.connections(0).id(), first.connections(999).id() + 1);
  EXPECT_TRUE(last.next_page_token().empty());
}

TEST(AdminService, ListConnectionsClampsPageSizeToTheMaximum) {
  FakeServerControl fake(10001);
  AdminServiceImpl service(fake, TestConfig(), "");
  for (int i = 0; i < 10001; ++i) fake.Connect(Mode::kThread, 40000);
  const auto [status, page] = ListConnections(service, PageRequest(1 << 30));
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(page.connections_size(), 10000);
  EXPECT_FALSE(page.next_page_token().empty());
}

TEST(AdminService, ListConnectionsOfANegativePageSizeIsInvalidArgument) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  fake.Connect(Mode::kThread, 40001);
  const auto [status, page] = ListConnections(service, PageRequest(-1));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(status.error_message(), "page_size -1"))
      << status.error_message();
  EXPECT_EQ(page.connections_size(), 0);
}

TEST(AdminService, ListConnectionsOfAMalformedTokenIsInvalidArgument) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  fake.Connect(Mode::kThread, 40001);
  const auto [status, page] =
      ListConnections(service, PageRequest(1, "not-a-token"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(status.error_message(), "page_token"))
      << status.error_message();
  EXPECT_EQ(page.connections_size(), 0);
}

TEST(AdminService, ListConnectionsTokenOfAnotherModeIsInvalidArgument) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  fake.Connect(Mode::kFork, 40001);
  fake.Connect(Mode::kFork, 40002);
  const auto [status, first] =
      ListConnections(service, PageRequest(1, "", admin::v1::MODE_FORK));
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_FALSE(first.next_page_token().empty());
  const auto [refused, page] = ListConnections(
      service, PageRequest(1, first.next_page_token(), admin::v1::MODE_THREAD));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(refused.error_message(), "mode fork"))
      << refused.error_message();
}

TEST(AdminService, ListConnectionsPagesSkipEndedAndShowNewConnections) {
  FakeServerControl fake(8);
  AdminServiceImpl service(fake, TestConfig(), "");
  const ConnectionInfo a = fake.Connect(Mode::kThread, 40001);
  const ConnectionInfo b = fake.Connect(Mode::kThread, 40002);
  const ConnectionInfo c = fake.Connect(Mode::kThread, 40003);
  const auto [status, first] = ListConnections(service, PageRequest(1));
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(first.connections_size(), 1);
  EXPECT_EQ(first.connections(0).id(), a.id);
  // Between pages: b ends, d starts (in b's slot, with a higher id).
  fake.table().Release(b.slot, CloseReason::kClient);
  const ConnectionInfo d = fake.Connect(Mode::kThread, 40004);
  std::vector<uint64_t> rest;
  std::string token = first.next_page_token();
  for (int pages = 0; !token.empty() && pages < 10; ++pages) {
    const auto [next_status, page] =
        ListConnections(service, PageRequest(1, token));
    ASSERT_TRUE(next_status.ok()) << next_status.error_message();
    for (const auto& conn : page.connections()) rest.push_back(conn.id());
    token = page.next_page_token();
  }
  EXPECT_TRUE(token.empty());
  EXPECT_EQ(rest, (std::vector<uint64_t>{c.id, d.id}));
}

// Issue 12: 100,000 connections (the table's own code, as in upperd) come
// back through pages, every id exactly once, each page within the admin
// server's 64 KiB receive limit (request) and the client's 4 MiB (response).
TEST(AdminService, ListConnectionsPagesThrough100000ConnectionsEachIdOnce) {
  constexpr int kConnections = 100000;
  FakeServerControl fake(kConnections);
  AdminServiceImpl service(fake, TestConfig(), "");
  std::vector<uint64_t> want;
  std::vector<uint64_t> want_fork;
  for (int i = 0; i < kConnections; ++i) {
    const Mode mode = i % 3 == 0 ? Mode::kFork : Mode::kThread;
    const ConnectionInfo c =
        fake.Connect(mode, static_cast<uint16_t>(1024 + i % 60000));
    ASSERT_NE(c.id, 0u);
    want.push_back(c.id);
    if (mode == Mode::kFork) want_fork.push_back(c.id);
  }
  for (int page_size : {0, 777, 10000, 1 << 30}) {
    int pages = 0;
    const absl::Time start = absl::Now();
    const std::vector<uint64_t> ids =
        ListAllIds(service, page_size, admin::v1::MODE_UNSPECIFIED, &pages);
    const absl::Duration took = absl::Now() - start;
    EXPECT_EQ(ids, want) << "page_size " << page_size;  // once each, in order
    RecordProperty(absl::StrCat("pages_", page_size), pages);
    RecordProperty(absl::StrCat("ms_", page_size),
                   static_cast<int>(absl::ToInt64Milliseconds(took)));
  }
  int pages = 0;
  EXPECT_EQ(ListAllIds(service, 1000, admin::v1::MODE_FORK, &pages), want_fork);
  EXPECT_EQ(pages, 34);  // 33,334 fork connections
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

TEST(AdminService, CloseConnectionOfAnUnknownIdIsNotFoundAndClosesNothing) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  const ConnectionInfo live = fake.Connect(Mode::kThread, 40001);
  const uint64_t unknown = live.id + 100;

  const grpc::Status status = CloseConnection(service, unknown).status;
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Contains(status.error_message(), std::to_string(unknown)))
      << status.error_message();
  EXPECT_TRUE(fake.table().Find(live.id).has_value());
}

TEST(AdminService, CloseConnectionTheServerReportsNotLiveIsNotFound) {
  FakeServerControl fake;
  AdminServiceImpl service(fake, TestConfig(), "");
  const ConnectionInfo live = fake.Connect(Mode::kFork, 40001);
  // It ended between the snapshot and the close.
  fake.set_close_result(absl::NotFoundError("ended"));

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
  EXPECT_EQ(fake.close_calls().size(), 2u);
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

}  // namespace
}  // namespace upper
