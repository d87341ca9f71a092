#include "server/metrics/metrics_process_collector.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "prometheus/client_metric.h"
#include "prometheus/metric_type.h"
#include "server/base/log.h"

namespace upper {
namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;

std::optional<std::string> ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return text.str();
}

// Seconds since the epoch at boot, from the "btime" line of /proc/stat.
std::optional<uint64_t> BootTimeSeconds() {
  const std::optional<std::string> stat = ReadFile("/proc/stat");
  if (!stat) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*stat, '\n')) {
    if (!absl::ConsumePrefix(&line, "btime ")) continue;
    uint64_t seconds = 0;
    if (absl::SimpleAtoi(line, &seconds)) return seconds;
  }
  return std::nullopt;
}

// Open file descriptors. Linux >= 6.2 reports their number as the size of
// /proc/self/fd, a popcount of the fd bitmap: microseconds at any count.
// Reading the directory instead costs a dentry per fd (12 ms at 10,000
// connections in thread mode, most of a scrape), so that is only the
// fallback for older kernels, which report size 0.
std::optional<uint64_t> OpenFds() {
  struct stat fd_dir;
  if (stat("/proc/self/fd", &fd_dir) == 0 && fd_dir.st_size > 0) {
    return static_cast<uint64_t>(fd_dir.st_size);
  }
  // Entries of /proc/self/fd, less the one opendir itself holds.
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  uint64_t entries = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++entries;
  }
  closedir(dir);
  return entries > 0 ? entries - 1 : 0;
}

void AddSample(std::vector<MetricFamily>& families, std::string name,
               std::string help, MetricType type, double value) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  family.metric.emplace_back();
  if (type == MetricType::Counter) {
    family.metric.back().counter.value = value;
  } else {
    family.metric.back().gauge.value = value;
  }
  families.push_back(std::move(family));
}

}  // namespace

absl::StatusOr<ProcStat> ParseProcStat(absl::string_view text) {
  // "pid (comm) state ppid ...": comm may contain anything, so the fields
  // start after the last ')'.
  const size_t close = text.rfind(')');
  if (close == absl::string_view::npos) {
    return absl::InvalidArgumentError("/proc stat: no ')' after the command");
  }
  const std::vector<absl::string_view> fields =
      absl::StrSplit(text.substr(close + 1), ' ', absl::SkipWhitespace());
  // fields[0] is field 3 of proc(5) (state); field n is fields[n - 3].
  auto field = [&](int n, uint64_t* value) {
    const size_t index = static_cast<size_t>(n - 3);
    return index < fields.size() && absl::SimpleAtoi(fields[index], value);
  };
  ProcStat stat;
  if (!field(14, &stat.utime_ticks) || !field(15, &stat.stime_ticks) ||
      !field(22, &stat.start_ticks_since_boot) ||
      !field(23, &stat.virtual_bytes) || !field(24, &stat.resident_pages)) {
    return absl::InvalidArgumentError("/proc stat: too few or bad fields");
  }
  return stat;
}

std::vector<MetricFamily> ProcessCollector::Collect() const {
  std::vector<MetricFamily> families;
  const long ticks_per_second = sysconf(_SC_CLK_TCK);
  const long page_size = sysconf(_SC_PAGESIZE);
  const std::optional<std::string> text = ReadFile("/proc/self/stat");
  absl::StatusOr<ProcStat> stat =
      text ? ParseProcStat(*text)
           : absl::UnavailableError("cannot read /proc/self/stat");
  if (stat.ok() && ticks_per_second > 0 && page_size > 0) {
    const double ticks = static_cast<double>(ticks_per_second);
    AddSample(
        families, "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.", MetricType::Counter,
        static_cast<double>(stat->utime_ticks + stat->stime_ticks) / ticks);
    AddSample(families, "process_resident_memory_bytes",
              "Resident memory size in bytes.", MetricType::Gauge,
              static_cast<double>(stat->resident_pages) *
                  static_cast<double>(page_size));
    AddSample(families, "process_virtual_memory_bytes",
              "Virtual memory size in bytes.", MetricType::Gauge,
              static_cast<double>(stat->virtual_bytes));
    if (const std::optional<uint64_t> boot = BootTimeSeconds()) {
      AddSample(families, "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                MetricType::Gauge,
                static_cast<double>(*boot) +
                    static_cast<double>(stat->start_ticks_since_boot) / ticks);
    }
  }
  if (const std::optional<uint64_t> fds = OpenFds()) {
    AddSample(families, "process_open_fds", "Number of open file descriptors.",
              MetricType::Gauge, static_cast<double>(*fds));
  }
  // upperd's own log lines dropped because stderr's reader fell behind
  // (log.h); the fork servers' are upper_fork_server_log_lines_dropped_total
  // (metrics_table_collector.cc), counted in the table they share.
  AddSample(families, "upper_log_lines_dropped_total",
            "Log lines upperd dropped because its log buffer was full "
            "(stderr's reader stuck or too slow).",
            MetricType::Counter, static_cast<double>(LogLinesDropped()));
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    AddSample(families, "process_max_fds",
              "Maximum number of open file descriptors.", MetricType::Gauge,
              limit.rlim_cur == RLIM_INFINITY
                  ? std::numeric_limits<double>::infinity()
                  : static_cast<double>(limit.rlim_cur));
  }
  return families;
}

}  // namespace upper
