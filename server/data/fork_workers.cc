#include "server/data/fork_workers.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errno_status.h"
#include "server/data/fork_protocol.h"

extern char** environ;

namespace upper {
namespace {

constexpr absl::Duration kRespawnInterval = absl::Seconds(1);

// A copy of `fd` numbered above the fds the child expects, so posix_spawn's
// dup2 onto kTableFd/kControlFd never starts from the same number (which
// would leave FD_CLOEXEC set).
absl::StatusOr<UniqueFd> DupAbove(int fd, int floor) {
  UniqueFd copy(fcntl(fd, F_DUPFD_CLOEXEC, floor));
  if (!copy) return ErrnoStatus("fcntl(F_DUPFD_CLOEXEC)", errno);
  return copy;
}

// The program to run as the fork server: upperd-fork-server from the
// directory of `executable` (a small static binary that forks several times
// faster, see fork_server_main.cc) when it is there, else `executable`
// itself, which runs the same code in its helper role.
std::string ForkServerProgram(const std::string& executable) {
  char resolved[PATH_MAX];
  const ssize_t n =
      readlink(executable.c_str(), resolved, sizeof(resolved) - 1);
  const std::string path =
      n > 0 ? std::string(resolved, static_cast<std::size_t>(n)) : executable;
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return executable;
  std::string helper =
      absl::StrCat(path.substr(0, slash + 1), kForkServerProgram);
  return access(helper.c_str(), X_OK) == 0 ? helper : executable;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ForkWorkers>> ForkWorkers::Start(
    ConnectionTable& table, std::string executable, LogFormat log_format) {
  std::unique_ptr<ForkWorkers> workers(
      new ForkWorkers(table, std::move(executable), log_format));
  if (absl::Status s = workers->Spawn(); !s.ok()) return s;
  return workers;
}

ForkWorkers::~ForkWorkers() { Stop(absl::Seconds(2)); }

absl::Status ForkWorkers::Spawn() {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return ErrnoStatus("socketpair", errno);
  }
  UniqueFd ours(pair[0]);
  UniqueFd theirs(pair[1]);
  // A stuck fork server must not stall the accept loop for long.
  const timeval send_timeout = {1, 0};
  setsockopt(ours.get(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout,
             sizeof(send_timeout));

  absl::StatusOr<UniqueFd> table_copy = DupAbove(table_.memfd(), 10);
  if (!table_copy.ok()) return table_copy.status();
  absl::StatusOr<UniqueFd> control_copy = DupAbove(theirs.get(), 10);
  if (!control_copy.ok()) return control_copy.status();

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, table_copy->get(), kTableFd);
  posix_spawn_file_actions_adddup2(&actions, control_copy->get(), kControlFd);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGPIPE, SIGHUP}) {
    sigaddset(&defaults, sig);
  }
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  // Its own process group: a terminal's Ctrl-C reaches upperd, which drains,
  // not the children directly.
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);

  const std::string role(kForkServerRoleFlag);
  const std::string format = absl::StrCat(
      "--log_format=", log_format_ == LogFormat::kJson ? "json" : "text");
  std::vector<char*> argv = {const_cast<char*>("upperd"),
                             const_cast<char*>(role.c_str()),
                             const_cast<char*>(format.c_str()), nullptr};
  const std::string program = ForkServerProgram(executable_);
  pid_t pid = -1;
  const int err =
      posix_spawn(&pid, program.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    return ErrnoStatus(absl::StrCat("posix_spawn(", program, ")"), err);
  }
  pid_ = pid;
  control_ = std::move(ours);
  last_spawn_ = absl::Now();
  return absl::OkStatus();
}

absl::Status ForkWorkers::Dispatch(UniqueFd fd, uint32_t slot) {
  if (!control_) return absl::UnavailableError("fork server is down");
  const std::optional<ConnectionInfo> info = table_.Read(slot);
  if (!info) return absl::InternalError("dispatching a free slot");
  // Either way our copy of fd closes on return; on success the fork server
  // has its own.
  return SendForkRequest(control_.get(), {slot, info->generation}, fd.get());
}

bool ForkWorkers::Shutdown(uint32_t slot, uint64_t id, int signo) {
  // The slot's id and pid are read together (the table detects a reuse while
  // reading). The pid is free for reuse only between the reaper's waitpid and
  // its freeing the slot, microseconds; Linux hands pids out in sequence, so
  // hitting another process would need the whole pid space to wrap then.
  const std::optional<ConnectionInfo> info = table_.Read(slot);
  if (!info || info->id != id || info->mode != Mode::kFork || info->pid <= 0) {
    return false;
  }
  return kill(info->pid, signo) == 0;
}

bool ForkWorkers::OnChildExited(pid_t pid, int status) {
  if (pid == pid_) {
    pid_ = -1;
    control_.Reset();
    table_.CountForkServerRestart();
    LogEvent(LogLevel::kError, "fork_server_died",
             {{"pid", static_cast<int64_t>(pid)},
              {"status", WIFSIGNALED(status)
                             ? strsignal(WTERMSIG(status))
                             : absl::StrCat("exit ", WEXITSTATUS(status))}});
    AbandonUnforked();
    respawn_pending_ = true;
    Tick();
    return true;
  }
  // An orphan: a fork child whose fork server died before reaping it.
  if (std::optional<uint32_t> slot = table_.FindByPid(pid)) {
    table_.ReleaseExitedChild(*slot, status);
    return true;
  }
  return false;
}

void ForkWorkers::AbandonUnforked() {
  for (const ConnectionInfo& c : table_.Snapshot()) {
    if (c.mode == Mode::kFork && c.pid == 0) {
      table_.Abandon(c.slot, RejectReason::kForkFailed);
    }
  }
}

void ForkWorkers::Tick() {
  if (!respawn_pending_ || absl::Now() - last_spawn_ < kRespawnInterval) {
    return;
  }
  respawn_pending_ = false;
  if (absl::Status s = Spawn(); !s.ok()) {
    LogEvent(LogLevel::kError, "fork_server_restart_failed",
             {{"error", s.ToString()}});
    respawn_pending_ = true;
    last_spawn_ = absl::Now();
    return;
  }
  LogEvent(LogLevel::kInfo, "fork_server_restarted",
           {{"pid", static_cast<int64_t>(pid_)}});
}

absl::Duration ForkWorkers::TimeUntilTick() const {
  if (!respawn_pending_) return absl::InfiniteDuration();
  return std::max(absl::ZeroDuration(),
                  last_spawn_ + kRespawnInterval - absl::Now());
}

void ForkWorkers::Stop(absl::Duration timeout) {
  respawn_pending_ = false;
  control_.Reset();
  if (pid_ <= 0) return;
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno != EINTR)) break;
    if (absl::Now() >= deadline) {
      kill(pid_, SIGKILL);
      RetryOnEintr([&] { return waitpid(pid_, &status, 0); });
      break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  pid_ = -1;
}

}  // namespace upper
