// How failures read and which exit status they give, alone and in a fleet;
// and the hand-written grpc.health.v1 codec.
#include "ctl/errors.h"

#include <string>
#include <vector>

#include "ctl/health_check.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace upper {
namespace {

using ::testing::HasSubstr;
using ::upper::ctl::ErrorLine;
using ::upper::ctl::ExitCodeFor;
using ::upper::ctl::FleetExitCode;
using ::upper::ctl::FleetWriteExitCode;

const grpc::Status kRefused(grpc::StatusCode::UNAVAILABLE,
                            "failed to connect to all addresses; last error: "
                            "UNKNOWN: ipv4:127.0.0.1:1: Failed to connect to "
                            "remote host: Connection refused");
const grpc::Status kNoToken(grpc::StatusCode::UNAUTHENTICATED, "missing token");
const grpc::Status kBadMode(grpc::StatusCode::INVALID_ARGUMENT, "bad mode");

TEST(Errors, ExitCodes) {
  EXPECT_EQ(ExitCodeFor(grpc::Status::OK), 0);
  EXPECT_EQ(ExitCodeFor(kBadMode), 1);
  EXPECT_EQ(ExitCodeFor(kRefused), 3);
  EXPECT_EQ(ExitCodeFor(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "")),
            3);
  EXPECT_EQ(ExitCodeFor(kNoToken), 4);
}

TEST(Errors, LinesNameTheAddressAndTheFix) {
  EXPECT_EQ(ErrorLine("127.0.0.1:1", kRefused),
            "cannot reach 127.0.0.1:1: Connection refused");
  EXPECT_THAT(ErrorLine("h:1", kNoToken),
              HasSubstr("--token, --token_file or $UPPER_ADMIN_TOKEN"));
  EXPECT_EQ(ErrorLine("h:1", kBadMode), "INVALID_ARGUMENT: bad mode");
}

TEST(Errors, FleetExitCode) {
  const grpc::Status ok = grpc::Status::OK;
  EXPECT_EQ(FleetExitCode({ok, ok}), 0);
  EXPECT_EQ(FleetExitCode({ok, kRefused}), 0);  // shown in its row
  EXPECT_EQ(FleetExitCode({kRefused, kRefused}), 3);
  EXPECT_EQ(FleetExitCode({ok, kBadMode}), 1);
  EXPECT_EQ(FleetExitCode({kRefused, kBadMode}), 1);
  EXPECT_EQ(FleetExitCode({ok, kNoToken, kBadMode}), 4);
}

TEST(Errors, FleetWriteExitCodeIsZeroOnlyIfEveryInstanceSucceeded) {
  const grpc::Status ok = grpc::Status::OK;
  EXPECT_EQ(FleetWriteExitCode({ok, ok}), 0);
  EXPECT_EQ(FleetWriteExitCode({ok, kRefused}), 3);  // not forgiven
  EXPECT_EQ(FleetWriteExitCode({kRefused, kRefused}), 3);
  EXPECT_EQ(FleetWriteExitCode({ok, kBadMode}), 1);
  EXPECT_EQ(FleetWriteExitCode({kRefused, kBadMode}), 1);
  EXPECT_EQ(FleetWriteExitCode({ok, kRefused, kNoToken}), 4);
}

TEST(Errors, OneLineEscapesControlBytes) {
  EXPECT_EQ(ctl::OneLine("plain \"text\" \xc3\xa9"), "plain \"text\" \xc3\xa9");
  EXPECT_EQ(ctl::OneLine("a\nb\rc\td\x1b[2J\x7f"),
            "a\\x0ab\\x0dc\\x09d\\x1b[2J\\x7f");
  EXPECT_EQ(ctl::OneLine(std::string("a\0b", 3)), "a\\x00b");
}

TEST(HealthCodec, RoundTrips) {
  EXPECT_EQ(ctl::EncodeHealthCheckRequest(""), "");
  EXPECT_EQ(ctl::EncodeHealthCheckRequest("x"), std::string("\x0a\x01x", 3));
  int status = -1;
  ASSERT_TRUE(
      ctl::DecodeHealthCheckResponse(std::string("\x08\x01", 2), &status));
  EXPECT_EQ(ctl::ServingStatusName(status), "SERVING");
  ASSERT_TRUE(ctl::DecodeHealthCheckResponse("", &status));
  EXPECT_EQ(ctl::ServingStatusName(status), "UNKNOWN");
  EXPECT_FALSE(ctl::DecodeHealthCheckResponse(std::string("\x08", 1), &status));
}

}  // namespace
}  // namespace upper
