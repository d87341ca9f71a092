// --send_timeout (issue 15, nginx's send_timeout) against a real upperd, in
// both modes: a client that sends a lot and never reads is closed once the
// server's send has waited --send_timeout without the peer taking a byte,
// counted as closed{reason="send_timeout"} in /metrics and in the `stopped`
// line; a client that pauses reading for less than the timeout, and a
// normal client, get every byte. (Bad values of the flag and of
// UPPER_SEND_TIMEOUT: bad_input_test.cc's table.)
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/final_totals.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/stop_cleanly.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

constexpr absl::Duration kSendTimeout = absl::Seconds(1);

class SendTimeoutTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
        UpperdProcess::Start(
            {.args = {absl::StrCat("--mode=", GetParam()),
                      absl::StrCat("--send_timeout=",
                                   absl::FormatDuration(kSendTimeout)),
                      "--idle_timeout=60s"}});
    ASSERT_TRUE(started.ok()) << started.status();
    upperd_ = *std::move(started);
    absl::StatusOr<uint16_t> metrics = upperd_->Port("metrics");
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    metrics_port_ = *metrics;
  }

  std::string Series(const std::string& reason) const {
    return absl::StrCat("upper_connections_closed_total{mode=\"", GetParam(),
                        "\",reason=\"", reason, "\"}");
  }

  double Value(const std::string& series) {
    absl::StatusOr<Scrape> scrape = Scrape::Get(metrics_port_);
    return scrape.ok() ? scrape->Value(series) : -1;
  }

  std::unique_ptr<UpperdProcess> upperd_;
  uint16_t metrics_port_ = 0;
};

TEST_P(SendTimeoutTest, ClientThatNeverReadsIsClosedAfterTheSendTimeout) {
  absl::StatusOr<UniqueFd> never_reads = Connect(upperd_->data_port());
  ASSERT_TRUE(never_reads.ok()) << never_reads.status();
  // Until every buffer on the way is full and upperd's send waits.
  const uint64_t sent =
      SendUntilStalled(never_reads->get(), absl::Milliseconds(300), 256 << 20);
  const absl::Time stalled = absl::Now();
  ASSERT_GT(sent, 0u);
  EXPECT_EQ(Value(Series("send_timeout")), 0);

  // A normal client meanwhile is served, every byte exact.
  const std::string payload = RandomPayload(1 << 20, 7);
  absl::StatusOr<std::string> reply =
      Exchange(upperd_->data_port(), payload, 64 * 1024, 7, absl::Seconds(20));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, ExpectedUpper(payload));

  ASSERT_TRUE(Eventually([&] { return Value(Series("send_timeout")) == 1; },
                         absl::Seconds(10)))
      << upperd_->Log();
  const absl::Duration waited = absl::Now() - stalled;
  std::printf("closed %s after the client stalled (%llu bytes sent)\n",
              absl::FormatDuration(waited).c_str(),
              static_cast<unsigned long long>(sent));
  EXPECT_LT(waited, kSendTimeout + absl::Seconds(5));
  EXPECT_EQ(Value(Series("idle_timeout")), 0);
  EXPECT_EQ(Value(Series("client")), 1);  // the normal client

  StopCleanly(*upperd_);
  EXPECT_EQ(FinalTotal(*upperd_, "closed_send_timeout"), 1u);
  EXPECT_EQ(FinalTotal(*upperd_, "closed_idle_timeout"), 0u);
  EXPECT_EQ(FinalTotal(*upperd_, "active"), 0u);
}

// The timeout bounds a wait without progress, not a slow reader: a client
// that stops reading for less than --send_timeout, twice, gets all of it.
TEST_P(SendTimeoutTest, PausesShorterThanTheTimeoutDoNotClose) {
  absl::StatusOr<UniqueFd> fd = Connect(upperd_->data_port());
  ASSERT_TRUE(fd.ok()) << fd.status();
  const std::string payload = RandomPayload(32 << 20, 11);
  std::thread sender([&] {
    std::mt19937_64 rng(11);
    EXPECT_TRUE(SendSegmented(fd->get(), payload, 1 << 20, rng, true).ok());
  });
  std::string got;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (int pause = 0; pause < 2; ++pause) {
    absl::SleepFor(kSendTimeout * 0.6);  // upperd's send waits meanwhile
    absl::StatusOr<std::string> part =
        ReadExactly(fd->get(), 4 << 20, deadline);
    ASSERT_TRUE(part.ok()) << part.status();
    got += *part;
  }
  absl::StatusOr<std::string> rest = ReadUntilEof(fd->get(), deadline);
  sender.join();
  ASSERT_TRUE(rest.ok()) << rest.status();
  got += *rest;
  EXPECT_EQ(got, ExpectedUpper(payload));
  EXPECT_EQ(Value(Series("send_timeout")), 0);
  StopCleanly(*upperd_);
  EXPECT_EQ(FinalTotal(*upperd_, "closed_send_timeout"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, SendTimeoutTest,
                         ::testing::Values("thread", "fork"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace upper::testing
