// The process-wide limits that cap how many connections upperd can hold,
// read (and, for open files, raised) once at start-up:
// - RLIMIT_NOFILE: a thread-mode connection holds one descriptor in upperd
//   for its life. (A fork-mode connection's descriptor is passed to the fork
//   server, which closes its copy once the child is forked, so it costs
//   upperd and the fork server one only for a moment; the mode can change at
//   runtime, so the check counts every connection as thread mode.) Container
//   runtimes such as containerd 2.x start processes with a soft limit of
//   1024 and a hard one of 524288: upperd raises the soft limit to the hard.
// - RLIMIT_NPROC and the cgroup's pids.max: every connection is a task (a
//   worker thread, or a forked child), and so is every spare thread of the
//   thread cache (--thread_spare_max) and every spare child of the fork
//   pool (--fork_spare_max).
// - The cgroup's memory limit: logged and reported, so that an operator can
//   compare it with the per-connection cost.
//
// Not thread-safe: call at start-up, before other threads exist (setrlimit
// changes the whole process).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace upper {

struct ResourceLimits {
  uint64_t open_files = 0;          // soft RLIMIT_NOFILE
  uint64_t open_files_hard = 0;     // hard RLIMIT_NOFILE
  uint64_t max_processes = 0;       // soft RLIMIT_NPROC; 0 = unlimited
  uint64_t pids_limit = 0;          // tightest cgroup pids.max; 0 = none found
  uint64_t memory_limit_bytes = 0;  // tightest cgroup memory limit; 0 = none
};

// Descriptors upperd holds besides its connections: stdio, the listeners
// (data, admin, metrics), the EMFILE reserve, the signalfd, the table memfd,
// the fork server's socket, gRPC's epoll and wake-up fds, the metrics
// server's eventfd and each admin or metrics client's socket (at most 16 of
// those: server/metrics/http_server.h). Under 30 when measured; 64 leaves
// room for admin clients.
inline constexpr uint64_t kOwnFdReserve = 64;
// Tasks upperd runs besides its connections: its own threads (event loop,
// gRPC's pollers and executor, the metrics server's one thread) and the
// fork server.
inline constexpr uint64_t kOwnTaskReserve = 64;

// Raises the soft RLIMIT_NOFILE to the hard limit (to fs.nr_open when the
// hard limit is unlimited). Errors name getrlimit or setrlimit.
absl::Status RaiseOpenFileLimit();

// Where the cgroup filesystem and this process' cgroup membership are.
struct CgroupFiles {
  std::string mount = "/sys/fs/cgroup";
  std::string self = "/proc/self/cgroup";
};

// The limits now in force. Errors name getrlimit; an unreadable cgroup is
// not an error (its limits read as 0, none found).
absl::StatusOr<ResourceLimits> ReadResourceLimits(
    const CgroupFiles& cgroup = {});

// The tightest limit in `file` on the path from this process' cgroup up to
// the root of its hierarchy: cgroup v2 (`mount`/cgroup.controllers exists)
// reads `mount`/<path>/`v2_file`; v1 reads `mount`/`v1_controller`/<path>/
// `v1_file`. Inside a container the cgroup is usually mounted at `mount`
// itself while /proc/self/cgroup names the host's path; the walk up reaches
// the container's own file then. nullopt when no limit is set ("max", or
// v1's page-rounded 2^63) or none is readable.
std::optional<uint64_t> CgroupLimit(const CgroupFiles& cgroup,
                                    absl::string_view v1_controller,
                                    absl::string_view v1_file,
                                    absl::string_view v2_file);

// One limit that --max_connections does not fit.
struct LimitShortfall {
  std::string limit;  // "open_files", "max_processes" or "pids"
  uint64_t available = 0;
  uint64_t needed = 0;  // max_connections + the reserve
};
// Every limit in `limits` too small for `max_connections` (plus
// `spare_threads` idle thread-mode workers and `spare_children` idle
// fork-mode children, for the task limits; and the spare children's
// sockets, for the fork server's open files).
std::vector<LimitShortfall> CheckLimits(const ResourceLimits& limits,
                                        uint32_t max_connections,
                                        uint32_t spare_threads = 0,
                                        uint32_t spare_children = 0);

}  // namespace upper
