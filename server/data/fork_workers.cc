#include "server/data/fork_workers.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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
// How often the watchdog samples the acknowledgement counter while work is
// outstanding, as a fraction of the hang timeout (and at least this often):
// a hang is then seen within 1.1 timeouts of the last acknowledgement. The
// counter lives in shared memory, which nothing can poll for, and the loop
// may sleep in poll() meanwhile.
constexpr int64_t kWatchSamplesPerTimeout = 10;
constexpr absl::Duration kMinWatchSample = absl::Milliseconds(10);

// The watchdog's clock: CLOCK_MONOTONIC on absl's time line (its epoch is
// the boot, not 1970), so that its arithmetic saturates like absl::Time's.
// Not the wall clock: a clock step (NTP, a VM restored from a snapshot)
// must not make a healthy fork server look silent for hours.
absl::Time MonotonicNow() {
  return absl::UnixEpoch() +
         absl::Nanoseconds(static_cast<int64_t>(NowNs(CLOCK_MONOTONIC)));
}

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

// The control socket: upperd's end and the fork server's.
struct ControlPair {
  UniqueFd ours;
  UniqueFd theirs;
};

absl::StatusOr<ControlPair> MakeControlPair() {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return ErrnoStatus("socketpair", errno);
  }
  ControlPair p = {UniqueFd(pair[0]), UniqueFd(pair[1])};
  // Our end only (each end is its own open file): a stuck fork server must
  // never stall the event loop, which queues on EAGAIN and polls POLLOUT.
  // The fork server's end stays blocking, as it always was (it polls).
  if (fcntl(p.ours.get(), F_SETFL, O_NONBLOCK) != 0) {
    return ErrnoStatus("fcntl(F_SETFL, O_NONBLOCK)", errno);
  }
  return p;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ForkWorkers>> ForkWorkers::Start(
    ConnectionTable& table, std::string executable, LogFormat log_format,
    absl::Duration hang_timeout) {
  std::unique_ptr<ForkWorkers> workers(
      new ForkWorkers(table, std::move(executable), log_format, hang_timeout));
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
  absl::StatusOr<ControlPair> pair = MakeControlPair();
  if (!pair.ok()) return pair.status();
  UniqueFd ours = std::move(pair->ours);
  UniqueFd theirs = std::move(pair->theirs);

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
  last_spawn_ = MonotonicNow();
  // No other fork server lives (the last one's death was handled), so the
  // counter holds still until this one acknowledges its first request.
  acked_at_spawn_ = last_acked_ = table_.ForkRequestsAcked();
  sent_ = 0;
  pool_stop_sent_ = false;
  last_progress_ = last_spawn_;
  killed_as_hung_ = false;
  return absl::OkStatus();
}

absl::Status ForkWorkers::Dispatch(UniqueFd fd, uint32_t slot) {
  if (!control_) return absl::UnavailableError("fork server is down");
  const std::optional<ConnectionInfo> info = table_.Read(slot);
  if (!info) return absl::InternalError("dispatching a free slot");
  const uint64_t acked = table_.ForkRequestsAcked();
  // Work becomes outstanding now: the watchdog's clock starts here, not at
  // the last acknowledgement, however long ago the loop last ran Tick().
  if (Outstanding(acked) == 0) {
    last_acked_ = acked;
    last_progress_ = MonotonicNow();
  }
  const ForkRequest request = {slot, info->generation};
  if (queue_.empty()) {  // else behind the queue, in order
    // Our copy of fd closes on return unless queued; once sent, the fork
    // server has its own.
    absl::StatusOr<bool> sent =
        SendForkRequest(control_.get(), request, fd.get());
    if (!sent.ok()) return sent.status();
    if (*sent) {
      ++sent_;
      return absl::OkStatus();
    }
  }
  // Past kQueueLimit a fork server that still takes hand-offs (a healthy one
  // behind a burst) keeps getting them, bounded by the table (every queued
  // connection holds a slot); one that took none for kStallGrace is stuck,
  // and what it would make wait is refused at once.
  if (acked != last_acked_) {
    last_acked_ = acked;
    last_progress_ = MonotonicNow();
  }
  if (queue_.size() >= kQueueLimit &&
      MonotonicNow() - last_progress_ >= kStallGrace) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the fork server takes no hand-off and ", queue_.size(),
                     " are queued"));
  }
  queue_.push_back({std::move(fd), request});
  return absl::OkStatus();
}

void ForkWorkers::Flush() {
  while (!queue_.empty() && control_) {
    QueuedHandOff& next = queue_.front();
    absl::StatusOr<bool> sent =
        SendForkRequest(control_.get(), next.request, next.fd.get());
    if (sent.ok() && !*sent) return;  // full again: the next POLLOUT
    if (sent.ok()) {
      ++sent_;
    } else {
      // The fork server is gone (EPIPE) or the send cannot carry the fd:
      // never sent, so ours to refuse, once (it leaves the queue here).
      table_.Abandon(next.request.slot, RejectReason::kForkFailed);
      if (MonotonicNow() - last_refusal_log_ > absl::Seconds(1)) {
        last_refusal_log_ = MonotonicNow();
        LogEvent(LogLevel::kWarning, "connection_refused",
                 {{"mode", "fork"}, {"error", sent.status().ToString()}});
      }
    }
    queue_.pop_front();  // its fd closes: sent, the fork server has a copy
  }
  SendPoolStop();
}

void ForkWorkers::StopPool() {
  pool_stop_wanted_ = true;
  SendPoolStop();
}

void ForkWorkers::SendPoolStop() {
  if (!pool_stop_wanted_ || pool_stop_sent_ || !control_) return;
  const absl::StatusOr<bool> sent =
      SendForkRequest(control_.get(), {kStopPoolSlot, 0}, -1);
  // Full: again at the next Flush() or Tick(). Failed: the fork server is
  // gone, and its idle children with it (they see their sockets close).
  if (sent.ok() && *sent) {
    ++sent_;  // acknowledged like any request: the watchdog waits for it
    pool_stop_sent_ = true;
  }
}

void ForkWorkers::RefuseQueued(RejectReason reason) {
  // Queued hand-offs were never sent, so no fork server (live or dead) ever
  // saw them: each slot is abandoned here once, and leaves the queue with
  // it, so nothing can send or abandon it again. The fd closes with it: the
  // client sees the end, no data.
  for (QueuedHandOff& q : queue_) table_.Abandon(q.request.slot, reason);
  queue_.clear();
}

uint64_t ForkWorkers::Outstanding(uint64_t acked) const {
  // A fork server acknowledges only what it took off the socket, which is
  // only what was sent to it; the min() keeps a torn assumption harmless.
  const uint64_t taken = std::min(sent_, acked - acked_at_spawn_);
  return sent_ - taken + queue_.size();
}

void ForkWorkers::Watch(absl::Time now) {
  if (pid_ <= 0 || killed_as_hung_ || hang_timeout_ == absl::ZeroDuration()) {
    return;
  }
  const absl::Time previous_look = last_watch_;
  last_watch_ = now;
  const uint64_t acked = table_.ForkRequestsAcked();
  const uint64_t outstanding = Outstanding(acked);
  // A loop that itself did not look for half the timeout (the whole pod
  // frozen by a cgroup, a VM paused, the host swapping) saw nothing of the
  // fork server meanwhile: its silence proves nothing, so the wait starts
  // again. A hang is judged only on samples the loop took in time. (At
  // least five samples late: a timeout of a few ms is shorter than a busy
  // loop's ordinary gaps.)
  const absl::Duration late = std::max(hang_timeout_ / 2, 5 * WatchSample());
  if (acked != last_acked_ || outstanding == 0 || now - previous_look > late) {
    last_acked_ = acked;
    last_progress_ = now;
    return;
  }
  if (now - last_progress_ >= hang_timeout_) KillHung(outstanding);
}

absl::Time ForkWorkers::NextWatch() const {
  if (pid_ <= 0 || killed_as_hung_ || hang_timeout_ == absl::ZeroDuration() ||
      Outstanding(table_.ForkRequestsAcked()) == 0) {
    return absl::InfiniteFuture();
  }
  return std::min(last_progress_ + hang_timeout_,
                  MonotonicNow() + WatchSample());
}

absl::Duration ForkWorkers::WatchSample() const {
  return std::max(kMinWatchSample, hang_timeout_ / kWatchSamplesPerTimeout);
}

void ForkWorkers::KillHung(uint64_t outstanding) {
  LogEvent(LogLevel::kError, "fork_server_unresponsive",
           {{"pid", static_cast<int64_t>(pid_)},
            {"outstanding", outstanding},
            {"timeout", absl::FormatDuration(hang_timeout_)}});
  table_.CountForkServerHang();
  killed_as_hung_ = true;
  // pid_ is upperd's own child and not reaped (OnForkServerDied clears pid_
  // before ReapChildren reaps it), so this pid cannot name another process.
  if (kill(pid_, SIGKILL) != 0) {
    LogEvent(LogLevel::kError, "fork_server_kill_failed",
             {{"pid", static_cast<int64_t>(pid_)},
              {"error", ErrnoStatus("kill", errno).ToString()}});
  }
  // Hand it nothing more: new fork-mode connections are refused
  // (fork_failed) until its replacement runs, and what waits here is
  // refused now rather than after its death is seen. What it already took
  // or holds in the socket is recovered by OnForkServerDied.
  control_.Reset();
  RefuseQueued(RejectReason::kForkFailed);
}

namespace {

// pidfd_send_signal. A SIGTERM becomes ChildCloseSignal() with the
// connection's tag (fork_protocol.h): a pool child that serves another
// connection by now ignores it. Any other signal (the drain's SIGKILL) goes
// as it is.
int SendSignal(int pidfd, int signo, uint64_t tag) {
  if (signo != SIGTERM) {
    return static_cast<int>(
        syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0));
  }
  siginfo_t info = {};
  info.si_signo = ChildCloseSignal();
  info.si_code = SI_QUEUE;
  info.si_pid = getpid();
  info.si_uid = getuid();
  info.si_value.sival_ptr =
      reinterpret_cast<void*>(static_cast<uintptr_t>(tag));
  return static_cast<int>(
      syscall(SYS_pidfd_send_signal, pidfd, info.si_signo, &info, 0));
}

}  // namespace

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
  if (SendSignal(pidfd.get(), signo, CloseTag(slot, info->generation)) == 0) {
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
  // Before the recovery below, which abandons every unclaimed fork slot:
  // these were never sent, so they are refused here, once, and the recovery
  // then finds their slots free and counts nothing for them again.
  RefuseQueued(RejectReason::kForkFailed);
  table_.CountForkServerRestart();
  LogEvent(LogLevel::kError, "fork_server_died",
           {{"pid", static_cast<int64_t>(pid)},
            {"status", DescribeWaitStatus(status)}});
  // Before the respawn below: no fork server writes the ledger meanwhile.
  table_.RecoverForkServerLedger(RejectReason::kForkFailed);
  table_.ZeroForkPoolIdle();  // its idle children leave as their sockets close
  respawn_pending_ = true;
  Tick();
}

void ForkWorkers::Tick() {
  Watch(MonotonicNow());
  SendPoolStop();
  if (!respawn_pending_ || MonotonicNow() - last_spawn_ < kRespawnInterval) {
    return;
  }
  respawn_pending_ = false;
  if (absl::Status s = Spawn(); !s.ok()) {
    LogEvent(LogLevel::kError, "fork_server_restart_failed",
             {{"error", s.ToString()}});
    respawn_pending_ = true;
    last_spawn_ = MonotonicNow();
    return;
  }
  LogEvent(LogLevel::kInfo, "fork_server_restarted",
           {{"pid", static_cast<int64_t>(pid_)}});
}

absl::Duration ForkWorkers::TimeUntilTick() const {
  absl::Time next = NextWatch();
  if (respawn_pending_) next = std::min(next, last_spawn_ + kRespawnInterval);
  if (next == absl::InfiniteFuture()) return absl::InfiniteDuration();
  return std::max(absl::ZeroDuration(), next - MonotonicNow());
}

void ForkWorkers::Stop(absl::Duration timeout) {
  respawn_pending_ = false;
  // Normally empty (the drain refused them); never leave a slot held.
  RefuseQueued(RejectReason::kForkFailed);
  control_.Reset();
  if (pid_ <= 0) return;
  const absl::Time deadline = MonotonicNow() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno != EINTR)) break;
    if (MonotonicNow() >= deadline) {
      kill(pid_, SIGKILL);
      RetryOnEintr([&] { return waitpid(pid_, &status, 0); });
      break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  pid_ = -1;
  // It is dead and no other fork server will run: what it had taken or
  // still had in its socket (a stopped one killed here, or one that lost
  // requests in flight) is settled as after any death, so the last totals
  // hold every connection once. A no-op after a clean exit.
  table_.RecoverForkServerLedger(RejectReason::kForkFailed);
}

}  // namespace upper
