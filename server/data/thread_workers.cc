#include "server/data/thread_workers.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/errno_status.h"
#include "server/base/log.h"
#include "server/data/serve.h"

namespace upper {
namespace {

// shutdown(2) of a registered socket. ENOTCONN (the peer reset it first) is
// as good as done: its worker's recv/send fails either way. Any other errno
// would be a bug (the registry never holds a closed fd) and is returned.
int ShutdownSocket(int fd) {
  if (shutdown(fd, SHUT_RDWR) == 0 || errno == ENOTCONN) return 0;
  return errno;
}

void LogShutdownFailure(int err) {
  LogEvent(LogLevel::kError, "thread_shutdown_failed",
           {{"error", std::strerror(err)}});
}

}  // namespace

// What workers use after they start: co-owned by every worker, so it (and the
// table it holds) lives until the last worker is done, even if the
// ThreadWorkers object was destroyed first.
struct ThreadWorkers::State {
  State(std::shared_ptr<ConnectionTable> t, CacheOptions c)
      : table(std::move(t)), cache(c) {}

  const std::shared_ptr<ConnectionTable> table;
  const CacheOptions cache;
  std::mutex mu;
  std::condition_variable idle;
  std::unordered_map<uint32_t, int> fds;  // slot -> socket, under mu
  std::size_t live = 0;                   // busy workers, under mu
  // Waiting spares, most recently idle last (Start takes from the back, so
  // the oldest ones are the ones that time out); under mu.
  std::vector<Spare*> spares;
  bool stopping = false;    // under mu: no spares any more
  ThreadCacheStats totals;  // spawns and exits, under mu
};

// A spare thread's hand-off box, on its own stack; in State::spares while it
// waits. Start() fills `fd`/`slot`, takes it off the list and notifies, all
// under State::mu, so the spare finds the work when it next holds the lock.
struct ThreadWorkers::Spare {
  std::condition_variable wake;
  bool handed = false;
  int fd = -1;
  uint32_t slot = 0;
};

struct ThreadWorkers::Job {
  std::shared_ptr<State> state;
  int fd;
  uint32_t slot;
};

ThreadWorkers::ThreadWorkers(std::shared_ptr<ConnectionTable> table,
                             CacheOptions cache)
    : state_(std::make_shared<State>(std::move(table), cache)) {}

ThreadWorkers::~ThreadWorkers() {
  StopSpares();
  // The drain has normally ended every worker by now; this is the bound for
  // one it missed (an active count gone wrong): wake it and wait a little,
  // never forever. A worker still live afterwards keeps `state_` and the
  // table alive through its own reference, and upperd exits right after.
  ShutdownAll();
  if (WaitIdle(kStopWait)) return;
  LogEvent(LogLevel::kError, "thread_workers_still_live",
           {{"live", static_cast<uint64_t>(live())},
            {"waited", absl::FormatDuration(kStopWait)}});
}

absl::Status ThreadWorkers::Start(UniqueFd fd, uint32_t slot) {
  pthread_attr_t attr;
  if (int err = pthread_attr_init(&attr); err != 0) {
    return ErrnoStatus("pthread_attr_init", err);
  }
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, kThreadStackSize);

  {
    std::lock_guard lock(state_->mu);
    state_->fds[slot] = fd.get();
    ++state_->live;
    if (HandToSpare(*state_, fd.get(), slot)) {
      pthread_attr_destroy(&attr);
      fd.Release();  // the spare's now
      return absl::OkStatus();
    }
  }
  auto job = std::make_unique<Job>(Job{state_, fd.get(), slot});
  pthread_t thread;
  const int err = pthread_create(&thread, &attr, &ThreadMain, job.get());
  pthread_attr_destroy(&attr);
  std::lock_guard lock(state_->mu);
  if (err == 0) {
    ++state_->totals.spawns_total;
    job.release();  // owned by the thread now
    fd.Release();   // likewise
    return absl::OkStatus();
  }
  // At the task limit a worker may have become a spare since we looked: it
  // holds the task this connection would have had without the cache.
  if (HandToSpare(*state_, fd.get(), slot)) {
    fd.Release();
    return absl::OkStatus();
  }
  state_->fds.erase(slot);
  --state_->live;
  state_->idle.notify_all();
  return ErrnoStatus("pthread_create", err);  // fd closes with `fd`
}

bool ThreadWorkers::HandToSpare(State& state, int fd, uint32_t slot) {
  if (state.spares.empty()) return false;
  Spare* spare = state.spares.back();
  state.spares.pop_back();
  spare->handed = true;
  spare->fd = fd;
  spare->slot = slot;
  ++state.totals.handoffs_total;
  // Under the lock: the box lives on the spare's stack, which it may leave
  // as soon as it can take the lock and sees `handed`.
  spare->wake.notify_one();
  return true;
}

void* ThreadWorkers::ThreadMain(void* arg) {
  std::unique_ptr<Job> job(static_cast<Job*>(arg));
  Run(*job->state, job->fd, job->slot);
  return nullptr;  // `job` drops this worker's share of the state
}

void ThreadWorkers::Run(State& state, int fd, uint32_t slot) {
  // On this thread's small stack; see kServeBufferSize. Reused by every
  // connection this thread serves, scrubbed in between.
  alignas(64) char buffer[kServeBufferSize];
  for (;;) {
    ServeOne(state, fd, slot, buffer, sizeof(buffer));
    if (!AwaitNext(state, fd, slot)) return;
  }
}

CloseReason ThreadWorkers::ServeOne(State& state, int raw_fd, uint32_t slot,
                                    char* buffer, std::size_t size) {
  UniqueFd fd(raw_fd);
  SlotWriter writer = state.table->Writer(slot);
  // Nothing abandons a thread slot once it is handed to a thread, so the
  // claim holds; it counts the connection accepted.
  writer.Claim(getpid(), gettid());
  CloseReason reason = CloseReason::kKilled;
  // A close asked for before the claim ends it unserved (counted as asked).
  if (!writer.CloseRequested()) reason = Serve(fd.get(), writer, buffer, size);
  {
    // Unregister before closing so Shutdown() cannot hit a reused fd number.
    std::lock_guard lock(state.mu);
    state.fds.erase(slot);
  }
  fd.Reset();
  state.table->Release(slot, reason);
  ScrubServeBuffer(buffer, size);  // before this thread can take another
  return reason;
}

bool ThreadWorkers::AwaitNext(State& state, int& fd, uint32_t& slot) {
  Spare spare;
  std::unique_lock lock(state.mu);
  // Busy no more: WaitIdle counts busy workers only.
  --state.live;
  state.idle.notify_all();
  if (state.stopping) {
    ++state.totals.exits_shutdown;
    return false;
  }
  if (state.spares.size() >= state.cache.max_spare) {
    ++state.totals.exits_cache_full;
    return false;
  }
  if (!WaitAsSpare(state, spare, lock)) return false;
  fd = spare.fd;
  slot = spare.slot;
  return true;
}

bool ThreadWorkers::WaitAsSpare(State& state, Spare& spare,
                                std::unique_lock<std::mutex>& lock) {
  state.spares.push_back(&spare);
  auto deadline = std::chrono::steady_clock::now() +
                  absl::ToChronoNanoseconds(state.cache.spare_timeout);
  for (;;) {
    const bool woken =
        spare.wake.wait_until(lock, deadline) == std::cv_status::no_timeout;
    // Work first: once handed (off the list), the spare must serve it.
    if (spare.handed) return true;
    if (!state.stopping &&
        (woken || state.spares.size() <= state.cache.min_spare)) {
      // Spurious wake-up, or one of the minimum: keep waiting.
      if (!woken)
        deadline += absl::ToChronoNanoseconds(state.cache.spare_timeout);
      continue;
    }
    // Leaving: off the list under the lock, so no hand-off can pick it now.
    std::erase(state.spares, &spare);
    if (state.stopping) {
      ++state.totals.exits_shutdown;
    } else {
      ++state.totals.exits_idle_timeout;
    }
    return false;
  }
}

void ThreadWorkers::StopSpares() {
  std::lock_guard lock(state_->mu);
  state_->stopping = true;
  // Each wakes, finds `stopping`, takes itself off the list and exits.
  for (Spare* spare : state_->spares) spare->wake.notify_one();
}

bool ThreadWorkers::Shutdown(uint32_t slot, uint64_t id) {
  int err = 0;
  {
    std::lock_guard lock(state_->mu);
    const auto it = state_->fds.find(slot);
    if (it == state_->fds.end()) return false;
    // A worker unregisters (under mu) before it releases its slot, so while
    // the slot is registered here the table's id is that worker's connection.
    const std::optional<ConnectionInfo> info = state_->table->Read(slot);
    if (!info || info->id != id) return false;
    err = ShutdownSocket(it->second);
  }
  if (err == 0) return true;
  LogShutdownFailure(err);
  return false;
}

std::size_t ThreadWorkers::ShutdownAll() {
  std::size_t count = 0;
  int err = 0;
  {
    // Under the lock: every fd registered here is still open (see Run).
    std::lock_guard lock(state_->mu);
    for (const auto& [slot, fd] : state_->fds) {
      if (int e = ShutdownSocket(fd); e != 0) {
        err = e;
      } else {
        ++count;
      }
    }
  }
  if (err != 0) LogShutdownFailure(err);  // outside the lock: logging may wait
  return count;
}

std::size_t ThreadWorkers::live() const {
  std::lock_guard lock(state_->mu);
  return state_->live;
}

std::size_t ThreadWorkers::idle() const {
  std::lock_guard lock(state_->mu);
  return state_->spares.size();
}

ThreadCacheStats ThreadWorkers::stats() const {
  std::lock_guard lock(state_->mu);
  ThreadCacheStats stats = state_->totals;
  stats.busy = state_->live;
  stats.idle = state_->spares.size();
  return stats;
}

bool ThreadWorkers::WaitIdle(absl::Duration timeout) {
  std::unique_lock lock(state_->mu);
  return state_->idle.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                               [this] { return state_->live == 0; });
}

}  // namespace upper
