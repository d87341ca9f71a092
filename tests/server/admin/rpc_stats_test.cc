#include "server/admin/rpc_stats.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace upper {
namespace {

TEST(RpcStats, CountsByMethodAndCodeInOrder) {
  RpcStats stats;
  stats.Record("/upper.admin.v1.AdminService/SetMode", 3);
  stats.Record("/upper.admin.v1.AdminService/GetStatus", 0);
  stats.Record("/upper.admin.v1.AdminService/SetMode", 0);
  stats.Record("/upper.admin.v1.AdminService/SetMode", 3);
  const std::vector<RpcCount> counts = stats.Snapshot();
  ASSERT_EQ(counts.size(), 3u);
  EXPECT_EQ(counts[0].method, "/upper.admin.v1.AdminService/GetStatus");
  EXPECT_EQ(counts[0].code, 0);
  EXPECT_EQ(counts[0].count, 1u);
  EXPECT_EQ(counts[1].method, "/upper.admin.v1.AdminService/SetMode");
  EXPECT_EQ(counts[1].code, 0);
  EXPECT_EQ(counts[1].count, 1u);
  EXPECT_EQ(counts[2].code, 3);
  EXPECT_EQ(counts[2].count, 2u);
}

TEST(RpcStats, ConcurrentRecordsAreAllCounted) {
  RpcStats stats;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&stats, t] {
      for (int i = 0; i < kPerThread; ++i) stats.Record("/m", t % 2);
    });
  }
  for (std::thread& t : threads) t.join();
  uint64_t total = 0;
  for (const RpcCount& c : stats.Snapshot()) total += c.count;
  EXPECT_EQ(total, uint64_t{kThreads} * kPerThread);
}

TEST(RpcStats, StatusCodesHaveTheirCanonicalNames) {
  EXPECT_EQ(StatusCodeName(0), "OK");
  EXPECT_EQ(StatusCodeName(3), "INVALID_ARGUMENT");
  EXPECT_EQ(StatusCodeName(5), "NOT_FOUND");
  EXPECT_EQ(StatusCodeName(9), "FAILED_PRECONDITION");
  EXPECT_EQ(StatusCodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(StatusCodeName(17), "UNKNOWN_CODE_17");
  EXPECT_EQ(StatusCodeName(-1), "UNKNOWN_CODE_-1");
}

}  // namespace
}  // namespace upper
