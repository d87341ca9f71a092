// pingpong: every connection sends --size bytes, waits for all of them to
// come back upper-cased, checks them and sends the next request. Reports
// requests per second and latency percentiles (send start to last byte).
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
  uint64_t offset = 0;  // stream offset of the current request
  std::size_t sent = 0;
  std::size_t received = 0;
  uint64_t started_ns = 0;
  bool active = false;  // a request is outstanding
  bool want_out = false;
  std::vector<char> buffer;
};

class Worker {
 public:
  Worker(const Options& o, Errors& errors) : o_(o), errors_(errors) {}

  void Run(const Endpoint& endpoint, int count, uint64_t stop_ns) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    conns_.resize(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
      Conn& c = conns_[static_cast<std::size_t>(i)];
      int err = 0;
      c.fd = ConnectWithin(endpoint, o_.timeout, &err);
      if (c.fd < 0) {
        errors_.Fail(std::string("pingpong: connect: ") + std::strerror(err));
        break;
      }
      c.buffer.resize(o_.size);
      // Distinct data per connection.
      c.offset = static_cast<uint64_t>(i) * 7919;
      epoll_event ev = {EPOLLIN, {.u32 = static_cast<uint32_t>(i)}};
      epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
    }
    ready_ns = NowNs();
    if (errors_.errors() == 0) {
      for (Conn& c : conns_) Start(c);
      Loop(stop_ns);
    }
    for (Conn& c : conns_) {
      if (c.fd >= 0) close(c.fd);
    }
    close(epoll_);
  }

  Histogram histogram;
  uint64_t ops = 0;
  uint64_t ready_ns = 0;  // connected, first requests about to go

 private:
  void Loop(uint64_t stop_ns) {
    const uint64_t hard_stop = stop_ns + SecondsToNs(o_.timeout);
    epoll_event events[64];
    for (;;) {
      const uint64_t now = NowNs();
      if (now >= stop_ns) stopping_ = true;
      if (stopping_ && outstanding_ == 0) return;
      if (now >= hard_stop) {
        errors_.Fail("pingpong: " + std::to_string(outstanding_) +
                     " responses still missing after --timeout");
        return;
      }
      const int n = epoll_wait(epoll_, events, 64, 20);
      for (int i = 0; i < n; ++i) {
        Conn& c = conns_[events[i].data.u32];
        if (c.fd < 0) continue;
        if (events[i].events & EPOLLOUT) Send(c);
        if (c.fd >= 0 && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
          Receive(c);
        }
      }
      if (errors_.errors() + errors_.mismatches() > 0) return;
    }
  }

  void Start(Conn& c) {
    c.sent = c.received = 0;
    c.active = true;
    ++outstanding_;
    c.started_ns = NowNs();
    Send(c);
  }

  void Send(Conn& c) {
    while (c.sent < o_.size) {
      const ssize_t n = send(c.fd, Pattern::Get().Plain(c.offset) + c.sent,
                             o_.size - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      return Drop(c, std::string("send: ") + std::strerror(errno));
    }
    const bool want_out = c.sent < o_.size;
    if (want_out != c.want_out) {
      c.want_out = want_out;
      epoll_event ev = {EPOLLIN | (want_out ? EPOLLOUT : 0u),
                        {.u32 = static_cast<uint32_t>(&c - conns_.data())}};
      epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
    }
  }

  void Receive(Conn& c) {
    const ssize_t n =
        recv(c.fd, c.buffer.data() + c.received, o_.size - c.received, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n < 0) return Drop(c, std::string("recv: ") + std::strerror(errno));
    if (n == 0 || !c.active) return Drop(c, "unexpected EOF or extra bytes");
    c.received += static_cast<std::size_t>(n);
    if (c.received < o_.size) return;
    if (!CheckBytes(c.buffer.data(), o_.size, c.offset, "pingpong", errors_)) {
      return Drop(c, "");
    }
    histogram.Add(NowNs() - c.started_ns);
    ++ops;
    c.offset += o_.size;
    c.active = false;
    --outstanding_;
    if (!stopping_) Start(c);
  }

  void Drop(Conn& c, const std::string& why) {
    if (!why.empty()) errors_.Fail("pingpong: " + why);
    if (c.active) --outstanding_;
    c.active = false;
    close(c.fd);
    c.fd = -1;
  }

  const Options& o_;
  Errors& errors_;
  int epoll_ = -1;
  std::vector<Conn> conns_;
  int outstanding_ = 0;
  bool stopping_ = false;
};

}  // namespace

Report RunPingpong(const Options& o, const Endpoint& e, Errors& errors) {
  const uint64_t stop = NowNs() + SecondsToNs(o.seconds);
  const std::vector<Worker> workers = RunWorkers<Worker>(o, e, errors, stop);
  // The window runs from the last thread's first request to the stop time;
  // the few requests that finish after it are a rounding error.
  Histogram all;
  uint64_t ops = 0;
  uint64_t ready = 0;
  for (const Worker& w : workers) {
    all.Merge(w.histogram);
    ops += w.ops;
    ready = std::max(ready, w.ready_ns);
  }
  const double elapsed =
      ready < stop ? static_cast<double>(stop - ready) / 1e9 : o.seconds;
  Report r;
  r.Add("ops", static_cast<double>(ops));
  r.Add("elapsed_s", elapsed);
  r.Add("ops_per_s", static_cast<double>(ops) / elapsed);
  r.Add("p50_us", all.PercentileUs(0.50));
  r.Add("p99_us", all.PercentileUs(0.99));
  r.Add("p999_us", all.PercentileUs(0.999));
  return r;
}

}  // namespace upper::bench
