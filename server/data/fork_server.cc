#include "server/data/fork_server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
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
#include "server/data/connection_table.h"
#include "server/data/fork_child.h"
#include "server/data/fork_protocol.h"

namespace upper {
namespace {

using table_layout::ForkPoolExit;

// epoll keys of the fork server's own fds; a child's socket is keyed by its
// pid (always positive).
constexpr uint64_t kSignalsKey = ~uint64_t{0};
constexpr uint64_t kControlKey = ~uint64_t{0} - 1;
constexpr uint32_t kNoSlot = 0xFFFFFFFF;
// Spares forked per loop turn while the pool is below --fork_spare_min, so
// that a large minimum never keeps the loop from its requests for long.
constexpr int kSparesPerTurn = 8;

// One child of this fork server.
struct Child {
  pid_t pid = 0;
  uint32_t slot = kNoSlot;  // the connection it serves, or kNoSlot (idle)
  uint32_t generation = 0;
  UniqueFd socket;      // the pool's line to it; none: single use, or sent away
  uint32_t served = 0;  // connections given to it, the first included
  uint64_t idle_since_ns = 0;
  bool leaving = false;  // we closed its socket: it exits for `reason`
  ForkPoolExit reason = ForkPoolExit::kShutdown;
};

class ForkServer {
 public:
  ForkServer(std::unique_ptr<ConnectionTable> table, UniqueFd control,
             UniqueFd signals, UniqueFd epoll)
      : table_(std::move(table)),
        control_(std::move(control)),
        signals_(std::move(signals)),
        epoll_(std::move(epoll)),
        pool_(table_->fork_pool_settings()),
        counts_(table_->ReadForkPoolCounts()),
        log_drops_before_(table_->ForkServerLogLinesDropped()) {
    counts_.idle = 0;  // a previous fork server's idle children died with it
  }

  int Run() {
    LogEvent(LogLevel::kInfo, "fork_server_started",
             {{"pid", static_cast<int64_t>(getpid())},
              {"spare_min", pool_.spare_min},
              {"spare_max", pool_.spare_max}});
    PublishLogDrops();  // a start line lost to a stuck stderr shows at once
    if (!Watch(signals_.get(), kSignalsKey) ||
        !Watch(control_.get(), kControlKey)) {
      return 1;
    }
    while (control_.valid() || !children_.empty()) {
      if (!Turn()) return 1;
    }
    LogEvent(LogLevel::kInfo, "fork_server_stopped");
    PublishLogDrops();
    return 0;
  }

 private:
  bool pooling() const { return pool_.pooled() && !pool_stopped_; }

  // One wait for events and what follows them: requests, child reports and
  // exits, then the pool's upkeep.
  bool Turn() {
    epoll_event events[64];
    const int n = epoll_wait(epoll_.get(), events, 64, NextExpiryMs());
    if (n < 0 && errno != EINTR) {
      LogEvent(LogLevel::kError, "fork_server_poll_failed",
               {{"error", std::strerror(errno)}});
      return false;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t key = events[i].data.u64;
      if (key == kSignalsKey) {
        ReapChildren();
      } else if (key == kControlKey) {
        if (control_.valid()) ReceiveRequest();
      } else {
        ReceiveFromChild(static_cast<pid_t>(key));
      }
    }
    ExpireIdle();
    TopUpSpares();
    PublishPool();
    PublishLogDrops();
    return true;
  }

  bool Watch(int fd, uint64_t key) {
    epoll_event event = {};
    event.events = EPOLLIN;
    event.data.u64 = key;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) == 0) return true;
    LogEvent(LogLevel::kError, "fork_server_failed",
             {{"error", ErrnoStatus("epoll_ctl", errno).ToString()}});
    return false;
  }

  // The lines this process dropped at a stuck stderr, added to what earlier
  // fork servers dropped, for upper_fork_server_log_lines_dropped_total.
  void PublishLogDrops() {
    const uint64_t dropped = LogLinesDropped();
    if (dropped == log_drops_published_) return;
    log_drops_published_ = dropped;
    table_->SetForkServerLogLinesDropped(log_drops_before_ + dropped);
  }

  void PublishPool() {
    counts_.idle = idle_.size();
    table_->PublishForkPoolCounts(counts_);
  }

  // Takes one ForkRequest (and its socket) and hands it to a child.
  void ReceiveRequest() {
    using Outcome = ReceivedForkRequest::Outcome;
    ReceivedForkRequest received = ReceiveForkRequest(control_.get());
    if (received.outcome == Outcome::kRetry) return;
    if (received.outcome == Outcome::kClosed) {
      // upperd closed its end (shutdown or death): no more work; finish the
      // children we have, and keep no idle one.
      epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, control_.get(), nullptr);
      control_.Reset();
      StopPool();
      return;
    }
    if (received.outcome == Outcome::kRequest &&
        received.request.slot == kStopPoolSlot && !received.conn.valid()) {
      StopPool();
    } else {
      HandleRequest(received);
    }
    // Taken and handled, whatever came of it: the progress upperd's
    // watchdog waits for (table_layout::Header::fork_requests_acked).
    table_->AckForkRequest();
  }

  // Hands the connection of one request taken off the socket to a child,
  // or refuses it.
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
    StartConnection(request.slot, info->id, std::move(received.conn));
  }

  // Gives `conn` (connection `id` in `slot`) to the most recently idle
  // child, or to a child forked for it, or abandons the slot when fork
  // fails.
  void StartConnection(uint32_t slot, uint64_t id, UniqueFd conn) {
    SlotWriter writer = table_->Writer(slot);
    if (!table_->BeginFork(slot, writer.generation())) {
      LogEvent(LogLevel::kError, "fork_server_stale_request", {{"id", id}});
      return;
    }
    const uint64_t start = NowNs(CLOCK_MONOTONIC);
    while (!idle_.empty()) {
      const pid_t pid = idle_.back();
      idle_.pop_back();
      if (HandOff(pid, slot, writer, conn.get(), start)) return;
    }
    UPPER_FAULT_POINT("fork_server.before_fork");
    const std::optional<pid_t> pid =
        Spawn(conn.get(), slot, writer.generation());
    if (!pid) {
      const int err = errno;
      table_->AbandonUnclaimed(slot, writer.generation(),
                               RejectReason::kForkFailed);
      LogEvent(LogLevel::kWarning, "fork_failed",
               {{"error", std::strerror(err)}, {"id", id}});
      return;
    }
    UPPER_FAULT_POINT("fork_server.after_fork");
    Claimed(*pid, slot, writer, NowNs(CLOCK_MONOTONIC) - start);
    // `conn` closes here: the child holds the connection now.
  }

  // Sends the connection to idle child `pid`. False: its socket refused it
  // (the child is gone or going), so it is sent away and another is tried.
  bool HandOff(pid_t pid, uint32_t slot, SlotWriter& writer, int conn,
               uint64_t start) {
    Child& child = children_.at(pid);
    const absl::StatusOr<bool> sent =
        SendForkRequest(child.socket.get(), {slot, writer.generation()}, conn);
    if (!sent.ok() || !*sent) {
      SendAway(pid, ForkPoolExit::kShutdown);
      return false;
    }
    UPPER_FAULT_POINT("fork_server.after_handoff");
    ++counts_.handoffs;
    Claimed(pid, slot, writer, NowNs(CLOCK_MONOTONIC) - start);
    return true;
  }

  // The child claims too; either claim makes it served, and this process
  // counts it accepted, with the time to start it, in one ledger transition
  // (a death before its commit leaves the count to upperd's recovery).
  // Only upperd abandons, and only after this process died, so the claim
  // holds; if it did not, the child exits unserved and must not free the
  // slot.
  void Claimed(pid_t pid, uint32_t slot, SlotWriter& writer,
               uint64_t latency_ns) {
    Child& child = children_.at(pid);
    ++child.served;
    if (writer.Claim(pid, 0, /*count_accepted=*/false) ==
        SlotWriter::ClaimResult::kLost) {
      table_->CountForkLatency(latency_ns);
      return;
    }
    table_->CountForkAccepted(slot, writer.generation(), latency_ns);
    child.slot = slot;
    child.generation = writer.generation();
  }

  // Forks a child for `conn` (or, with -1, a spare that waits for a job),
  // with a socket to come back to the pool on when pooling. The child's
  // pid, or nullopt (errno set) if fork failed.
  std::optional<pid_t> Spawn(int conn, uint32_t slot, uint32_t generation) {
    UniqueFd mine, theirs;
    if (pooling()) {
      int pair[2];
      // Without a socket (at the fd limit), the child serves one connection.
      if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0) {
        mine.Reset(pair[0]);
        theirs.Reset(pair[1]);
      }
    }
    // A spare without a socket could take no job: not forked at all.
    if (conn < 0 && !mine.valid()) return std::nullopt;
    const pid_t pid = fork();
    if (pid == 0) {
      ChildMain({.table = table_.get(),
                 .conn_fd = conn,
                 .slot = slot,
                 .generation = generation,
                 .job_fd = theirs.get(),
                 .max_connections = pool_.child_max_connections});
    }
    if (pid < 0) return std::nullopt;
    ++counts_.spawns;
    Child& child = children_[pid];
    child.pid = pid;
    if (mine.valid()) {
      fcntl(mine.get(), F_SETFL, O_NONBLOCK);
      if (Watch(mine.get(), static_cast<uint64_t>(pid))) {
        child.socket = std::move(mine);
        ++pooled_;
      }
    }
    return pid;
  }

  // A spare: a child forked to wait for its first job.
  bool SpawnSpare() {
    const std::optional<pid_t> pid = Spawn(-1, kNoSlot, 0);
    if (!pid) return false;
    Child& child = children_.at(*pid);
    child.idle_since_ns = NowNs(CLOCK_MONOTONIC);
    idle_.push_back(*pid);
    return true;
  }

  // What a pool child sent: "done" with its connection, or its end closed.
  void ReceiveFromChild(pid_t pid) {
    const auto it = children_.find(pid);
    if (it == children_.end() || !it->second.socket.valid()) return;
    if (TakeDone(it->second)) BackToPool(pid, it->second);
  }

  // Reads one message from `child`'s socket: true if it is "done" with the
  // connection it serves, which is then released. Its end closed (it is
  // exiting: its exit frees its slot) or nonsense: its socket is dropped,
  // and it leaves the idle children.
  bool TakeDone(Child& child) {
    using Outcome = ReceivedForkRequest::Outcome;
    ReceivedForkRequest received = ReceiveForkRequest(child.socket.get());
    if (received.outcome == Outcome::kRetry) return false;
    const bool done = received.outcome == Outcome::kRequest &&
                      !received.conn.valid() && child.slot != kNoSlot &&
                      received.request.slot == child.slot &&
                      received.request.generation == child.generation;
    if (!done) {
      DropSocket(child);
      return false;
    }
    UPPER_FAULT_POINT("fork_server.before_done_release");
    // Alive and finished: released as a clean exit would be, by reason.
    // The child's last writes to the slot are ordered before its "done" by
    // its release (SlotWriter::PublishFinished); this acquire pairs with it.
    table_->AcquireWorkerWrites(child.slot);
    table_->ReleaseExitedChild(child.slot, 0);
    child.slot = kNoSlot;
    return true;
  }

  void BackToPool(pid_t pid, Child& child) {
    if (!pooling()) {
      SendAway(pid, ForkPoolExit::kShutdown);
    } else if (idle_.size() >= pool_.spare_max) {
      SendAway(pid, ForkPoolExit::kPoolFull);
    } else {
      child.idle_since_ns = NowNs(CLOCK_MONOTONIC);
      idle_.push_back(pid);
    }
  }

  // `child` can take no job from now on: its socket is closed (it exits
  // once idle) and it is no longer idle.
  void DropSocket(Child& child) {
    if (!child.socket.valid()) return;
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, child.socket.get(), nullptr);
    child.socket.Reset();
    --pooled_;
    std::erase(idle_, child.pid);
  }

  // Closes child `pid`'s socket, so it exits once idle, counted `reason`.
  void SendAway(pid_t pid, ForkPoolExit reason) {
    Child& child = children_.at(pid);
    DropSocket(child);
    if (!child.leaving) {
      child.leaving = true;
      child.reason = reason;
    }
    std::erase(idle_, pid);
  }

  // Keeps no idle child from now on: the drain, or upperd gone.
  void StopPool() {
    if (pool_stopped_) return;
    pool_stopped_ = true;
    while (!idle_.empty()) SendAway(idle_.back(), ForkPoolExit::kShutdown);
  }

  // Idle children beyond --fork_spare_min that waited --fork_spare_timeout,
  // oldest first (the newest take the next connections).
  void ExpireIdle() {
    const uint64_t timeout_ns = uint64_t{pool_.spare_timeout_ms} * 1000000;
    const uint64_t now = NowNs(CLOCK_MONOTONIC);
    while (idle_.size() > pool_.spare_min &&
           now - children_.at(idle_.front()).idle_since_ns >= timeout_ns) {
      SendAway(idle_.front(), ForkPoolExit::kIdleTimeout);
    }
  }

  // How long epoll may wait: until the oldest idle child beyond the
  // minimum times out; else for ever (a child's report, a request, an exit
  // or upperd's close wakes us).
  int NextExpiryMs() const {
    if (idle_.size() <= pool_.spare_min) return BelowMinimum() ? 10 : -1;
    const uint64_t due = children_.at(idle_.front()).idle_since_ns +
                         uint64_t{pool_.spare_timeout_ms} * 1000000;
    const uint64_t now = NowNs(CLOCK_MONOTONIC);
    return due <= now ? 0 : static_cast<int>((due - now) / 1000000 + 1);
  }

  // Forks spares up to --fork_spare_min, a few per turn. A busy pool child
  // counts: it comes back when its connection ends. (Counting only idle
  // ones, every hand-off would fork a replacement that the returning child
  // then finds the pool full for: a fork per connection again whenever
  // --fork_spare_max is close to the minimum.)
  bool BelowMinimum() const {
    return pooling() && idle_.size() < pool_.spare_min &&
           pooled_ < pool_.spare_min;
  }

  void TopUpSpares() {
    const uint64_t now = NowNs(CLOCK_MONOTONIC);
    if (now < top_up_after_ns_) return;
    for (int i = 0; BelowMinimum() && i < kSparesPerTurn; ++i) {
      if (!SpawnSpare()) {
        // At the fd or process limit: again in a second, not every turn.
        top_up_after_ns_ = now + 1000000000;
        return;
      }
    }
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
        ChildExited(exited->pid, it->second, exited->status);
        children_.erase(it);
      }
      UPPER_FAULT_POINT("fork_server.before_reap");
      ReapChild(exited->pid);
    }
  }

  void ChildExited(pid_t pid, Child& child, int status) {
    // A "done" it sent before it died (killed from outside while idle) is
    // read first: that connection ended cleanly, not in a crash.
    if (child.socket.valid() && child.slot != kNoSlot) TakeDone(child);
    if (child.slot != kNoSlot) {
      if (std::optional<WorkerCrash> crash =
              table_->ReleaseExitedChild(child.slot, status)) {
        LogWorkerCrash(*crash);
      }
    }
    if (child.served >= pool_.child_max_connections && child.slot != kNoSlot) {
      ++counts_.exits[static_cast<size_t>(ForkPoolExit::kMaxConnections)];
    } else if (child.leaving || child.slot == kNoSlot) {
      ++counts_.exits[static_cast<size_t>(child.reason)];
    }
    DropSocket(child);
    std::erase(idle_, pid);
  }

  std::unique_ptr<ConnectionTable> table_;
  UniqueFd control_;
  UniqueFd signals_;
  UniqueFd epoll_;
  const ForkPoolSettings pool_;
  bool pool_stopped_ = false;
  ForkPoolCounts counts_;
  std::unordered_map<pid_t, Child> children_;
  size_t pooled_ = 0;  // children with a socket: idle, or busy and coming back
  uint64_t top_up_after_ns_ = 0;  // spares are not forked before (a backoff)
  // Idle pool children, oldest first: the newest takes the next connection
  // (its pages are the warmest), the oldest time out first.
  std::deque<pid_t> idle_;
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

// The fork server's epoll set, or an invalid fd (logged).
UniqueFd MakeEpoll() {
  UniqueFd epoll(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll) {
    LogEvent(LogLevel::kError, "fork_server_failed",
             {{"error", ErrnoStatus("epoll_create1", errno).ToString()}});
  }
  return epoll;
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
  SetChildFdLimit(FdLimit());
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
  sigaddset(&term, ChildCloseSignal());
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
  UniqueFd epoll = MakeEpoll();
  if (!epoll) return 1;
  return ForkServer(*std::move(table), std::move(control), std::move(signals),
                    std::move(epoll))
      .Run();
}

}  // namespace upper
