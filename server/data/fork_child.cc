#include "server/data/fork_child.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "common/fault_point.h"
#include "common/unique_fd.h"
#include "server/data/close_fds.h"
#include "server/data/fork_protocol.h"
#include "server/data/serve.h"

namespace upper {
namespace {

// Every child's serve buffer, in BSS: the fork server never touches it, so a
// child's copy-on-write pages appear only once it moves data.
alignas(4096) char g_child_buffer[kServeBufferSize];

constexpr int kChildConnFd = 3;
constexpr int kChildJobFd = 4;

// The connection this child serves now (CloseTag), or none, for the signal
// handlers, and its slot's writer while it does. Written only by this
// single-threaded process outside the handlers, and always with the close
// signals blocked, so a handler never sees the two disagree.
constexpr uint64_t kNoJob = ~uint64_t{0};
std::atomic<uint64_t> g_job{kNoJob};
SlotWriter* g_writer = nullptr;
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// One above the highest fd a child may inherit, for CloseFdsFrom's last
// resort (fork_child.h, SetChildFdLimit).
int g_fd_limit = 1 << 20;

// SIGTERM ends a child cleanly: closes by admin or drain are counted by the
// request they made first; one from outside (systemd's KillMode=
// control-group, kill(1)) counts as `killed`, not as a crash. An idle pool
// child has nothing to count.
void OnSigterm(int) {
  if (g_job.load(std::memory_order_relaxed) != kNoJob) {
    g_writer->SetCloseReasonIfUnset(CloseReason::kKilled);
  }
  _exit(0);
}

// upperd's close of one connection (ChildCloseSignal): honoured only if it
// names the connection served now; a pool child may have finished that one
// and taken the next (its reason is the request's).
void OnCloseSignal(int, siginfo_t* info, void*) {
  const uint64_t job = g_job.load(std::memory_order_relaxed);
  if (info->si_code == SI_QUEUE &&
      (job == kNoJob ||
       reinterpret_cast<uintptr_t>(info->si_value.sival_ptr) != job)) {
    return;
  }
  OnSigterm(SIGTERM);
}

void SetClosesBlocked(bool blocked) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, ChildCloseSignal());
  sigprocmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr);
}

void InstallHandlers() {
  struct sigaction on_term = {};
  on_term.sa_handler = OnSigterm;
  sigfillset(&on_term.sa_mask);
  sigaction(SIGTERM, &on_term, nullptr);
  struct sigaction on_close = {};
  on_close.sa_sigaction = OnCloseSignal;
  on_close.sa_flags = SA_SIGINFO;
  sigfillset(&on_close.sa_mask);
  sigaction(ChildCloseSignal(), &on_close, nullptr);
}

// The connection on fd 3, the job socket on fd 4, nothing else above
// stdio: no other child's socket, no control socket, no signalfd.
void PlaceFds(const ChildStart& start) {
  int job = start.job_fd;
  if (job == kChildConnFd) job = fcntl(job, F_DUPFD, kChildJobFd + 1);
  if (start.job_fd >= 0 && job < 0) _exit(1);
  const int conn = start.conn_fd;
  if (conn >= 0 && conn != kChildConnFd && dup2(conn, kChildConnFd) < 0) {
    _exit(1);
  }
  if (job >= 0 && job != kChildJobFd && dup2(job, kChildJobFd) < 0) _exit(1);
  if (conn < 0) close(kChildConnFd);
  CloseFdsFrom(job >= 0 ? kChildJobFd + 1 : kChildConnFd + 1, g_fd_limit);
}

// Claims connection `generation` in `slot` and serves it. False: it was
// abandoned first (its fork server died before anyone claimed it).
bool ServeJob(ConnectionTable& table, uint32_t slot, uint32_t generation,
              std::size_t& touched) {
  SlotWriter writer = table.Writer(slot, generation);
  UPPER_FAULT_POINT("fork_child.before_claim");
  // The child counts nothing: its fork server counts the acceptance in its
  // ledger, or upperd does after that one's death.
  if (writer.Claim(getpid(), 0, /*count_accepted=*/false) ==
      SlotWriter::ClaimResult::kLost) {
    return false;
  }
  g_writer = &writer;
  g_job.store(CloseTag(slot, generation), std::memory_order_relaxed);
  SetClosesBlocked(false);
  // A close asked for before our pid was in the slot signalled no one (or
  // was ignored as naming no job of ours): honour it now.
  if (!writer.CloseRequested()) {
    Serve(kChildConnFd, writer, g_child_buffer, sizeof(g_child_buffer),
          &touched);
  }
  SetClosesBlocked(true);
  g_job.store(kNoJob, std::memory_order_relaxed);
  writer.PublishFinished();  // before "done" (ReportDone)
  return true;
}

// Tells the fork server this child finished `slot` and is idle. False: the
// fork server is gone (its end closed), so no job will come.
bool ReportDone(uint32_t slot, uint32_t generation) {
  ForkRequest done = {slot, generation};
  ssize_t n;
  do {
    n = send(kChildJobFd, &done, sizeof(done), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof(done));
}

// Waits, idle, for the next job; its socket lands on fd 3. False: told to
// exit (a job without a socket, or the fork server's end closed).
bool WaitForJob(ForkRequest& job) {
  // Idle: a SIGTERM ends us, a stale close is ignored.
  SetClosesBlocked(false);
  ReceivedForkRequest received;
  do {
    received = ReceiveForkRequest(kChildJobFd);
  } while (received.outcome == ReceivedForkRequest::Outcome::kRetry);
  SetClosesBlocked(true);
  if (received.outcome != ReceivedForkRequest::Outcome::kRequest ||
      !received.conn.valid()) {
    return false;
  }
  if (received.conn.get() == kChildConnFd) {
    received.conn.Release();  // where it belongs: kept open
  } else if (dup2(received.conn.get(), kChildConnFd) < 0) {
    return false;
  }
  job = received.request;
  return true;
}

}  // namespace

void SetChildFdLimit(int limit) { g_fd_limit = limit; }

[[noreturn]] void ChildMain(const ChildStart& start) {
  PlaceFds(start);
  InstallHandlers();
  // The close signals stay blocked (the fork server blocks them) except
  // while serving or idle: a close can reach us only once the claim names
  // our pid and the job is set, and is then handled.
  const bool pooled = start.job_fd >= 0;
  ForkRequest job = {start.slot, start.generation};
  bool have_job = start.conn_fd >= 0;
  for (uint32_t served = 0;;) {
    if (have_job) {
      std::size_t touched = 0;
      if (!ServeJob(*start.table, job.slot, job.generation, touched)) {
        _exit(kExitUnserved);
      }
      // The last one: the exit frees the slot, no "done" needed.
      if (!pooled || ++served >= start.max_connections) _exit(0);
      close(kChildConnFd);
      ScrubServeBuffer(g_child_buffer, sizeof(g_child_buffer), touched);
      UPPER_FAULT_POINT("fork_child.before_done");
      if (!ReportDone(job.slot, job.generation)) _exit(0);
    }
    have_job = WaitForJob(job);
    if (!have_job) _exit(0);
  }
}

}  // namespace upper
