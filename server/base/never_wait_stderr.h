// NeverWaitStderr: stderr written only when it takes a line at once, for a
// process that logs without a writer thread (the fork server: it must stay
// single-threaded, fork_server.cc) and must never wait on stderr's reader.
// A stuck log collector then costs the process its lines, not its progress.
//
//   NeverWaitStderr out = NeverWaitStderr::Prepare();
//   if (!out.Write(line)) ...count the drop...
//
// How "at once" is had depends on what fd 2 is:
//   - a pipe, FIFO or terminal (Docker's and the kubelet's log pipes, a
//     pty under `docker run -t`): reopened
//     through /proc/self/fd/2 with O_NONBLOCK, which makes a new open file
//     description of the same pipe, so the flag reaches no other process
//     sharing the pipe. A write of at most PIPE_BUF bytes is then all or
//     nothing (EAGAIN). Where the reopen is refused (the pipe belongs to
//     another user, /proc not mounted), each write first polls for POLLOUT
//     with a zero timeout; a free pipe slot holds PIPE_BUF, so the write
//     does not wait, unless another writer of the same pipe fills it between
//     the poll and the write (upperd's own writer thread): then it waits
//     for that reader like any writer would, and upperd's watchdog
//     (--fork_server_timeout) bounds what that costs fork mode.
//   - a socket (journald): send() with MSG_DONTWAIT. A stream socket may
//     take part of a line; the rest is dropped, and a newline goes first
//     next time, so that the next line starts on a line of its own.
//   - a regular file: a plain write, which waits on no reader.
// Lines longer than PIPE_BUF are cut to PIPE_BUF (the fork server's are a
// few hundred bytes), so that a line is never half written to a pipe.
//
// Not thread-safe; async-signal-safe apart from Prepare().
#pragma once

#include <sys/types.h>

#include "absl/strings/string_view.h"

namespace upper {

class NeverWaitStderr {
 public:
  // Chooses the strategy for the current fd 2 (and may replace fd 2 with a
  // non-blocking copy of the same pipe, which children then inherit).
  static NeverWaitStderr Prepare();

  // True when all of `line` (cut to PIPE_BUF) was written.
  bool Write(absl::string_view line);

  // The poll-before-write strategy whatever fd 2 is (as root the reopen of
  // a pipe never fails, so a test cannot reach it otherwise).
  static NeverWaitStderr PollFirstForTest() {
    return NeverWaitStderr(Kind::kPollFirst);
  }

 private:
  enum class Kind { kPlain, kPollFirst, kSocket };
  explicit NeverWaitStderr(Kind kind) : kind_(kind) {}
  // One write or send of `bytes`, not waited for: its count, or -1.
  ssize_t WriteOnce(absl::string_view bytes) const;

  Kind kind_;
  bool torn_ = false;  // the last line was cut short mid-way
};

}  // namespace upper
