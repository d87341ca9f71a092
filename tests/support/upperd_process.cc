#include "tests/support/upperd_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

extern char** environ;

#ifndef UPPERD_PATH
#error "UPPERD_PATH must be the path of the upperd binary"
#endif

namespace upper::testing {

namespace {

// util-linux, in every Debian image (package util-linux, Essential: yes).
constexpr char kPrlimitPath[] = "/usr/bin/prlimit";
constexpr char kSetprivPath[] = "/usr/bin/setpriv";

}  // namespace

const char* UpperdPath() { return UPPERD_PATH; }

absl::StatusOr<std::unique_ptr<UpperdProcess>> UpperdProcess::Start(
    UpperdOptions options) {
  // The launcher first, then wrappers that exec in place (same pid), upperd
  // last.
  std::vector<std::string> args = options.launcher;
  if (options.rlimit_nofile) {
    args.push_back(kPrlimitPath);
    args.push_back(absl::StrCat(
        "--nofile=", *options.rlimit_nofile, ":",
        options.rlimit_nofile_hard.value_or(*options.rlimit_nofile)));
    args.push_back("--");
  }
  if (options.run_as_uid) {
    args.push_back(kSetprivPath);
    args.push_back(absl::StrCat("--reuid=", *options.run_as_uid));
    args.push_back(absl::StrCat("--regid=", *options.run_as_uid));
    args.push_back("--clear-groups");
    args.push_back("--");
  }
  const std::string upperd =
      options.binary.empty() ? UpperdPath() : options.binary;
  const std::string program = args.empty() ? upperd : args.front();
  args.push_back(upperd);
  if (options.default_endpoint_flags) {
    for (const char* arg :
         {"--bind=127.0.0.1", "--data_port=0", "--admin_port=0",
          "--metrics_port=0", "--metrics_bind=127.0.0.1"}) {
      args.push_back(arg);
    }
  }
  args.insert(args.end(), options.args.begin(), options.args.end());
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    // A test's environment must not leak into upperd's configuration.
    if (!absl::StartsWith(*e, "UPPER_")) env.emplace_back(*e);
  }
  for (const auto& [key, value] : options.env) {
    env.push_back(absl::StrCat(key, "=", value));
  }
  std::vector<char*> argv, envp;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return absl::ErrnoToStatus(errno, "pipe2");
  }
  if (options.stderr_pipe_bytes &&
      fcntl(pipe_fds[0], F_SETPIPE_SZ, *options.stderr_pipe_bytes) < 0) {
    const int err = errno;
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return absl::ErrnoToStatus(err, "F_SETPIPE_SZ");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  // The test process may block signals (in-process servers do); upperd must
  // start with a clean mask like from a shell.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  const int err = posix_spawn(&pid, program.c_str(), &actions, &attr,
                              argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(pipe_fds[1]);
  if (err != 0) {
    close(pipe_fds[0]);
    return absl::ErrnoToStatus(err, "posix_spawn upperd");
  }
  std::unique_ptr<UpperdProcess> process(new UpperdProcess(pid, pipe_fds[0]));
  if (!options.wait_until_listening) return process;
  absl::StatusOr<uint16_t> port = process->Port("data");
  if (!port.ok()) {
    return absl::Status(port.status().code(),
                        absl::StrCat(port.status().message(), "\nupperd log:\n",
                                     process->Log()));
  }
  process->data_port_ = *port;
  return process;
}

UpperdProcess::UpperdProcess(pid_t pid, int stderr_fd)
    : pid_(pid), reader_([this, stderr_fd] { ReadStderr(stderr_fd); }) {}

UpperdProcess::~UpperdProcess() {
  PauseStderr(false);  // else the reader never sees the pipe's EOF
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  // The pipe reaches EOF once upperd and every process holding its stderr
  // (the fork server, fork children) are gone; children of a SIGKILLed
  // upperd end with their connections, which the test has closed by now.
  if (reader_.joinable()) reader_.join();
}

void UpperdProcess::ReadStderr(int fd) {
  char buffer[4096];
  for (;;) {
    {
      std::unique_lock lock(mu_);
      grew_.wait(lock, [&] { return !paused_; });
    }
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard lock(mu_);
    log_.append(buffer, static_cast<size_t>(n));
    grew_.notify_all();
  }
  close(fd);
  std::lock_guard lock(mu_);
  log_closed_ = true;
  grew_.notify_all();
}

void UpperdProcess::PauseStderr(bool paused) {
  std::lock_guard lock(mu_);
  paused_ = paused;
  grew_.notify_all();
}

std::string UpperdProcess::Log() const {
  std::lock_guard lock(mu_);
  return log_;
}

absl::StatusOr<std::string> UpperdProcess::WaitForLog(const std::string& needle,
                                                      absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::unique_lock lock(mu_);
  for (;;) {
    for (absl::string_view line : absl::StrSplit(log_, '\n')) {
      if (absl::StrContains(line, needle)) return std::string(line);
    }
    if (log_closed_) {
      return absl::NotFoundError(
          absl::StrCat("upperd exited without logging '", needle, "'"));
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat("upperd did not log '", needle, "' in time"));
    }
    grew_.wait_for(lock, absl::ToChronoMilliseconds(left));
  }
}

std::optional<std::string> UpperdProcess::Field(const std::string& event,
                                                const std::string& key) const {
  std::optional<std::string> value;
  const std::string log = Log();
  const std::string marker = absl::StrCat(" ", event);
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::StrContains(line, marker)) continue;
    for (absl::string_view word : absl::StrSplit(line, ' ')) {
      if (absl::ConsumePrefix(&word, absl::StrCat(key, "="))) {
        value = std::string(word);
      }
    }
  }
  return value;
}

absl::StatusOr<uint16_t> UpperdProcess::Port(const std::string& service,
                                             absl::Duration timeout) {
  absl::StatusOr<std::string> line =
      WaitForLog(absl::StrCat("listening service=", service, " "), timeout);
  if (!line.ok()) return line.status();
  const size_t addr = line->find(" addr=");
  const size_t colon = line->find(' ', addr + 1);
  absl::string_view address =
      absl::string_view(*line).substr(addr + 6, colon - addr - 6);
  uint32_t port = 0;
  if (addr == std::string::npos ||
      !absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port) ||
      port == 0 || port > 65535) {
    return absl::InternalError(absl::StrCat("no port in: ", *line));
  }
  return static_cast<uint16_t>(port);
}

void UpperdProcess::Signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

absl::StatusOr<int> UpperdProcess::WaitExit(absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("upperd already reaped");
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      // Let the reader take upperd's last lines. The pipe ends when the fork
      // server and its children are gone too, which a clean exit implies;
      // after a crash they may live on, hence the bound.
      std::unique_lock lock(mu_);
      grew_.wait_for(lock, std::chrono::seconds(2),
                     [&] { return log_closed_; });
      return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    }
    if (r < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "waitpid");
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("upperd did not exit in time");
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

}  // namespace upper::testing
