#include "server/data/fork_workers.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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
#include "server/data/child_exit.h"
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

// `path` opened with O_PATH (no read or exec permission needed to hold it),
// numbered above the fds the child expects: the child resolves
// /proc/self/fd/N after posix_spawn's dup2 onto kTableFd and kControlFd, so
// N must not be one of those.
absl::StatusOr<UniqueFd> OpenProgram(const std::string& path) {
  UniqueFd fd(
      RetryOnEintr([&] { return open(path.c_str(), O_PATH | O_CLOEXEC); }));
  if (!fd) return ErrnoStatus(absl::StrCat("open(", path, ")"), errno);
  return DupAbove(fd.get(), 10);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ForkWorkers>> ForkWorkers::Start(
    ConnectionTable& table, std::string executable, LogFormat log_format) {
  std::unique_ptr<ForkWorkers> workers(
      new ForkWorkers(table, std::move(executable), log_format));
  workers->program_path_ = ForkServerProgram(workers->executable_);
  absl::StatusOr<UniqueFd> program = OpenProgram(workers->program_path_);
  if (!program.ok()) return program.status();
  workers->program_ = *std::move(program);
  if (absl::Status s = workers->Spawn(); !s.ok()) return s;
  return workers;
}

std::string ForkWorkers::SpawnPath() const {
  // posix_spawn's child has a copy of our fd table, so /proc/self/fd/N names
  // the file we opened. execve resolves it before it closes close-on-exec
  // fds, which is enough for an ELF program (a script's interpreter would
  // find the fd gone; the fork server is never one).
  std::string by_fd = absl::StrCat("/proc/self/fd/", program_.get());
  if (access(by_fd.c_str(), X_OK) == 0) return by_fd;
  const int err = errno;  // /proc is not mounted (ENOENT), most likely
  LogEvent(
      LogLevel::kWarning, "fork_server_started_by_path",
      {{"path", program_path_},
       {"reason",
        ErrnoStatus(absl::StrCat("access(", by_fd, ")"), err).ToString()}});
  return program_path_;
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
  const std::string program = SpawnPath();
  pid_t pid = -1;
  const int err =
      posix_spawn(&pid, program.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    return ErrnoStatus(absl::StrCat("posix_spawn(", program_path_, ")"), err);
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

CloseDelivery ForkWorkers::Shutdown(uint32_t slot, uint64_t id, int signo,
                                    int* error) {
  const std::optional<ConnectionInfo> info = table_.Read(slot);
  if (!info || info->id != id || info->mode != Mode::kFork) {
    return CloseDelivery::kEnded;
  }
  if (info->pid <= 0) return CloseDelivery::kPending;
  const auto fail = [error](int err) {
    if (error != nullptr) *error = err;
    return CloseDelivery::kFailed;
  };
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, info->pid, 0)));
  if (!pidfd) {
    return errno == ESRCH ? CloseDelivery::kEnded : fail(errno);
  }
  // Exits are released before they are reaped (child_exit.h), so while the
  // slot still names this pid, unreleased, the pid is that child's: the pidfd
  // opened before this check refers to it, whatever happens to the pid later.
  if (!table_.HoldsWorker(slot, info->generation, info->pid)) {
    return CloseDelivery::kEnded;
  }
  if (syscall(SYS_pidfd_send_signal, pidfd.get(), signo, nullptr, 0) == 0) {
    return CloseDelivery::kSignalled;
  }
  return errno == ESRCH ? CloseDelivery::kEnded : fail(errno);
}

bool ForkWorkers::OnChildExited(pid_t pid, int status) {
  if (pid == dead_unpeeked_) {
    dead_unpeeked_ = -1;
    return true;
  }
  if (pid == pid_) {
    OnForkServerDied(status);
    return true;
  }
  // An orphan: a fork child whose fork server died before releasing it. The
  // kernel re-parents it as that fork server exits, so it is dead; if it is
  // the current one, its death is handled (its ledger recovered) first, or
  // a release it committed but did not finish would be counted again here.
  if (pid_ > 0) {
    if (std::optional<ExitedChild> server = PeekExitedChild(pid_)) {
      dead_unpeeked_ = pid_;
      OnForkServerDied(server->status);
    }
  }
  if (std::optional<uint32_t> slot = table_.FindByPid(pid)) {
    if (std::optional<WorkerCrash> crash =
            table_.ReleaseExitedChild(*slot, status)) {
      LogWorkerCrash(*crash);
    }
    return true;
  }
  return false;
}

void ForkWorkers::OnForkServerDied(int status) {
  const pid_t pid = pid_;
  pid_ = -1;
  control_.Reset();
  table_.CountForkServerRestart();
  LogEvent(LogLevel::kError, "fork_server_died",
           {{"pid", static_cast<int64_t>(pid)},
            {"status", DescribeWaitStatus(status)}});
  // Before the respawn below: no fork server writes the ledger meanwhile.
  table_.RecoverForkServerLedger(RejectReason::kForkFailed);
  respawn_pending_ = true;
  Tick();
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
