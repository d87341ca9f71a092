// stream: every connection sends the pattern in --size chunks as fast as the
// server takes it while reading the upper-cased stream back at the same
// time (full duplex). After --seconds it half-closes and reads to EOF, and
// the bytes back must equal the bytes sent. Reports MiB/s of checked bytes.
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "bench/upper_bench.h"

namespace upper::bench {
namespace {

struct Conn {
  int fd = -1;
  uint64_t base = 0;  // stream offset of the connection's first byte
  uint64_t sent = 0;
  uint64_t received = 0;
  bool shut = false;
  bool eof = false;
};

class Worker {
 public:
  Worker(const Options& o, Errors& errors)
      : o_(o), errors_(errors), buffer_(kPeriod) {}

  void Run(const Endpoint& endpoint, int count, uint64_t stop_ns) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    conns_.resize(static_cast<std::size_t>(count));
    bool connected = true;
    for (int i = 0; i < count && connected; ++i) {
      Conn& c = conns_[static_cast<std::size_t>(i)];
      int err = 0;
      c.fd = ConnectWithin(endpoint, o_.timeout, &err);
      if (c.fd < 0) {
        errors_.Fail(std::string("stream: connect: ") + std::strerror(err));
        connected = false;
        break;
      }
      c.base = static_cast<uint64_t>(i) * 7919;
      epoll_event ev = {EPOLLIN | EPOLLOUT, {.u32 = static_cast<uint32_t>(i)}};
      epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
    }
    ready_ns = NowNs();
    if (connected) Loop(stop_ns);
    done_ns = NowNs();
    for (Conn& c : conns_) {
      if (c.fd >= 0) close(c.fd);
      received += c.received;
    }
    close(epoll_);
  }

  uint64_t ready_ns = 0;
  uint64_t done_ns = 0;
  uint64_t received = 0;

 private:
  void Loop(uint64_t stop_ns) {
    const uint64_t hard_stop = stop_ns + SecondsToNs(o_.timeout);
    bool stopping = false;
    std::size_t open = conns_.size();
    epoll_event events[64];
    while (open > 0) {
      const uint64_t now = NowNs();
      if (!stopping && now >= stop_ns) {
        stopping = true;
        for (Conn& c : conns_) Shut(c);
      }
      if (now >= hard_stop) {
        errors_.Fail("stream: no EOF within --timeout after half-close");
        return;
      }
      const int n = epoll_wait(epoll_, events, 64, 20);
      for (int i = 0; i < n; ++i) {
        Conn& c = conns_[events[i].data.u32];
        if (c.fd < 0 || c.eof) continue;
        if ((events[i].events & EPOLLOUT) && !c.shut) Send(c);
        if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
          if (!Receive(c)) return;
          if (c.eof) --open;
        }
      }
    }
  }

  void Send(Conn& c) {
    const std::size_t chunk = std::min(o_.size, kPeriod);
    const ssize_t n =
        send(c.fd, Pattern::Get().Plain(c.base + c.sent), chunk, MSG_NOSIGNAL);
    if (n > 0) c.sent += static_cast<uint64_t>(n);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      errors_.Fail(std::string("stream: send: ") + std::strerror(errno));
    }
  }

  void Shut(Conn& c) {
    if (c.shut || c.fd < 0) return;
    c.shut = true;
    shutdown(c.fd, SHUT_WR);
    epoll_event ev = {EPOLLIN,
                      {.u32 = static_cast<uint32_t>(&c - conns_.data())}};
    epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  // False on an error that ends the run.
  bool Receive(Conn& c) {
    const ssize_t n = recv(c.fd, buffer_.data(), buffer_.size(), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    if (n < 0) {
      errors_.Fail(std::string("stream: recv: ") + std::strerror(errno));
      return false;
    }
    if (n == 0) {
      c.eof = true;
      if (!c.shut || c.received != c.sent) {
        errors_.Fail("stream: EOF after " + std::to_string(c.received) +
                     " of " + std::to_string(c.sent) + " bytes");
        return false;
      }
      return true;
    }
    if (c.received + static_cast<uint64_t>(n) > c.sent) {
      errors_.Fail("stream: received more bytes than sent");
      return false;
    }
    if (!CheckBytes(buffer_.data(), static_cast<std::size_t>(n),
                    c.base + c.received, "stream", errors_)) {
      return false;
    }
    c.received += static_cast<uint64_t>(n);
    return true;
  }

  const Options& o_;
  Errors& errors_;
  std::vector<char> buffer_;
  int epoll_ = -1;
  std::vector<Conn> conns_;
};

}  // namespace

Report RunStream(const Options& o, const Endpoint& e, Errors& errors) {
  const uint64_t stop = NowNs() + SecondsToNs(o.seconds);
  const std::vector<Worker> workers = RunWorkers<Worker>(o, e, errors, stop);
  uint64_t ready = 0;
  uint64_t done = 0;
  uint64_t bytes = 0;
  for (const Worker& w : workers) {
    ready = std::max(ready, w.ready_ns);
    done = std::max(done, w.done_ns);
    bytes += w.received;
  }
  // From the last thread connected to the last EOF: includes the drain of
  // what was in flight at the half-close.
  const double elapsed = static_cast<double>(done - ready) / 1e9;
  Report r;
  r.Add("bytes", static_cast<double>(bytes));
  r.Add("elapsed_s", elapsed);
  r.Add("mib_per_s", static_cast<double>(bytes) / (1 << 20) / elapsed);
  return r;
}

}  // namespace upper::bench
