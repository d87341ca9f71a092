// Listener: a listening TCP socket and an accept() that never spins, shared
// by the data port and the metrics port.
//
// An IPv6 address listens dual stack (IPV6_V6ONLY off, whatever the
// net.ipv6.bindv6only sysctl says): "::" takes IPv4 clients too, as
// "::ffff:a.b.c.d". Accepted sockets are close-on-exec, blocking unless
// Accept is asked for SOCK_NONBLOCK, with TCP_NODELAY (an echo service must
// not wait for Nagle). accept(2) failures are sorted once, here:
// EAGAIN means "no more for now"; EINTR, ECONNABORTED and the network errors
// accept(2) passes through are retried; EMFILE/ENFILE use a reserve fd (close
// it, accept and close the pending connection so it is refused rather than
// left waiting, reopen the reserve); the caller refuses what is queued that
// way, then backs off; ENOBUFS/ENOMEM ask for a back-off too. Not
// thread-safe: one accepting thread.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace upper {

struct Accepted {
  enum class Kind {
    kConnection,   // `fd` and `peer` hold a new connection
    kNone,         // nothing pending
    kFdExhausted,  // one connection was refused for lack of fds; call
                   // again to refuse the next queued one, then back off
    kBackoff,      // transient kernel shortage (ENOBUFS, ENOMEM); back off
  };
  Kind kind = Kind::kNone;
  UniqueFd fd;
  sockaddr_storage peer = {};
  socklen_t peer_len = 0;
};

class Listener {
 public:
  // Binds and listens on `address`:`port` (port 0 = any free port). Errors
  // name the address: "cannot listen on 127.0.0.1:9999: Address already in
  // use" (not InvalidArgument), or InvalidArgument for an address that is not
  // an IP literal.
  static absl::StatusOr<Listener> Listen(const std::string& address,
                                         uint16_t port);

  Listener(Listener&&) = default;
  Listener& operator=(Listener&&) = default;

  int fd() const { return fd_.get(); }
  bool is_open() const { return fd_.valid(); }
  // The bound address, e.g. "127.0.0.1:40123" or "[::]:9999".
  const std::string& address() const { return address_; }
  uint16_t port() const { return port_; }

  // `extra_flags`: more accept4(2) flags, e.g. SOCK_NONBLOCK for an event
  // loop (SOCK_CLOEXEC is always set).
  Accepted Accept(int extra_flags = 0);
  // Stops listening: new connection attempts are refused by the kernel.
  void Close() { fd_.Reset(); }

 private:
  Listener(UniqueFd fd, UniqueFd reserve, std::string address, uint16_t port)
      : fd_(std::move(fd)),
        reserve_(std::move(reserve)),
        address_(std::move(address)),
        port_(port) {}

  UniqueFd fd_;
  UniqueFd reserve_;  // /dev/null, given up to accept when fds run out
  std::string address_;
  uint16_t port_;
};

// Parses an IPv4 or IPv6 literal and port into a socket address.
absl::StatusOr<sockaddr_storage> MakeSocketAddress(const std::string& address,
                                                   uint16_t port,
                                                   socklen_t* len);

}  // namespace upper
