// ThreadWorkers: thread mode, one detached pthread per connection.
//
// Threads get a small stack (kThreadStackSize) so that 10,000 connections
// fit: the serve buffer lives on that stack and its pages become resident only
// once data flows. The registry maps each slot to its socket so that admin and
// drain can shut a connection down (shutdown(2) wakes the blocked worker,
// which then closes its own fd); the registry lock makes sure we never shut
// down an fd number that its worker has already closed and the kernel reused.
//
// Thread-safe. The destructor waits until every worker has finished, so no
// thread outlives the table or this object.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "server/data/connection_table.h"

namespace upper {

inline constexpr std::size_t kThreadStackSize = 256 * 1024;

class ThreadWorkers {
 public:
  explicit ThreadWorkers(ConnectionTable& table) : table_(table) {}
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

  // Workers still running.
  std::size_t live() const;
  // Waits until no worker runs or `timeout` passes; true if none runs.
  bool WaitIdle(absl::Duration timeout);

 private:
  struct Job;
  static void* ThreadMain(void* job);
  void Run(int fd, uint32_t slot);

  ConnectionTable& table_;
  mutable std::mutex mu_;
  std::condition_variable idle_;
  std::unordered_map<uint32_t, int> fds_;  // slot -> socket, under mu_
  std::size_t live_ = 0;                   // under mu_
};

}  // namespace upper
