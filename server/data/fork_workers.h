// ForkWorkers: fork mode as upperd sees it. Starts the fork server (see
// fork_server.h), hands it each fork-mode connection over a Unix socket, and
// restarts it if it dies.
//
// upperd is a child subreaper, so the children of a dead fork server become
// upperd's children; the server's reaper passes their exits to
// OnChildExited(), which frees their slots like the fork server would have.
//
// Not thread-safe: used from upperd's event-loop thread only (Shutdown() is
// the exception: it only reads the table and sends a signal).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "server/base/log.h"
#include "server/data/close_delivery.h"
#include "server/data/connection_table.h"

namespace upper {

class ForkWorkers {
 public:
  // Spawns the fork server: upperd-fork-server from the directory of
  // `executable` (upperd's own binary) if present, else `executable`. That
  // file is opened here, once, and every restart runs the same file through
  // the open fd: an in-place upgrade (a new binary renamed over the path)
  // must not pair a new fork server with this process's table.
  static absl::StatusOr<std::unique_ptr<ForkWorkers>> Start(
      ConnectionTable& table, std::string executable, LogFormat log_format);
  ~ForkWorkers();

  // Hands `fd` (in table slot `slot`) to the fork server. On failure (the
  // fork server is down or stuck) `fd` is closed and the caller abandons the
  // slot. The fork server counts its own failures (fork EAGAIN) in the table.
  absl::Status Dispatch(UniqueFd fd, uint32_t slot);

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
  // start, once that second has passed. Call from the event loop.
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
              LogFormat log_format)
      : table_(table),
        executable_(std::move(executable)),
        log_format_(log_format) {}
  absl::Status Spawn();
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
};

}  // namespace upper
