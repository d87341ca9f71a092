// HttpServer: a small HTTP/1.1 server with one job: answer GET and HEAD of
// one path with the body a callback returns. upperd's /metrics endpoint
// (metrics.h) runs on it.
//
// Why not a general web server: the endpoint is unauthenticated, so every
// resource a peer can make it spend is bounded (HttpServerOptions), and a
// scrape must get through whatever other peers do:
// - at most max_connections at once; when full, a new connection evicts the
//   oldest one that has already been answered (lingering), else the oldest
//   one still waiting for its request head, else the oldest one still
//   writing (a scraper reads its answer in milliseconds: a slot writing
//   long after is a peer that does not read), so neither slowloris peers
//   nor peers that never read lock a scraper out; a new connection's head
//   is read at once, so connections flooding in after a scraper cannot
//   evict it before its request (already in its socket) is read;
// - the request head is at most max_head_bytes (431 and close) and must
//   arrive within header_timeout of the accept (408 and close);
// - one request per connection (`Connection: close`): no idle keep-alive
//   connection ever holds a slot; a scraper reconnects every interval,
//   which costs a handshake on loopback or in a pod network, nothing more;
// - the response is written without blocking within write_timeout (a peer
//   too slow for it gets a reset, which also frees the kernel's send
//   buffer), then the write side is shut down and input is drained for at
//   most linger_timeout and 64 KiB (so a pipelined request does not turn
//   the close into a reset that destroys the response);
// - no compression: the body is a few KiB, cheap to send, and compressing
//   it would cost memory and CPU per scrape for nothing on loopback;
// - only GET and HEAD (405 with Allow), only `path` (404; "/" gets a line
//   pointing to it), HTTP/1.0 and 1.1 (505 otherwise).
//
// One thread of its own runs a poll(2) loop; the destructor wakes it
// through an eventfd and joins it. An IPv6 address listens dual stack (see
// common/listener.h). accept(2) failures never make the loop spin: EMFILE
// and ENFILE refuse the pending connection and back off.
//
// Thread-safety: Start and the destructor from one thread; the body
// callback runs on the server thread only, never concurrently with itself;
// stats() from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/listener.h"
#include "common/unique_fd.h"

namespace upper {

struct HttpServerOptions {
  std::string path = "/metrics";
  std::string content_type = "text/plain; version=0.0.4; charset=utf-8";
  size_t max_connections = 16;
  size_t max_head_bytes = 8 * 1024;
  absl::Duration header_timeout = absl::Seconds(5);
  absl::Duration write_timeout = absl::Seconds(10);
  absl::Duration linger_timeout = absl::Seconds(1);
};

// Every status code HttpServer answers with, in order.
inline constexpr int kHttpServerCodes[] = {200, 400, 404, 405,
                                           408, 431, 500, 505};
inline constexpr size_t kHttpServerCodeCount = std::size(kHttpServerCodes);

// Counts since Start; each is read with a relaxed load.
struct HttpServerStats {
  uint64_t accepted = 0;
  uint64_t open = 0;       // connections held at the last poll (a gauge)
  uint64_t responses = 0;  // of any status code
  // Responses by code: responses_by_code[i] counts kHttpServerCodes[i].
  std::array<uint64_t, kHttpServerCodeCount> responses_by_code{};
  uint64_t evicted = 0;          // closed to make room for a newer connection
  uint64_t refused = 0;          // not accepted: no descriptor left
  uint64_t header_timeouts = 0;  // answered 408
  uint64_t write_timeouts = 0;   // cut before their response was sent
};

class HttpServer {
 public:
  using BodyFunction = std::function<std::string()>;
  // Deadlines are monotonic: a wall-clock step neither cuts nor extends them.
  using Clock = std::chrono::steady_clock;

  // Listens on `address`:`port` (an IPv4 or IPv6 literal; port 0: any free
  // port) and starts the server thread. Errors: those of Listener::Listen,
  // ResourceExhausted when no eventfd or thread can be had.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& address, uint16_t port, HttpServerOptions options,
      BodyFunction body);
  // Stops: the listening socket and every connection are closed (a
  // connection whose response is still being written is cut).
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound address, e.g. "127.0.0.1:9464" or "[::]:9464".
  const std::string& address() const { return listener_.address(); }
  uint16_t port() const { return listener_.port(); }
  HttpServerStats stats() const;

 private:
  struct Connection;
  HttpServer(Listener listener, UniqueFd wake, HttpServerOptions options,
             BodyFunction body);

  void Run();
  int PollTimeoutMs(Clock::time_point now) const;
  void AcceptPending(Clock::time_point now);
  bool EvictOne();
  void Serve(Connection& c, short revents, Clock::time_point now);
  void ReadHead(Connection& c, Clock::time_point now);
  // The whole response to a complete request head.
  std::string Answer(absl::string_view head);
  void Respond(Connection& c, std::string response, Clock::time_point now);
  void Write(Connection& c, Clock::time_point now);
  void Drain(Connection& c);
  void Expire(Connection& c, Clock::time_point now);

  Listener listener_;
  UniqueFd wake_;  // eventfd: the destructor writes it to stop the loop
  const HttpServerOptions options_;
  const BodyFunction body_;
  // Touched by the server thread only; at most options_.max_connections.
  std::vector<std::unique_ptr<Connection>> connections_;
  Clock::time_point accept_resume_;  // back-off after EMFILE, ENOBUFS

  std::atomic<uint64_t> accepted_{0}, responses_{0}, evicted_{0}, refused_{0},
      header_timeouts_{0}, write_timeouts_{0}, open_{0};
  std::array<std::atomic<uint64_t>, kHttpServerCodeCount> responses_by_code_{};
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace upper
