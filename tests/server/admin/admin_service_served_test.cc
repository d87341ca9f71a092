// AdminServiceImpl served by an in-process grpc::Server on loopback, against
// FakeServerControl: WatchStatus (it needs a real ServerWriter), its cap, and
// the token read from a real call's metadata. No upperd, no data plane.
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
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/admin/admin_service.h"
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
using testing::TestConfig;

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

TEST(AdminServiceWatch, EachStatusCarriesTheCurrentWorkers) {
  ServedAdmin admin;
  ASSERT_TRUE(admin.started());
  admin.fake().set_workers({.idle = 2, .spawns_total = 3},
                           {.idle = 1, .spawns_total = 4});
  std::unique_ptr<Watch> watch = OpenWatch(admin, absl::Milliseconds(100));
  ASSERT_TRUE(watch->Read());
  ASSERT_EQ(watch->last.workers_size(), 2);
  EXPECT_EQ(watch->last.workers(0).idle(), 1u);
  EXPECT_EQ(watch->last.workers(1).idle(), 2u);
  admin.fake().set_workers({.idle = 5, .spawns_total = 6}, {});
  // A status already on its way may predate the change; a later one shows it.
  for (int i = 0; i < 20 && watch->last.workers(1).idle() != 5; ++i) {
    ASSERT_TRUE(watch->Read());
    ASSERT_EQ(watch->last.workers_size(), 2);
  }
  EXPECT_EQ(watch->last.workers(1).idle(), 5u);
  EXPECT_EQ(watch->last.workers(1).spawns_total(), 6u);
  EXPECT_EQ(watch->Cancel().error_code(), grpc::StatusCode::CANCELLED);
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
  EXPECT_TRUE(Contains(refused.error_message(),
                       std::to_string(AdminServiceImpl::kMaxWatches)))
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
