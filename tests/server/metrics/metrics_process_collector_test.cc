#include "server/metrics/metrics_process_collector.h"

#include <fcntl.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "gtest/gtest.h"

namespace upper {
namespace {

TEST(ParseProcStat, ReadsFieldsAfterACommandWithSpacesAndParentheses) {
  // Fields 3..24 of proc(5): utime=14, stime=15, starttime=22, vsize=23,
  // rss=24.
  const std::string line =
      "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 "
      "250 50 0 0 20 0 3 0 12345 104857600 2560 18446744073709551615";
  absl::StatusOr<ProcStat> stat = ParseProcStat(line);
  ASSERT_TRUE(stat.ok()) << stat.status();
  EXPECT_EQ(stat->utime_ticks, 250u);
  EXPECT_EQ(stat->stime_ticks, 50u);
  EXPECT_EQ(stat->start_ticks_since_boot, 12345u);
  EXPECT_EQ(stat->virtual_bytes, 104857600u);
  EXPECT_EQ(stat->resident_pages, 2560u);
}

TEST(ParseProcStat, RejectsTruncatedOrGarbledLines) {
  EXPECT_FALSE(ParseProcStat("").ok());
  EXPECT_FALSE(ParseProcStat("42 (upperd) S 1 2 3").ok());
  EXPECT_FALSE(ParseProcStat("42 upperd S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 "
                             "15 16 17 18 19 20 21 22")
                   .ok());
}

TEST(ProcessCollector, ReportsTheStandardProcessMetricsOfThisProcess) {
  std::set<std::string> names;
  for (const prometheus::MetricFamily& family : ProcessCollector().Collect()) {
    names.insert(family.name);
    ASSERT_EQ(family.metric.size(), 1u) << family.name;
    EXPECT_GE(family.type == prometheus::MetricType::Counter
                  ? family.metric[0].counter.value
                  : family.metric[0].gauge.value,
              0)
        << family.name;
  }
  EXPECT_EQ(
      names,
      (std::set<std::string>{
          "process_cpu_seconds_total", "process_max_fds", "process_open_fds",
          "process_resident_memory_bytes", "process_start_time_seconds",
          "process_virtual_memory_bytes", "upper_log_lines_dropped_total"}));
}

double OpenFdsGauge() {
  for (const prometheus::MetricFamily& family : ProcessCollector().Collect()) {
    if (family.name == "process_open_fds") return family.metric[0].gauge.value;
  }
  ADD_FAILURE() << "no process_open_fds";
  return -1;
}

// Counts exactly, whether from the size of /proc/self/fd (Linux >= 6.2) or
// by reading the directory: every fd opened here shows, none more.
TEST(ProcessCollector, OpenFdsCountsEveryOpenDescriptor) {
  const double before = OpenFdsGauge();
  ASSERT_GT(before, 0);
  constexpr int kExtra = 64;
  std::vector<UniqueFd> extra;
  for (int i = 0; i < kExtra; ++i) {
    extra.emplace_back(open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(extra.back().valid());
  }
  EXPECT_EQ(OpenFdsGauge(), before + kExtra);
  extra.clear();
  EXPECT_EQ(OpenFdsGauge(), before);
}

}  // namespace
}  // namespace upper
