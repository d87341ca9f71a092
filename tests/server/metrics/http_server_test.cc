// HttpServer against real loopback sockets: what it answers, and that every
// bound holds under the attack it is there for (huge heads, slowloris, a
// client that never reads, more connections than slots).
#include "server/metrics/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "gtest/gtest.h"
#include "server/metrics/http_message.h"
#include "tests/support/tcp.h"

namespace upper {
namespace {

constexpr char kBody[] = "upper_up 1\n";

// A blocking connection to `ip`:`port`; invalid if it cannot connect.
UniqueFd Dial(const std::string& ip, uint16_t port) {
  absl::StatusOr<UniqueFd> fd = testing::Connect(ip, port);
  return fd.ok() ? *std::move(fd) : UniqueFd();
}

void SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    ASSERT_GT(n, 0) << "send: " << errno;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

struct Reply {
  std::string bytes;
  bool eof = false;  // ended by the server (FIN or reset), not the timeout
};

// Everything until the server closes, or `timeout`.
Reply ReadAll(int fd, absl::Duration timeout = absl::Seconds(20)) {
  Reply reply;
  const absl::Time deadline = absl::Now() + timeout;
  char buffer[65536];
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return reply;
    pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <=
        0) {
      continue;
    }
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      reply.eof = true;
      return reply;
    }
    reply.bytes.append(buffer, static_cast<size_t>(n));
  }
}

// One request on a fresh connection to 127.0.0.1; the whole reply.
Reply Exchange(uint16_t port, absl::string_view request,
               const std::string& ip = "127.0.0.1") {
  UniqueFd fd = Dial(ip, port);
  EXPECT_TRUE(fd.valid()) << "connect to " << ip << ": " << errno;
  if (!fd) return {};
  SendAll(fd.get(), request);
  return ReadAll(fd.get());
}

std::unique_ptr<HttpServer> StartServer(
    HttpServerOptions options = {},
    HttpServer::BodyFunction body = [] { return std::string(kBody); },
    const std::string& address = "127.0.0.1") {
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(address, 0, std::move(options), std::move(body));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

std::string StatusLine(const std::string& response) {
  return response.substr(0, response.find("\r\n"));
}

template <typename F>
bool Eventually(F predicate, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!predicate()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

TEST(HttpMessage, HeadEndsAtTheFirstBlankLine) {
  EXPECT_EQ(FindHeadEnd("GET / HTTP/1.1\r\nHost: x\r\n\r\nrest"), 27u);
  EXPECT_EQ(FindHeadEnd("GET / HTTP/1.0\n\n"), 16u);
  EXPECT_EQ(FindHeadEnd("\r\n\r\nGET / HTTP/1.0\r\n\r\n"), 22u);
  EXPECT_EQ(FindHeadEnd("GET / HTTP/1.1\r\nHost: x\r\n"), std::string::npos);
  EXPECT_EQ(FindHeadEnd("\r\n\r\n"), std::string::npos);
}

TEST(HttpMessage, RequestLineForms) {
  HttpRequestLine line = ParseRequestLine("GET /metrics?a=b HTTP/1.1\r\n\r\n");
  EXPECT_EQ(line.error, HttpRequestLine::Error::kNone);
  EXPECT_EQ(line.method, "GET");
  EXPECT_EQ(line.path, "/metrics");
  line = ParseRequestLine("GET http://h:9464/metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(line.path, "/metrics");
  EXPECT_EQ(ParseRequestLine("GET /metrics HTTP/2.0\r\n\r\n").error,
            HttpRequestLine::Error::kVersionNotSupported);
  for (const char* bad :
       {"GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n",
        "GET metrics HTTP/1.1\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1x\r\n\r\n", "GET / FTP/1.1\r\n\r\n",
        "\x16\x03\x01\n\n"}) {
    EXPECT_EQ(ParseRequestLine(bad).error, HttpRequestLine::Error::kBadRequest)
        << bad;
  }
}

TEST(HttpServer, GetOfThePathServesTheBodyWithItsLength) {
  std::unique_ptr<HttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  const Reply reply =
      Exchange(server->port(),
               "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
  EXPECT_TRUE(reply.eof);
  EXPECT_EQ(reply.bytes,
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: 11\r\nConnection: close\r\n\r\nupper_up 1\n");
}

TEST(HttpServer, Http10IsServed) {
  std::unique_ptr<HttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  const Reply reply = Exchange(server->port(), "GET /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(StatusLine(reply.bytes), "HTTP/1.1 200 OK");
  EXPECT_TRUE(absl::EndsWith(reply.bytes, "\r\n\r\nupper_up 1\n"));
}

TEST(HttpServer, HeadHasTheHeadersButNoBody) {
  std::unique_ptr<HttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  const Reply reply =
      Exchange(server->port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(reply.eof);
  EXPECT_EQ(StatusLine(reply.bytes), "HTTP/1.1 200 OK");
  EXPECT_TRUE(absl::StrContains(reply.bytes, "Content-Length: 11\r\n"));
  EXPECT_TRUE(absl::EndsWith(reply.bytes, "\r\n\r\n")) << reply.bytes;
}

TEST(HttpServer, OtherMethodsAre405WithAllow) {
  std::unique_ptr<HttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "get"}) {
    const Reply reply = Exchange(
        server->port(), absl::StrCat(method, " /metrics HTTP/1.1\r\n\r\n"));
    EXPECT_EQ(StatusLine(reply.bytes), "HTTP/1.1 405 Method Not Allowed")
        << method;
    EXPECT_TRUE(absl::StrContains(reply.bytes, "\r\nAllow: GET, HEAD\r\n"));
  }
}

TEST(HttpServer, OtherPathsAre404AndTheRootPointsToThePath) {
  std::unique_ptr<HttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  for (const char* path : {"/metricsx", "/metrics/", "/favicon.ico", "/x"}) {
    const Reply reply = Exchange(
        server->port(), absl::StrCat("GET ", path, " HTTP/1.1\r\n\r\n"));
    EXPECT_EQ(StatusLine(reply.bytes), "HTTP/1.1 404 Not Found") << path;
  }
  const Reply root = Exchange(server->port(), "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusLine(root.bytes), "HTTP/1.1 200 OK");
  EXPECT_TRUE(absl::EndsWith(root.bytes, "\r\n\r\nmetrics: /metrics\n"));
}

TEST(HttpServer, ResponsesAreCountedByCode) {
  std::unique_ptr<HttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  Exchange(server->port(), "GET /x HTTP/1.1\r\n\r\n");
  Exchange(server->port(), "GET /metrics HTTP/1.1\r\n\r\n");
  Exchange(server->port(), "GET /metrics HTTP/1.1\r\n\r\n");
  const HttpServerStats stats = server->stats();
  EXPECT_EQ(stats.accepted, 3u);
  EXPECT_EQ(stats.responses, 3u);
  for (size_t i = 0; i < kHttpServerCodeCount; ++i) {
    const int code = kHttpServerCodes[i];
    EXPECT_EQ(stats.responses_by_code[i], code == 200   ? 2u
                                          : code == 404 ? 1u
                                                        : 0u)
        << code;
  }
}

TEST(HttpServer, MalformedAndUnsupportedRequestsAreRefused) {
  std::unique_ptr<HttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(StatusLine(Exchange(server->port(), "hello\r\n\r\n").bytes),
            "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(
      StatusLine(
          Exchange(server->port(), "GET /metrics HTTP/2.0\r\n\r\n").bytes),
      "HTTP/1.1 505 HTTP Version Not Supported");
}

TEST(HttpServer, PipelinedGarbageAfterTheRequestIsIgnored) {
  std::unique_ptr<HttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  const Reply reply = Exchange(
      server->port(),
      absl::StrCat("GET /metrics HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
                   std::string(20000, '\x01'), "\r\n\r\n"));
  EXPECT_TRUE(reply.eof);
  // One response, whole (not destroyed by a reset), then the close.
  EXPECT_EQ(StatusLine(reply.bytes), "HTTP/1.1 200 OK");
  EXPECT_TRUE(absl::EndsWith(reply.bytes, "\r\n\r\nupper_up 1\n"));
}

TEST(HttpServer, HugeHeadIs431) {
  std::unique_ptr<HttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  const Reply reply = Exchange(
      server->port(), absl::StrCat("GET /metrics HTTP/1.1\r\nX: ",
                                   std::string(16384, 'a'), "\r\n\r\n"));
  EXPECT_TRUE(reply.eof);
  EXPECT_EQ(StatusLine(reply.bytes),
            "HTTP/1.1 431 Request Header Fields Too Large");
  // Just under the bound is served.
  const std::string request = "GET /metrics HTTP/1.1\r\nX: ";
  const Reply fits = Exchange(
      server->port(),
      absl::StrCat(request, std::string(8192 - request.size() - 4, 'a'),
                   "\r\n\r\n"));
  EXPECT_EQ(StatusLine(fits.bytes), "HTTP/1.1 200 OK");
}

TEST(HttpServer, HeadNotInByTheHeaderTimeoutIs408) {
  std::unique_ptr<HttpServer> server =
      StartServer({.header_timeout = absl::Milliseconds(200)});
  ASSERT_NE(server, nullptr);
  const Reply reply = Exchange(server->port(), "GET /metr");
  EXPECT_TRUE(reply.eof);
  EXPECT_EQ(StatusLine(reply.bytes), "HTTP/1.1 408 Request Timeout");
  EXPECT_EQ(server->stats().header_timeouts, 1u);
}

TEST(HttpServer, SlowlorisBeyondTheSlotsNeverBlocksAScrape) {
  constexpr size_t kSlots = 4;
  // A header timeout far beyond the test: only eviction can let the scrape in.
  std::unique_ptr<HttpServer> server = StartServer(
      {.max_connections = kSlots, .header_timeout = absl::Hours(1)});
  ASSERT_NE(server, nullptr);
  std::vector<UniqueFd> slow;
  for (size_t i = 0; i < kSlots + 1; ++i) {
    slow.push_back(Dial("127.0.0.1", server->port()));
    ASSERT_TRUE(slow.back().valid());
    SendAll(slow.back().get(), "GET /metr");
    // Accepted in order, so the oldest is the one evicted.
    ASSERT_TRUE(Eventually([&] { return server->stats().accepted == i + 1; }));
  }
  const Reply scrape =
      Exchange(server->port(), "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusLine(scrape.bytes), "HTTP/1.1 200 OK");
  EXPECT_TRUE(absl::EndsWith(scrape.bytes, "upper_up 1\n"));
  EXPECT_EQ(server->stats().evicted, 2u);
  // The two oldest were closed; the youngest slowloris still waits.
  EXPECT_TRUE(ReadAll(slow[0].get(), absl::Seconds(5)).eof);
  EXPECT_TRUE(ReadAll(slow[1].get(), absl::Seconds(5)).eof);
  EXPECT_FALSE(ReadAll(slow[kSlots].get(), absl::Milliseconds(100)).eof);
}

TEST(HttpServer, ClientThatNeverReadsIsCutAfterTheWriteTimeout) {
  // A body far beyond what the socket buffers hold, for the first scrape.
  const std::string big(64 << 20, 'x');
  std::unique_ptr<HttpServer> server =
      StartServer({.write_timeout = absl::Seconds(3)}, [&big] { return big; });
  ASSERT_NE(server, nullptr);
  UniqueFd stuck = Dial("127.0.0.1", server->port());
  ASSERT_TRUE(stuck.valid());
  const int small = 4096;
  setsockopt(stuck.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  SendAll(stuck.get(), "GET /metrics HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(Eventually([&] { return server->stats().responses == 1; }));

  // Others are served while it is stuck.
  const Reply other = Exchange(server->port(), "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusLine(other.bytes), "HTTP/1.1 200 OK");
  EXPECT_EQ(server->stats().write_timeouts, 0u);

  ASSERT_TRUE(Eventually([&] { return server->stats().write_timeouts == 1; }));
  const Reply cut = ReadAll(stuck.get());
  EXPECT_TRUE(cut.eof);
  EXPECT_LT(cut.bytes.size(), big.size());
}

TEST(HttpServer, PeersThatNeverReadNeverLockAScraperOut) {
  constexpr size_t kSlots = 3;
  // Bigger than any socket buffers, and write and header timeouts beyond
  // the test: only eviction of a stuck writer can let the scrape in.
  const std::string big(16 << 20, 'x');
  std::unique_ptr<HttpServer> server =
      StartServer({.max_connections = kSlots,
                   .header_timeout = absl::Hours(1),
                   .write_timeout = absl::Hours(1)},
                  [&big] { return big; });
  ASSERT_NE(server, nullptr);
  std::vector<UniqueFd> stuck;
  for (size_t i = 0; i < kSlots; ++i) {
    stuck.push_back(Dial("127.0.0.1", server->port()));
    ASSERT_TRUE(stuck.back().valid());
    SendAll(stuck.back().get(), "GET /metrics HTTP/1.1\r\n\r\n");
    ASSERT_TRUE(Eventually([&] { return server->stats().responses == i + 1; }));
  }
  const Reply scrape =
      Exchange(server->port(), "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusLine(scrape.bytes), "HTTP/1.1 200 OK");
  EXPECT_TRUE(absl::EndsWith(scrape.bytes, big));
  EXPECT_EQ(server->stats().evicted, 1u);
  // The oldest stuck writer was the one cut.
  EXPECT_TRUE(ReadAll(stuck[0].get()).eof);
}

TEST(HttpServer, AFloodAfterAScraperCannotEvictItBeforeItsRequestIsRead) {
  constexpr size_t kSlots = 2;
  std::unique_ptr<HttpServer> server = StartServer(
      {.max_connections = kSlots, .header_timeout = absl::Hours(1)});
  ASSERT_NE(server, nullptr);
  for (int round = 0; round < 20; ++round) {
    UniqueFd scraper = Dial("127.0.0.1", server->port());
    ASSERT_TRUE(scraper.valid());
    SendAll(scraper.get(), "GET /metrics HTTP/1.1\r\n\r\n");
    // Silent connections queued right behind it, many more than the slots.
    std::vector<UniqueFd> flood;
    for (size_t i = 0; i < 8 * kSlots; ++i) {
      flood.push_back(Dial("127.0.0.1", server->port()));
    }
    const Reply reply = ReadAll(scraper.get());
    ASSERT_EQ(StatusLine(reply.bytes), "HTTP/1.1 200 OK") << "round " << round;
  }
}

TEST(HttpServer, AnInfiniteHeaderTimeoutMeansNever) {
  std::unique_ptr<HttpServer> server =
      StartServer({.header_timeout = absl::InfiniteDuration(),
                   .write_timeout = absl::InfiniteDuration(),
                   .linger_timeout = absl::InfiniteDuration()});
  ASSERT_NE(server, nullptr);
  UniqueFd fd = Dial("127.0.0.1", server->port());
  ASSERT_TRUE(fd.valid());
  SendAll(fd.get(), "GET /me");
  EXPECT_FALSE(ReadAll(fd.get(), absl::Milliseconds(300)).eof);
  SendAll(fd.get(), "trics HTTP/1.1\r\n\r\n");
  shutdown(fd.get(), SHUT_WR);  // so the linger ends with our FIN
  const Reply reply = ReadAll(fd.get());
  EXPECT_EQ(StatusLine(reply.bytes), "HTTP/1.1 200 OK");
  EXPECT_EQ(server->stats().header_timeouts, 0u);
}

TEST(HttpServer, AnIpv6AnyAddressServesIpv4AndIpv6Clients) {
  std::unique_ptr<HttpServer> server = StartServer({}, {}, "::");
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->address(), absl::StrCat("[::]:", server->port()));
  EXPECT_EQ(
      StatusLine(Exchange(server->port(), "GET / HTTP/1.1\r\n\r\n", "127.0.0.1")
                     .bytes),
      "HTTP/1.1 200 OK");
  if (!Dial("::1", server->port())) {
    GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
  }
  EXPECT_EQ(
      StatusLine(
          Exchange(server->port(), "GET / HTTP/1.1\r\n\r\n", "::1").bytes),
      "HTTP/1.1 200 OK");
}

TEST(HttpServer, StoppingClosesThePortAndEveryConnection) {
  std::unique_ptr<HttpServer> server =
      StartServer({.header_timeout = absl::Hours(1)});
  ASSERT_NE(server, nullptr);
  const uint16_t port = server->port();
  UniqueFd waiting = Dial("127.0.0.1", port);
  ASSERT_TRUE(waiting.valid());
  ASSERT_TRUE(Eventually([&] { return server->stats().accepted == 1; }));
  server.reset();
  EXPECT_TRUE(ReadAll(waiting.get(), absl::Seconds(5)).eof);
  EXPECT_FALSE(Dial("127.0.0.1", port).valid());
}

TEST(HttpServer, AnAddressInUseIsAnError) {
  std::unique_ptr<HttpServer> first = StartServer();
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<HttpServer>> second = HttpServer::Start(
      "127.0.0.1", first->port(), {}, [] { return std::string(); });
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::StrContains(second.status().message(), "cannot listen on"))
      << second.status();
}

}  // namespace
}  // namespace upper
