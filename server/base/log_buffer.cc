#include "server/base/log_buffer.h"

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>

#include "absl/time/clock.h"

namespace upper {
namespace {

// Room kept for the line reporting drops, so that it is formatted (under
// the mutex) only when it will fit with the line after it.
constexpr size_t kDropLineReserve = 256;
// The longest a poll waits before the writer looks at its stop deadline
// again.
constexpr absl::Duration kPollSlice = absl::Milliseconds(100);

bool IsSocket(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

int PollMs(absl::Duration d) {
  return static_cast<int>(std::clamp<int64_t>(
      absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1))), 0,
      absl::ToInt64Milliseconds(kPollSlice)));
}

}  // namespace

struct LogBuffer::State {
  State(int fd_in, size_t capacity_in, DropLine drop_line_in)
      : fd(fd_in),
        capacity(capacity_in),
        drop_line(std::move(drop_line_in)),
        is_socket(IsSocket(fd_in)) {}

  // Waits for POLLOUT on fd in slices, until the stop deadline; false once
  // it has passed.
  bool WaitWritable();
  // Writes a prefix of [p, p+n), n <= PIPE_BUF; its length, or -1 when the
  // rest of the batch is to be discarded (fd gone, or stop deadline).
  ssize_t WriteChunk(const char* p, size_t n);
  void WriteBatch(absl::string_view batch);

  const int fd;
  const size_t capacity;
  const DropLine drop_line;
  const bool is_socket;

  std::mutex mu;
  std::condition_variable wake;      // to the writer: pending or stopping
  std::condition_variable progress;  // to Flush and Stop: written or done
  std::string pending;               // under mu
  size_t queued = 0;                 // under mu: pending + unwritten batch
  uint64_t enqueued_bytes = 0;       // under mu: ever queued
  uint64_t consumed_bytes = 0;       // under mu: ever written or discarded
  uint64_t unreported_drops = 0;     // under mu
  bool stopping = false;             // under mu
  absl::Time stop_deadline = absl::InfiniteFuture();  // under mu
  bool done = false;                                  // under mu
  std::atomic<uint64_t> dropped_total{0};
};

bool LogBuffer::State::WaitWritable() {
  for (;;) {
    absl::Time deadline;
    {
      std::lock_guard lock(mu);
      deadline = stop_deadline;
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd pfd = {fd, POLLOUT, 0};
    const int r = poll(&pfd, 1, PollMs(left));
    if (r > 0) return true;  // writable, or an error write(2) will report
    if (r < 0 && errno != EINTR) return true;  // let write(2) decide
  }
}

ssize_t LogBuffer::State::WriteChunk(const char* p, size_t n) {
  for (int attempt = 0;; ++attempt) {
    if (!WaitWritable()) return -1;
    const ssize_t w = is_socket ? send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL)
                                : write(fd, p, n);
    if (w > 0) return w;
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // fd 2 is non-blocking (set by whoever shares it) and POLLOUT said
      // writable yet nothing fit: back off rather than spin.
      poll(nullptr, 0, std::min(attempt + 1, 10));
      continue;
    }
    return -1;  // EPIPE, EBADF, ...: stderr is gone; nothing better to do
  }
}

void LogBuffer::State::WriteBatch(absl::string_view batch) {
  while (!batch.empty()) {
    const ssize_t w =
        WriteChunk(batch.data(), std::min<size_t>(batch.size(), PIPE_BUF));
    const size_t consumed = w < 0 ? batch.size() : static_cast<size_t>(w);
    batch.remove_prefix(consumed);
    std::lock_guard lock(mu);
    queued -= consumed;
    consumed_bytes += consumed;
    progress.notify_all();
  }
}

void LogBuffer::Run(std::shared_ptr<State> state) {
  std::string batch;
  for (;;) {
    {
      std::unique_lock lock(state->mu);
      state->wake.wait(
          lock, [&] { return state->stopping || !state->pending.empty(); });
      if (state->pending.empty()) {
        state->done = true;
        state->progress.notify_all();
        return;
      }
      batch.clear();
      batch.swap(state->pending);
    }
    state->WriteBatch(batch);
  }
}

LogBuffer::LogBuffer(int fd, size_t capacity_bytes, DropLine drop_line)
    : state_(
          std::make_shared<State>(fd, capacity_bytes, std::move(drop_line))) {
  // The writer blocks every signal: a process that handles SIGTERM or
  // SIGCHLD through a signalfd (upperd, the fork server) must not have them
  // delivered to, or kill it through, a thread that does not expect them.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  writer_ = std::thread(&LogBuffer::Run, state_);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

LogBuffer::~LogBuffer() { Stop(absl::Seconds(1)); }

bool LogBuffer::Append(absl::string_view line) {
  State& s = *state_;
  std::lock_guard lock(s.mu);
  const size_t reserve = s.unreported_drops > 0 ? kDropLineReserve : 0;
  if (s.stopping || s.queued + reserve + line.size() > s.capacity) {
    ++s.unreported_drops;
    s.dropped_total.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (s.unreported_drops > 0) {
    const std::string report = s.drop_line(s.unreported_drops);
    s.pending.append(report);
    s.queued += report.size();
    s.enqueued_bytes += report.size();
    s.unreported_drops = 0;
  }
  s.pending.append(line.data(), line.size());
  s.queued += line.size();
  s.enqueued_bytes += line.size();
  s.wake.notify_one();
  return true;
}

bool LogBuffer::Flush(absl::Duration timeout) {
  State& s = *state_;
  std::unique_lock lock(s.mu);
  const uint64_t target = s.enqueued_bytes;
  return s.progress.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] {
    return s.consumed_bytes >= target || s.done;
  }) && s.consumed_bytes >= target;
}

void LogBuffer::Stop(absl::Duration timeout) {
  if (!writer_.joinable()) return;
  bool done;
  {
    std::unique_lock lock(state_->mu);
    state_->stopping = true;
    state_->stop_deadline = absl::Now() + timeout;
    state_->wake.notify_all();
    // The writer gives up within one poll slice of the deadline, unless it
    // is inside a write(2) that blocks.
    done = state_->progress.wait_for(
        lock, absl::ToChronoMilliseconds(timeout + 2 * kPollSlice),
        [&] { return state_->done; });
  }
  if (done) {
    writer_.join();
  } else {
    writer_.detach();  // it holds state_ alive; the process exit ends it
  }
}

uint64_t LogBuffer::dropped_total() const {
  return state_->dropped_total.load(std::memory_order_relaxed);
}

}  // namespace upper
