#include "tests/support/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace upper::testing {

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    const std::vector<std::string>& argv_in,
    const std::map<std::string, std::string>& env_in) {
  std::vector<std::string> args = argv_in;
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "UPPER")) env.emplace_back(*e);
  }
  for (const auto& [key, value] : env_in) {
    env.push_back(absl::StrCat(key, "=", value));
  }
  std::vector<char*> argv, envp;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0)
    return absl::ErrnoToStatus(errno, "pipe2");
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    const int saved = errno;
    close(out_pipe[0]);
    close(out_pipe[1]);
    return absl::ErrnoToStatus(saved, "pipe2");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  // In-process gRPC servers may leave signals blocked or ignored in the
  // test; the tool must start with a shell's defaults.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int err =
      posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (err != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return absl::ErrnoToStatus(err, absl::StrCat("posix_spawn ", argv[0]));
  }
  return std::unique_ptr<Subprocess>(
      new Subprocess(pid, out_pipe[0], err_pipe[0]));
}

Subprocess::Subprocess(pid_t pid, int out_fd, int err_fd)
    : pid_(pid),
      out_reader_([this, out_fd] { Read(out_fd, &out_, &out_closed_); }),
      err_reader_([this, err_fd] { Read(err_fd, &err_, &err_closed_); }) {}

Subprocess::~Subprocess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (out_reader_.joinable()) out_reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
}

void Subprocess::Read(int fd, std::string* sink, bool* closed) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard lock(mu_);
    sink->append(buffer, static_cast<size_t>(n));
    grew_.notify_all();
  }
  close(fd);
  std::lock_guard lock(mu_);
  *closed = true;
  grew_.notify_all();
}

std::string Subprocess::Stdout() const {
  std::lock_guard lock(mu_);
  return out_;
}

std::string Subprocess::Stderr() const {
  std::lock_guard lock(mu_);
  return err_;
}

bool Subprocess::WaitForStdout(const std::string& needle,
                               absl::Duration timeout) {
  std::unique_lock lock(mu_);
  return grew_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] {
    return absl::StrContains(out_, needle) || out_closed_;
  }) && absl::StrContains(out_, needle);
}

void Subprocess::Signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

absl::StatusOr<ProcessResult> Subprocess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("already reaped");
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "waitpid");
    if (absl::Now() >= deadline) {
      kill(pid_, SIGKILL);
      return absl::DeadlineExceededError(
          absl::StrCat("did not exit within ", absl::FormatDuration(timeout),
                       "; stdout:\n", Stdout(), "\nstderr:\n", Stderr()));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  pid_ = -1;
  ProcessResult result;
  result.exit_code =
      WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  {
    // The child is gone; its pipes end unless it left a grandchild holding
    // them, hence the bound.
    std::unique_lock lock(mu_);
    grew_.wait_for(lock, std::chrono::seconds(5),
                   [&] { return out_closed_ && err_closed_; });
    result.out = out_;
    result.err = err_;
  }
  return result;
}

absl::StatusOr<ProcessResult> RunProcess(
    const std::vector<std::string>& argv,
    const std::map<std::string, std::string>& env, absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start(argv, env);
  if (!process.ok()) return process.status();
  return (*process)->Wait(timeout);
}

}  // namespace upper::testing
