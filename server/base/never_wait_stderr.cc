#include "server/base/never_wait_stderr.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace upper {
namespace {

// Replaces fd 2 with a new, non-blocking open file description of the same
// pipe; false when that cannot be had (fd 2 is left as it was).
bool ReopenNonBlocking() {
  const int copy =
      open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (copy < 0) return false;
  // dup2 clears FD_CLOEXEC on fd 2: children keep a (non-blocking) stderr.
  const bool moved = dup2(copy, STDERR_FILENO) == STDERR_FILENO;
  close(copy);
  return moved;
}

bool WritableNow() {
  pollfd pfd = {STDERR_FILENO, POLLOUT, 0};
  for (;;) {
    const int r = poll(&pfd, 1, 0);
    if (r < 0 && errno == EINTR) continue;
    return r == 1 && (pfd.revents & POLLOUT) != 0 &&
           (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) == 0;
  }
}

}  // namespace

NeverWaitStderr NeverWaitStderr::Prepare() {
  struct stat st;
  if (fstat(STDERR_FILENO, &st) != 0) return NeverWaitStderr(Kind::kPlain);
  if (S_ISSOCK(st.st_mode)) return NeverWaitStderr(Kind::kSocket);
  if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
    return NeverWaitStderr(ReopenNonBlocking() ? Kind::kPlain
                                               : Kind::kPollFirst);
  }
  return NeverWaitStderr(Kind::kPlain);  // a regular file: never waits
}

ssize_t NeverWaitStderr::WriteOnce(absl::string_view bytes) const {
  if (kind_ == Kind::kPollFirst && !WritableNow()) return -1;
  for (;;) {
    const ssize_t n = kind_ == Kind::kSocket
                          ? send(STDERR_FILENO, bytes.data(), bytes.size(),
                                 MSG_DONTWAIT | MSG_NOSIGNAL)
                          : write(STDERR_FILENO, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

bool NeverWaitStderr::Write(absl::string_view line) {
  // A line cut short before (a stream socket took part of it) is ended
  // first, so that this one does not run on from its fragment.
  if (torn_) {
    if (WriteOnce("\n") != 1) return false;
    torn_ = false;
  }
  const absl::string_view bytes =
      line.substr(0, std::min<size_t>(line.size(), PIPE_BUF));
  // EAGAIN: the reader is behind, the line is dropped. A pipe or a device
  // takes at most PIPE_BUF bytes all or nothing; a stream socket may take
  // part (the rest is dropped rather than waited for).
  const ssize_t n = WriteOnce(bytes);
  if (n > 0 && static_cast<size_t>(n) < bytes.size()) torn_ = true;
  return n > 0 && static_cast<size_t>(n) == bytes.size();
}

}  // namespace upper
