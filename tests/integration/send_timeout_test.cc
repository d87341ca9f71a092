// --send_timeout (issue 15, nginx's send_timeout) against a real upperd, in
// both modes: a client that sends a lot and never reads is closed once the
// server's send has waited --send_timeout without the peer taking a byte,
// counted as closed{reason="send_timeout"} in /metrics and in the `stopped`
// line; a client that pauses reading for less than the timeout, and a
// normal client, get every byte. (Bad values of the flag and of
// UPPER_SEND_TIMEOUT: bad_input_test.cc's table.)
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/final_totals.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/proc.h"
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

// `count` clients with a one-page receive buffer: each sends 32 KiB without
// reading, then half-closes, so that upperd has the EOF while its reply
// waits in its send buffer for a peer that never takes it.
std::vector<UniqueFd> HalfClosedNonReaders(uint16_t port, int count) {
  const std::string payload(32 * 1024, 'q');
  std::vector<UniqueFd> fds;
  for (int i = 0; i < count; ++i) {
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int small = 4096;
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
        0) {
      ADD_FAILURE() << "connect: " << std::strerror(errno);
      break;
    }
    size_t sent = 0;
    const absl::Time deadline = absl::Now() + absl::Seconds(2);
    while (sent < payload.size() && absl::Now() < deadline) {
      const ssize_t n =
          send(fd.get(), payload.data() + sent, payload.size() - sent,
               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else {
        absl::SleepFor(absl::Milliseconds(1));
      }
    }
    shutdown(fd.get(), SHUT_WR);
    fds.push_back(std::move(fd));
  }
  return fds;
}

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

// After their EOF, clients that never take the reply hold their slots only
// until the send timeout, and are counted as send_timeout, not as clients
// that ended normally: their reply was never delivered.
TEST_P(SendTimeoutTest, HalfClosedClientsThatNeverReadEndAsSendTimeout) {
  constexpr int kClients = 50;
  std::vector<UniqueFd> fds =
      HalfClosedNonReaders(upperd_->data_port(), kClients);
  ASSERT_EQ(fds.size(), static_cast<size_t>(kClients));
  EXPECT_TRUE(
      Eventually([&] { return Value(Series("send_timeout")) == kClients; },
                 kSendTimeout * 3 + absl::Seconds(5)))
      << Value(Series("send_timeout"));
  EXPECT_EQ(Value(Series("client")), 0);
  StopCleanly(*upperd_);
  EXPECT_EQ(FinalTotal(*upperd_, "active"), 0u);
}

// An attack that holds slots after its EOF (peers that never take their
// reply) costs upperd next to no CPU while it waits for them: its looks at
// each socket back off to 250 ms.
TEST(SendTimeoutAttack, HalfClosedNonReadersCostNoCpuWhileHeld) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> started = UpperdProcess::Start(
      {.args = {"--mode=thread", "--send_timeout=6s", "--idle_timeout=60s"}});
  ASSERT_TRUE(started.ok()) << started.status();
  UpperdProcess& upperd = **started;
  std::vector<UniqueFd> fds = HalfClosedNonReaders(upperd.data_port(), 400);
  ASSERT_EQ(fds.size(), 400u);
  absl::SleepFor(absl::Seconds(1));  // past the first, quick looks
  const std::optional<double> before = CpuSeconds(upperd.pid());
  absl::SleepFor(absl::Seconds(2));
  const std::optional<double> after = CpuSeconds(upperd.pid());
  ASSERT_TRUE(before && after);
  RecordProperty("cpu_ms_over_2s", static_cast<int>((*after - *before) * 1000));
  EXPECT_LT(*after - *before, 0.25) << "400 held peers kept upperd busy";
  StopCleanly(upperd);
}

INSTANTIATE_TEST_SUITE_P(Modes, SendTimeoutTest,
                         ::testing::Values("thread", "fork"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace upper::testing
