// Thread mode's thread cache against a real upperd: a burst grows the cache
// to at most --thread_spare_max idle threads and it shrinks back to
// --thread_spare_min after --thread_spare_timeout (upperd's thread count
// back to its baseline); thousands of connections through one reused spare
// each get exactly their own bytes back; SIGTERM with busy and idle workers
// drains and exits 0.
#include <signal.h>
#include <sys/socket.h>

#include <memory>
#include <string>
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

const std::string kIdle = "upper_workers{mode=\"thread\",state=\"idle\"}";
const std::string kBusy = "upper_workers{mode=\"thread\",state=\"busy\"}";
const std::string kSpawns = "upper_worker_spawns_total{mode=\"thread\"}";

struct Server {
  std::unique_ptr<UpperdProcess> upperd;
  uint16_t metrics_port = 0;
};

Server StartThreadMode(std::vector<std::string> args) {
  args.push_back("--mode=thread");
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start({.args = args});
  EXPECT_TRUE(upperd.ok()) << upperd.status();
  if (!upperd.ok()) return {};
  absl::StatusOr<uint16_t> port = (*upperd)->Port("metrics");
  EXPECT_TRUE(port.ok()) << port.status();
  return {*std::move(upperd), port.value_or(0)};
}

double Metric(uint16_t port, const std::string& series) {
  absl::StatusOr<Scrape> scrape = Scrape::Get(port);
  return scrape.ok() ? scrape->Value(series) : -1;
}

// Opens `n` connections at once and sees each served; the caller closes.
std::vector<UniqueFd> OpenServed(uint16_t port, int n) {
  std::vector<UniqueFd> fds;
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(port);
    EXPECT_TRUE(fd.ok()) << fd.status();
    if (fd.ok()) fds.push_back(*std::move(fd));
  }
  for (UniqueFd& fd : fds) {
    EXPECT_EQ(send(fd.get(), "q", 1, MSG_NOSIGNAL), 1);
    EXPECT_EQ(
        ReadExactly(fd.get(), 1, absl::Now() + absl::Seconds(10)).value_or(""),
        "Q");
  }
  return fds;
}

TEST(ThreadCache, BurstGrowsAtMostToMaxSparesAndShrinksToMinAfterTimeout) {
  Server s = StartThreadMode({"--thread_spare_min=2", "--thread_spare_max=8",
                              "--thread_spare_timeout=1s"});
  ASSERT_NE(s.upperd, nullptr);
  ASSERT_EQ(Metric(s.metrics_port, kIdle), 0);  // scraped once: warm
  const int baseline = CountThreads(s.upperd->pid());
  ASSERT_GT(baseline, 0);
  {
    std::vector<UniqueFd> burst = OpenServed(s.upperd->data_port(), 32);
    EXPECT_EQ(Metric(s.metrics_port, kBusy), 32);
  }  // all 32 close at once
  ASSERT_TRUE(Eventually([&] { return Metric(s.metrics_port, kBusy) == 0; },
                         absl::Seconds(10)));
  const double idle = Metric(s.metrics_port, kIdle);
  EXPECT_LE(idle, 8);
  EXPECT_GE(idle, 2);
  EXPECT_EQ(Metric(s.metrics_port, kSpawns), 32);
  // The spares beyond the minimum leave after 1 s idle; two stay.
  EXPECT_TRUE(Eventually([&] { return Metric(s.metrics_port, kIdle) == 2; },
                         absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(Metric(s.metrics_port, kIdle), 2);
  EXPECT_TRUE(
      Eventually([&] { return CountThreads(s.upperd->pid()) == baseline + 2; },
                 absl::Seconds(5)))
      << CountThreads(s.upperd->pid()) << " threads, baseline " << baseline;
  StopCleanly(*s.upperd);
}

TEST(ThreadCache, NoByteOfOneConnectionIsReadableByTheNextOnTheSameThread) {
  Server s = StartThreadMode({"--thread_spare_min=1", "--thread_spare_max=1",
                              "--thread_spare_timeout=1h"});
  ASSERT_NE(s.upperd, nullptr);
  constexpr int kConnections = 3000;
  for (int i = 0; i < kConnections; ++i) {
    // Long and short in turn, so a short one follows a long one on the
    // same thread and would show any byte left in its buffer.
    const size_t size = (i % 2 == 0) ? 8192 + i % 977 : 1 + i % 61;
    const std::string payload = RandomPayload(size, 1000 + i);
    absl::StatusOr<std::string> reply =
        Exchange(s.upperd->data_port(), payload, 4096, i, absl::Seconds(10));
    ASSERT_TRUE(reply.ok()) << "connection " << i << ": " << reply.status();
    ASSERT_EQ(reply->size(), payload.size()) << "connection " << i;
    ASSERT_TRUE(*reply == ExpectedUpper(payload)) << "connection " << i;
  }
  // Sequential connections, one spare: the thread was reused (a new one
  // only when a connection came before the last had left its worker).
  const double spawns = Metric(s.metrics_port, kSpawns);
  EXPECT_GE(spawns, 1);
  EXPECT_LT(spawns, kConnections / 2);
  StopCleanly(*s.upperd);
  EXPECT_EQ(FinalTotal(*s.upperd, "accepted"), uint64_t{kConnections});
  EXPECT_EQ(FinalTotal(*s.upperd, "active"), 0u);
}

TEST(ThreadCache, SigtermWithBusyAndIdleWorkersDrainsAndExitsZero) {
  Server s = StartThreadMode({"--thread_spare_min=0", "--thread_spare_max=8",
                              "--thread_spare_timeout=1h"});
  ASSERT_NE(s.upperd, nullptr);
  std::vector<UniqueFd> fds = OpenServed(s.upperd->data_port(), 4);
  ASSERT_EQ(fds.size(), 4u);
  fds.resize(2);  // two end and wait as spares; two stay busy
  ASSERT_TRUE(Eventually([&] { return Metric(s.metrics_port, kIdle) == 2; },
                         absl::Seconds(10)));
  EXPECT_EQ(Metric(s.metrics_port, kBusy), 2);
  s.upperd->Signal(SIGTERM);
  ASSERT_TRUE(s.upperd->WaitForLog("draining", absl::Seconds(10)).ok());
  // The busy ones are still served through the drain, then end.
  for (UniqueFd& fd : fds) {
    ASSERT_EQ(send(fd.get(), "x", 1, MSG_NOSIGNAL), 1);
    EXPECT_EQ(
        ReadExactly(fd.get(), 1, absl::Now() + absl::Seconds(10)).value_or(""),
        "X");
  }
  fds.clear();
  absl::StatusOr<int> code = s.upperd->WaitExit(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status() << "\n" << s.upperd->Log();
  EXPECT_EQ(*code, 0) << s.upperd->Log();
  EXPECT_EQ(FinalTotal(*s.upperd, "active"), 0u);
  EXPECT_EQ(FinalTotal(*s.upperd, "accepted"), 4u);
}

}  // namespace
}  // namespace upper::testing
