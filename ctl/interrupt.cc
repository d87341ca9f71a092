#include "ctl/interrupt.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>

#include "absl/status/status.h"
#include "common/errno_status.h"

namespace upper::ctl {
namespace {

std::atomic<int> g_interrupt_pipe{-1};

void OnInterrupt(int /*signal*/) {
  const int saved_errno = errno;
  const int fd = g_interrupt_pipe.load(std::memory_order_relaxed);
  if (fd >= 0) {
    const char byte = 1;
    // Nothing to do if the pipe is full: a byte is already waiting.
    [[maybe_unused]] const ssize_t ignored = write(fd, &byte, 1);
  }
  errno = saved_errno;
}

}  // namespace

absl::StatusOr<std::unique_ptr<InterruptCatcher>> InterruptCatcher::Install() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return ErrnoStatus("pipe2", errno);
  }
  std::unique_ptr<InterruptCatcher> catcher(
      new InterruptCatcher(fds[0], fds[1]));
  g_interrupt_pipe.store(fds[1]);
  struct sigaction action = {};
  action.sa_handler = &OnInterrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (sigaction(SIGINT, &action, &catcher->old_int_) != 0 ||
      sigaction(SIGTERM, &action, &catcher->old_term_) != 0) {
    return ErrnoStatus("sigaction", errno);
  }
  return catcher;
}

InterruptCatcher::InterruptCatcher(int read_fd, int write_fd)
    : read_fd_(read_fd), write_fd_(write_fd) {}

InterruptCatcher::~InterruptCatcher() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
  g_interrupt_pipe.store(-1);
  close(read_fd_);
  close(write_fd_);
}

bool InterruptCatcher::WaitFor(absl::Duration timeout) {
  if (interrupted_) return true;
  pollfd fd = {.fd = read_fd_, .events = POLLIN, .revents = 0};
  const int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  const int ready = poll(&fd, 1, ms);
  if (ready > 0) {
    char buffer[16];
    while (read(read_fd_, buffer, sizeof(buffer)) > 0) {
    }
    interrupted_ = true;
  }
  // poll's EINTR (our own handler ran) just means: look again next time.
  return interrupted_;
}

}  // namespace upper::ctl
