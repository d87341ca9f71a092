// Server: upperd's data plane. Owns the connection table, the data port's
// listener, both worker pools and the event loop that ties them together.
//
// The event loop (Run) is single-threaded: it accepts, dispatches each
// connection to a thread or to the fork server by the current mode, reaps
// children from a signalfd, and drains on SIGTERM/SIGINT:
//   1st signal: stop listening (pending connections are closed and counted
//               as rejected: draining), let live connections finish for up to
//               --drain_timeout, then close the rest (threads: shutdown;
//               fork children: SIGTERM) and return 0;
//   2nd signal: close the rest at once.
// SetMode(), CloseConnection() and table() are thread-safe, for the admin and
// metrics planes; SetDrainListener() tells them when the drain starts.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/config.h"
#include "server/connection_table.h"
#include "server/fork_workers.h"
#include "server/listener.h"
#include "server/thread_workers.h"
#include "server/unique_fd.h"

namespace upper {

class Server {
 public:
  // Takes over signals, creates the table, starts the fork server from
  // `executable` and binds the data port. Call before any other thread
  // exists. Errors name the failing flag, address or call.
  static absl::StatusOr<std::unique_ptr<Server>> Create(
      const Config& config, const std::string& executable = "/proc/self/exe");
  ~Server();

  // Serves until drained; returns the process exit code.
  int Run();

  ConnectionTable& table() { return *table_; }
  const std::string& data_address() const { return listener_.address(); }
  uint16_t data_port() const { return listener_.port(); }
  bool draining() const { return draining_.load(); }
  absl::Time started_at() const { return started_at_; }

  // `listener` runs once, on the event loop's thread, when the drain starts
  // (after the data port is closed), e.g. to report NOT_SERVING. It must not
  // block. Set it before Run().
  void SetDrainListener(std::function<void()> listener) {
    drain_listener_ = std::move(listener);
  }

  // Sets the mode for new connections; returns the previous one.
  Mode SetMode(Mode mode);
  // Closes connection `id` if live (threads: shutdown of its socket; fork:
  // SIGTERM to its child); its worker then ends and frees the slot, counted
  // as `reason`. False if `id` is not live. May wait up to a second for a
  // connection accepted a moment ago whose worker does not exist yet.
  bool CloseConnection(uint64_t id, CloseReason reason);

 private:
  Server(const Config& config, UniqueFd signals,
         std::unique_ptr<ConnectionTable> table, Listener listener);

  void HandleSignals();
  void ReapChildren();
  void AcceptConnections();
  // Stops polling the listener for kAcceptBackoff, so that a queue we cannot
  // take from (fd limit, kernel memory) never makes the loop spin.
  void PauseAccepting(absl::string_view reason);
  void Dispatch(Accepted accepted);
  void StartDrain();
  void CloseAll();
  absl::Duration PollTimeout() const;
  // One last line with what this run served, for operators and tests.
  void LogFinalTotals() const;

  const Config config_;
  const absl::Time started_at_;
  UniqueFd signals_;
  std::unique_ptr<ConnectionTable> table_;  // outlives the workers below
  Listener listener_;
  std::unique_ptr<ThreadWorkers> thread_workers_;
  std::unique_ptr<ForkWorkers> fork_workers_;

  std::atomic<bool> draining_{false};
  std::function<void()> drain_listener_;
  bool closing_ = false;  // CloseAll() has been called
  absl::Time drain_deadline_ = absl::InfiniteFuture();
  absl::Time close_deadline_ = absl::InfiniteFuture();
  absl::Time accept_backoff_until_ = absl::InfinitePast();
  absl::Time last_refusal_log_ = absl::InfinitePast();
};

}  // namespace upper
