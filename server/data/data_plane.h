// DataPlane: upperd's data plane. Owns the connection table, the data port's
// listener, both worker pools and the event loop that ties them together.
//
// The event loop (Run) is single-threaded: it accepts, dispatches each
// connection to a thread or to the fork server by the current mode (never
// waiting on the fork server: hand-offs it has no room for are queued,
// bounded, and flushed when its socket polls writable; its watchdog runs
// here too, see fork_workers.h), reaps children from a signalfd, and drains
// on SIGTERM/SIGINT:
//   1st signal: stop listening (pending connections are closed and counted
//               as rejected: draining), let live connections finish for up to
//               --drain_timeout, then close the rest (threads: shutdown;
//               fork children: SIGTERM), 2 s later SIGKILL every fork child
//               left and shut every thread's socket down again, and return 0
//               within --drain_timeout + 5 s (see kCloseGrace and after in
//               data_plane.cc);
//   2nd signal: close the rest at once (the SIGKILL follows 2 s later).
// The admin and metrics planes reach it through ServerControl
// (server_control.h), whose methods are thread-safe.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/listener.h"
#include "common/unique_fd.h"
#include "server/base/config.h"
#include "server/data/connection_table.h"
#include "server/data/fork_workers.h"
#include "server/data/server_control.h"
#include "server/data/thread_workers.h"

namespace upper {

class DataPlane final : public ServerControl {
 public:
  // Raises the soft fd limit to the hard one, takes over signals, creates
  // the table, starts the fork server from `executable` (which inherits the
  // raised limit) and binds the data port. Call before any other thread
  // exists. Errors name the failing flag, address or call.
  static absl::StatusOr<std::unique_ptr<DataPlane>> Create(
      const Config& config, const std::string& executable = "/proc/self/exe");
  ~DataPlane();

  // Serves until drained; returns the process exit code.
  int Run();

  // ServerControl:
  ConnectionTable& table() override { return *table_; }
  std::string data_address() const override { return listener_.address(); }
  absl::Time started_at() const override { return started_at_; }
  bool draining() const override { return draining_.load(); }
  ResourceLimits resource_limits() const override { return limits_; }
  ThreadCacheStats thread_workers() const override {
    return thread_workers_->stats();
  }
  ForkPoolStats fork_workers() const override { return table_->ReadForkPool(); }
  Mode SetMode(Mode mode) override;
  absl::StatusOr<ConnectionInfo> CloseConnection(uint64_t id,
                                                 CloseReason reason) override;
  void SetDrainListener(std::function<void()> listener) override {
    drain_listener_ = std::move(listener);
  }

  uint16_t data_port() const { return listener_.port(); }

 private:
  DataPlane(const Config& config, const ResourceLimits& limits,
            UniqueFd signals, std::unique_ptr<ConnectionTable> table,
            Listener listener);

  // The start line (listening service=data ...) with the limits in force,
  // and a warning for each limit --max_connections does not fit.
  void LogStart() const;

  void HandleSignals();
  void ReapChildren();
  void AcceptConnections();
  // Stops polling the listener for kAcceptBackoff, so that a queue we cannot
  // take from (fd limit, kernel memory) never makes the loop spin.
  void PauseAccepting(absl::string_view reason);
  void Dispatch(Accepted accepted);
  void StartDrain();
  // One step of the drain, each tick, escalating from waiting to CloseAll()
  // to KillAll(); true once it is over (nothing active, or given up).
  bool DrainOver();
  void CloseAll();
  // Tells the worker of `c` (whose close was requested) to end: SIGTERM or
  // SIGKILL to a fork child, shutdown() of a thread's socket.
  CloseDelivery Deliver(const ConnectionInfo& c, int signo,
                        int* error = nullptr);
  // SIGKILLs the fork child of every connection not killed yet.
  void KillAll();
  // The drain_killed line, if the drain came to SIGKILL.
  void LogKilled() const;
  // Waits a bounded time for the workers, then stops the fork server.
  void StopWorkers();
  absl::Duration PollTimeout() const;
  // One last line with what this run served, for operators and tests.
  void LogFinalTotals() const;

  const Config config_;
  const ResourceLimits limits_;
  const absl::Time started_at_;
  UniqueFd signals_;
  // Outlives the workers below; thread workers co-own it (ThreadWorkers).
  std::shared_ptr<ConnectionTable> table_;
  Listener listener_;
  std::unique_ptr<ThreadWorkers> thread_workers_;
  std::unique_ptr<ForkWorkers> fork_workers_;

  std::atomic<bool> draining_{false};
  std::function<void()> drain_listener_;
  bool closing_ = false;                 // CloseAll() has been called
  bool killing_ = false;                 // the close grace is over: KillAll()
  std::unordered_set<uint64_t> killed_;  // ids SIGKILLed by KillAll()
  std::size_t threads_shut_again_ = 0;
  absl::Time drain_deadline_ = absl::InfiniteFuture();
  absl::Time close_deadline_ = absl::InfiniteFuture();  // then KillAll()
  absl::Time kill_deadline_ = absl::InfiniteFuture();   // then give up
  absl::Time accept_backoff_until_ = absl::InfinitePast();
  absl::Time last_refusal_log_ = absl::InfinitePast();
};

}  // namespace upper
