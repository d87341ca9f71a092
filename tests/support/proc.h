// Test-side /proc readers for resource checks on a real upperd: CPU time,
// resident memory, threads, descriptors and what they point at, listening
// sockets, and the tasks a uid runs (what RLIMIT_NPROC counts). Plus raising
// the test process's own fd limit for suites with thousands of sockets.
//
// Each call reads /proc afresh; values are snapshots of a moving process.
// Thread-safe (no shared state).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace upper::testing {

// The whole of a /proc file; nullopt if it cannot be read (the process is
// gone, or exits while we read).
std::optional<std::string> ReadProcFile(const std::string& path);

// The state letter ('R', 'S', 'Z'...) and parent of `pid` from
// /proc/pid/stat; nullopt if it is gone.
struct ProcStat {
  char state = 0;
  pid_t ppid = 0;
};
std::optional<ProcStat> ReadProcStat(pid_t pid);

// Raises this process's soft RLIMIT_NOFILE to `wanted` (children spawned
// afterwards inherit it). Fails if the hard limit is lower.
absl::Status RaiseFdLimit(uint64_t wanted);

// User plus system CPU time `pid` has used, in seconds (from
// /proc/pid/stat, clock-tick resolution); nullopt if it is gone.
std::optional<double> CpuSeconds(pid_t pid);

// Resident set size in KiB (VmRSS); nullopt if it is gone.
std::optional<int64_t> RssKib(pid_t pid);
// The shared-memory part of it (RssShmem: for upperd, the connection table's
// pages touched so far) and the rest (RssAnon + RssFile: heap, stacks,
// binary), in KiB.
std::optional<int64_t> SharedRssKib(pid_t pid);
std::optional<int64_t> PrivateRssKib(pid_t pid);

// Threads of `pid` (entries of /proc/pid/task); -1 if it is gone.
int CountThreads(pid_t pid);

// Every open descriptor of `pid` and what it points at (readlink of
// /proc/pid/fd/N): "/dev/null", "socket:[1234]", "pipe:[5]", ...
std::map<int, std::string> FdTargets(pid_t pid);

// Inodes of every TCP socket in LISTEN state, IPv4 and IPv6, from
// /proc/net/tcp{,6} (the caller's network namespace).
std::set<uint64_t> ListeningTcpInodes();
// The inode in "socket:[1234]", or nullopt for anything else.
std::optional<uint64_t> SocketInode(const std::string& fd_target);

// Tasks (threads of all processes) whose real uid is `uid`: the number
// RLIMIT_NPROC is checked against when such a process forks.
int CountTasksOfUid(uid_t uid);

// The descendant of `launcher` that is PID 1 of its own pid namespace (the
// last NSpid entry is 1), or 0: upperd's host pid when it runs under
// `unshare --pid --fork`.
pid_t NamespaceInit(pid_t launcher);

// The argv prefix that runs a program as PID 1 of a new pid namespace
// (`unshare --pid --fork --mount-proc --kill-child --`), tried once with
// /bin/true; or why it cannot run here (not root, or unshare refused, e.g.
// EPERM in an unprivileged container), for a GTEST_SKIP.
absl::StatusOr<std::vector<std::string>> PidNamespaceLauncher();

// A descendant of `root` stopped by a signal (state T), or -1.
pid_t StoppedDescendant(pid_t root);

}  // namespace upper::testing
