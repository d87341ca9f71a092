// libFuzzer target: the serve loop (server/data/serve.h) on one end of a Unix
// socketpair, driven from the other end by a script decoded from the input:
// writes of fuzzed bytes in fuzzed segments, partial reads, socket buffer
// sizes, and an ending (half-close, or a reset with data unread). Checks what
// every worker promises: the output is always a prefix of the upper-cased
// input; after a half-close it is all of it, then EOF; and Serve() returns
// whatever the client does.
//
// Input layout: byte 0 picks the server's buffer size, byte 1 the socket
// buffer sizes; then ops, each one byte:
//   0..4  write the next (op-byte + 1) * k bytes of the input (k from op)
//   5     read whatever has arrived
//   6     half-close, read to EOF, compare everything; end
//   7     reset: close with whatever is unread; end
// Running out of input half-closes.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "server/data/connection_table.h"
#include "server/data/serve.h"

namespace {

// A hang would be a bug (a Serve() that never returns, or lost EOF).
constexpr int kPollMs = 5000;

// poll() that resumes after a signal: libFuzzer's -timeout runs on a
// SIGALRM timer, and its handler returning makes poll fail with EINTR.
int PollUninterrupted(pollfd* fds, int timeout_ms) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const int ready = poll(fds, 1, std::max<int>(0, left.count()));
    if (ready >= 0 || errno != EINTR) return ready;
  }
}

char UpperByte(char c) { return (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c; }

upper::ConnectionTable& Table() {
  static upper::ConnectionTable* table = [] {
    auto created = upper::ConnectionTable::Create(4);
    if (!created.ok()) std::abort();
    return created->release();
  }();
  return *table;
}

class Client {
 public:
  explicit Client(int fd) : fd_(fd) {}

  // Reads what is there now, or waits up to kPollMs when `wait`; false at
  // EOF or error.
  bool ReadSome(bool wait) {
    pollfd p = {fd_, POLLIN, 0};
    const int ready = PollUninterrupted(&p, wait ? kPollMs : 0);
    if (ready < 0) std::abort();
    if (ready == 0) {
      if (wait) std::abort();  // nothing in 5 s: the server hangs
      return true;
    }
    char buffer[65536];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n > 0) {
      output_.append(buffer, static_cast<size_t>(n));
      CheckPrefix();
      return true;
    }
    return n < 0 && (errno == EAGAIN || errno == EINTR);
  }

  void Write(const uint8_t* data, size_t size) {
    while (size > 0) {
      const ssize_t n = send(fd_, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        input_.append(reinterpret_cast<const char*>(data),
                      static_cast<size_t>(n));
        data += n;
        size -= static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN) std::abort();
      // Both buffers full: drain ours so the server can go on.
      pollfd p = {fd_, POLLIN | POLLOUT, 0};
      if (PollUninterrupted(&p, kPollMs) <= 0) std::abort();
      if (p.revents & POLLIN) ReadSome(false);
    }
  }

  void HalfCloseAndFinish() {
    if (shutdown(fd_, SHUT_WR) != 0) std::abort();
    while (ReadSome(true)) {
    }
    if (output_ != Upper(input_)) std::abort();
  }

  void CheckPrefix() const {
    if (output_.size() > input_.size()) std::abort();
    for (size_t i = 0; i < output_.size(); ++i) {
      if (output_[i] != UpperByte(input_[i])) std::abort();
    }
  }

 private:
  static std::string Upper(const std::string& s) {
    std::string out = s;
    for (char& c : out) c = UpperByte(c);
    return out;
  }

  int fd_;
  std::string input_;   // everything the server has been sent
  std::string output_;  // everything it sent back
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t serve_buffer = 1 + (data[0] * 37) % 8192;
  const int socket_buffer = 1024 << (data[1] % 8);  // 1 KiB .. 128 KiB
  data += 2;
  size -= 2;

  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    std::abort();
  }
  for (int fd : pair) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &socket_buffer,
               sizeof(socket_buffer));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &socket_buffer,
               sizeof(socket_buffer));
  }
  upper::ConnectionTable& table = Table();
  const std::optional<uint32_t> slot =
      table.Allocate(upper::Mode::kThread, nullptr, 0);
  if (!slot) std::abort();
  if (table.Writer(*slot).Claim(getpid(), 0) !=
      upper::SlotWriter::ClaimResult::kClaimed) {
    std::abort();
  }
  upper::CloseReason reason = upper::CloseReason::kNone;
  std::thread server([&, server_fd = pair[1]] {
    std::vector<char> buffer(serve_buffer);
    reason = upper::Serve(server_fd, table.Writer(*slot), buffer.data(),
                          buffer.size());
  });

  Client client(pair[0]);
  bool ended = false;
  size_t i = 0;
  while (i < size && !ended) {
    const uint8_t op = data[i++];
    switch (op % 8) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4: {
        // Segment sizes from 1 byte to 8 KiB, taken from the input.
        const size_t want = (size_t{op} / 8 + 1) << ((op % 8) * 2);
        const size_t take = want < size - i ? want : size - i;
        client.Write(data + i, take);
        i += take;
        break;
      }
      case 5:
        client.ReadSome(false);
        break;
      case 6:
        client.HalfCloseAndFinish();
        ended = true;
        break;
      case 7:
        client.CheckPrefix();
        close(pair[0]);  // a reset if anything is unread
        pair[0] = -1;
        ended = true;
        break;
    }
  }
  if (!ended) client.HalfCloseAndFinish();
  server.join();  // Serve() must return; libFuzzer's -timeout catches a hang
  if (pair[0] >= 0 && reason != upper::CloseReason::kClient) std::abort();
  if (pair[0] >= 0) close(pair[0]);
  close(pair[1]);
  table.Release(*slot, reason);
  return 0;
}
