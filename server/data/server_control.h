// ServerControl: what the admin and metrics planes may ask of the data plane.
//
// DataPlane implements it; the other planes depend on this interface only
// (and on the connection table, which is the data plane's published record),
// never on the event loop, the listener or the workers. So their error paths
// are unit-tested in process against a fake, without starting upperd.
//
// Thread-safety: every method may be called from any thread, concurrently
// with the event loop, except SetDrainListener (see there).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/base/mode.h"
#include "server/base/resource_limits.h"
#include "server/data/connection_table.h"
#include "server/data/worker_stats.h"

namespace upper {

class ServerControl {
 public:
  virtual ~ServerControl() = default;

  // The shared table: totals and a snapshot of the live slots.
  virtual ConnectionTable& table() = 0;
  // "host:port" (IPv6 in brackets) the data port is bound to.
  virtual std::string data_address() const = 0;
  virtual absl::Time started_at() const = 0;
  // True once SIGTERM (or SIGINT) has started the drain.
  virtual bool draining() const = 0;
  // The fd, task and memory limits read at start-up (after the fd limit
  // was raised); they do not change while upperd runs.
  virtual ResourceLimits resource_limits() const = 0;

  // Thread mode's workers: busy, idle spares, spawns and exits. Zero in a
  // server without thread workers (and in fakes that do not say).
  virtual ThreadCacheStats thread_workers() const { return {}; }
  // Fork mode's children: busy, idle in the pool, spawns and exits.
  virtual ForkPoolStats fork_workers() const { return {}; }
  // Sets the mode for new connections; returns the previous one.
  virtual Mode SetMode(Mode mode) = 0;
  // Closes connection `id`, counted as `reason`. OK: the close was
  // delivered (the worker was signalled, or had not started and sees the
  // request when it does, or ended meanwhile counted as `reason`). NotFound:
  // `id` is not live (nothing counted). Unavailable: its worker could not be
  // signalled; the request is withdrawn and nothing is counted. On OK, the
  // connection's row as it was when the close was requested.
  virtual absl::StatusOr<ConnectionInfo> CloseConnection(
      uint64_t id, CloseReason reason) = 0;

  // `listener` runs once, on the event loop's thread, when the drain starts
  // (after the data port is closed), e.g. to report NOT_SERVING. It must not
  // block. Set it before the loop runs, or clear it after it has returned.
  virtual void SetDrainListener(std::function<void()> listener) = 0;
};

}  // namespace upper
