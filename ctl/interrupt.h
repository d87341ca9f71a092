// InterruptCatcher: turns SIGINT and SIGTERM into a readable pipe for as
// long as the object lives, so a command can end cleanly on Ctrl-C instead
// of being killed. The handler only write()s one byte (async-signal-safe);
// whichever thread the kernel picks to run it, the pipe carries the news.
//
// One instance per process at a time (the handler has one global pipe);
// the destructor restores the previous handlers. Not thread-safe to
// construct or destroy; WaitFor() may be called from any one thread.
#pragma once

#include <signal.h>

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace upper::ctl {

class InterruptCatcher {
 public:
  // Fails (naming the call) when the pipe or handlers cannot be set up.
  static absl::StatusOr<std::unique_ptr<InterruptCatcher>> Install();
  ~InterruptCatcher();
  InterruptCatcher(const InterruptCatcher&) = delete;
  InterruptCatcher& operator=(const InterruptCatcher&) = delete;

  // True once a signal arrived; waits at most `timeout` for one.
  bool WaitFor(absl::Duration timeout);

 private:
  InterruptCatcher(int read_fd, int write_fd);

  int read_fd_;
  int write_fd_;
  bool interrupted_ = false;
  struct sigaction old_int_ = {};
  struct sigaction old_term_ = {};
};

}  // namespace upper::ctl
