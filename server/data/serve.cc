#include "server/data/serve.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <climits>

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

// After our FIN: false while the peer has not acknowledged all we sent
// (our FIN is unacknowledged in FIN_WAIT1, CLOSING or LAST_ACK), with the
// bytes still queued in `queued`. Unknown counts as acknowledged.
bool OutputAcked(int fd, int* queued) {
  tcp_info info = {};
  socklen_t len = sizeof(info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return true;
  if (info.tcpi_state != TCP_FIN_WAIT1 && info.tcpi_state != TCP_CLOSING &&
      info.tcpi_state != TCP_LAST_ACK) {
    return true;  // FIN_WAIT2, TIME_WAIT, CLOSE: our FIN, so all, is acked
  }
  if (ioctl(fd, SIOCOUTQ, queued) != 0) *queued = 0;
  return false;
}

// Keeps the socket ours until the peer has acknowledged our output and FIN.
// Closed earlier, the socket would be an orphan still holding that output,
// and under host-wide TCP memory pressure the kernel resets orphans
// (TCPAbortOnMemory): the client would lose the tail of its reply. Ends
// when acknowledged, when a close is asked for (admin, drain), or when the
// queue has not shrunk for the send timeout (else the idle timeout; the
// kernel's own TCP_USER_TIMEOUT aborts it at the send timeout too). Polls
// with a backoff from 0.1 to 20 ms: async-signal-safe, no timer needed.
void AwaitOutputAcked(int fd, const SlotWriter& slot) {
  const uint64_t bound_ns =
      uint64_t{slot.send_timeout_ms() != 0 ? slot.send_timeout_ms()
                                           : slot.idle_timeout_ms()} *
      1000000;
  uint64_t last_progress = NowNs(CLOCK_MONOTONIC);
  int least_queued = INT_MAX;
  long sleep_ns = 100000;
  for (;;) {
    int queued = 0;
    if (OutputAcked(fd, &queued) || slot.CloseRequested()) return;
    const uint64_t now = NowNs(CLOCK_MONOTONIC);
    if (queued < least_queued) {
      least_queued = queued;
      last_progress = now;
    } else if (bound_ns != 0 && now - last_progress >= bound_ns) {
      return;
    }
    timespec pause = {0, sleep_ns};
    nanosleep(&pause, nullptr);  // EINTR: just look again
    sleep_ns = std::min(sleep_ns * 2, 20000000L);
  }
}

CloseReason ServeLoop(int fd, SlotWriter& slot, char* buffer,
                      std::size_t size) {
  for (;;) {
    const ssize_t n = recv(fd, buffer, size, 0);
    if (n > 0) {
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
      if (shutdown(fd, SHUT_WR) == 0) AwaitOutputAcked(fd, slot);
      return CloseReason::kClient;
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

CloseReason Serve(int fd, SlotWriter slot, char* buffer, std::size_t size) {
  SetTimeout(fd, SO_RCVTIMEO, slot.idle_timeout_ms());
  SetTimeout(fd, SO_SNDTIMEO, slot.send_timeout_ms());
  SetUserTimeout(fd, slot.send_timeout_ms());
  const CloseReason reason = ServeLoop(fd, slot, buffer, size);
  slot.SetCloseReason(reason);
  return reason;
}

}  // namespace upper
