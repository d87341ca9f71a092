#include "server/base/resource_limits.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/errno_status.h"
#include "common/unique_fd.h"

namespace upper {
namespace {

// /proc and cgroup files are a few bytes; /proc/self/cgroup a few lines
// per hierarchy.
constexpr size_t kMaxFileSize = 64 * 1024;
// cgroup v1 writes "no limit" as PAGE_COUNTER_MAX pages in bytes, just
// under 2^63; no real limit comes near.
constexpr uint64_t kV1Unlimited = uint64_t{1} << 62;
// The kernel's default fs.nr_open, the ceiling of RLIMIT_NOFILE.
constexpr rlim_t kDefaultNrOpen = 1048576;

// A regular file's text, at most kMaxFileSize bytes; nullopt when it cannot
// be read.
std::optional<std::string> ReadSmallFile(const std::string& path) {
  UniqueFd fd(
      RetryOnEintr([&] { return open(path.c_str(), O_RDONLY | O_CLOEXEC); }));
  struct stat st;
  if (!fd || fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return std::nullopt;
  }
  std::string text(kMaxFileSize, '\0');
  size_t size = 0;
  while (size < text.size()) {
    const ssize_t n = RetryOnEintr(
        [&] { return read(fd.get(), text.data() + size, text.size() - size); });
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  text.resize(size);
  return text;
}

// A limit file's value: a number, or "max" (no limit, nullopt).
std::optional<uint64_t> ParseLimit(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  uint64_t value = 0;
  if (text == "max" || !absl::SimpleAtoi(text, &value)) return std::nullopt;
  if (value >= kV1Unlimited) return std::nullopt;
  return value;
}

// This process' path in the v2 hierarchy ("0::/path") or in the v1 one
// that holds `controller` ("4:pids:/path", "5:cpu,cpuacct:/path").
std::optional<std::string> CgroupPath(absl::string_view self, bool v2,
                                      absl::string_view controller) {
  for (absl::string_view line : absl::StrSplit(self, '\n')) {
    const std::vector<absl::string_view> parts =
        absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    bool match = v2 && parts[0] == "0" && parts[1].empty();
    for (absl::string_view c : absl::StrSplit(parts[1], ',')) {
      match = match || (!v2 && c == controller);
    }
    if (match) return std::string(parts[2]);
  }
  return std::nullopt;
}

std::optional<uint64_t> Min(std::optional<uint64_t> a,
                            std::optional<uint64_t> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

// A soft rlimit, with RLIM_INFINITY as 0.
absl::StatusOr<uint64_t> SoftLimit(int resource, const char* name) {
  rlimit limit;
  if (getrlimit(resource, &limit) != 0) {
    return ErrnoStatus(absl::StrCat("getrlimit(", name, ")"), errno);
  }
  return limit.rlim_cur == RLIM_INFINITY ? 0 : limit.rlim_cur;
}

}  // namespace

absl::Status RaiseOpenFileLimit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return ErrnoStatus("getrlimit(RLIMIT_NOFILE)", errno);
  }
  rlim_t target = limit.rlim_max;
  if (target == RLIM_INFINITY) {
    // setrlimit refuses more than fs.nr_open.
    target = kDefaultNrOpen;
    if (std::optional<std::string> text =
            ReadSmallFile("/proc/sys/fs/nr_open")) {
      uint64_t nr_open = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &nr_open)) {
        target = nr_open;
      }
    }
  }
  if (limit.rlim_cur >= target) return absl::OkStatus();
  limit.rlim_cur = target;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return ErrnoStatus(absl::StrCat("setrlimit(RLIMIT_NOFILE, ", target, ")"),
                       errno);
  }
  return absl::OkStatus();
}

std::optional<uint64_t> CgroupLimit(const CgroupFiles& cgroup,
                                    absl::string_view v1_controller,
                                    absl::string_view v1_file,
                                    absl::string_view v2_file) {
  const std::optional<std::string> self = ReadSmallFile(cgroup.self);
  if (!self) return std::nullopt;
  struct stat st;
  const bool v2 =
      stat(absl::StrCat(cgroup.mount, "/cgroup.controllers").c_str(), &st) == 0;
  std::optional<std::string> path = CgroupPath(*self, v2, v1_controller);
  if (!path) return std::nullopt;
  const std::string base =
      v2 ? cgroup.mount : absl::StrCat(cgroup.mount, "/", v1_controller);
  const absl::string_view file = v2 ? v2_file : v1_file;
  // Limits nest: the tightest on the way to the root is the one in force.
  std::optional<uint64_t> tightest;
  absl::string_view at = *path;
  for (;;) {
    if (std::optional<std::string> text =
            ReadSmallFile(absl::StrCat(base, at, "/", file))) {
      tightest = Min(tightest, ParseLimit(*text));
    }
    const size_t slash = at.rfind('/');
    if (at.empty() || slash == absl::string_view::npos) break;
    at = at.substr(0, slash);
  }
  return tightest;
}

absl::StatusOr<ResourceLimits> ReadResourceLimits(const CgroupFiles& cgroup) {
  ResourceLimits limits;
  rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) != 0) {
    return ErrnoStatus("getrlimit(RLIMIT_NOFILE)", errno);
  }
  limits.open_files = nofile.rlim_cur;
  limits.open_files_hard = nofile.rlim_max;
  absl::StatusOr<uint64_t> nproc = SoftLimit(RLIMIT_NPROC, "RLIMIT_NPROC");
  if (!nproc.ok()) return nproc.status();
  limits.max_processes = *nproc;
  limits.pids_limit =
      CgroupLimit(cgroup, "pids", "pids.max", "pids.max").value_or(0);
  limits.memory_limit_bytes =
      CgroupLimit(cgroup, "memory", "memory.limit_in_bytes", "memory.max")
          .value_or(0);
  return limits;
}

std::vector<LimitShortfall> CheckLimits(const ResourceLimits& limits,
                                        uint32_t max_connections,
                                        uint32_t spare_threads,
                                        uint32_t spare_children) {
  std::vector<LimitShortfall> shortfalls;
  // The fork server has the same soft limit as upperd and holds a socket
  // to each pool child, busy (at most max_connections) or idle: at that
  // limit a connection passed to it arrives without its fd (MSG_CTRUNC)
  // and is refused fd_exhausted.
  const uint64_t fds =
      uint64_t{max_connections} + spare_children + kOwnFdReserve;
  if (limits.open_files < fds) {
    shortfalls.push_back({"open_files", limits.open_files, fds});
  }
  // Spare threads are tasks too; in thread mode alone they are threads that
  // served a connection, but after a switch to fork mode they wait (up to
  // --thread_spare_timeout) beside up to max_connections children. Spare
  // children of the fork pool wait likewise beside the busy ones (and
  // beside thread-mode connections after a switch back).
  const uint64_t tasks = uint64_t{max_connections} + spare_threads +
                         spare_children + kOwnTaskReserve;
  if (limits.max_processes != 0 && limits.max_processes < tasks) {
    shortfalls.push_back({"max_processes", limits.max_processes, tasks});
  }
  if (limits.pids_limit != 0 && limits.pids_limit < tasks) {
    shortfalls.push_back({"pids", limits.pids_limit, tasks});
  }
  return shortfalls;
}

}  // namespace upper
