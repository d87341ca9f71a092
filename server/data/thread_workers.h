// ThreadWorkers: thread mode, one detached pthread per connection at a
// time, with a cache of spare threads.
//
// Thread cache: a worker that finished its connection (slot released, fd
// closed) waits as a spare for the next one, up to `max_spare` spares and,
// beyond `min_spare`, up to `spare_timeout`; Start() hands a connection to
// the most recently idle spare (no pthread_create) and creates a thread only
// when none waits. Every hand-off and every spare's decision to leave is made
// under one lock on the spare list, so a hand-off to a spare that is timing
// out is never lost: either Start() took the spare off the list first (the
// spare serves), or the spare left it first (Start() creates a thread).
// Spares are tasks like busy workers (pids.max, RLIMIT_NPROC): when
// pthread_create fails, Start() looks for a spare once more before refusing.
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
#include <mutex>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "server/data/connection_table.h"
#include "server/data/worker_stats.h"

namespace upper {

inline constexpr std::size_t kThreadStackSize = 256 * 1024;

class ThreadWorkers {
 public:
  // How long the destructor waits for workers after shutting them down.
  static constexpr absl::Duration kStopWait = absl::Milliseconds(500);

  // The thread cache's bounds (--thread_spare_min/max/timeout). max_spare 0
  // turns the cache off: every thread exits after its connection.
  struct CacheOptions {
    std::size_t min_spare = 0;
    std::size_t max_spare = 64;
    absl::Duration spare_timeout = absl::Seconds(10);
  };

  explicit ThreadWorkers(std::shared_ptr<ConnectionTable> table)
      : ThreadWorkers(std::move(table), CacheOptions{}) {}
  ThreadWorkers(std::shared_ptr<ConnectionTable> table, CacheOptions cache);
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

  // Ends every spare at once and keeps workers from becoming spares from now
  // on (the drain: no connection is coming). Idempotent.
  void StopSpares();

  // Workers serving a connection (spares not included).
  std::size_t live() const;
  // Spare threads waiting for a connection.
  std::size_t idle() const;
  // Busy, idle and the spawn and exit totals, read at one moment.
  ThreadCacheStats stats() const;
  // Waits until no worker runs or `timeout` passes; true if none runs.
  bool WaitIdle(absl::Duration timeout);

 private:
  struct State;
  struct Job;
  struct Spare;
  static void* ThreadMain(void* job);
  static void Run(State& state, int fd, uint32_t slot);
  static CloseReason ServeOne(State& state, int fd, uint32_t slot, char* buffer,
                              std::size_t size);
  // After ServeOne: becomes a spare and waits; false when the thread is to
  // exit (counted), true with the next connection in `fd` and `slot`.
  static bool AwaitNext(State& state, int& fd, uint32_t& slot);
  // A spare waiting for a connection; true with it handed in `spare`.
  static bool WaitAsSpare(State& state, Spare& spare,
                          std::unique_lock<std::mutex>& lock);
  // Hands `fd`, `slot` (already registered) to a spare if one waits; under
  // the lock.
  static bool HandToSpare(State& state, int fd, uint32_t slot);

  std::shared_ptr<State> state_;
};

}  // namespace upper
