#include "common/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/host_port.h"

namespace upper {

absl::StatusOr<sockaddr_storage> MakeSocketAddress(const std::string& address,
                                                   uint16_t port,
                                                   socklen_t* len) {
  sockaddr_storage storage = {};
  auto* in = reinterpret_cast<sockaddr_in*>(&storage);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
  const std::string host(StripBrackets(address));
  if (inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    *len = sizeof(sockaddr_in);
    return storage;
  }
  if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    *len = sizeof(sockaddr_in6);
    return storage;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", address, "' is not an IPv4 or IPv6 address"));
}

absl::StatusOr<Listener> Listener::Listen(const std::string& address,
                                          uint16_t port) {
  socklen_t len = 0;
  absl::StatusOr<sockaddr_storage> addr =
      MakeSocketAddress(address, port, &len);
  if (!addr.ok()) return addr.status();
  const std::string shown =
      FormatSocketAddress(reinterpret_cast<const sockaddr*>(&*addr));
  auto fail = [&](absl::string_view call) {
    const int err = errno;
    return absl::Status(
        absl::ErrnoToStatusCode(err) == absl::StatusCode::kInvalidArgument
            ? absl::StatusCode::kFailedPrecondition
            : absl::ErrnoToStatusCode(err),
        absl::StrCat("cannot listen on ", shown, " (", call,
                     "): ", std::strerror(err)));
  };

  UniqueFd fd(
      socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return fail("socket");
  const int one = 1;
  // Restart while old connections linger in TIME_WAIT.
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return fail("setsockopt(SO_REUSEADDR)");
  }
  // Inherited by accepted sockets.
  if (setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return fail("setsockopt(TCP_NODELAY)");
  }
  // Dual stack for "::" even where the sysctl net.ipv6.bindv6only=1 would
  // make it IPv6 only: one socket for both families.
  const int zero = 0;
  if (addr->ss_family == AF_INET6 &&
      setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) !=
          0) {
    return fail("setsockopt(IPV6_V6ONLY)");
  }
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), len) != 0) {
    return fail("bind");
  }
  if (listen(fd.get(), SOMAXCONN) != 0) return fail("listen");

  sockaddr_storage bound = {};
  socklen_t bound_len = sizeof(bound);
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len) !=
      0) {
    return fail("getsockname");
  }
  UniqueFd reserve(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!reserve) return fail("open(/dev/null)");
  const auto* bound_in = reinterpret_cast<const sockaddr_in*>(&bound);
  return Listener(std::move(fd), std::move(reserve),
                  FormatSocketAddress(reinterpret_cast<sockaddr*>(&bound)),
                  ntohs(bound_in->sin_port));  // same offset in sockaddr_in6
}

Accepted Listener::Accept(int extra_flags) {
  const int flags = SOCK_CLOEXEC | extra_flags;
  Accepted result;
  for (;;) {
    result.peer_len = sizeof(result.peer);
    const int fd = accept4(fd_.get(), reinterpret_cast<sockaddr*>(&result.peer),
                           &result.peer_len, flags);
    if (fd >= 0) {
      result.kind = Accepted::Kind::kConnection;
      result.fd.Reset(fd);
      return result;
    }
    switch (errno) {
      case EAGAIN:
        result.kind = Accepted::Kind::kNone;
        return result;
      case EINTR:
      case ECONNABORTED:
      case EPROTO:
      case ENETDOWN:
      case ENOPROTOOPT:
      case EHOSTDOWN:
      case ENONET:
      case EHOSTUNREACH:
      case EOPNOTSUPP:
      case ENETUNREACH:
      case EPERM:  // firewall rules
        continue;
      case EMFILE:
      case ENFILE: {
        // Free one fd, take the pending connection off the queue and close
        // it, so its client sees a prompt close instead of a hang and the
        // loop does not wake again for the same connection.
        // accept4 fails with EMFILE before it looks at the queue, so an
        // empty queue shows up here too: then nothing was refused.
        reserve_.Reset();
        UniqueFd refused(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        const int err = refused.valid() ? 0 : errno;
        refused.Reset();
        reserve_.Reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (err == 0) {
          result.kind = Accepted::Kind::kFdExhausted;
        } else if (err == EAGAIN) {
          result.kind = Accepted::Kind::kNone;
        } else {  // no reserve to give up (reopening it failed): back off
          result.kind = Accepted::Kind::kBackoff;
        }
        return result;
      }
      default:  // ENOBUFS, ENOMEM and anything unexpected
        result.kind = Accepted::Kind::kBackoff;
        return result;
    }
  }
}

}  // namespace upper
