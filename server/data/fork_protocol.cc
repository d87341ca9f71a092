#include "server/data/fork_protocol.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/errno_status.h"

namespace upper {
namespace {

// Room for more fds than upperd ever sends, so that a stray extra fd is
// received (and closed) rather than truncating the one that matters.
constexpr int kMaxReceivedFds = 4;

// Takes every fd out of `msg`'s SCM_RIGHTS messages: the first into `conn`,
// the rest closed.
void TakeFds(msghdr& msg, UniqueFd& conn) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
       c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < fds; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (!conn.valid()) {
        conn.Reset(fd);
      } else {
        UniqueFd extra(fd);  // never expected; never leaked
      }
    }
  }
}

}  // namespace

absl::StatusOr<bool> SendForkRequest(int socket, const ForkRequest& request,
                                     int conn) {
  ForkRequest copy = request;  // iovec wants a non-const buffer
  iovec iov = {&copy, sizeof(copy)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (conn >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &conn, sizeof(int));
  }
  const ssize_t n =
      RetryOnEintr([&] { return sendmsg(socket, &msg, MSG_NOSIGNAL); });
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
  if (n != static_cast<ssize_t>(sizeof(copy))) {
    return ErrnoStatus("sendmsg(fork server)", n < 0 ? errno : EMSGSIZE);
  }
  return true;
}

ReceivedForkRequest ReceiveForkRequest(int socket) {
  ReceivedForkRequest r;
  iovec iov = {&r.request, sizeof(r.request)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxReceivedFds)];
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  r.bytes = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  if (r.bytes < 0 && (errno == EINTR || errno == EAGAIN)) {
    r.outcome = ReceivedForkRequest::Outcome::kRetry;
    return r;
  }
  if (r.bytes <= 0) {
    r.outcome = ReceivedForkRequest::Outcome::kClosed;
    return r;
  }
  TakeFds(msg, r.conn);
  r.truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  if (r.bytes != static_cast<ssize_t>(sizeof(r.request))) {
    r.conn.Reset();
    r.outcome = ReceivedForkRequest::Outcome::kMalformed;
    return r;
  }
  r.outcome = ReceivedForkRequest::Outcome::kRequest;
  return r;
}

}  // namespace upper
