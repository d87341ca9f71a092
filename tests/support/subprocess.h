// Subprocess: a program run by a test, with its stdout and stderr captured
// on reader threads, for testing command-line tools as users run them.
//
//   auto run = RunProcess({UpperctlPath(), "status"}, {}, absl::Seconds(30));
//   EXPECT_EQ(run->exit_code, 0);
//
// The child gets the test's environment minus every UPPER* variable (so a
// developer's UPPERCTL_ADDR cannot leak in) plus `env`. Every wait is
// bounded: on timeout the child is SIGKILLed; the destructor kills and
// reaps a child still running. Thread-safe: output may be read while the
// readers append.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace upper::testing {

struct ProcessResult {
  int exit_code = -1;  // or -signal when killed by one
  std::string out;
  std::string err;
};

class Subprocess {
 public:
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv,
      const std::map<std::string, std::string>& env = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  std::string Stdout() const;
  std::string Stderr() const;
  // Waits until stdout contains `needle` (false at timeout or EOF).
  bool WaitForStdout(const std::string& needle, absl::Duration timeout);
  void Signal(int signal);
  // Waits for the exit and the end of both pipes; DeadlineExceeded (after
  // a SIGKILL) if the child did not exit within `timeout`.
  absl::StatusOr<ProcessResult> Wait(absl::Duration timeout);

 private:
  Subprocess(pid_t pid, int out_fd, int err_fd);
  void Read(int fd, std::string* sink, bool* closed);

  pid_t pid_;
  mutable std::mutex mu_;
  std::condition_variable grew_;
  std::string out_;          // under mu_
  std::string err_;          // under mu_
  bool out_closed_ = false;  // under mu_
  bool err_closed_ = false;  // under mu_
  std::thread out_reader_;
  std::thread err_reader_;
};

// Start + Wait.
absl::StatusOr<ProcessResult> RunProcess(
    const std::vector<std::string>& argv,
    const std::map<std::string, std::string>& env, absl::Duration timeout);

}  // namespace upper::testing
