// The /metrics probe of upper-admin-bench: a Prometheus-style scrape, timed
// from connect to the last byte of the body.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "bench/admin_bench.h"

namespace upper::bench {
namespace {

constexpr char kRequest[] =
    "GET /metrics HTTP/1.1\r\nHost: upperd\r\nUser-Agent: upper-admin-bench"
    "\r\nAccept: text/plain\r\nConnection: close\r\n\r\n";
// A body beyond this is an error, not a scrape: bounds the read loop.
constexpr std::size_t kMaxResponse = 64u << 20;

// Waits for `events` on fd until `deadline_ns`; false on timeout or error.
bool WaitFor(int fd, short events, uint64_t deadline_ns) {
  for (;;) {
    const uint64_t now = NowNs();
    if (now >= deadline_ns) return false;
    pollfd p = {fd, events, 0};
    const int ms = static_cast<int>((deadline_ns - now) / 1000000 + 1);
    const int ready = poll(&p, 1, ms);
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) return false;
  }
}

// One scrape: the body, or "" with errors.Fail.
std::string Scrape(const Endpoint& endpoint, double timeout, Errors& errors) {
  const uint64_t deadline = NowNs() + SecondsToNs(timeout);
  int err = 0;
  const int fd = ConnectWithin(endpoint, timeout, &err);
  if (fd < 0) {
    errors.Fail(std::string("scrape: connect: ") + std::strerror(err));
    return "";
  }
  std::string response;
  std::size_t sent = 0;
  const std::size_t request_size = sizeof(kRequest) - 1;
  std::string failure;
  while (sent < request_size && failure.empty()) {
    const ssize_t n =
        send(fd, kRequest + sent, request_size - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      failure = std::string("send: ") + std::strerror(errno);
    } else if (!WaitFor(fd, POLLOUT, deadline)) {
      failure = "send timed out";
    }
  }
  char buffer[65536];
  while (failure.empty()) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      response.append(buffer, static_cast<std::size_t>(n));
      if (response.size() > kMaxResponse) failure = "response too large";
    } else if (n == 0) {
      break;
    } else if (errno != EAGAIN && errno != EINTR) {
      failure = std::string("recv: ") + std::strerror(errno);
    } else if (!WaitFor(fd, POLLIN, deadline)) {
      failure = "no end of response within the timeout";
    }
  }
  close(fd);
  if (!failure.empty()) {
    errors.Fail("scrape: " + failure);
    return "";
  }
  const std::size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) {
    errors.Fail("scrape: not a 200 response: " + response.substr(0, 80));
    return "";
  }
  std::string text = response.substr(body + 4);
  if (text.find("\nupper_connections_active") == std::string::npos) {
    errors.Fail("scrape: body has no upper_connections_active");
    return "";
  }
  return text;
}

}  // namespace

void ProbeScrape(const AdminOptions& o, const Endpoint& metrics, Errors& errors,
                 Report& report) {
  Histogram latencies;
  uint64_t max_ns = 0;
  std::size_t body_bytes = 0;
  const uint64_t start = NowNs();
  const uint64_t stop = start + SecondsToNs(o.seconds);
  for (int i = 0; i < o.calls && NowNs() < stop; ++i) {
    const uint64_t before = NowNs();
    const std::string body = Scrape(metrics, o.timeout, errors);
    if (body.empty()) break;
    const uint64_t took = NowNs() - before;
    latencies.Add(took);
    if (took > max_ns) max_ns = took;
    body_bytes = body.size();
  }
  AddLatencies("scrape", latencies, (NowNs() - start) / 1e9, max_ns, report);
  report.Add("scrape_body_bytes", static_cast<double>(body_bytes));
}

}  // namespace upper::bench
