#include "server/data/serve.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>

#include "server/data/upper_case.h"

namespace upper {
namespace {

// SO_RCVTIMEO (`option`) bounds how long recv waits for a byte: the idle
// timeout. SO_SNDTIMEO bounds how long send waits for the peer to take any
// byte: the send timeout (send returns what went out before it expires, and
// EAGAIN only when nothing did). A failure leaves the connection without
// that timeout, which is safe: the other one and admin closes still apply.
void SetTimeout(int fd, int option, uint32_t timeout_ms) {
  if (timeout_ms == 0) return;
  timeval tv;
  tv.tv_sec = timeout_ms / 1000;
  tv.tv_usec = static_cast<suseconds_t>((timeout_ms % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv));
}

// SO_SNDTIMEO alone restarts with every byte that enters our own send
// buffer, and with thousands of never-reading peers the host's TCP memory
// (tcp_mem) runs out: each close frees memory that lets the others queue a
// few more bytes, so their timeouts restart (bench/results/send_timeout.md).
// TCP_USER_TIMEOUT bounds what the peer does: data unacknowledged, or a zero
// window probed, for that long aborts the connection (ETIMEDOUT).
void SetUserTimeout(int fd, uint32_t timeout_ms) {
  if (timeout_ms == 0) return;
  const unsigned int ms = timeout_ms;
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
}

// Sends all `size` bytes; kNone on success, else why the connection ends.
CloseReason SendAll(int fd, const char* data, std::size_t size,
                    SlotWriter& slot) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n > 0) {
      slot.Sent(static_cast<uint64_t>(n));
      data += n;
      size -= static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // SO_SNDTIMEO expired with nothing sent: the peer stopped reading; or
    // TCP_USER_TIMEOUT aborted it (without a send timeout, ETIMEDOUT is the
    // kernel giving up its retransmissions: an error).
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
                  (errno == ETIMEDOUT && slot.send_timeout_ms() != 0))) {
      return CloseReason::kSendTimeout;
    }
    return CloseReason::kError;  // EPIPE, ECONNRESET, ...
  }
  return CloseReason::kNone;
}

// Where the hand-over of our output stands after our FIN.
enum class Delivery { kPending, kDone, kFailed };

// kPending while our FIN is unacknowledged (FIN_WAIT1, CLOSING, LAST_ACK),
// with the bytes still queued in `queued`; kFailed when the kernel ended
// the connection with an error (a reset, TCP_USER_TIMEOUT's ETIMEDOUT) into
// `error`; else kDone. Unknown counts as done: nothing to wait on.
Delivery OutputDelivery(int fd, int* queued, int* error) {
  tcp_info info = {};
  socklen_t len = sizeof(info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) {
    return Delivery::kDone;
  }
  if (info.tcpi_state == TCP_CLOSE) {
    len = sizeof(*error);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, error, &len) == 0 && *error != 0) {
      return Delivery::kFailed;
    }
    return Delivery::kDone;
  }
  if (info.tcpi_state != TCP_FIN_WAIT1 && info.tcpi_state != TCP_CLOSING &&
      info.tcpi_state != TCP_LAST_ACK) {
    return Delivery::kDone;  // FIN_WAIT2, TIME_WAIT: our FIN, so all, acked
  }
  if (ioctl(fd, SIOCOUTQ, queued) != 0) *queued = 0;
  return Delivery::kPending;
}

// The wait's pause before its next look: from 0.1 ms, doubling, to 250 ms.
// A peer on loopback or a LAN acknowledges within the first looks; the cap
// keeps thousands of peers that never acknowledge (an attack holding slots
// after their EOF) to a few wake-ups a second each.
constexpr long kFirstPauseNs = 100000;
constexpr long kLongestPauseNs = 250000000;

// Keeps the socket ours until the peer has acknowledged our output and FIN.
// Closed earlier, the socket would be an orphan still holding that output,
// and under host-wide TCP memory pressure the kernel resets orphans
// (TCPAbortOnMemory): the client would lose the tail of its reply. Ends
// when acknowledged (kClient), when a close is asked for (kClient: the
// close request's reason wins when the slot is released), when the kernel
// aborts it (a reset: kError; TCP_USER_TIMEOUT: kSendTimeout), or when the
// queue has not shrunk for the send timeout (kSendTimeout; without one, the
// idle timeout: kIdleTimeout). Async-signal-safe: sleeps, no timer.
CloseReason AwaitOutputAcked(int fd, const SlotWriter& slot) {
  const bool by_send = slot.send_timeout_ms() != 0;
  const uint64_t bound_ns =
      uint64_t{by_send ? slot.send_timeout_ms() : slot.idle_timeout_ms()} *
      1000000;
  uint64_t last_progress = NowNs(CLOCK_MONOTONIC);
  int least_queued = INT_MAX;
  long pause_ns = kFirstPauseNs;
  for (;;) {
    int queued = 0;
    int error = 0;
    const Delivery d = OutputDelivery(fd, &queued, &error);
    if (d == Delivery::kDone || slot.CloseRequested()) {
      return CloseReason::kClient;
    }
    if (d == Delivery::kFailed) {
      return error == ETIMEDOUT && by_send ? CloseReason::kSendTimeout
                                           : CloseReason::kError;
    }
    // Only our FIN unacknowledged (it takes one sequence number): every
    // byte of the reply is in the client's hands, so an orphan could lose
    // nothing. The common case (a client that read its reply, then closed)
    // ends here at the first look, its slot freed at once as before.
    if (queued <= 1) return CloseReason::kClient;
    const uint64_t now = NowNs(CLOCK_MONOTONIC);
    if (queued < least_queued) {
      least_queued = queued;
      last_progress = now;
    } else if (bound_ns != 0 && now - last_progress >= bound_ns) {
      return by_send ? CloseReason::kSendTimeout : CloseReason::kIdleTimeout;
    }
    timespec pause = {0, pause_ns};
    nanosleep(&pause, nullptr);  // EINTR: just look again
    pause_ns = std::min(pause_ns * 2, kLongestPauseNs);
  }
}

CloseReason ServeLoop(int fd, SlotWriter& slot, char* buffer, std::size_t size,
                      std::size_t& touched) {
  for (;;) {
    const ssize_t n = recv(fd, buffer, size, 0);
    if (n > 0) {
      touched = std::max(touched, static_cast<std::size_t>(n));
      slot.Received(static_cast<uint64_t>(n));
      UpperCaseInPlace(buffer, static_cast<std::size_t>(n));
      const CloseReason failed =
          SendAll(fd, buffer, static_cast<std::size_t>(n), slot);
      if (failed != CloseReason::kNone) return failed;
      continue;
    }
    if (n == 0) {
      // Everything received has been sent: pass the EOF on, and hold the
      // socket until the peer has it all.
      if (shutdown(fd, SHUT_WR) != 0) return CloseReason::kClient;
      return AwaitOutputAcked(fd, slot);
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return CloseReason::kIdleTimeout;
    }
    // TCP_USER_TIMEOUT: our output went unacknowledged for --send_timeout.
    // (Without one, ETIMEDOUT is the retransmissions given up: an error.)
    if (errno == ETIMEDOUT && slot.send_timeout_ms() != 0) {
      return CloseReason::kSendTimeout;
    }
    return CloseReason::kError;
  }
}

}  // namespace

CloseReason Serve(int fd, SlotWriter slot, char* buffer, std::size_t size,
                  std::size_t* touched) {
  SetTimeout(fd, SO_RCVTIMEO, slot.idle_timeout_ms());
  SetTimeout(fd, SO_SNDTIMEO, slot.send_timeout_ms());
  SetUserTimeout(fd, slot.send_timeout_ms());
  std::size_t written = 0;
  const CloseReason reason = ServeLoop(fd, slot, buffer, size, written);
  if (touched != nullptr) *touched = written;
  slot.SetCloseReason(reason);
  return reason;
}

void ScrubServeBuffer(char* buffer, std::size_t size, std::size_t touched) {
  if (touched <= kScrubByMemset) {
    std::memset(buffer, 0, std::min(touched, size));
    return;
  }
  const std::uintptr_t page = 4096;
  const auto begin = reinterpret_cast<std::uintptr_t>(buffer);
  const std::uintptr_t end = begin + size;
  const std::uintptr_t first = (begin + page - 1) & ~(page - 1);
  const std::uintptr_t last = end & ~(page - 1);
  if (first >= last || madvise(reinterpret_cast<void*>(first), last - first,
                               MADV_DONTNEED) != 0) {
    std::memset(buffer, 0, size);
    return;
  }
  std::memset(buffer, 0, first - begin);
  std::memset(reinterpret_cast<void*>(last), 0, end - last);
}

}  // namespace upper
