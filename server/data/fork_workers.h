// ForkWorkers: fork mode as upperd sees it. Starts the fork server (see
// fork_server.h), hands it each fork-mode connection over a Unix socket, and
// restarts it if it dies.
//
// upperd is a child subreaper, so the children of a dead fork server become
// upperd's children; the server's reaper passes their exits to
// OnChildExited(), which frees their slots like the fork server would have.
//
// The hand-off never blocks the event loop: upperd's end of the control
// socket is non-blocking, and a connection the socket has no room for waits
// in a bounded queue here (kQueueLimit) that the loop flushes when the
// socket polls writable (control_fd(), wants_pollout()). Past that bound a
// connection is refused at once (fork_queue_full). A watchdog compares what
// upperd sent with what the fork server acknowledged in the table
// (Header::fork_requests_acked): work outstanding and no acknowledgement for
// the fork server timeout means it is hung (stopped, blocked on a full
// stderr pipe, frozen by a cgroup); it is SIGKILLed, counted and logged
// (fork_server_unresponsive), and replaced through the death path.
//
// Not thread-safe: used from upperd's event-loop thread only (Shutdown() is
// the exception: it only reads the table and sends a signal).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "server/base/log.h"
#include "server/data/close_delivery.h"
#include "server/data/connection_table.h"
#include "server/data/fork_protocol.h"

namespace upper {

class ForkWorkers {
 public:
  // Spawns the fork server: upperd-fork-server from the directory of
  // `executable` (upperd's own binary) if present, else `executable`. That
  // file is opened here, once, and every restart runs the same file through
  // the open fd: an in-place upgrade (a new binary renamed over the path)
  // must not pair a new fork server with this process's table.
  // `hang_timeout`: how long work may be outstanding with no
  // acknowledgement before the fork server counts as hung; zero: never.
  static absl::StatusOr<std::unique_ptr<ForkWorkers>> Start(
      ConnectionTable& table, std::string executable, LogFormat log_format,
      absl::Duration hang_timeout = absl::Seconds(5));
  ~ForkWorkers();

  // Hand-offs waiting for room in the control socket, at most. The bound
  // is what a live fork server that merely lags must never hit: a burst of
  // a thousand connects at once (faults_test, the fork-mode soak) arrives
  // in a few accept batches far faster than it forks (~3,000/s here), and
  // the socket's own buffer holds only ~278 requests (net.core.wmem_default
  // on this kernel); 256 refused such bursts, 2,048 (plus the buffer)
  // absorbs them. Each entry already holds a slot of --max_connections and
  // one fd, so memory stays bounded either way; what the bound limits is
  // how many clients a stuck fork server can keep waiting for the watchdog
  // (--fork_server_timeout): past it, refusal is at once (fork_queue_full).
  static constexpr std::size_t kQueueLimit = 2048;
  // How long a fork server may take no hand-off before a full queue refuses:
  // far above a healthy one's gaps between hand-offs, even on a loaded host.
  static constexpr absl::Duration kStallGrace = absl::Milliseconds(250);

  // Hands `fd` (in table slot `slot`) to the fork server without blocking:
  // sent at once when nothing waits, else queued. Errors (`fd` is closed and
  // the caller abandons the slot): ResourceExhausted when the queue is full
  // (refuse as kForkQueueFull), Unavailable when the fork server is down or
  // being replaced, or the send's error (refuse as kForkFailed). The fork
  // server counts its own failures (fork EAGAIN) in the table.
  absl::Status Dispatch(UniqueFd fd, uint32_t slot);

  // The control socket while hand-offs wait for room in it (poll it for
  // POLLOUT, then call Flush()), else -1.
  int pollout_fd() const {
    return !queue_.empty() && control_ ? control_.get() : -1;
  }
  // Sends queued hand-offs until the socket is full again. A send that fails
  // (the fork server is gone) refuses its connection (kForkFailed).
  void Flush();
  // Refuses every queued hand-off (never sent, so upperd's alone): abandons
  // its slot as `reason` (a close asked for meanwhile wins, as in
  // ConnectionTable::Abandon) and closes its fd. For the drain's close.
  void RefuseQueued(RejectReason reason);
  std::size_t queued() const { return queue_.size(); }
  // Tells the fork server (and any that replaces it) to keep no idle pool
  // child from now on: the drain's "idle workers exit at once". Sent at
  // once if the socket has room, else by the next Flush() or Tick().
  void StopPool();

  // Sends `signo` to the child serving connection `id` in `slot`, through a
  // pidfd opened while the slot still names that child (never a bare pid
  // that may have been reused). The close request is set first by the
  // caller. `error` gets the errno of a kFailed.
  CloseDelivery Shutdown(uint32_t slot, uint64_t id, int signo,
                         int* error = nullptr);

  // A child of upperd exited: the fork server itself (then it is restarted,
  // at most once a second) or an orphaned fork child. Returns false if `pid`
  // is neither.
  bool OnChildExited(pid_t pid, int status);

  // Restarts a fork server that died less than a second after the previous
  // start, once that second has passed, and runs the watchdog: a fork server
  // with work outstanding and no acknowledgement for the hang timeout is
  // killed. Call from the event loop, every iteration.
  void Tick();
  // How long until Tick() has work, or InfiniteDuration.
  absl::Duration TimeUntilTick() const;

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // Closes the control socket (the fork server finishes its children and
  // exits) and waits up to `timeout` for it, then kills it.
  void Stop(absl::Duration timeout);

 private:
  ForkWorkers(ConnectionTable& table, std::string executable,
              LogFormat log_format, absl::Duration hang_timeout)
      : table_(table),
        executable_(std::move(executable)),
        log_format_(log_format),
        hang_timeout_(hang_timeout) {}

  // A connection waiting for room in the control socket.
  struct QueuedHandOff {
    UniqueFd fd;
    ForkRequest request;
  };
  // Requests sent to the current fork server that it has not acknowledged,
  // plus the queued ones: the work the watchdog waits on.
  uint64_t Outstanding(uint64_t acked) const;
  // The watchdog's step: notes progress, or kills a hung fork server.
  void Watch(absl::Time now);
  // When Watch() must look again (a sample of the acknowledgement counter,
  // or the deadline), or InfiniteFuture when nothing is outstanding.
  absl::Time NextWatch() const;
  // How often Watch() looks while work is outstanding.
  absl::Duration WatchSample() const;
  // SIGKILLs the hung fork server (upperd's child, not reaped yet: pid_ is
  // cleared before any reap, so the pid is still its own) and stops handing
  // it work; its death then goes through OnForkServerDied.
  void KillHung(uint64_t outstanding);
  absl::Status Spawn();
  void SendPoolStop();
  // What Spawn() passes to posix_spawn: /proc/self/fd/N of `program_`, or
  // its path when /proc is not mounted.
  std::string SpawnPath() const;
  // After a fork-server death (`status`), before any other fork server
  // runs: recovers its ledger, abandons every fork slot no child has claimed
  // (unstarted or mid-fork; a child forked for one exits unserved), counts
  // the claims it did not, and schedules the respawn.
  void OnForkServerDied(int status);

  ConnectionTable& table_;
  std::string executable_;
  LogFormat log_format_;
  std::string program_path_;  // the fork server's program, as found at Start
  UniqueFd program_;          // O_PATH: that file, whatever the path holds now
  pid_t pid_ = -1;
  // A dead fork server whose death was handled before its exit was peeked
  // (an orphan of it came first); OnChildExited(it) only reaps it.
  pid_t dead_unpeeked_ = -1;
  UniqueFd control_;
  absl::Time last_spawn_ = absl::InfinitePast();
  bool respawn_pending_ = false;

  const absl::Duration hang_timeout_;
  std::deque<QueuedHandOff> queue_;  // at most kQueueLimit
  // Times here are CLOCK_MONOTONIC's (MonotonicNow in the .cc), never the
  // wall clock's.
  // The watchdog's view of the current fork server: the table's
  // acknowledgement counter when it was spawned, requests sent to it since,
  // the counter as last seen and when it last moved (or when work became
  // outstanding); whether it was killed as hung (its death not seen yet).
  uint64_t acked_at_spawn_ = 0;
  uint64_t sent_ = 0;
  bool pool_stop_wanted_ = false;  // StopPool() was called
  bool pool_stop_sent_ = false;    // ... and the current fork server has it
  uint64_t last_acked_ = 0;
  absl::Time last_progress_ = absl::InfinitePast();
  // When Watch() last looked, whatever it saw.
  absl::Time last_watch_ = absl::InfinitePast();
  bool killed_as_hung_ = false;
  absl::Time last_refusal_log_ = absl::InfinitePast();
};

}  // namespace upper
