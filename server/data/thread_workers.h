// ThreadWorkers: thread mode, one detached pthread per connection.
//
// Threads get a small stack (kThreadStackSize) so that 10,000 connections
// fit: the serve buffer lives on that stack and its pages become resident only
// once data flows. The registry maps each slot to its socket so that admin and
// drain can shut a connection down (shutdown(2) wakes the blocked worker,
// which then closes its own fd); the registry lock makes sure we never shut
// down an fd number that its worker has already closed and the kernel reused.
//
// Thread-safe. Everything a worker touches (the registry and the table) is
// held by a shared_ptr that every worker co-owns, so no worker can touch freed
// memory whatever the order of destruction. The destructor shuts every
// registered connection down and waits a bounded time (kStopWait) for the
// workers; upperd exits right after it, so it never hangs on one.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "server/data/connection_table.h"

namespace upper {

inline constexpr std::size_t kThreadStackSize = 256 * 1024;

class ThreadWorkers {
 public:
  // How long the destructor waits for workers after shutting them down.
  static constexpr absl::Duration kStopWait = absl::Milliseconds(500);

  explicit ThreadWorkers(std::shared_ptr<ConnectionTable> table);
  ~ThreadWorkers();
  ThreadWorkers(const ThreadWorkers&) = delete;
  ThreadWorkers& operator=(const ThreadWorkers&) = delete;

  // Starts a thread that serves `fd` in table slot `slot` and releases the
  // slot when done. On failure (pthread_create: EAGAIN at the thread limit)
  // nothing was started, `fd` is closed, and the caller abandons the slot.
  absl::Status Start(UniqueFd fd, uint32_t slot);

  // Shuts down connection `id`, served in `slot` (both directions); its
  // worker then ends. Returns false if no worker serves that slot or the slot
  // holds another connection by now.
  bool Shutdown(uint32_t slot, uint64_t id);
  // Shuts down every registered connection, whatever the table says (the
  // drain's last resort); returns how many.
  std::size_t ShutdownAll();

  // Workers still running.
  std::size_t live() const;
  // Waits until no worker runs or `timeout` passes; true if none runs.
  bool WaitIdle(absl::Duration timeout);

 private:
  struct State;
  struct Job;
  static void* ThreadMain(void* job);
  static void Run(State& state, int fd, uint32_t slot);

  std::shared_ptr<State> state_;
};

}  // namespace upper
