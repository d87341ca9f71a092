#include "server/data/signals.h"

#include <signal.h>
#include <sys/signalfd.h>

#include <cerrno>

#include "common/errno_status.h"

namespace upper {

absl::StatusOr<UniqueFd> TakeOverSignals() {
  if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
    return ErrnoStatus("signal(SIGPIPE)", errno);
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  if (int err = pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0) {
    return ErrnoStatus("pthread_sigmask", err);
  }
  UniqueFd fd(signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd) return ErrnoStatus("signalfd", errno);
  return fd;
}

}  // namespace upper
