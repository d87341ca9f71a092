#include "server/metrics/metrics_table_collector.h"

#include <netinet/in.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"

namespace upper {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;

std::unique_ptr<ConnectionTable> MakeTable(uint32_t capacity) {
  absl::StatusOr<std::unique_ptr<ConnectionTable>> table =
      ConnectionTable::Create(capacity);
  EXPECT_TRUE(table.ok()) << table.status();
  return *std::move(table);
}

uint32_t Allocate(ConnectionTable& table, Mode mode) {
  sockaddr_in peer = {};
  peer.sin_family = AF_INET;
  peer.sin_port = htons(4000);
  peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const std::optional<uint32_t> slot = table.Allocate(
      mode, reinterpret_cast<const sockaddr*>(&peer), sizeof(peer));
  EXPECT_TRUE(slot.has_value());
  return slot.value_or(0);
}

const MetricFamily* Find(const std::vector<MetricFamily>& families,
                         const std::string& name) {
  for (const MetricFamily& f : families) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// The sample of `name` whose labels include all of `labels`.
const ClientMetric* Sample(const std::vector<MetricFamily>& families,
                           const std::string& name,
                           const std::vector<ClientMetric::Label>& labels) {
  const MetricFamily* family = Find(families, name);
  if (family == nullptr) return nullptr;
  for (const ClientMetric& m : family->metric) {
    bool all = true;
    for (const ClientMetric::Label& want : labels) {
      bool found = false;
      for (const ClientMetric::Label& have : m.label) found |= have == want;
      all &= found;
    }
    if (all) return &m;
  }
  return nullptr;
}

TEST(TableCollector, ServedConnectionShowsInItsModeAndHistogram) {
  auto table = MakeTable(4);
  const uint32_t slot = Allocate(*table, Mode::kThread);
  SlotWriter writer = table->Writer(slot);
  ASSERT_EQ(writer.Claim(getpid(), 0), SlotWriter::ClaimResult::kClaimed);
  writer.Received(10);
  writer.Sent(10);
  TableCollector collector({.table = table.get()});

  std::vector<MetricFamily> live = collector.Collect();
  ASSERT_NE(Sample(live, "upper_connections_active", {{"mode", "thread"}}),
            nullptr);
  EXPECT_EQ(Sample(live, "upper_connections_active", {{"mode", "thread"}})
                ->gauge.value,
            1);
  EXPECT_EQ(
      Sample(live, "upper_connections_active", {{"mode", "fork"}})->gauge.value,
      0);
  EXPECT_EQ(Sample(live, "upper_received_bytes_total", {{"mode", "thread"}})
                ->counter.value,
            10);

  table->Release(slot, CloseReason::kClient);
  std::vector<MetricFamily> after = collector.Collect();
  EXPECT_EQ(Sample(after, "upper_connections_closed_total",
                   {{"mode", "thread"}, {"reason", "client"}})
                ->counter.value,
            1);
  const ClientMetric* duration =
      Sample(after, "upper_connection_duration_seconds", {{"mode", "thread"}});
  ASSERT_NE(duration, nullptr);
  EXPECT_EQ(duration->histogram.sample_count, 1u);
  ASSERT_EQ(duration->histogram.bucket.size(),
            static_cast<size_t>(table_layout::kDurationBuckets));
  // Bounds are the table's milliseconds in seconds, then +Inf.
  EXPECT_DOUBLE_EQ(duration->histogram.bucket[0].upper_bound, 0.001);
  EXPECT_TRUE(std::isinf(duration->histogram.bucket.back().upper_bound));
  EXPECT_EQ(duration->histogram.bucket.back().cumulative_count, 1u);
}

TEST(TableCollector, EveryReasonIsPresentAtZero) {
  auto table = MakeTable(1);
  TableCollector collector({.table = table.get()});
  const std::vector<MetricFamily> families = collector.Collect();
  EXPECT_EQ(Find(families, "upper_connections_rejected_total")->metric.size(),
            6u);  // fork_queue_full included
  EXPECT_EQ(Sample(families, "upper_connections_rejected_total",
                   {{"reason", "fork_queue_full"}})
                ->counter.value,
            0);
  EXPECT_EQ(
      Sample(families, "upper_fork_server_hangs_total", {})->counter.value, 0);
  EXPECT_EQ(Find(families, "upper_connections_closed_total")->metric.size(),
            12u);  // 2 modes x 6 reasons
}

TEST(TableCollector, ModeDrainingAndAdminCountsComeFromTheirSources) {
  auto table = MakeTable(1);
  table->SetMode(Mode::kFork);
  TableCollector collector(
      {.table = table.get(),
       .draining = [] { return true; },
       .admin_requests =
           [] {
             return std::vector<RpcCount>{
                 {"/upper.admin.v1.AdminService/GetStatus", 0, 3},
                 {"/upper.admin.v1.AdminService/SetMode", 3, 1}};
           }});
  const std::vector<MetricFamily> families = collector.Collect();
  EXPECT_EQ(Sample(families, "upper_mode", {{"mode", "fork"}})->gauge.value, 1);
  EXPECT_EQ(Sample(families, "upper_mode", {{"mode", "thread"}})->gauge.value,
            0);
  EXPECT_EQ(Sample(families, "upper_draining", {})->gauge.value, 1);
  EXPECT_EQ(Sample(families, "upper_admin_requests_total",
                   {{"method", "upper.admin.v1.AdminService/SetMode"},
                    {"code", "INVALID_ARGUMENT"}})
                ->counter.value,
            1);
}

// upper_workers: thread mode's from the thread workers' stats, fork mode's
// busy from the table (its active connections) and idle from the fork pool's
// stats; the spawn and exit counters from each mode's stats.
TEST(TableCollector, WorkersComeFromEachModesStatsAndForkBusyFromTheTable) {
  auto table = MakeTable(2);
  Allocate(*table, Mode::kFork);
  TableCollector collector(
      {.table = table.get(),
       .thread_workers =
           [] {
             return ThreadCacheStats{.busy = 3,
                                     .idle = 5,
                                     .spawns_total = 7,
                                     .exits_idle_timeout = 2,
                                     .exits_shutdown = 1};
           },
       .fork_workers =
           [] {
             return ForkPoolStats{.busy = 99,
                                  .idle = 4,
                                  .spawns_total = 8,
                                  .exits_idle_timeout = 1,
                                  .exits_shutdown = 2,
                                  .exits_pool_full = 3,
                                  .exits_max_connections = 6};
           }});
  const std::vector<MetricFamily> f = collector.Collect();
  const auto gauge = [&](const char* mode, const char* state) {
    const ClientMetric* m =
        Sample(f, "upper_workers", {{"mode", mode}, {"state", state}});
    return m == nullptr ? -1 : m->gauge.value;
  };
  const auto counter = [&](const char* name,
                           const std::vector<ClientMetric::Label>& labels) {
    const ClientMetric* m = Sample(f, name, labels);
    return m == nullptr ? -1 : m->counter.value;
  };
  EXPECT_EQ(gauge("thread", "busy"), 3);
  EXPECT_EQ(gauge("thread", "idle"), 5);
  EXPECT_EQ(gauge("fork", "busy"), 1);
  EXPECT_EQ(gauge("fork", "idle"), 4);
  EXPECT_EQ(counter("upper_worker_spawns_total", {{"mode", "thread"}}), 7);
  EXPECT_EQ(counter("upper_worker_spawns_total", {{"mode", "fork"}}), 8);
  const auto exits = [&](const char* mode, const char* reason) {
    return counter("upper_worker_exits_total",
                   {{"mode", mode}, {"reason", reason}});
  };
  EXPECT_EQ(exits("thread", "idle_timeout"), 2);
  EXPECT_EQ(exits("thread", "shutdown"), 1);
  EXPECT_EQ(exits("thread", "cache_full"), 0);
  EXPECT_EQ(exits("fork", "idle_timeout"), 1);
  EXPECT_EQ(exits("fork", "shutdown"), 2);
  EXPECT_EQ(exits("fork", "pool_full"), 3);
  EXPECT_EQ(exits("fork", "max_connections"), 6);
}

TEST(TableCollector, WorkerFamiliesAreZeroWithoutSources) {
  auto table = MakeTable(1);
  TableCollector collector({.table = table.get()});
  const std::vector<MetricFamily> f = collector.Collect();
  EXPECT_EQ(Sample(f, "upper_workers", {{"mode", "fork"}, {"state", "idle"}})
                ->gauge.value,
            0);
  EXPECT_EQ(
      Sample(f, "upper_worker_spawns_total", {{"mode", "fork"}})->counter.value,
      0);
  EXPECT_EQ(Sample(f, "upper_worker_exits_total",
                   {{"mode", "fork"}, {"reason", "max_connections"}})
                ->counter.value,
            0);
}

TEST(TableCollector, AdminFamilyIsLeftOutWithoutASource) {
  auto table = MakeTable(1);
  TableCollector collector({.table = table.get()});
  EXPECT_EQ(Find(collector.Collect(), "upper_admin_requests_total"), nullptr);
}

TEST(TableCollector, ConcurrentScrapesSeeMonotonicBytesAndTheExactTotal) {
  auto table = MakeTable(4);
  TableCollector collector({.table = table.get()});
  constexpr int kWriters = 4;
  constexpr int kAdds = 20000;
  std::vector<uint32_t> slots;
  for (int i = 0; i < kWriters; ++i) {
    slots.push_back(Allocate(*table, Mode::kFork));
  }
  std::atomic<bool> done{false};
  bool monotonic = true;
  std::thread scraper([&] {
    double last = 0;
    while (!done.load()) {
      const double now =
          Sample(collector.Collect(), "upper_received_bytes_total",
                 {{"mode", "fork"}})
              ->counter.value;
      monotonic &= now >= last;
      last = now;
    }
  });
  std::vector<std::thread> writers;
  for (uint32_t slot : slots) {
    writers.emplace_back([&table, slot] {
      SlotWriter writer = table->Writer(slot);
      for (int i = 0; i < kAdds; ++i) writer.Received(1);
    });
  }
  for (std::thread& t : writers) t.join();
  done = true;
  scraper.join();
  EXPECT_TRUE(monotonic);
  EXPECT_EQ(Sample(collector.Collect(), "upper_received_bytes_total",
                   {{"mode", "fork"}})
                ->counter.value,
            kWriters * kAdds);
}

TEST(TableCollector, SerializesCountersWithTheirTotalSuffix) {
  auto table = MakeTable(1);
  TableCollector collector({.table = table.get()});
  const std::string text =
      prometheus::TextSerializer().Serialize(collector.Collect());
  EXPECT_NE(text.find("# TYPE upper_connections_accepted_total counter"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("upper_connection_duration_seconds_bucket{mode=\"fork\","
                      "le=\"+Inf\"} 0"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace upper
