#include "server/data/fork_server.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/errno_status.h"
#include "common/fault_point.h"
#include "common/unique_fd.h"
#include "server/base/log.h"
#include "server/data/child_exit.h"
#include "server/data/close_fds.h"
#include "server/data/connection_table.h"
#include "server/data/fork_protocol.h"
#include "server/data/serve.h"

namespace upper {
namespace {

// Every child's serve buffer, in BSS: the fork server never touches it, so a
// child's copy-on-write pages appear only once it moves data.
alignas(4096) char g_child_buffer[kServeBufferSize];

constexpr int kChildConnFd = 3;
// Exit status of a child that lost its connection to an abandon (its fork
// server died before the child claimed it): it served nothing.
constexpr int kExitUnserved = 3;

// The child's own slot, for its SIGTERM handler (set before SIGTERM is
// unblocked; the child never returns from ChildMain, so it stays valid).
SlotWriter* g_child_writer = nullptr;

// SIGTERM ends a child cleanly: closes by admin or drain are counted by the
// request they made first; one from outside (systemd's KillMode=
// control-group, kill(1)) counts as `killed`, not as a crash.
void OnChildSigterm(int) {
  g_child_writer->SetCloseReasonIfUnset(CloseReason::kKilled);
  _exit(0);
}

// One above the highest fd a child may inherit, for CloseFdsFrom's last
// resort. Read once by RunForkServer before any fork, because getrlimit is
// not async-signal-safe. An fd is numbered below the soft limit in force when
// it is made; one made after a later raise from outside (prlimit) could be
// missed, but only where neither close_range nor /proc works.
int g_child_fd_limit = 1 << 20;

// The fork child. Only async-signal-safe calls from here to _exit: dup2,
// CloseFdsFrom, sigaction, sigprocmask, getpid, atomics, and Serve() (recv,
// send, setsockopt, shutdown, clock_gettime). No allocation, no locks, no
// logging.
[[noreturn]] void ChildMain(int conn_fd, SlotWriter writer) {
  if (conn_fd != kChildConnFd && dup2(conn_fd, kChildConnFd) < 0) _exit(1);
  // Keep stdio and the connection; drop the control socket, the signalfd and
  // the table fd (the mapping stays).
  CloseFdsFrom(kChildConnFd + 1, g_child_fd_limit);
  g_child_writer = &writer;
  struct sigaction on_term = {};
  on_term.sa_handler = OnChildSigterm;
  sigemptyset(&on_term.sa_mask);
  sigaction(SIGTERM, &on_term, nullptr);
  UPPER_FAULT_POINT("fork_child.before_claim");
  // SIGTERM is still blocked (the fork server blocks it): a close can reach
  // us only once the claim names our pid, and is then handled. The child
  // counts nothing: its fork server counts the acceptance in its ledger, or
  // upperd does after that one's death.
  if (writer.Claim(getpid(), 0, /*count_accepted=*/false) ==
      SlotWriter::ClaimResult::kLost) {
    _exit(kExitUnserved);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // A close asked for before the claim saw no pid to signal: honour it now.
  if (writer.CloseRequested()) _exit(0);
  Serve(kChildConnFd, writer, g_child_buffer, sizeof(g_child_buffer));
  _exit(0);
}

class ForkServer {
 public:
  ForkServer(std::unique_ptr<ConnectionTable> table, UniqueFd control,
             UniqueFd signals)
      : table_(std::move(table)),
        control_(std::move(control)),
        signals_(std::move(signals)),
        log_drops_before_(table_->ForkServerLogLinesDropped()) {}

  int Run() {
    LogEvent(LogLevel::kInfo, "fork_server_started",
             {{"pid", static_cast<int64_t>(getpid())}});
    PublishLogDrops();  // a start line lost to a stuck stderr shows at once
    while (control_.valid() || !children_.empty()) {
      pollfd fds[2] = {{signals_.get(), POLLIN, 0},
                       {control_.get(), POLLIN, 0}};
      const nfds_t count = control_.valid() ? 2 : 1;
      if (poll(fds, count, -1) < 0) {
        if (errno == EINTR) continue;
        LogEvent(LogLevel::kError, "fork_server_poll_failed",
                 {{"error", std::strerror(errno)}});
        return 1;
      }
      if (fds[0].revents != 0) ReapChildren();
      if (count == 2 && fds[1].revents != 0) ReceiveRequest();
      PublishLogDrops();
    }
    LogEvent(LogLevel::kInfo, "fork_server_stopped");
    PublishLogDrops();
    return 0;
  }

 private:
  // The lines this process dropped at a stuck stderr, added to what earlier
  // fork servers dropped, for upper_fork_server_log_lines_dropped_total.
  void PublishLogDrops() {
    const uint64_t dropped = LogLinesDropped();
    if (dropped == log_drops_published_) return;
    log_drops_published_ = dropped;
    table_->SetForkServerLogLinesDropped(log_drops_before_ + dropped);
  }

  // Takes one ForkRequest (and its socket) and forks its child.
  void ReceiveRequest() {
    using Outcome = ReceivedForkRequest::Outcome;
    ReceivedForkRequest received = ReceiveForkRequest(control_.get());
    if (received.outcome == Outcome::kRetry) return;
    if (received.outcome == Outcome::kClosed) {
      // upperd closed its end (shutdown or death): no more work; finish the
      // children we have.
      control_.Reset();
      return;
    }
    HandleRequest(received);
    // Taken and handled, whatever came of it: the progress upperd's
    // watchdog waits for (table_layout::Header::fork_requests_acked).
    table_->AckForkRequest();
  }

  // Forks the child of one request taken off the socket, or refuses it.
  void HandleRequest(ReceivedForkRequest& received) {
    using Outcome = ReceivedForkRequest::Outcome;
    const ForkRequest& request = received.request;
    if (received.outcome == Outcome::kMalformed ||
        request.slot >= table_->capacity()) {
      LogEvent(LogLevel::kError, "fork_server_bad_request",
               {{"bytes", static_cast<int64_t>(received.bytes)}});
      return;
    }
    const std::optional<ConnectionInfo> info = table_->Read(request.slot);
    if (!info || info->generation != request.generation) {
      LogEvent(LogLevel::kError, "fork_server_stale_request",
               {{"slot", request.slot}});
      return;
    }
    if (!received.conn.valid()) {
      // The request came but its socket did not: the kernel drops (and
      // closes) passed fds that do not fit, MSG_CTRUNC, when this process is
      // at its fd limit. The slot is ours now: free it and count the refusal,
      // or it would stay active forever.
      table_->AbandonUnclaimed(request.slot, request.generation,
                               received.truncated ? RejectReason::kFdExhausted
                                                  : RejectReason::kForkFailed);
      LogEvent(LogLevel::kWarning, "fork_server_lost_socket",
               {{"id", info->id}});
      return;
    }
    ForkChild(request.slot, info->id, std::move(received.conn));
  }

  // Forks the child serving `conn` in `slot` (connection `id`) and records
  // it, or abandons the slot when fork fails.
  void ForkChild(uint32_t slot, uint64_t id, UniqueFd conn) {
    SlotWriter writer = table_->Writer(slot);
    if (!table_->BeginFork(slot, writer.generation())) {
      LogEvent(LogLevel::kError, "fork_server_stale_request", {{"id", id}});
      return;
    }
    UPPER_FAULT_POINT("fork_server.before_fork");
    const uint64_t start = NowNs(CLOCK_MONOTONIC);
    const pid_t pid = fork();
    if (pid == 0) ChildMain(conn.get(), writer);
    if (pid < 0) {
      const int err = errno;
      table_->AbandonUnclaimed(slot, writer.generation(),
                               RejectReason::kForkFailed);
      LogEvent(LogLevel::kWarning, "fork_failed",
               {{"error", std::strerror(err)}, {"id", id}});
      return;
    }
    UPPER_FAULT_POINT("fork_server.after_fork");
    const uint64_t latency_ns = NowNs(CLOCK_MONOTONIC) - start;
    // The child claims too; either claim makes it served, and this process
    // counts it accepted, with the fork latency, in one ledger transition
    // (a death before its commit leaves the count to upperd's recovery).
    // Only upperd abandons, and only after this process died, so the claim
    // holds; if it did not, the child exits unserved and must not free the
    // slot.
    if (writer.Claim(pid, 0, /*count_accepted=*/false) !=
        SlotWriter::ClaimResult::kLost) {
      table_->CountForkAccepted(slot, writer.generation(), latency_ns);
      children_[pid] = slot;
    } else {
      table_->CountForkLatency(latency_ns);
    }
    // `conn` closes here: the child holds the connection now.
  }

  // Peek, release, reap (child_exit.h): the slot is free before the pid is.
  void ReapChildren() {
    signalfd_siginfo info[16];
    // Drain the signalfd; SIGCHLDs coalesce, so the peek finds them all.
    while (read(signals_.get(), info, sizeof(info)) > 0) {
    }
    while (std::optional<ExitedChild> exited = PeekExitedChild()) {
      UPPER_FAULT_POINT("fork_server.after_peek");
      if (const auto it = children_.find(exited->pid); it != children_.end()) {
        if (std::optional<WorkerCrash> crash =
                table_->ReleaseExitedChild(it->second, exited->status)) {
          LogWorkerCrash(*crash);
        }
        children_.erase(it);
      }
      UPPER_FAULT_POINT("fork_server.before_reap");
      ReapChild(exited->pid);
    }
  }

  std::unique_ptr<ConnectionTable> table_;
  UniqueFd control_;
  UniqueFd signals_;
  std::unordered_map<pid_t, uint32_t> children_;  // pid -> slot
  const uint64_t log_drops_before_;  // earlier fork servers' (the table's)
  uint64_t log_drops_published_ = 0;
};

// The soft RLIMIT_NOFILE, capped at the kernel's default fs.nr_open when it
// is unlimited, larger or unreadable, so that the last resort stays a
// bounded loop.
int FdLimit() {
  constexpr rlim_t kCap = 1 << 20;
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur > kCap) {
    return static_cast<int>(kCap);
  }
  return static_cast<int>(limit.rlim_cur);
}

// The fork server's own options: only the log format.
void ApplyForkServerArgs(int argc, const char* const* argv) {
  for (int i = 2; i < argc; ++i) {
    absl::string_view arg = argv[i];
    LogFormat format;
    if (absl::ConsumePrefix(&arg, "--log_format=") &&
        ParseLogFormat(arg, &format)) {
      SetLogFormat(format);
    }
  }
}

}  // namespace

bool IsForkServerInvocation(int argc, const char* const* argv) {
  return argc >= 2 && absl::string_view(argv[1]) == kForkServerRoleFlag;
}

int RunForkServer(int argc, const char* const* argv) {
  ApplyForkServerArgs(argc, argv);
  prctl(PR_SET_NAME, "upperd-fork");
  // No log writer thread here (StartLogWriter): the fork server must stay
  // single-threaded. When a single-threaded process dies, the kernel makes
  // it waitable in the same step that re-parents its children to upperd,
  // so upperd always handles its death (the ledger recovery, the orphan
  // map) before any orphan's exit. With a second thread, the children are
  // re-parented when the last thread exits but the leader becomes waitable
  // only later (release_task), and upperd reaped orphans it could not place
  // (ForkChaos caught it). Its rare lines are written synchronously but
  // never waited for: with a stuck stderr they are dropped and counted.
  // (Waited for, each replacement would block on its first line and be
  // killed by the watchdog in turn, refusing fork mode meanwhile.)
  MakeLogNeverWait("fork_server");
  g_child_fd_limit = FdLimit();
  signal(SIGPIPE, SIG_IGN);  // children inherit it; send() uses MSG_NOSIGNAL
  if (std::string error = ArmFaultPointsFromEnvironment(); !error.empty()) {
    LogEvent(LogLevel::kError, "fork_server_failed", {{"error", error}});
    return 1;
  }
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, nullptr);
  // SIGTERM stays blocked here and in each child until it has claimed its
  // slot: a SIGTERM from outside (a control-group kill) leaves the fork server
  // to finish when upperd closes its control socket, and upperd drains.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, nullptr);
  UniqueFd signals(signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signals) {
    LogEvent(LogLevel::kError, "fork_server_failed",
             {{"error", ErrnoStatus("signalfd", errno).ToString()}});
    return 1;
  }
  UniqueFd control(kControlFd);
  UniqueFd table_fd(kTableFd);
  absl::StatusOr<std::unique_ptr<ConnectionTable>> table =
      ConnectionTable::Attach(table_fd.get());
  if (!table.ok()) {
    LogEvent(LogLevel::kError, "fork_server_failed",
             {{"error", table.status().ToString()}});
    return 1;
  }
  table_fd.Reset();  // the mapping stays valid without the fd
  // What this process counts goes into the ledger (table_layout.h), which
  // upperd recovers if we die: a previous fork server's ledger, recovered,
  // is where we continue from.
  (*table)->BecomeLedgerWriter();
  return ForkServer(*std::move(table), std::move(control), std::move(signals))
      .Run();
}

}  // namespace upper
