#include "server/base/mode.h"

#include <string>

#include "gtest/gtest.h"

namespace upper {
namespace {

TEST(Mode, ParsesForkAndThread) {
  Mode mode = Mode::kUnspecified;
  ASSERT_TRUE(ParseMode("fork", &mode));
  EXPECT_EQ(mode, Mode::kFork);
  ASSERT_TRUE(ParseMode("thread", &mode));
  EXPECT_EQ(mode, Mode::kThread);
}

TEST(Mode, RejectsOtherNamesWithAMessage) {
  Mode mode = Mode::kThread;
  std::string error;
  EXPECT_FALSE(AbslParseFlag("Fork", &mode, &error));
  EXPECT_EQ(error, "'Fork' is not a mode (expected fork or thread)");
  EXPECT_EQ(mode, Mode::kThread);
}

TEST(Mode, NamesRoundTrip) {
  for (Mode m : {Mode::kFork, Mode::kThread}) {
    Mode parsed;
    std::string error;
    ASSERT_TRUE(AbslParseFlag(AbslUnparseFlag(m), &parsed, &error));
    EXPECT_EQ(parsed, m);
  }
  EXPECT_EQ(CloseReasonName(CloseReason::kIdleTimeout), "idle_timeout");
  EXPECT_EQ(CloseReasonName(CloseReason::kSendTimeout), "send_timeout");
  EXPECT_EQ(RejectReasonName(RejectReason::kFdExhausted), "fd_exhausted");
  EXPECT_EQ(RejectReasonName(RejectReason::kForkQueueFull), "fork_queue_full");
  for (int r = 0; r < kRejectReasonCount; ++r) {
    EXPECT_NE(RejectReasonName(static_cast<RejectReason>(r)), "unknown") << r;
  }
}

}  // namespace
}  // namespace upper
