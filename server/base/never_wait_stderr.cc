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
bool ReopenPipeNonBlocking() {
  const int copy = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
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
  if (S_ISFIFO(st.st_mode)) {
    return NeverWaitStderr(ReopenPipeNonBlocking() ? Kind::kPlain
                                                   : Kind::kPollFirst);
  }
  return NeverWaitStderr(Kind::kPlain);
}

bool NeverWaitStderr::Write(absl::string_view line) const {
  absl::string_view rest =
      line.substr(0, std::min<size_t>(line.size(), PIPE_BUF));
  if (kind_ == Kind::kPollFirst && !WritableNow()) return false;
  while (!rest.empty()) {
    const ssize_t n = kind_ == Kind::kSocket
                          ? send(STDERR_FILENO, rest.data(), rest.size(),
                                 MSG_DONTWAIT | MSG_NOSIGNAL)
                          : write(STDERR_FILENO, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    // EAGAIN: the reader is behind, the line is dropped; a partial write
    // (a socket, a file at its size limit) ends here too, rather than wait.
    if (n <= 0 || static_cast<size_t>(n) != rest.size()) return false;
    rest.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace upper
