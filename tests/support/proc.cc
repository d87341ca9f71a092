#include "tests/support/proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/support/subprocess.h"
#include "tests/support/tcp.h"

namespace upper::testing {
namespace {

// Names of a /proc directory's entries, without "." and "..".
std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return names;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  }
  closedir(dir);
  return names;
}

// The value after "Key:" in /proc/pid/status (first field only).
std::optional<int64_t> StatusField(const std::string& status,
                                   absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, key) || !absl::ConsumePrefix(&line, ":")) {
      continue;
    }
    line = absl::StripLeadingAsciiWhitespace(line);
    int64_t value = 0;
    if (absl::SimpleAtoi(line.substr(0, line.find_first_of(" \t")), &value)) {
      return value;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> ReadProcFile(const std::string& path) {
  // Plain read(2): a process that exits while we read makes read() fail with
  // ESRCH, which an ifstream would turn into an exception.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  const std::optional<std::string> text =
      ReadProcFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!text) return std::nullopt;
  // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
  const size_t close_paren = text->rfind(')');
  if (close_paren == std::string::npos || close_paren + 4 > text->size()) {
    return std::nullopt;
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(*text).substr(close_paren + 2), ' ');
  ProcStat stat;
  int ppid = 0;
  if (fields.size() < 2 || fields[0].size() != 1 ||
      !absl::SimpleAtoi(fields[1], &ppid)) {
    return std::nullopt;
  }
  stat.state = fields[0][0];
  stat.ppid = ppid;
  return stat;
}

absl::Status RaiseFdLimit(uint64_t wanted) {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::ErrnoToStatus(errno, "getrlimit(RLIMIT_NOFILE)");
  }
  if (limit.rlim_cur >= wanted) return absl::OkStatus();
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < wanted) {
    return absl::FailedPreconditionError(
        absl::StrCat("RLIMIT_NOFILE hard limit ", limit.rlim_max, " < ", wanted,
                     " (raise it with ulimit -Hn)"));
  }
  limit.rlim_cur = wanted;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::ErrnoToStatus(errno, "setrlimit(RLIMIT_NOFILE)");
  }
  return absl::OkStatus();
}

std::optional<double> CpuSeconds(pid_t pid) {
  const std::optional<std::string> stat =
      ReadProcFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat) return std::nullopt;
  // Fields after the command (which may hold spaces): state is field 3,
  // utime 14 and stime 15.
  const size_t paren = stat->rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream rest(stat->substr(paren + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 && !absl::SimpleAtoi(field, &utime)) return std::nullopt;
    if (i == 15 && !absl::SimpleAtoi(field, &stime)) return std::nullopt;
  }
  return static_cast<double>(utime + stime) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::optional<int64_t> RssKib(pid_t pid) {
  const std::optional<std::string> status =
      ReadProcFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status) return std::nullopt;
  return StatusField(*status, "VmRSS");
}

std::optional<int64_t> SharedRssKib(pid_t pid) {
  const std::optional<std::string> status =
      ReadProcFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status) return std::nullopt;
  return StatusField(*status, "RssShmem");
}

std::optional<int64_t> PrivateRssKib(pid_t pid) {
  const std::optional<std::string> status =
      ReadProcFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status) return std::nullopt;
  const std::optional<int64_t> anon = StatusField(*status, "RssAnon");
  const std::optional<int64_t> file = StatusField(*status, "RssFile");
  if (!anon || !file) return std::nullopt;
  return *anon + *file;
}

int CountThreads(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/task");
  if (access(path.c_str(), F_OK) != 0) return -1;
  return static_cast<int>(ListDir(path).size());
}

std::map<int, std::string> FdTargets(pid_t pid) {
  std::map<int, std::string> out;
  const std::string dir = absl::StrCat("/proc/", pid, "/fd");
  for (const std::string& name : ListDir(dir)) {
    int fd = 0;
    if (!absl::SimpleAtoi(name, &fd)) continue;
    char target[PATH_MAX];
    const ssize_t n = readlink(absl::StrCat(dir, "/", name).c_str(), target,
                               sizeof(target) - 1);
    if (n < 0) continue;  // closed since listed
    out[fd] = std::string(target, static_cast<size_t>(n));
  }
  return out;
}

std::set<uint64_t> ListeningTcpInodes() {
  constexpr absl::string_view kListenState = "0A";
  std::set<uint64_t> inodes;
  for (const char* path : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    const std::optional<std::string> table = ReadProcFile(path);
    if (!table) continue;
    bool header = true;
    for (absl::string_view line : absl::StrSplit(*table, '\n')) {
      if (std::exchange(header, false)) continue;
      // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
      const std::vector<absl::string_view> fields =
          absl::StrSplit(line, ' ', absl::SkipEmpty());
      uint64_t inode = 0;
      if (fields.size() > 9 && fields[3] == kListenState &&
          absl::SimpleAtoi(fields[9], &inode)) {
        inodes.insert(inode);
      }
    }
  }
  return inodes;
}

std::optional<uint64_t> SocketInode(const std::string& fd_target) {
  absl::string_view text = fd_target;
  uint64_t inode = 0;
  if (absl::ConsumePrefix(&text, "socket:[") &&
      absl::ConsumeSuffix(&text, "]") && absl::SimpleAtoi(text, &inode)) {
    return inode;
  }
  return std::nullopt;
}

int CountTasksOfUid(uid_t uid) {
  int tasks = 0;
  for (const std::string& name : ListDir("/proc")) {
    int pid = 0;
    if (!absl::SimpleAtoi(name, &pid)) continue;
    const std::optional<std::string> status =
        ReadProcFile(absl::StrCat("/proc/", pid, "/status"));
    if (!status) continue;
    const std::optional<int64_t> real_uid = StatusField(*status, "Uid");
    const std::optional<int64_t> threads = StatusField(*status, "Threads");
    if (real_uid && threads && *real_uid == static_cast<int64_t>(uid)) {
      tasks += static_cast<int>(*threads);
    }
  }
  return tasks;
}

pid_t NamespaceInit(pid_t launcher) {
  for (pid_t pid : Descendants(launcher)) {
    const std::optional<std::string> status =
        ReadProcFile(absl::StrCat("/proc/", pid, "/status"));
    if (!status) continue;
    for (absl::string_view line : absl::StrSplit(*status, '\n')) {
      if (absl::ConsumePrefix(&line, "NSpid:") && absl::EndsWith(line, "\t1")) {
        return pid;
      }
    }
  }
  return 0;
}

pid_t StoppedDescendant(pid_t root) {
  for (pid_t pid : Descendants(root)) {
    const std::optional<ProcStat> stat = ReadProcStat(pid);
    if (stat && stat->state == 'T') return pid;
  }
  return -1;
}

absl::StatusOr<std::vector<std::string>> PidNamespaceLauncher() {
  if (geteuid() != 0) {
    return absl::FailedPreconditionError("unshare --pid needs root");
  }
  const std::vector<std::string> launcher = {"/usr/bin/unshare", "--pid",
                                             "--fork",           "--mount-proc",
                                             "--kill-child",     "--"};
  std::vector<std::string> probe = launcher;
  probe.push_back("/bin/true");
  absl::StatusOr<ProcessResult> tried =
      RunProcess(probe, {}, absl::Seconds(10));
  if (!tried.ok()) return tried.status();
  if (tried->exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot make a pid namespace: ", tried->err));
  }
  return launcher;
}

}  // namespace upper::testing
