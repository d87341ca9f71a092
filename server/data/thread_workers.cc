#include "server/data/thread_workers.h"

#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "common/errno_status.h"
#include "server/data/serve.h"

namespace upper {

struct ThreadWorkers::Job {
  ThreadWorkers* workers;
  int fd;
  uint32_t slot;
};

ThreadWorkers::~ThreadWorkers() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return live_ == 0; });
}

absl::Status ThreadWorkers::Start(UniqueFd fd, uint32_t slot) {
  pthread_attr_t attr;
  if (int err = pthread_attr_init(&attr); err != 0) {
    return ErrnoStatus("pthread_attr_init", err);
  }
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, kThreadStackSize);

  auto job = std::make_unique<Job>(Job{this, fd.get(), slot});
  {
    std::lock_guard lock(mu_);
    fds_[slot] = fd.get();
    ++live_;
  }
  pthread_t thread;
  const int err = pthread_create(&thread, &attr, &ThreadMain, job.get());
  pthread_attr_destroy(&attr);
  if (err != 0) {
    std::lock_guard lock(mu_);
    fds_.erase(slot);
    --live_;
    idle_.notify_all();
    return ErrnoStatus("pthread_create", err);  // fd closes with `fd`
  }
  job.release();  // owned by the thread now
  fd.Release();   // likewise
  return absl::OkStatus();
}

void* ThreadWorkers::ThreadMain(void* arg) {
  std::unique_ptr<Job> job(static_cast<Job*>(arg));
  job->workers->Run(job->fd, job->slot);
  return nullptr;
}

void ThreadWorkers::Run(int raw_fd, uint32_t slot) {
  UniqueFd fd(raw_fd);
  SlotWriter writer = table_.Writer(slot);
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
    std::lock_guard lock(mu_);
    fds_.erase(slot);
  }
  fd.Reset();
  table_.Release(slot, reason);
  std::lock_guard lock(mu_);
  --live_;
  idle_.notify_all();  // under the lock: `this` may be destroyed right after
}

bool ThreadWorkers::Shutdown(uint32_t slot, uint64_t id) {
  std::lock_guard lock(mu_);
  const auto it = fds_.find(slot);
  if (it == fds_.end()) return false;
  // A worker unregisters (under mu_) before it releases its slot, so while
  // the slot is registered here the table's id is that worker's connection.
  const std::optional<ConnectionInfo> info = table_.Read(slot);
  if (!info || info->id != id) return false;
  shutdown(it->second, SHUT_RDWR);
  return true;
}

std::size_t ThreadWorkers::live() const {
  std::lock_guard lock(mu_);
  return live_;
}

bool ThreadWorkers::WaitIdle(absl::Duration timeout) {
  std::unique_lock lock(mu_);
  return idle_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [this] { return live_ == 0; });
}

}  // namespace upper
