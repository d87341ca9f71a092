#include "server/data/thread_workers.h"

#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <utility>

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
  explicit State(std::shared_ptr<ConnectionTable> t) : table(std::move(t)) {}

  const std::shared_ptr<ConnectionTable> table;
  std::mutex mu;
  std::condition_variable idle;
  std::unordered_map<uint32_t, int> fds;  // slot -> socket, under mu
  std::size_t live = 0;                   // under mu
};

struct ThreadWorkers::Job {
  std::shared_ptr<State> state;
  int fd;
  uint32_t slot;
};

ThreadWorkers::ThreadWorkers(std::shared_ptr<ConnectionTable> table)
    : state_(std::make_shared<State>(std::move(table))) {}

ThreadWorkers::~ThreadWorkers() {
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

  auto job = std::make_unique<Job>(Job{state_, fd.get(), slot});
  {
    std::lock_guard lock(state_->mu);
    state_->fds[slot] = fd.get();
    ++state_->live;
  }
  pthread_t thread;
  const int err = pthread_create(&thread, &attr, &ThreadMain, job.get());
  pthread_attr_destroy(&attr);
  if (err != 0) {
    std::lock_guard lock(state_->mu);
    state_->fds.erase(slot);
    --state_->live;
    state_->idle.notify_all();
    return ErrnoStatus("pthread_create", err);  // fd closes with `fd`
  }
  job.release();  // owned by the thread now
  fd.Release();   // likewise
  return absl::OkStatus();
}

void* ThreadWorkers::ThreadMain(void* arg) {
  std::unique_ptr<Job> job(static_cast<Job*>(arg));
  Run(*job->state, job->fd, job->slot);
  return nullptr;  // `job` drops this worker's share of the state
}

void ThreadWorkers::Run(State& state, int raw_fd, uint32_t slot) {
  UniqueFd fd(raw_fd);
  SlotWriter writer = state.table->Writer(slot);
  // Nothing abandons a thread slot once its thread exists, so the claim
  // holds; it counts the connection accepted.
  writer.Claim(getpid(), gettid());
  CloseReason reason = CloseReason::kKilled;
  // A close asked for before the claim ends it unserved (counted as asked).
  if (!writer.CloseRequested()) {
    // On this thread's small stack; see kServeBufferSize.
    alignas(64) char buffer[kServeBufferSize];
    reason = Serve(fd.get(), writer, buffer, sizeof(buffer));
  }
  {
    // Unregister before closing so Shutdown() cannot hit a reused fd number.
    std::lock_guard lock(state.mu);
    state.fds.erase(slot);
  }
  fd.Reset();
  state.table->Release(slot, reason);
  std::lock_guard lock(state.mu);
  --state.live;
  state.idle.notify_all();
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

bool ThreadWorkers::WaitIdle(absl::Duration timeout) {
  std::unique_lock lock(state_->mu);
  return state_->idle.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                               [this] { return state_->live == 0; });
}

}  // namespace upper
