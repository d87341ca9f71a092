// upper-client's library: the client side of upperd's data port.
//
// upperd upper-cases every byte a client sends over TCP and sends it back in
// order; when the client half-closes its sending side, upperd sends what is
// left and closes. This module parses the server address, connects, and pumps
// bytes between a local input, the socket and a local output.
//
// Thread-safety: ParseAddress, FormatHostPort and ConnectTo are thread-safe.
// CopyDuplex may run in several threads at once on distinct descriptors; it
// starts (and always joins) one helper thread of its own. A UniqueFd is a plain
// value: do not share one object between threads without synchronization.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace upper::client {

// A server address as given by the user. `host` is a name or a numeric
// address, without the brackets of the "[v6]:port" form.
struct HostPort {
  std::string host;
  uint16_t port = 0;

  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// The default server address of the data port.
inline constexpr std::string_view kDefaultAddress = "localhost:9999";

// Parses "host:port" or "[v6]:port". The host must not be empty and an IPv6
// address needs its brackets; the port is decimal in 1..65535. Errors are
// InvalidArgument and quote `addr`.
absl::StatusOr<HostPort> ParseAddress(std::string_view addr);

// Formats `address` back as "host:port", bracketing hosts that contain ':'.
std::string FormatHostPort(const HostPort& address);

// Resolves `address` with getaddrinfo and tries every result in turn until a
// TCP connection succeeds. The socket is close-on-exec, blocking, and has
// TCP_NODELAY set. On failure returns Unavailable naming `address` and the
// reason (resolver error or strerror text) for each address tried.
absl::StatusOr<UniqueFd> ConnectTo(const HostPort& address);

// Pumps bytes until the exchange is complete, concurrently in both directions:
// a helper thread copies `in_fd` to the socket `sock_fd` and, at end of input,
// half-closes the socket (shutdown SHUT_WR); the calling thread copies the
// socket to `out_fd` until the server closes. Whatever one read() returns is
// forwarded at once, so interactive input works line by line.
//
// Returns OK once the last byte from the server has been written to `out_fd`.
// Returns an error when reading, sending or writing fails (EPIPE on `out_fd`
// included: SIGPIPE is blocked in the calling thread while copying and a
// SIGPIPE raised by writing `out_fd` is discarded), or when the server closes
// before the end of input. On error the socket is shut down in both directions
// and nothing stays blocked; the helper thread is always joined. Descriptors
// stay owned by the caller and are not closed.
absl::Status CopyDuplex(int in_fd, int sock_fd, int out_fd);

}  // namespace upper::client
