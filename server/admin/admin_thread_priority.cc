#include "server/admin/admin_thread_priority.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/errno_status.h"
#include "server/base/log.h"

namespace upper {
namespace {

// The highest nice value Linux has (the lowest priority).
constexpr int kMaxNice = 19;

}  // namespace

// PRIO_PROCESS with a thread id addresses that one thread on Linux (nice is
// per thread there, unlike POSIX says); gettid() names the caller.
int ThisThreadNice() {
  errno = 0;
  const int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  return errno == 0 ? nice : 0;
}

absl::Status RaiseThisThreadNice(int increment) {
  if (increment <= 0) return absl::OkStatus();
  const int target = std::min(kMaxNice, ThisThreadNice() + increment);
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), target) != 0) {
    return ErrnoStatus("setpriority", errno);
  }
  return absl::OkStatus();
}

void RaiseThisThreadNiceOrWarn(int increment) {
  if (absl::Status s = RaiseThisThreadNice(increment); !s.ok()) {
    LogEvent(LogLevel::kWarning, "admin_nice_failed",
             {{"error", s.message()}, {"increment", increment}});
  }
}

}  // namespace upper
