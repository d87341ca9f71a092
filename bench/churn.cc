// churn: --connections slots, each in a loop of connect, send --size bytes,
// half-close, read the upper-cased bytes to EOF, check, close. Reports
// connections per second and the connect-to-EOF latency percentiles.
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "bench/upper_bench.h"

namespace upper::bench {
namespace {

enum class State { kIdle, kConnecting, kReading };

struct Slot {
  int fd = -1;
  State state = State::kIdle;
  uint64_t offset = 0;
  uint64_t started_ns = 0;
  std::size_t received = 0;
  std::vector<char> buffer;
};

class Worker {
 public:
  Worker(const Options& o, Errors& errors) : o_(o), errors_(errors) {}

  void Run(const Endpoint& endpoint, int count, uint64_t stop_ns) {
    endpoint_ = &endpoint;
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    slots_.resize(static_cast<std::size_t>(count));
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      slots_[i].buffer.resize(o_.size + 1);
      slots_[i].offset = i * 7919;
      Begin(slots_[i]);
    }
    Loop(stop_ns);
    for (Slot& s : slots_) End(s);
    close(epoll_);
  }

  Histogram histogram;
  uint64_t completed = 0;

 private:
  void Loop(uint64_t stop_ns) {
    const uint64_t timeout_ns = SecondsToNs(o_.timeout);
    const uint64_t hard_stop = stop_ns + timeout_ns;
    epoll_event events[64];
    uint64_t next_scan = NowNs();
    for (;;) {
      const uint64_t now = NowNs();
      stopping_ = now >= stop_ns;
      if (now >= hard_stop) {
        errors_.Fail("churn: connections unfinished after --timeout");
        return;
      }
      if (now >= next_scan) {  // every 100 ms, look for stuck connections
        next_scan = now + 100000000;
        bool busy = false;
        for (Slot& s : slots_) {
          if (s.state == State::kIdle) continue;
          busy = true;
          if (now - s.started_ns > timeout_ns) {
            Fail(s, "no EOF within --timeout");
          }
        }
        if (stopping_ && !busy) return;
      }
      if (errors_.errors() + errors_.mismatches() > 0) return;
      const int n = epoll_wait(epoll_, events, 64, 10);
      for (int i = 0; i < n; ++i) {
        Slot& s = slots_[events[i].data.u32];
        if (s.state == State::kConnecting) {
          Connected(s);
        } else if (s.state == State::kReading) {
          Read(s);
        }
      }
      if (stopping_) {
        bool busy = false;
        for (const Slot& s : slots_) busy |= s.state != State::kIdle;
        if (!busy) return;
      }
    }
  }

  uint32_t Index(const Slot& s) const {
    return static_cast<uint32_t>(&s - slots_.data());
  }

  void Begin(Slot& s) {
    if (stopping_) return;
    bool pending = false;
    int err = 0;
    // Each connection from the next loopback source address (see
    // StartConnect): the TIME_WAIT entries this loop leaves, not the server,
    // would otherwise bound the rate.
    s.fd = StartConnect(*endpoint_, &pending, &err, sources_++);
    if (s.fd < 0) {
      errors_.Fail(std::string("churn: connect: ") + std::strerror(err));
      return;
    }
    s.started_ns = NowNs();
    s.received = 0;
    s.state = State::kConnecting;
    epoll_event ev = {EPOLLOUT, {.u32 = Index(s)}};
    epoll_ctl(epoll_, EPOLL_CTL_ADD, s.fd, &ev);
    if (!pending) Connected(s);
  }

  void Connected(Slot& s) {
    if (const int err = ConnectResult(s.fd); err != 0) {
      return Fail(s, std::string("connect: ") + std::strerror(err));
    }
    // A fresh socket's send buffer takes a small request whole.
    const ssize_t n =
        send(s.fd, Pattern::Get().Plain(s.offset), o_.size, MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(o_.size)) {
      return Fail(s, std::string("send: ") +
                         (n < 0 ? std::strerror(errno) : "short write"));
    }
    shutdown(s.fd, SHUT_WR);
    s.state = State::kReading;
    epoll_event ev = {EPOLLIN, {.u32 = Index(s)}};
    epoll_ctl(epoll_, EPOLL_CTL_MOD, s.fd, &ev);
  }

  void Read(Slot& s) {
    const ssize_t n = recv(s.fd, s.buffer.data() + s.received,
                           s.buffer.size() - s.received, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n < 0) return Fail(s, std::string("recv: ") + std::strerror(errno));
    if (n > 0) {
      s.received += static_cast<std::size_t>(n);
      if (s.received > o_.size) return Fail(s, "more bytes than sent");
      return;
    }
    if (s.received != o_.size) {
      return Fail(s, "EOF after " + std::to_string(s.received) + " of " +
                         std::to_string(o_.size) + " bytes");
    }
    if (!CheckBytes(s.buffer.data(), o_.size, s.offset, "churn", errors_)) {
      return End(s);
    }
    histogram.Add(NowNs() - s.started_ns);
    ++completed;
    s.offset += o_.size;
    End(s);
    Begin(s);
  }

  void Fail(Slot& s, const std::string& why) {
    errors_.Fail("churn: " + why);
    End(s);
  }

  void End(Slot& s) {
    if (s.fd >= 0) close(s.fd);  // also leaves the epoll set
    s.fd = -1;
    s.state = State::kIdle;
  }

  const Options& o_;
  Errors& errors_;
  const Endpoint* endpoint_ = nullptr;
  int epoll_ = -1;
  std::vector<Slot> slots_;
  uint32_t sources_ = 0;  // connections begun, for the source address
  bool stopping_ = false;
};

}  // namespace

Report RunChurn(const Options& o, const Endpoint& e, Errors& errors) {
  const uint64_t start = NowNs();
  const uint64_t stop = start + SecondsToNs(o.seconds);
  const std::vector<Worker> workers = RunWorkers<Worker>(o, e, errors, stop);
  const double elapsed = static_cast<double>(NowNs() - start) / 1e9;
  Histogram all;
  uint64_t completed = 0;
  for (const Worker& w : workers) {
    all.Merge(w.histogram);
    completed += w.completed;
  }
  Report r;
  r.Add("connections_done", static_cast<double>(completed));
  r.Add("elapsed_s", elapsed);
  r.Add("conns_per_s", static_cast<double>(completed) / elapsed);
  r.Add("p50_us", all.PercentileUs(0.50));
  r.Add("p99_us", all.PercentileUs(0.99));
  return r;
}

}  // namespace upper::bench
