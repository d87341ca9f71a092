// LogBuffer: a bounded queue of log lines in front of a file descriptor,
// drained by its own writer thread, so that whoever logs never waits on the
// reader of that fd (a stuck log collector with a full stderr pipe stops
// the writer thread, not the event loop).
//
//   LogBuffer buffer(STDERR_FILENO, LogBuffer::kDefaultCapacityBytes, format);
//   buffer.Append(line);  // a short mutex, a copy; never I/O
//
// The bound is in bytes (queued and not yet written, the writer's batch
// included), because that is what costs memory and a line's length is up to
// whoever logs (gRPC logs header values a peer chose). When a line does not
// fit it is dropped and counted; the next line that fits is preceded by one
// made by `drop_line(N)`, reporting the N lines dropped since the last one
// that got through.
//
// The writer waits for POLLOUT before each write of at most PIPE_BUF bytes
// (which then does not block on a pipe: a free pipe slot holds PIPE_BUF),
// and sends with MSG_DONTWAIT when the fd is a socket (journald): so it
// stays stoppable even while the reader is stuck, without ever setting
// O_NONBLOCK on the fd, whose open file description other processes share.
//
// Thread-safe. Not async-signal-safe: a fork child must not call it (the
// mutex may be held by a thread that does not exist in the child); log.cc
// checks the pid for that reason. The writer thread blocks every signal.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace upper {

class LogBuffer {
 public:
  // 1 MiB: about 7,000 lines of the usual ~150 bytes, several seconds of
  // the busiest rate-limited sources together, for a few-second hiccup of a
  // collector; small next to upperd's resident set, and a hard bound on what
  // a stuck collector costs.
  static constexpr size_t kDefaultCapacityBytes = size_t{1} << 20;

  using DropLine = std::function<std::string(uint64_t dropped)>;

  // Starts the writer thread for `fd` (not owned: stderr outlives this).
  LogBuffer(int fd, size_t capacity_bytes, DropLine drop_line);
  // Stop(absl::Seconds(1)).
  ~LogBuffer();
  LogBuffer(const LogBuffer&) = delete;
  LogBuffer& operator=(const LogBuffer&) = delete;

  // Queues one line; false when it did not fit and was dropped (counted).
  // After Stop, every line is dropped.
  bool Append(absl::string_view line);

  // Waits up to `timeout` until everything queued so far has been written;
  // true when it has.
  bool Flush(absl::Duration timeout);

  // Writes what is queued for up to `timeout`, then ends the writer thread
  // and joins it. Idempotent. If the writer is inside a write(2) that blocks
  // past the timeout (another process filled the pipe between its poll and
  // its write), the thread is detached instead: it owns its state through a
  // shared_ptr, and ends with the process.
  void Stop(absl::Duration timeout);

  // Lines dropped since construction.
  uint64_t dropped_total() const;

 private:
  struct State;
  static void Run(std::shared_ptr<State> state);

  std::shared_ptr<State> state_;
  std::thread writer_;
};

}  // namespace upper
