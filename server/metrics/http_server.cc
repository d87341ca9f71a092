#include "server/metrics/http_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "server/metrics/http_message.h"

namespace upper {
namespace {

// After EMFILE/ENFILE/ENOBUFS the listener is left alone this long, so the
// loop never spins on a connection it cannot take.
constexpr std::chrono::milliseconds kAcceptBackoff{50};
// Connections taken per wake-up, so a connect flood cannot starve the
// connections already held.
constexpr int kAcceptsPerWake = 64;
// A lingering peer may send this much more before it is simply closed.
constexpr size_t kMaxDrainBytes = 64 * 1024;

constexpr char kText[] = "text/plain; charset=utf-8";

// `now` + `timeout`, saturated: an infinite (or absurd) timeout is "never",
// not a signed overflow that would make it already past.
HttpServer::Clock::time_point DeadlineAfter(HttpServer::Clock::time_point now,
                                            absl::Duration timeout) {
  constexpr absl::Duration kNever = absl::Hours(24 * 365 * 100);
  if (timeout >= kNever) return HttpServer::Clock::time_point::max();
  return now + absl::ToChronoNanoseconds(timeout);
}

// poll() failed for a reason other than EINTR (ENOMEM): wait a little
// rather than retry at once, so the loop cannot spin.
void PauseAfterPollError() {
  constexpr int kPauseMs = 10;
  (void)poll(nullptr, 0, kPauseMs);
}

}  // namespace

struct HttpServer::Connection {
  enum class State {
    kReadingHead,  // waiting for the whole request head
    kWriting,      // sending `out`
    kLingering,    // answered, write side shut down, draining input
  };
  UniqueFd fd;
  State state = State::kReadingHead;
  Clock::time_point accepted;
  Clock::time_point deadline;
  std::string in;  // the head so far, at most max_head_bytes
  std::string out;
  size_t sent = 0;
  size_t drained = 0;
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& address, uint16_t port, HttpServerOptions options,
    BodyFunction body) {
  absl::StatusOr<Listener> listener = Listener::Listen(address, port);
  if (!listener.ok()) return listener.status();
  UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return ErrnoStatus("eventfd", errno);
  std::unique_ptr<HttpServer> server(
      new HttpServer(*std::move(listener), std::move(wake), std::move(options),
                     std::move(body)));
  try {
    server->thread_ = std::thread([s = server.get()] { s->Run(); });
  } catch (const std::system_error& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat("metrics: cannot start its thread: ", e.what()));
  }
  return server;
}

HttpServer::HttpServer(Listener listener, UniqueFd wake,
                       HttpServerOptions options, BodyFunction body)
    : listener_(std::move(listener)),
      wake_(std::move(wake)),
      options_(std::move(options)),
      body_(std::move(body)) {}

HttpServer::~HttpServer() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    // Cannot fail short of a bug: the counter is far from overflowing.
    (void)RetryOnEintr([&] { return write(wake_.get(), &one, sizeof(one)); });
    thread_.join();
  }
}

HttpServerStats HttpServer::stats() const {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  HttpServerStats stats = {.accepted = accepted_.load(kRelaxed),
                           .open = open_.load(kRelaxed),
                           .responses = responses_.load(kRelaxed),
                           .evicted = evicted_.load(kRelaxed),
                           .refused = refused_.load(kRelaxed),
                           .header_timeouts = header_timeouts_.load(kRelaxed),
                           .write_timeouts = write_timeouts_.load(kRelaxed)};
  for (size_t i = 0; i < kHttpServerCodeCount; ++i) {
    stats.responses_by_code[i] = responses_by_code_[i].load(kRelaxed);
  }
  return stats;
}

void HttpServer::Run() {
  std::vector<pollfd> fds;
  for (;;) {
    Clock::time_point now = Clock::now();
    for (auto& c : connections_) {
      if (now >= c->deadline) Expire(*c, now);
    }
    std::erase_if(connections_, [](const auto& c) { return !c->fd.valid(); });
    open_.store(connections_.size(), std::memory_order_relaxed);

    fds.clear();
    fds.push_back({.fd = wake_.get(), .events = POLLIN, .revents = 0});
    const bool accepting = now >= accept_resume_;
    fds.push_back({.fd = accepting ? listener_.fd() : -1,  // -1: ignored
                   .events = POLLIN,
                   .revents = 0});
    for (const auto& c : connections_) {
      const short events =
          c->state == Connection::State::kWriting ? POLLOUT : POLLIN;
      fds.push_back({.fd = c->fd.get(), .events = events, .revents = 0});
    }
    if (poll(fds.data(), fds.size(), PollTimeoutMs(now)) < 0) {
      if (errno != EINTR) PauseAfterPollError();
      continue;
    }
    if (fds[0].revents != 0) return;  // stopping
    now = Clock::now();
    // Connections first: fds[2 + i] is connections_[i] until accepts and
    // evictions change the vector.
    for (size_t i = 0; i < connections_.size(); ++i) {
      if (fds[2 + i].revents != 0)
        Serve(*connections_[i], fds[2 + i].revents, now);
    }
    // Connections that ended above no longer count against the cap.
    std::erase_if(connections_, [](const auto& c) { return !c->fd.valid(); });
    if (fds[1].revents != 0) AcceptPending(now);
  }
}

int HttpServer::PollTimeoutMs(Clock::time_point now) const {
  Clock::time_point next = Clock::time_point::max();
  if (now < accept_resume_) next = accept_resume_;
  for (const auto& c : connections_) next = std::min(next, c->deadline);
  if (next == Clock::time_point::max()) return -1;
  // Rounded up, so the loop does not wake just before a deadline.
  const auto wait =
      std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
  return static_cast<int>(std::clamp<int64_t>(wait, 0, 60 * 1000));
}

void HttpServer::AcceptPending(Clock::time_point now) {
  for (int i = 0; i < kAcceptsPerWake; ++i) {
    Accepted accepted = listener_.Accept(SOCK_NONBLOCK);
    switch (accepted.kind) {
      case Accepted::Kind::kNone:
        return;
      case Accepted::Kind::kFdExhausted:  // refused by the listener
        refused_.fetch_add(1, std::memory_order_relaxed);
        accept_resume_ = now + kAcceptBackoff;
        return;
      case Accepted::Kind::kBackoff:
        accept_resume_ = now + kAcceptBackoff;
        return;
      case Accepted::Kind::kConnection:
        break;
    }
    if (connections_.size() >= options_.max_connections && !EvictOne()) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      continue;  // only with max_connections 0: `accepted.fd` closes
    }
    accepted_.fetch_add(1, std::memory_order_relaxed);
    auto c = std::make_unique<Connection>();
    c->fd = std::move(accepted.fd);
    c->accepted = now;
    c->deadline = DeadlineAfter(now, options_.header_timeout);
    // A scraper's request is usually in the socket already: read it now, so
    // a flood of connections queued behind it cannot evict it unread.
    ReadHead(*c, now);
    if (c->fd.valid()) connections_.push_back(std::move(c));
  }
}

bool HttpServer::EvictOne() {
  auto oldest_in = [&](Connection::State state) {
    auto found = connections_.end();
    for (auto it = connections_.begin(); it != connections_.end(); ++it) {
      if ((*it)->state == state && (found == connections_.end() ||
                                    (*it)->accepted < (*found)->accepted)) {
        found = it;
      }
    }
    return found;
  };
  // A writer goes last, and the oldest one: a scraper reads its answer in
  // milliseconds, so a slot still writing long after is a peer that does
  // not read, and must not lock scrapers out until its write timeout.
  auto victim = oldest_in(Connection::State::kLingering);
  if (victim == connections_.end()) {
    victim = oldest_in(Connection::State::kReadingHead);
  }
  if (victim == connections_.end()) {
    victim = oldest_in(Connection::State::kWriting);
  }
  if (victim == connections_.end()) return false;
  evicted_.fetch_add(1, std::memory_order_relaxed);
  connections_.erase(victim);
  return true;
}

void HttpServer::Serve(Connection& c, short revents, Clock::time_point now) {
  (void)revents;  // POLLHUP and POLLERR show up as the read or write failing
  switch (c.state) {
    case Connection::State::kReadingHead:
      ReadHead(c, now);
      break;
    case Connection::State::kWriting:
      Write(c, now);
      break;
    case Connection::State::kLingering:
      Drain(c);
      break;
  }
}

void HttpServer::ReadHead(Connection& c, Clock::time_point now) {
  char buffer[4096];
  while (c.in.size() < options_.max_head_bytes) {
    const size_t room =
        std::min(sizeof(buffer), options_.max_head_bytes - c.in.size());
    const ssize_t n = read(c.fd.get(), buffer, room);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      c.fd.Reset();  // the peer left (or reset) before asking
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN) return;
      continue;  // EINTR
    }
    c.in.append(buffer, static_cast<size_t>(n));
    // Rescanning the head from its start is at most 8 KiB per read.
    const size_t end = FindHeadEnd(c.in);
    if (end != absl::string_view::npos) {
      Respond(c, Answer(absl::string_view(c.in).substr(0, end)), now);
      return;
    }
  }
  Respond(c, HttpResponse(431, kText, "", "request head too large\n", false),
          now);
}

std::string HttpServer::Answer(absl::string_view head) {
  const HttpRequestLine request = ParseRequestLine(head);
  switch (request.error) {
    case HttpRequestLine::Error::kBadRequest:
      return HttpResponse(400, kText, "", "bad request\n", false);
    case HttpRequestLine::Error::kVersionNotSupported:
      return HttpResponse(505, kText, "", "HTTP/1.0 and HTTP/1.1 only\n",
                          false);
    case HttpRequestLine::Error::kNone:
      break;
  }
  const bool head_only = request.method == "HEAD";
  if (request.method != "GET" && !head_only) {
    return HttpResponse(405, kText, "Allow: GET, HEAD\r\n",
                        "GET or HEAD only\n", false);
  }
  if (request.path == "/") {
    return HttpResponse(200, kText, "",
                        absl::StrCat("metrics: ", options_.path, "\n"),
                        head_only);
  }
  if (request.path != options_.path) {
    return HttpResponse(
        404, kText, "",
        absl::StrCat("not found; metrics: ", options_.path, "\n"), head_only);
  }
  std::string body;
  try {
    body = body_();
  } catch (...) {
    // What failed inside a collector is no business of an unauthenticated
    // peer; the scrape just fails.
    return HttpResponse(500, kText, "", "cannot collect metrics\n", head_only);
  }
  return HttpResponse(200, options_.content_type, "", body, head_only);
}

void HttpServer::Respond(Connection& c, std::string response,
                         Clock::time_point now) {
  // "HTTP/1.1 404 Not Found\r\n...": HttpResponse wrote the code at 9.
  int code = 0;
  if (response.size() > 12) {
    for (size_t i = 9; i < 12; ++i) code = code * 10 + (response[i] - '0');
  }
  for (size_t i = 0; i < kHttpServerCodeCount; ++i) {
    if (kHttpServerCodes[i] == code) {
      responses_by_code_[i].fetch_add(1, std::memory_order_relaxed);
    }
  }
  c.out = std::move(response);
  c.in = std::string();
  responses_.fetch_add(1, std::memory_order_relaxed);
  c.state = Connection::State::kWriting;
  c.deadline = DeadlineAfter(now, options_.write_timeout);
  Write(c, now);
}

void HttpServer::Write(Connection& c, Clock::time_point now) {
  while (c.sent < c.out.size()) {
    const ssize_t n = send(c.fd.get(), c.out.data() + c.sent,
                           c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;  // POLLOUT will call again
    if (n < 0) {
      c.fd.Reset();  // reset by the peer
      return;
    }
    c.sent += static_cast<size_t>(n);
  }
  // All sent: say so with a FIN, then read until the peer closes too.
  shutdown(c.fd.get(), SHUT_WR);
  c.out = std::string();
  c.state = Connection::State::kLingering;
  c.deadline = DeadlineAfter(now, options_.linger_timeout);
}

void HttpServer::Drain(Connection& c) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(c.fd.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) break;  // the peer closed (or reset): done
    c.drained += static_cast<size_t>(n);
    if (c.drained > kMaxDrainBytes) break;
  }
  c.fd.Reset();
}

void HttpServer::Expire(Connection& c, Clock::time_point now) {
  switch (c.state) {
    case Connection::State::kReadingHead:
      header_timeouts_.fetch_add(1, std::memory_order_relaxed);
      Respond(c,
              HttpResponse(408, kText, "",
                           "request head not received in time\n", false),
              now);
      break;
    case Connection::State::kWriting: {
      write_timeouts_.fetch_add(1, std::memory_order_relaxed);
      // A reset, not a FIN: the kernel drops what is still queued instead
      // of keeping an orphaned socket (and its send buffer) trickling it to
      // a peer that does not read.
      const linger abort = {.l_onoff = 1, .l_linger = 0};
      setsockopt(c.fd.get(), SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
      c.fd.Reset();
      break;
    }
    case Connection::State::kLingering:
      c.fd.Reset();
      break;
  }
}

}  // namespace upper
