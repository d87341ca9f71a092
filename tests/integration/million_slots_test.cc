// A table of 1,000,000 slots (issue 15): a real upperd started with
// --max_connections=1000000 serves connections in both modes, every byte
// exact and counted, and drains on SIGTERM with exit 0. The table's cost is
// per live connection, not per slot: its allocation, listing and drain walk
// only the slots in use.
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/mode_test_base.h"
#include "tests/support/stop_cleanly.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

class MillionSlotsTest : public ModeTest {};

TEST_P(MillionSlotsTest, ServesExactBytesAndDrains) {
  auto upperd =
      StartUpperd({"--max_connections=1000000", "--drain_timeout=1s"});
  ASSERT_NE(upperd, nullptr);
  uint64_t sent = 0;
  for (int i = 0; i < 20; ++i) {
    const std::string payload = RandomPayload(1000 + i * 7919, i);
    sent += payload.size();
    absl::StatusOr<std::string> reply = Exchange(
        upperd->data_port(), payload, 1 + i * 100, i, absl::Seconds(30));
    ASSERT_TRUE(reply.ok()) << reply.status() << "\n" << upperd->Log();
    EXPECT_TRUE(*reply == ExpectedUpper(payload)) << "client " << i;
  }
  // One idle connection still open when the drain starts: after the drain
  // timeout, CloseAll (a walk over the taken slots of the 1,000,000) closes
  // it, and upperd still exits 0.
  absl::StatusOr<UniqueFd> held = Connect(upperd->data_port());
  ASSERT_TRUE(held.ok()) << held.status();
  StopCleanly(*upperd);
  const std::optional<std::string> bytes_in =
      upperd->Field("stopped", "bytes_in");
  ASSERT_TRUE(bytes_in.has_value()) << upperd->Log();
  uint64_t counted = 0;
  ASSERT_TRUE(absl::SimpleAtoi(*bytes_in, &counted)) << *bytes_in;
  EXPECT_EQ(counted, sent);
}

INSTANTIATE_TEST_SUITE_P(BothModes, MillionSlotsTest,
                         ::testing::Values("thread", "fork"));

}  // namespace
}  // namespace upper::testing
