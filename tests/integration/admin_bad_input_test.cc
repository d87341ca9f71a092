// Bad input on upperd's admin port, below what the generated stubs can
// send: raw bytes that are not a valid protobuf, a request past the
// server's 64 KiB receive limit, an unknown method, and ids no connection
// has, each with the exact gRPC status code, and upperd serving normally
// right after every one of them. (Out-of-range modes, NOT_FOUND for a
// made-up id and missing or wrong tokens through the typed stub are in
// admin_test.cc and admin_access_test.cc.)
#include <cstdint>
#include <future>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

using admin::v1::AdminService;

constexpr char kGetStatus[] = "/upper.admin.v1.AdminService/GetStatus";
constexpr char kSetMode[] = "/upper.admin.v1.AdminService/SetMode";
constexpr char kCloseConnection[] =
    "/upper.admin.v1.AdminService/CloseConnection";
// The admin server's receive limit (kMaxReceiveMessageBytes in
// admin_server.cc: admin requests are a few bytes).
constexpr size_t kMaxReceiveBytes = 64 << 10;

// A unary call to `method` whose request body is exactly `body`, whatever
// it is; the status and, on success, the raw response.
grpc::Status RawUnaryCall(const std::shared_ptr<grpc::Channel>& channel,
                          const std::string& method, const std::string& body,
                          std::string* response_bytes = nullptr) {
  grpc::GenericStub stub(channel);
  auto context = Context();
  grpc::Slice slice(body);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(context.get(), method, grpc::StubOptions(), &request,
                 &response, [&done](grpc::Status s) { done.set_value(s); });
  const grpc::Status status = done.get_future().get();
  if (status.ok() && response_bytes != nullptr) {
    std::vector<grpc::Slice> slices;
    response_bytes->clear();
    if (response.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices) {
        response_bytes->append(reinterpret_cast<const char*>(s.begin()),
                               s.size());
      }
    }
  }
  return status;
}

class AdminBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
        UpperdProcess::Start({.args = {"--mode=thread"}});
    ASSERT_TRUE(started.ok()) << started.status();
    upperd_ = *std::move(started);
    absl::StatusOr<uint16_t> port = upperd_->Port("admin");
    ASSERT_TRUE(port.ok()) << port.status();
    channel_ = AdminChannel(*port);
    stub_ = AdminService::NewStub(channel_);
  }

  // upperd still answers a well-formed call and still echoes on the data
  // port: the bad call cost nothing but itself.
  void ExpectStillServing() {
    absl::StatusOr<admin::v1::ServerStatus> status = GetStatus(*stub_);
    ASSERT_TRUE(status.ok()) << status.status() << "\n" << upperd_->Log();
    EXPECT_EQ(status->pid(), upperd_->pid());
    EXPECT_EQ(Exchange(upperd_->data_port(), "ok", 2, 1, absl::Seconds(10))
                  .value_or(""),
              "OK");
  }

  std::unique_ptr<UpperdProcess> upperd_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<AdminService::Stub> stub_;
};

TEST_F(AdminBadInputTest, WellFormedRawRequestIsAnsweredLikeTheStubs) {
  // The raw path itself works: an empty GetStatusRequest is zero bytes.
  std::string response;
  const grpc::Status s = RawUnaryCall(channel_, kGetStatus, "", &response);
  ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  admin::v1::ServerStatus status;
  ASSERT_TRUE(status.ParseFromString(response));
  EXPECT_EQ(status.pid(), upperd_->pid());
}

TEST_F(AdminBadInputTest, BytesThatAreNotAProtobufAreInternalAndHarmless) {
  // gRPC C++ parses the request before the handler runs and answers a parse
  // failure with INTERNAL (grpcpp/impl/codegen/proto_utils.h).
  const std::string not_protobuf[] = {
      std::string("\x0f", 1),          // wire type 7 does not exist
      std::string("\x08\x80\x80", 3),  // field 1 varint, truncated
      std::string("\x0a\x05"
                  "ab",
                  4),                              // 5-byte field with 2 bytes
      std::string("\x0a\xff\xff\xff\xff\x0f", 6),  // length past the end
      std::string("\x00\x00\x00\x00", 4),          // field number 0
      std::string("\x0b", 1),  // a group start that never ends
      "GET /metrics HTTP/1.1\r\n\r\n",
  };
  for (const char* method : {kGetStatus, kSetMode, kCloseConnection}) {
    for (const std::string& body : not_protobuf) {
      const grpc::Status s = RawUnaryCall(channel_, method, body);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL)
          << method << " with " << absl::CEscape(body) << ": "
          << s.error_message();
    }
  }
  ExpectStillServing();
  // Nothing reached a handler: no mode switch happened.
  absl::StatusOr<admin::v1::ServerStatus> status = GetStatus(*stub_);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->mode_switches_total(), 0u);
  EXPECT_EQ(status->mode(), admin::v1::MODE_THREAD);
}

TEST_F(AdminBadInputTest, ValidProtobufWithWrongFieldsReachesTheHandler) {
  // Unknown fields are kept, not errors (proto3): the call succeeds.
  EXPECT_TRUE(RawUnaryCall(channel_, kGetStatus, "\xf8\x06\x01").ok());
  // SetModeRequest.mode sent as a string is an unknown field, so the mode
  // is MODE_UNSPECIFIED: the handler's INVALID_ARGUMENT.
  const grpc::Status wrong_type =
      RawUnaryCall(channel_, kSetMode, std::string("\x0a\x01\x01", 3));
  EXPECT_EQ(wrong_type.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << wrong_type.error_message();
  // A mode number no enum value has (open enums keep it): INVALID_ARGUMENT.
  const grpc::Status out_of_range =
      RawUnaryCall(channel_, kSetMode, std::string("\x08\xe7\x07", 3));
  EXPECT_EQ(out_of_range.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << out_of_range.error_message();
  ExpectStillServing();
}

TEST_F(AdminBadInputTest, RequestOverTheReceiveLimitIsResourceExhausted) {
  // A valid protobuf (one unknown bytes field) just past 64 KiB: refused by
  // gRPC before parsing. Exactly the limit is served.
  auto padded = [](size_t total) {
    // Field 15, wire type 2, a length as a 4-byte varint (< 2^28), then
    // the bytes.
    const size_t length = total - 5;
    std::string body = "\x7a";
    for (int shift = 0; shift < 21; shift += 7) {
      body.push_back(static_cast<char>(((length >> shift) & 0x7f) | 0x80));
    }
    body.push_back(static_cast<char>(length >> 21));
    body.resize(total, 'x');
    return body;
  };
  const std::string over = padded(kMaxReceiveBytes + 1);
  ASSERT_EQ(over.size(), kMaxReceiveBytes + 1);
  const grpc::Status s = RawUnaryCall(channel_, kGetStatus, over);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "larger than max"))
      << s.error_message();
  const grpc::Status at_limit =
      RawUnaryCall(channel_, kGetStatus, padded(kMaxReceiveBytes));
  EXPECT_TRUE(at_limit.ok())
      << at_limit.error_code() << ": " << at_limit.error_message();
  // A big one through the same channel again, then normal calls.
  EXPECT_EQ(RawUnaryCall(channel_, kGetStatus, padded(16 << 20)).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  ExpectStillServing();
}

TEST_F(AdminBadInputTest, UnknownMethodIsUnimplemented) {
  EXPECT_EQ(RawUnaryCall(channel_, "/upper.admin.v1.AdminService/Reboot", "")
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(RawUnaryCall(channel_, "/upper.admin.v2.AdminService/GetStatus", "")
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  ExpectStillServing();
}

TEST_F(AdminBadInputTest, IdsNoLiveConnectionHasAreNotFound) {
  // 0 (never issued), the largest id, and the id of a connection that has
  // just ended.
  absl::StatusOr<UniqueFd> fd = Connect(upperd_->data_port());
  ASSERT_TRUE(fd.ok());
  uint64_t ended_id = 0;
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<std::vector<admin::v1::Connection>> listed =
            ListConnections(*stub_);
        if (!listed.ok() || listed->size() != 1) return false;
        ended_id = listed->front().id();
        return true;
      },
      absl::Seconds(10)));
  fd->Reset();
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<admin::v1::ServerStatus> s = GetStatus(*stub_);
        return s.ok() && s->active_connections() == 0;
      },
      absl::Seconds(10)));
  for (uint64_t id :
       {uint64_t{0}, std::numeric_limits<uint64_t>::max(), ended_id}) {
    auto context = Context();
    admin::v1::CloseConnectionRequest request;
    request.set_id(id);
    admin::v1::CloseConnectionResponse response;
    const grpc::Status s =
        stub_->CloseConnection(context.get(), request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << id;
    EXPECT_EQ(s.error_message(),
              absl::StrCat("no live connection with id ", id));
  }
  ExpectStillServing();
}

// WatchStatusRequest.interval outside 100ms..1h, or not a valid
// google.protobuf.Duration: INVALID_ARGUMENT with a message, no stream.
TEST_F(AdminBadInputTest, BadWatchIntervalsAreInvalidArgument) {
  struct Row {
    int64_t seconds;
    int32_t nanos;
  };
  const Row rows[] = {
      {315576000000, 0},  // ~10,000 years (586 years overflowed int64 ns)
      {18446744073, 0},   // ~586 years: streamed every 291 ms before
      {315576000001, 0},  // beyond the Duration range
      {0, 2000000000},    // nanos = 2e9
      {1, -500000000},    // mixed signs
      {-1, 0},            // negative
      {0, 99000000},      // 99ms, below 100ms
      {3601, 0},          // above 1h
  };
  for (const Row& row : rows) {
    admin::v1::WatchStatusRequest request;
    request.mutable_interval()->set_seconds(row.seconds);
    request.mutable_interval()->set_nanos(row.nanos);
    std::unique_ptr<grpc::ClientContext> context = Context();
    std::unique_ptr<grpc::ClientReader<admin::v1::ServerStatus>> reader =
        stub_->WatchStatus(context.get(), request);
    admin::v1::ServerStatus ignored;
    EXPECT_FALSE(reader->Read(&ignored)) << row.seconds << "s " << row.nanos;
    const grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << row.seconds << "s " << row.nanos << ": " << status.error_message();
    EXPECT_TRUE(absl::StrContains(status.error_message(), "interval"))
        << status.error_message();
  }
  ExpectStillServing();
}

}  // namespace
}  // namespace upper::testing
