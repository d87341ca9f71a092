#include "server/data/data_plane.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/build_info.h"
#include "common/errno_status.h"
#include "server/base/log.h"
#include "server/data/child_exit.h"
#include "server/data/signals.h"

namespace upper {
namespace {

// How many connections one wake-up accepts before looking at signals again.
constexpr int kAcceptBatch = 256;
// Pause accepting this long when fds or kernel memory run out, so the loop
// never spins on a queue it cannot take from.
constexpr absl::Duration kAcceptBackoff = absl::Milliseconds(50);
// The drain's bounds after --drain_timeout, which add up to upperd's
// promise to exit within --drain_timeout + 5 s (README, docs/guarantees.md):
// how long closed connections (threads: shutdown; children: SIGTERM) get to
// go before every fork child left is SIGKILLed;
constexpr absl::Duration kCloseGrace = absl::Seconds(2);
// how long after the SIGKILLs the fork server gets to reap those children
// (and thread workers, shut down again, to end) before the drain gives up;
constexpr absl::Duration kKillGrace = absl::Seconds(1);
// how long stopping the thread workers and the fork server may take then,
// together. ThreadWorkers' destructor (kStopWait, 0.5 s) and the admin
// plane's stop (0.25 s) come last.
constexpr absl::Duration kStopGrace = absl::Seconds(1);
// While draining, how often to look at the active count.
constexpr absl::Duration kDrainTick = absl::Milliseconds(20);

uint64_t Rejected(const TableTotals& t, RejectReason reason) {
  return t.rejected_total[static_cast<int>(reason)];
}

uint64_t Closed(const TableTotals& t, CloseReason reason) {
  uint64_t n = 0;
  for (int m = 0; m < kModeCount; ++m) {
    n += t.closed_total[m][static_cast<int>(reason)];
  }
  return n;
}

// The limits in force once the soft fd limit is raised. Failing to raise it
// is not fatal (upperd serves what the old limit allows, and the start line
// says how much that is), but it is logged.
absl::StatusOr<ResourceLimits> RaiseAndReadLimits() {
  if (absl::Status s = RaiseOpenFileLimit(); !s.ok()) {
    LogEvent(LogLevel::kWarning, "fd_limit_not_raised",
             {{"error", s.ToString()}});
  }
  return ReadResourceLimits();
}

// A limit for the log: 0 (none found) reads as "unlimited".
std::string LimitText(uint64_t limit) {
  return limit == 0 ? "unlimited" : absl::StrCat(limit);
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataPlane>> DataPlane::Create(
    const Config& config, const std::string& executable) {
  absl::StatusOr<ResourceLimits> limits = RaiseAndReadLimits();
  if (!limits.ok()) return limits.status();
  absl::StatusOr<UniqueFd> signals = TakeOverSignals();
  if (!signals.ok()) return signals.status();
  // Children of a dead fork server become ours, so none is left unreaped.
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    return ErrnoStatus("prctl(PR_SET_CHILD_SUBREAPER)", errno);
  }
  absl::StatusOr<std::unique_ptr<ConnectionTable>> table =
      ConnectionTable::Create(config.max_connections);
  if (!table.ok()) return table.status();
  (*table)->SetMode(config.mode);
  (*table)->SetIdleTimeoutMs(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(config.idle_timeout)));
  (*table)->SetSendTimeoutMs(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(config.send_timeout)));
  (*table)->SetForkPoolSettings(
      {.spare_min = config.fork_spare_min,
       .spare_max = config.fork_spare_max,
       .spare_timeout_ms = static_cast<uint32_t>(
           absl::ToInt64Milliseconds(config.fork_spare_timeout)),
       .child_max_connections = config.fork_child_max_connections});

  absl::StatusOr<Listener> listener =
      Listener::Listen(config.bind, config.data_port);
  if (!listener.ok()) {
    return absl::Status(
        listener.status().code(),
        absl::StrCat(listener.status().message(), " (--bind/--data_port)"));
  }
  std::unique_ptr<DataPlane> server(
      new DataPlane(config, *limits, *std::move(signals), *std::move(table),
                    *std::move(listener)));
  absl::StatusOr<std::unique_ptr<ForkWorkers>> fork_workers =
      ForkWorkers::Start(*server->table_, executable, config.log_format,
                         config.fork_server_timeout);
  if (!fork_workers.ok()) return fork_workers.status();
  server->fork_workers_ = *std::move(fork_workers);
  return server;
}

DataPlane::DataPlane(const Config& config, const ResourceLimits& limits,
                     UniqueFd signals, std::unique_ptr<ConnectionTable> table,
                     Listener listener)
    : config_(config),
      limits_(limits),
      started_at_(absl::Now()),
      signals_(std::move(signals)),
      table_(std::move(table)),
      listener_(std::move(listener)),
      thread_workers_(std::make_unique<ThreadWorkers>(
          table_, ThreadWorkers::CacheOptions{
                      .min_spare = config.thread_spare_min,
                      .max_spare = config.thread_spare_max,
                      .spare_timeout = config.thread_spare_timeout})) {}

DataPlane::~DataPlane() {
  // Workers first: they write into the table.
  fork_workers_.reset();
  thread_workers_.reset();
}

Mode DataPlane::SetMode(Mode mode) {
  const Mode previous = table_->SetMode(mode);
  if (previous != mode) {
    LogEvent(LogLevel::kInfo, "mode_changed",
             {{"from", ModeName(previous)}, {"to", ModeName(mode)}});
  }
  return previous;
}

absl::StatusOr<ConnectionInfo> DataPlane::CloseConnection(uint64_t id,
                                                          CloseReason reason) {
  const auto not_found = [id] {
    return absl::NotFoundError(absl::StrCat("no live connection with id ", id));
  };
  const std::optional<ConnectionInfo> target = table_->Find(id);
  if (!target) return not_found();
  // The request is the one point the close is decided: marked here, the
  // connection ends counted as `reason`; not marked (it ended, or the slot
  // holds another connection now), NOT_FOUND and nothing counted.
  ConnectionInfo info;
  const CloseRequestResult request =
      table_->RequestClose(target->slot, id, reason, &info);
  if (request == CloseRequestResult::kNotFound) return not_found();
  int error = 0;
  if (Deliver(info, SIGTERM, &error) != CloseDelivery::kFailed) return info;
  // Nothing reached the worker: take the request back so that nothing is
  // counted for it, unless the connection ended meanwhile (then it was).
  if (request == CloseRequestResult::kRequested &&
      table_->WithdrawClose(info.slot, info.generation, reason)) {
    return absl::UnavailableError(
        absl::StrCat("could not signal the worker of connection ", id, " (pid ",
                     info.pid, "): ", std::strerror(error)));
  }
  return info;
}

CloseDelivery DataPlane::Deliver(const ConnectionInfo& c, int signo,
                                 int* error) {
  if (c.mode == Mode::kThread) {
    // Unregistered: not started yet (it checks the request when it starts)
    // or ended.
    return thread_workers_->Shutdown(c.slot, c.id) ? CloseDelivery::kSignalled
                                                   : CloseDelivery::kPending;
  }
  return fork_workers_->Shutdown(c.slot, c.id, signo, error);
}

void DataPlane::LogStart() const {
  LogEvent(LogLevel::kInfo, "listening",
           {{"service", "data"},
            {"addr", listener_.address()},
            {"mode", ModeName(table_->current_mode())},
            {"max_connections", config_.max_connections},
            {"idle_timeout", absl::FormatDuration(config_.idle_timeout)},
            {"send_timeout", absl::FormatDuration(config_.send_timeout)},
            {"version", Version()},
            {"pid", static_cast<int64_t>(getpid())},
            {"open_files_limit", limits_.open_files},
            {"open_files_hard_limit", limits_.open_files_hard},
            {"max_processes", LimitText(limits_.max_processes)},
            {"pids_limit", LimitText(limits_.pids_limit)},
            {"memory_limit_bytes", LimitText(limits_.memory_limit_bytes)}});
  // Connections past such a limit are refused (fd_exhausted, fork_failed,
  // thread_failed) and counted, but an operator should know before then.
  // Spare threads are threads that served a connection: at most
  // max_connections of them.
  const uint32_t spare_threads =
      std::min(config_.thread_spare_max, config_.max_connections);
  const uint32_t spare_children =
      table_->fork_pool_settings().MaxIdleChildren(config_.max_connections);
  for (const LimitShortfall& s : CheckLimits(limits_, config_.max_connections,
                                             spare_threads, spare_children)) {
    LogEvent(LogLevel::kWarning, "limit_below_max_connections",
             {{"limit", s.limit},
              {"available", s.available},
              {"needed", s.needed},
              {"max_connections", config_.max_connections}});
  }
}

int DataPlane::Run() {
  LogStart();
  for (;;) {
    // The control socket only while hand-offs wait for room in it (a
    // negative fd is ignored by poll).
    pollfd fds[3] = {{signals_.get(), POLLIN, 0},
                     {-1, POLLIN, 0},
                     {fork_workers_->pollout_fd(), POLLOUT, 0}};
    if (listener_.is_open() && absl::Now() >= accept_backoff_until_) {
      fds[1].fd = listener_.fd();
    }
    const absl::Duration timeout = PollTimeout();
    const int timeout_ms =
        timeout == absl::InfiniteDuration()
            ? -1
            : static_cast<int>(absl::ToInt64Milliseconds(
                  absl::Ceil(timeout, absl::Milliseconds(1))));
    if (poll(fds, 3, timeout_ms) < 0 && errno != EINTR) {
      LogEvent(LogLevel::kError, "poll_failed",
               {{"error", std::strerror(errno)}});
      absl::SleepFor(kAcceptBackoff);
    }
    if (fds[0].revents != 0) HandleSignals();
    // Before accepting: queued hand-offs go first, in order.
    if (fds[2].fd >= 0 && fds[2].revents != 0) fork_workers_->Flush();
    if (fds[1].fd >= 0 && fds[1].revents != 0 && listener_.is_open()) {
      AcceptConnections();
    }
    fork_workers_->Tick();
    if (draining_ && DrainOver()) break;
  }
  StopWorkers();
  LogFinalTotals();
  return 0;
}

bool DataPlane::DrainOver() {
  const uint64_t active = table_->ReadTotals().ActiveTotal();
  if (active == 0) {
    LogKilled();
    return true;
  }
  const absl::Time now = absl::Now();
  if (!closing_ && now >= drain_deadline_) {
    LogEvent(LogLevel::kWarning, "drain_timeout", {{"active", active}});
    CloseAll();
  }
  if (!closing_) return false;
  if (!killing_ && now >= close_deadline_) {
    // The close grace is over: whatever still runs ignored its close (a
    // child that ignores or cannot act on SIGTERM, a stopped one).
    killing_ = true;
    kill_deadline_ = now + kKillGrace;
    threads_shut_again_ = thread_workers_->ShutdownAll();
  }
  if (!killing_) {
    CloseAll();  // again: catches connections still on their way to a child
    return false;
  }
  if (now >= kill_deadline_) {
    LogKilled();
    LogEvent(LogLevel::kError, "drain_incomplete", {{"active", active}});
    return true;
  }
  KillAll();  // again, likewise
  return false;
}

void DataPlane::KillAll() {
  for (const LiveConnectionId& c : table_->LiveIds()) {
    if (c.mode != Mode::kFork || killed_.contains(c.id)) continue;
    // Marked first (CloseAll did, unless it started since), so that its end
    // is counted as a drain close and not as a crash.
    if (table_->RequestClose(c.slot, c.id, CloseReason::kDrain) ==
        CloseRequestResult::kNotFound) {
      continue;
    }
    if (fork_workers_->Shutdown(c.slot, c.id, SIGKILL) ==
        CloseDelivery::kSignalled) {
      killed_.insert(c.id);
    }
  }
}

void DataPlane::LogKilled() const {
  if (!killing_) return;
  LogEvent(LogLevel::kWarning, "drain_killed",
           {{"children", static_cast<uint64_t>(killed_.size())},
            {"threads_shut_down", static_cast<uint64_t>(threads_shut_again_)},
            {"active", table_->ReadTotals().ActiveTotal()}});
}

void DataPlane::StopWorkers() {
  // One budget for both: the drain is over, so normally no worker is left
  // and the fork server exits as soon as its control socket closes.
  // A thread worker still live then is shut down once more, waited for and
  // logged by ThreadWorkers' destructor.
  const absl::Time deadline = absl::Now() + kStopGrace;
  thread_workers_->WaitIdle(kStopGrace);
  fork_workers_->Stop(std::max(deadline - absl::Now(), absl::ZeroDuration()));
}

void DataPlane::LogFinalTotals() const {
  const TableTotals t = table_->ReadTotals();
  uint64_t accepted = 0, closed = 0, rejected = 0, bytes_in = 0, bytes_out = 0;
  for (int m = 0; m < kModeCount; ++m) {
    accepted += t.accepted_total[m];
    for (uint64_t n : t.closed_total[m]) closed += n;
    bytes_in += t.bytes_in_total[m];
    bytes_out += t.bytes_out_total[m];
  }
  for (uint64_t n : t.rejected_total) rejected += n;
  LogEvent(
      LogLevel::kInfo, "stopped",
      {{"accepted", accepted},
       {"closed", closed},
       {"rejected", rejected},
       {"active", t.ActiveTotal()},
       {"bytes_in", bytes_in},
       {"bytes_out", bytes_out},
       {"worker_crashes", t.worker_crashes_total},
       // Refusals by reason, so operators and tests can tell a full
       // table from fd or process exhaustion without the metrics plane.
       {"rejected_limit", Rejected(t, RejectReason::kLimit)},
       {"rejected_fork_failed", Rejected(t, RejectReason::kForkFailed)},
       {"rejected_thread_failed", Rejected(t, RejectReason::kThreadFailed)},
       {"rejected_fd_exhausted", Rejected(t, RejectReason::kFdExhausted)},
       {"rejected_draining", Rejected(t, RejectReason::kDraining)},
       {"closed_idle_timeout", Closed(t, CloseReason::kIdleTimeout)},
       {"closed_send_timeout", Closed(t, CloseReason::kSendTimeout)},
       {"rejected_fork_queue_full", Rejected(t, RejectReason::kForkQueueFull)},
       {"fork_server_hangs", t.fork_server_hangs_total}});
}

absl::Duration DataPlane::PollTimeout() const {
  absl::Duration timeout = fork_workers_->TimeUntilTick();
  const absl::Time now = absl::Now();
  if (listener_.is_open() && now < accept_backoff_until_) {
    timeout = std::min(timeout, accept_backoff_until_ - now);
  }
  if (draining_) timeout = std::min(timeout, kDrainTick);
  return std::max(timeout, absl::ZeroDuration());
}

void DataPlane::HandleSignals() {
  signalfd_siginfo info;
  for (;;) {
    const ssize_t n = read(signals_.get(), &info, sizeof(info));
    if (n < 0 && errno == EINTR) continue;
    if (n != sizeof(info)) break;             // EAGAIN: all read
    if (info.ssi_signo == SIGCHLD) continue;  // reaped below
    if (!draining_) {
      // Drain first, then say so: whoever reads the line (an operator, a
      // test) may rely on the drain having begun (no new connections,
      // SetMode refused, health NOT_SERVING).
      StartDrain();
      LogEvent(
          LogLevel::kInfo, "draining",
          {{"signal", strsignal(static_cast<int>(info.ssi_signo))},
           {"active", table_->ReadTotals().ActiveTotal()},
           {"drain_timeout", absl::FormatDuration(config_.drain_timeout)}});
    } else if (!closing_) {
      LogEvent(LogLevel::kInfo, "drain_cut_short",
               {{"signal", strsignal(static_cast<int>(info.ssi_signo))}});
      CloseAll();
    }
  }
  // Always reap: waitpid(WNOHANG) is cheap, and SIGCHLDs coalesce.
  ReapChildren();
}

void DataPlane::ReapChildren() {
  // Peek, release, reap (child_exit.h): as PID 1 or subreaper, every child
  // is reaped here, ours or re-parented to us.
  while (std::optional<ExitedChild> exited = PeekExitedChild()) {
    if (!fork_workers_->OnChildExited(exited->pid, exited->status)) {
      LogEvent(LogLevel::kWarning, "unknown_child_reaped",
               {{"pid", static_cast<int64_t>(exited->pid)},
                {"status", DescribeWaitStatus(exited->status)}});
    }
    ReapChild(exited->pid);
  }
}

void DataPlane::AcceptConnections() {
  // At the fd limit every queued connection is refused in this one pass (each
  // costs a few syscalls), so a burst is told "no" at once instead of one
  // connection per back-off; then the loop pauses.
  bool fd_exhausted = false;
  for (int i = 0; i < kAcceptBatch; ++i) {
    Accepted accepted = listener_.Accept();
    switch (accepted.kind) {
      case Accepted::Kind::kConnection:
        Dispatch(std::move(accepted));
        continue;
      case Accepted::Kind::kFdExhausted:
        table_->CountRejected(RejectReason::kFdExhausted);
        fd_exhausted = true;
        continue;
      case Accepted::Kind::kNone:
        if (fd_exhausted) PauseAccepting("fd_exhausted");
        return;
      case Accepted::Kind::kBackoff:
        PauseAccepting(fd_exhausted ? "fd_exhausted" : "kernel_memory");
        return;
    }
  }
  if (fd_exhausted) PauseAccepting("fd_exhausted");
}

void DataPlane::PauseAccepting(absl::string_view reason) {
  accept_backoff_until_ = absl::Now() + kAcceptBackoff;
  if (absl::Now() - last_refusal_log_ > absl::Seconds(1)) {
    last_refusal_log_ = absl::Now();
    LogEvent(LogLevel::kWarning, "accept_paused", {{"reason", reason}});
  }
}

void DataPlane::Dispatch(Accepted accepted) {
  if (draining_) {
    table_->CountRejected(RejectReason::kDraining);
    return;  // accepted.fd closes
  }
  const Mode mode = table_->current_mode();
  const std::optional<uint32_t> slot =
      table_->Allocate(mode, reinterpret_cast<const sockaddr*>(&accepted.peer),
                       accepted.peer_len);
  if (!slot) {
    table_->CountRejected(RejectReason::kLimit);
    return;
  }
  const absl::Status status =
      mode == Mode::kThread
          ? thread_workers_->Start(std::move(accepted.fd), *slot)
          : fork_workers_->Dispatch(std::move(accepted.fd), *slot);
  if (status.ok()) return;
  table_->Abandon(*slot, mode == Mode::kThread ? RejectReason::kThreadFailed
                         : absl::IsResourceExhausted(status)
                             ? RejectReason::kForkQueueFull
                             : RejectReason::kForkFailed);
  if (absl::Now() - last_refusal_log_ > absl::Seconds(1)) {
    last_refusal_log_ = absl::Now();
    LogEvent(LogLevel::kWarning, "connection_refused",
             {{"mode", ModeName(mode)}, {"error", status.ToString()}});
  }
}

void DataPlane::StartDrain() {
  draining_ = true;
  drain_deadline_ = absl::Now() + config_.drain_timeout;
  // Whatever already waits in the accept queue is closed and counted; then
  // the port is released so the kernel refuses new attempts.
  for (int i = 0; i < 100000 && listener_.is_open(); ++i) {
    Accepted accepted = listener_.Accept();
    if (accepted.kind != Accepted::Kind::kConnection) break;
    table_->CountRejected(RejectReason::kDraining);
  }
  listener_.Close();
  // No connection is coming: idle spare threads exit now, and busy ones
  // exit once their connection ends.
  thread_workers_->StopSpares();
  fork_workers_->StopPool();
  if (drain_listener_) drain_listener_();
}

void DataPlane::CloseAll() {
  if (!closing_) {
    closing_ = true;
    close_deadline_ = absl::Now() + kCloseGrace;
  }
  for (const ConnectionInfo& c : table_->Snapshot()) {
    if (table_->RequestClose(c.slot, c.id, CloseReason::kDrain) ==
        CloseRequestResult::kNotFound) {
      continue;
    }
    Deliver(c, SIGTERM);
  }
  // Hand-offs still queued for a fork server that takes none would wait for
  // the watchdog: upperd still owns them, so they end here, counted as the
  // drain close just asked for.
  fork_workers_->RefuseQueued(RejectReason::kDraining);
}

}  // namespace upper
