// UpperdProcess: a real upperd, started on free loopback ports for one test.
//
// Start() spawns the binary (UPPERD_PATH, baked in by CMake) with
// --bind=127.0.0.1 and port 0 for every endpoint unless the test says
// otherwise, collects its stderr on a reader thread, and returns once the
// data port's "listening" line is logged. Addresses of the other endpoints
// (admin, metrics) are found the same way, from their "listening
// service=<name>" lines. The destructor SIGKILLs and reaps a process that is
// still running, so a failing test never leaks an upperd.
//
// Thread-safe: the log may be read while the reader thread appends to it.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace upper::testing {

// The path of the upperd binary under test.
const char* UpperdPath();

struct UpperdOptions {
  // The upperd binary to run; empty: UpperdPath() (for a copy elsewhere).
  std::string binary;
  std::vector<std::string> args;           // extra flags, e.g. "--mode=fork"
  std::map<std::string, std::string> env;  // added to the environment
  bool wait_until_listening = true;        // false for start-up failures
  // false: pass none of the harness's --bind=127.0.0.1 and --*_port=0 flags
  // (they would override UPPER_BIND, UPPER_DATA_PORT... under test).
  bool default_endpoint_flags = true;
  // RLIMIT_NOFILE (soft and hard) upperd starts with. posix_spawn cannot set
  // limits, so upperd is started through util-linux `prlimit`, which sets
  // the limit and execs upperd in the same process: race-free, same pid.
  std::optional<uint64_t> rlimit_nofile;
  // The hard RLIMIT_NOFILE, when it differs from the soft rlimit_nofile
  // (containerd 2.x starts containers at 1024 soft, 524288 hard).
  std::optional<uint64_t> rlimit_nofile_hard;
  // Run upperd under this uid and gid (no supplementary groups) through
  // util-linux `setpriv`, which also execs in place. For limits root
  // ignores (RLIMIT_NPROC). Needs root.
  std::optional<uint32_t> run_as_uid;
  // A program that runs upperd, with its arguments, put before everything
  // else: e.g. {"/usr/bin/unshare", "--pid", "--fork", "--"} to make upperd
  // PID 1 of a new pid namespace. A launcher that forks (unshare --fork)
  // makes pid() its own pid: signal upperd by its own pid then, and
  // WaitExit() returns the launcher's exit code (unshare passes upperd's on).
  std::vector<std::string> launcher;
  // The capacity of upperd's stderr pipe (F_SETPIPE_SZ), e.g. 4096 so that
  // a paused reader (PauseStderr) fills it fast; unset: the kernel's 64 KiB.
  std::optional<int> stderr_pipe_bytes;
};

class UpperdProcess {
 public:
  static absl::StatusOr<std::unique_ptr<UpperdProcess>> Start(
      UpperdOptions options = {});
  ~UpperdProcess();

  pid_t pid() const { return pid_; }
  // Port of the endpoint whose "listening service=<service>" line was logged
  // ("data", "admin", "metrics"); waits up to `timeout` for the line.
  absl::StatusOr<uint16_t> Port(const std::string& service,
                                absl::Duration timeout = absl::Seconds(10));
  uint16_t data_port() const { return data_port_; }

  // Sends `signal` to upperd.
  void Signal(int signal);
  // Waits for upperd to exit; its exit code, or -signal if killed.
  absl::StatusOr<int> WaitExit(absl::Duration timeout);
  bool running() const { return pid_ > 0; }

  // Stops (true) or resumes (false) reading upperd's stderr, to play a stuck
  // log collector: once the pipe is full, upperd's writes to stderr block.
  // The reader may take one more chunk after the pause.
  void PauseStderr(bool paused);

  // Everything upperd wrote to stderr so far.
  std::string Log() const;
  // Waits until a log line contains `needle`; returns that line.
  absl::StatusOr<std::string> WaitForLog(const std::string& needle,
                                         absl::Duration timeout);
  // The value of `key=` in the last log line containing `event` (text
  // format), e.g. Field("stopped", "bytes_in").
  std::optional<std::string> Field(const std::string& event,
                                   const std::string& key) const;

 private:
  UpperdProcess(pid_t pid, int stderr_fd);
  void ReadStderr(int fd);

  pid_t pid_;
  uint16_t data_port_ = 0;
  mutable std::mutex mu_;
  std::condition_variable grew_;
  std::string log_;          // under mu_
  bool log_closed_ = false;  // under mu_
  bool paused_ = false;      // under mu_
  std::thread reader_;
};

}  // namespace upper::testing
