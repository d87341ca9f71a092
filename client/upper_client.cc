// upper-client's library: address parsing, connecting, and the two-way copy.
#include "client/upper_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/errno_status.h"
#include "common/host_port.h"

namespace upper::client {
namespace {

constexpr size_t kBufferSize = 64 * 1024;

// Reported by the sender when the receiver is done first: the server closed
// its side while input remained (if the receiver failed, its error wins).
constexpr char kClosedEarly[] =
    "the server closed the connection before the end of input";

// Debian builds abseil with its own string_view, distinct from std's.
absl::string_view ToAbsl(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

absl::Status InvalidAddress(std::string_view addr, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid address \"", absl::CHexEscape(ToAbsl(addr)), "\": ", why));
}

// Why SplitHostPort refused an address, in this program's words.
constexpr HostPortErrorTexts kAddressErrors = {
    .missing_bracket = "missing ']' after the IPv6 address",
    .junk_after_bracket = "expected \":port\" after ']'",
    .empty_host = "missing host",
    .bad_port = "the port must be a number in 1..65535",
};

// Completes a connect() that was interrupted by a signal: the connection
// goes on in the background; wait for it and fetch its outcome.
int FinishInterruptedConnect(int fd) {
  pollfd poll_fd = {.fd = fd, .events = POLLOUT, .revents = 0};
  while (poll(&poll_fd, 1, -1) < 0) {
    if (errno != EINTR) return errno;
  }
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return errno;
  return error;
}

// Connects one resolved address. Errors carry the strerror text.
absl::StatusOr<UniqueFd> ConnectOne(const addrinfo& ai) {
  UniqueFd fd(
      socket(ai.ai_family, ai.ai_socktype | SOCK_CLOEXEC, ai.ai_protocol));
  if (!fd.valid()) return ErrnoStatus("socket", errno);
  const int one = 1;
  if (setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return ErrnoStatus("setsockopt(TCP_NODELAY)", errno);
  }
  if (connect(fd.get(), ai.ai_addr, ai.ai_addrlen) != 0) {
    const int error =
        errno == EINTR ? FinishInterruptedConnect(fd.get()) : errno;
    if (error != 0) return ErrnoStatus("connect", error);
  }
  return fd;
}

// Blocks SIGPIPE in the calling thread while alive, so that writing to a
// closed pipe fails with EPIPE instead of killing the process. Threads
// started meanwhile inherit the mask.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old_mask_);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;
  ~ScopedSigpipeBlock() { pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr); }

  // Discards the SIGPIPE that a write failing with EPIPE left pending, so
  // that restoring the mask does not deliver it. A caller that had SIGPIPE
  // blocked already keeps it.
  void DiscardPending() {
    if (sigismember(&old_mask_, SIGPIPE)) return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    const timespec no_wait = {};
    while (sigtimedwait(&set, nullptr, &no_wait) < 0 && errno == EINTR) {
    }
  }

 private:
  sigset_t old_mask_;
};

// Waits until `fd` is ready for `events` (or has an error or hang-up).
// Returns false, without waiting longer, once `stop_fd` is readable or hung
// up; pass -1 to wait for `fd` alone.
absl::StatusOr<bool> WaitReady(int fd, short events, int stop_fd) {
  pollfd fds[2] = {{.fd = fd, .events = events, .revents = 0},
                   {.fd = stop_fd, .events = POLLIN, .revents = 0}};
  while (poll(fds, stop_fd >= 0 ? 2 : 1, -1) < 0) {
    if (errno != EINTR) return ErrnoStatus("poll", errno);
  }
  return fds[1].revents == 0;
}

bool WouldBlock(int error) { return error == EAGAIN || error == EWOULDBLOCK; }

// Sends all of `data`, giving up when `stop_fd` fires. Never raises SIGPIPE.
absl::Status SendAll(int sock_fd, const char* data, size_t size, int stop_fd) {
  while (size > 0) {
    const ssize_t n = send(sock_fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      data += n;
      size -= static_cast<size_t>(n);
    } else if (WouldBlock(errno)) {
      absl::StatusOr<bool> ready = WaitReady(sock_fd, POLLOUT, stop_fd);
      if (!ready.ok()) return ready.status();
      if (!*ready) return absl::UnavailableError(kClosedEarly);
    } else if (errno != EINTR) {
      return ErrnoStatus("send to server", errno);
    }
  }
  return absl::OkStatus();
}

// The sender thread's job: input to socket, then half-close.
absl::Status SendInput(int in_fd, int sock_fd, int stop_fd) {
  std::vector<char> buffer(kBufferSize);
  while (true) {
    absl::StatusOr<bool> ready = WaitReady(in_fd, POLLIN, stop_fd);
    if (!ready.ok()) return ready.status();
    if (!*ready) return absl::UnavailableError(kClosedEarly);
    const ssize_t n = read(in_fd, buffer.data(), buffer.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR || WouldBlock(errno)) continue;
      return ErrnoStatus("read input", errno);
    }
    absl::Status sent =
        SendAll(sock_fd, buffer.data(), static_cast<size_t>(n), stop_fd);
    if (!sent.ok()) return sent;
  }
  if (shutdown(sock_fd, SHUT_WR) != 0) {
    return ErrnoStatus("shutdown(SHUT_WR)", errno);
  }
  return absl::OkStatus();
}

// Writes all of `data` to `out_fd`; a broken pipe is an error, not a signal.
absl::Status WriteAll(int out_fd, const char* data, size_t size,
                      ScopedSigpipeBlock& sigpipe) {
  while (size > 0) {
    const ssize_t n = write(out_fd, data, size);
    if (n >= 0) {
      data += n;
      size -= static_cast<size_t>(n);
    } else if (WouldBlock(errno)) {
      absl::StatusOr<bool> ready = WaitReady(out_fd, POLLOUT, -1);
      if (!ready.ok()) return ready.status();
    } else if (errno != EINTR) {
      const int error = errno;
      if (error == EPIPE) sigpipe.DiscardPending();
      return ErrnoStatus("write output", error);
    }
  }
  return absl::OkStatus();
}

// The calling thread's job: socket to output until the server closes.
absl::Status ReceiveOutput(int sock_fd, int out_fd,
                           ScopedSigpipeBlock& sigpipe) {
  std::vector<char> buffer(kBufferSize);
  while (true) {
    const ssize_t n = recv(sock_fd, buffer.data(), buffer.size(), 0);
    if (n == 0) return absl::OkStatus();
    if (n > 0) {
      absl::Status written =
          WriteAll(out_fd, buffer.data(), static_cast<size_t>(n), sigpipe);
      if (!written.ok()) return written;
    } else if (WouldBlock(errno)) {
      absl::StatusOr<bool> ready = WaitReady(sock_fd, POLLIN, -1);
      if (!ready.ok()) return ready.status();
    } else if (errno != EINTR) {
      return ErrnoStatus("receive from server", errno);
    }
  }
}

}  // namespace

absl::StatusOr<HostPort> ParseAddress(std::string_view addr) {
  const HostPortParts parts = SplitHostPort(ToAbsl(addr));
  if (!parts.ok()) {
    return InvalidAddress(addr, HostPortErrorText(parts.error, kAddressErrors));
  }
  if (parts.port.has_value()) {
    return HostPort{.host = std::string(parts.host), .port = *parts.port};
  }
  if (parts.bracketed) {
    return InvalidAddress(addr, kAddressErrors.junk_after_bracket);
  }
  if (absl::StrContains(parts.host, ':')) {  // "::1:80" is a bare IPv6 host
    return InvalidAddress(addr,
                          "write an IPv6 address in brackets: [::1]:port");
  }
  return InvalidAddress(addr, "missing \":port\"");
}

std::string FormatHostPort(const HostPort& address) {
  return JoinHostPort(address.host, address.port);
}

absl::StatusOr<UniqueFd> ConnectTo(const HostPort& address) {
  const std::string name = FormatHostPort(address);
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* resolved = nullptr;
  const int rc =
      getaddrinfo(address.host.c_str(), absl::StrCat(address.port).c_str(),
                  &hints, &resolved);
  if (rc != 0) {
    const std::string reason =
        rc == EAI_SYSTEM
            ? std::string(ErrnoStatus("getaddrinfo", errno).message())
            : std::string(gai_strerror(rc));
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", name, ": ", reason));
  }
  const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(resolved,
                                                                 &freeaddrinfo);

  std::vector<std::string> failures;
  for (const addrinfo* ai = resolved; ai != nullptr; ai = ai->ai_next) {
    absl::StatusOr<UniqueFd> fd = ConnectOne(*ai);
    if (fd.ok()) return fd;
    const std::string numeric = FormatSocketAddress(ai->ai_addr);
    failures.push_back(
        numeric == name ? std::string(fd.status().message())
                        : absl::StrCat(numeric, ": ", fd.status().message()));
  }
  return absl::UnavailableError(absl::StrCat(
      "cannot connect to ", name, " (", absl::StrJoin(failures, "; "), ")"));
}

absl::Status CopyDuplex(int in_fd, int sock_fd, int out_fd) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return ErrnoStatus("pipe", errno);
  }
  // Closing the write end hangs up `stop_reader`, which stops the sender.
  const UniqueFd stop_reader(pipe_fds[0]);
  UniqueFd stop_writer(pipe_fds[1]);

  ScopedSigpipeBlock sigpipe;
  absl::Status send_status;
  absl::Status receive_status;
  try {
    const std::jthread sender([&] {
      send_status = SendInput(in_fd, sock_fd, stop_reader.get());
      // Wakes the receiver if the server would otherwise wait for more.
      if (!send_status.ok()) shutdown(sock_fd, SHUT_RDWR);
    });
    // Declared after `sender`, so destroyed first: on every way out of this
    // scope the sender is told to stop before it is joined.
    const UniqueFd stop_on_exit(std::move(stop_writer));
    receive_status = ReceiveOutput(sock_fd, out_fd, sigpipe);
    if (!receive_status.ok()) shutdown(sock_fd, SHUT_RDWR);
  } catch (const std::system_error& e) {  // std::jthread could not start.
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot start the sender thread: ", e.what()));
  }
  // The sender has been joined: its status is safe to read.
  if (!receive_status.ok()) return receive_status;
  return send_status;
}

}  // namespace upper::client
