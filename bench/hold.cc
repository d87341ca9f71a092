// hold: opens --connections connections (at most --ramp_parallel connecting
// at once), sends --size bytes on each and checks the echo, so every
// connection is really being served, then keeps them all open and idle for
// --settle + --seconds. Any close by the server meanwhile counts as lost.
// With --server_pid it reports the server's memory before and after, per
// connection: RSS of the server process (thread mode) and PSS summed over
// the server and all its descendants (fork mode: children, fork server).
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "bench/upper_bench.h"

namespace upper::bench {
namespace {

enum class State { kIdle, kConnecting, kExchanging, kHeld, kDone };

struct Conn {
  int fd = -1;
  State state = State::kIdle;
  uint64_t started_ns = 0;
  std::size_t received = 0;
};

class Holder {
 public:
  Holder(const Options& o, const Endpoint& e, Errors& errors)
      : o_(o), endpoint_(e), errors_(errors), buffer_(o.size + 1) {}

  ~Holder() {
    for (Conn& c : conns_) {
      if (c.fd >= 0) close(c.fd);
    }
    if (epoll_ >= 0) close(epoll_);
  }

  // Opens everything; false if the ramp ended early.
  bool Ramp() {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    conns_.resize(static_cast<std::size_t>(o_.connections));
    const uint64_t deadline =
        NowNs() + SecondsToNs(o_.timeout + o_.connections * 0.01);
    std::size_t next = 0;
    while (held_ + failed_ + lost_ < conns_.size()) {
      while (next < conns_.size() && in_flight_ < o_.ramp_parallel) {
        Begin(conns_[next++]);
      }
      if (NowNs() >= deadline) {
        errors_.Fail("hold: ramp did not finish in time");
        return false;
      }
      Wait(10);
      if (failed_ + lost_ > 0) return false;
    }
    return true;
  }

  // Watches the held connections until `until_ns`.
  void Watch(uint64_t until_ns) {
    while (NowNs() < until_ns) Wait(50);
  }

  std::size_t held() const { return held_; }
  std::size_t lost() const { return lost_; }

 private:
  uint32_t Index(const Conn& c) const {
    return static_cast<uint32_t>(&c - conns_.data());
  }

  void Wait(int timeout_ms) {
    epoll_event events[256];
    const int n = epoll_wait(epoll_, events, 256, timeout_ms);
    for (int i = 0; i < n; ++i) {
      Conn& c = conns_[events[i].data.u32];
      switch (c.state) {
        case State::kConnecting:
          Connected(c);
          break;
        case State::kExchanging:
          Read(c);
          break;
        case State::kHeld:
          // An idle connection should hear nothing: EOF or reset is a loss.
          --held_;
          ++lost_;
          errors_.Fail("hold: the server closed a held connection");
          End(c, State::kDone);
          break;
        default:
          break;
      }
    }
    const uint64_t now = NowNs();
    const uint64_t timeout_ns = SecondsToNs(o_.timeout);
    for (Conn& c : conns_) {  // stuck connects or echoes
      if ((c.state == State::kConnecting || c.state == State::kExchanging) &&
          now - c.started_ns > timeout_ns) {
        Fail(c, "no echo within --timeout");
      }
    }
  }

  void Begin(Conn& c) {
    bool pending = false;
    int err = 0;
    c.fd = StartConnect(endpoint_, &pending, &err);
    if (c.fd < 0) return Fail(c, std::string("connect: ") + strerror(err));
    ++in_flight_;
    c.state = State::kConnecting;
    c.started_ns = NowNs();
    epoll_event ev = {EPOLLOUT, {.u32 = Index(c)}};
    epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
    if (!pending) Connected(c);
  }

  void Connected(Conn& c) {
    if (const int err = ConnectResult(c.fd); err != 0) {
      return Fail(c, std::string("connect: ") + strerror(err));
    }
    const uint64_t offset = Index(c) * 7919ull;
    const ssize_t n =
        send(c.fd, Pattern::Get().Plain(offset), o_.size, MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(o_.size)) return Fail(c, "short send");
    c.state = State::kExchanging;
    epoll_event ev = {EPOLLIN | EPOLLRDHUP, {.u32 = Index(c)}};
    epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void Read(Conn& c) {
    const ssize_t n =
        recv(c.fd, buffer_.data() + c.received, o_.size - c.received, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) return Fail(c, "closed before the echo");
    c.received += static_cast<std::size_t>(n);
    if (c.received < o_.size) return;
    if (!CheckBytes(buffer_.data(), o_.size, Index(c) * 7919ull, "hold",
                    errors_)) {
      ++failed_;
      --in_flight_;
      return End(c, State::kDone);
    }
    c.state = State::kHeld;
    --in_flight_;
    ++held_;
  }

  void Fail(Conn& c, const std::string& why) {
    if (c.state == State::kConnecting || c.state == State::kExchanging) {
      --in_flight_;
    }
    ++failed_;
    errors_.Fail("hold: connection " + std::to_string(Index(c)) + ": " + why);
    End(c, State::kDone);
  }

  void End(Conn& c, State state) {
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
    c.state = state;
  }

  const Options& o_;
  const Endpoint& endpoint_;
  Errors& errors_;
  std::vector<char> buffer_;
  int epoll_ = -1;
  std::vector<Conn> conns_;
  int in_flight_ = 0;
  std::size_t held_ = 0;
  std::size_t failed_ = 0;
  std::size_t lost_ = 0;
};

}  // namespace

Report RunHold(const Options& o, const Endpoint& e, Errors& errors) {
  const MemorySample before = SampleMemory(o.server_pid);
  Holder holder(o, e, errors);
  const uint64_t start = NowNs();
  const bool ramped = holder.Ramp();
  const double ramp_s = static_cast<double>(NowNs() - start) / 1e9;
  MemorySample after;
  if (ramped) {
    holder.Watch(NowNs() + SecondsToNs(o.settle + o.seconds));
    after = SampleMemory(o.server_pid);
  }
  const double held = static_cast<double>(holder.held());
  const double per = held > 0 ? 1 / held : 0;
  Report r;
  r.Add("target", o.connections);
  r.Add("held", held);
  r.Add("lost", static_cast<double>(holder.lost()));
  r.Add("ramp_s", ramp_s);
  if (o.server_pid > 0 && ramped) {
    r.Add("rss_before_kib", before.server_rss_kib);
    r.Add("rss_after_kib", after.server_rss_kib);
    r.Add("rss_per_conn_kib",
          (after.server_rss_kib - before.server_rss_kib) * per);
    r.Add("pss_before_kib", before.tree_pss_kib);
    r.Add("pss_after_kib", after.tree_pss_kib);
    r.Add("pss_per_conn_kib", (after.tree_pss_kib - before.tree_pss_kib) * per);
    r.Add("descendants", after.descendants);
    r.Add("descendant_pss_mean_kib",
          after.descendants > 0 ? after.descendants_pss_kib / after.descendants
                                : 0);
  }
  return r;
}

}  // namespace upper::bench
