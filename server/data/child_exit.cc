#include "server/data/child_exit.h"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "server/base/log.h"

namespace upper {
namespace {

// waitid's siginfo as the status word waitpid() would have returned.
int WaitStatusOf(const siginfo_t& info) {
  switch (info.si_code) {
    case CLD_EXITED:
      return W_EXITCODE(info.si_status, 0);
    case CLD_DUMPED:
      return info.si_status | WCOREFLAG;
    default:  // CLD_KILLED
      return info.si_status;
  }
}

}  // namespace

std::optional<ExitedChild> PeekExitedChild() { return PeekExitedChild(0); }

std::optional<ExitedChild> PeekExitedChild(pid_t pid) {
  for (;;) {
    siginfo_t info;
    std::memset(&info, 0, sizeof(info));
    if (waitid(pid == 0 ? P_ALL : P_PID, static_cast<id_t>(pid), &info,
               WEXITED | WNOHANG | WNOWAIT) != 0) {
      if (errno == EINTR) continue;
      return std::nullopt;  // ECHILD: no children
    }
    if (info.si_pid == 0) return std::nullopt;  // none has exited
    return ExitedChild{info.si_pid, WaitStatusOf(info)};
  }
}

void ReapChild(pid_t pid) {
  int status = 0;
  RetryOnEintr([&] { return waitpid(pid, &status, WNOHANG); });
}

std::string DescribeWaitStatus(int status) {
  if (WIFSIGNALED(status)) {
    return absl::StrCat("signal ", strsignal(WTERMSIG(status)));
  }
  return absl::StrCat("exit ", WEXITSTATUS(status));
}

void LogWorkerCrash(const WorkerCrash& crash) {
  LogEvent(LogLevel::kWarning, "worker_crashed",
           {{"id", crash.id},
            {"pid", static_cast<int64_t>(crash.pid)},
            {"status", DescribeWaitStatus(crash.status)}});
}

}  // namespace upper
