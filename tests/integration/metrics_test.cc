// /metrics against a real upperd, in both modes: gauges and counters match
// exactly what the test did (connections opened, bytes exchanged, closes,
// refusals), every family and label is present from the start, the format
// passes `promtool check metrics`, and start-up errors name the flag. The
// endpoint itself against hostile and odd peers (issue 12): 20 slowloris
// clients cannot delay a scrape past 2 s, HEAD answers as GET without the
// body, only the path /metrics is served, and the server's own counts
// (upper_metrics_http_*) say what it did.
// Workers and the reaper update the shared table asynchronously, so values
// are awaited (bounded) and then compared exactly.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

constexpr absl::Duration kSettle = absl::Seconds(10);

// Scrapes until `series` equals `expected` or kSettle passes; returns the
// last value seen (-1 when missing), so EXPECT_EQ shows what was there.
double AwaitValue(uint16_t port, const std::string& series, double expected) {
  double last = -1;
  Eventually(
      [&] {
        absl::StatusOr<Scrape> scrape = Scrape::Get(port);
        if (!scrape.ok()) return false;
        last = scrape->Value(series);
        return last == expected;
      },
      kSettle);
  return last;
}

Scrape MustScrape(uint16_t port) {
  absl::StatusOr<Scrape> scrape = Scrape::Get(port);
  EXPECT_TRUE(scrape.ok()) << scrape.status();
  return scrape.ok() ? *std::move(scrape) : Scrape();
}

std::string Labelled(const std::string& name, const std::string& labels) {
  return absl::StrCat(name, "{", labels, "}");
}

class MetricsTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string mode() const { return GetParam(); }
  std::string other_mode() const {
    return GetParam() == "fork" ? "thread" : "fork";
  }
  std::string ModeLabel() const {
    return absl::StrCat("mode=\"", mode(), "\"");
  }

  // Starts upperd in this test's mode and finds its metrics port.
  bool StartUpperd(std::vector<std::string> args = {}) {
    args.push_back(absl::StrCat("--mode=", mode()));
    absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
        UpperdProcess::Start({.args = args});
    EXPECT_TRUE(started.ok()) << started.status();
    if (!started.ok()) return false;
    upperd_ = *std::move(started);
    absl::StatusOr<uint16_t> port = upperd_->Port("metrics");
    EXPECT_TRUE(port.ok()) << port.status() << "\n" << upperd_->Log();
    if (!port.ok()) return false;
    metrics_port_ = *port;
    return true;
  }

  // Opens `n` connections and waits until upperd serves all of them.
  std::vector<UniqueFd> OpenConnections(int n) {
    std::vector<UniqueFd> fds;
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<UniqueFd> fd = Connect(upperd_->data_port());
      EXPECT_TRUE(fd.ok()) << fd.status();
      if (fd.ok()) fds.push_back(*std::move(fd));
    }
    return fds;
  }

  std::unique_ptr<UpperdProcess> upperd_;
  uint16_t metrics_port_ = 0;
};

TEST_P(MetricsTest, OpenConnectionsAreActiveInTheirModeOnly) {
  ASSERT_TRUE(StartUpperd());
  constexpr int kOpen = 5;
  std::vector<UniqueFd> fds = OpenConnections(kOpen);
  ASSERT_EQ(fds.size(), kOpen);
  const std::string active = Labelled("upper_connections_active", ModeLabel());
  EXPECT_EQ(AwaitValue(metrics_port_, active, kOpen), kOpen);
  const Scrape scrape = MustScrape(metrics_port_);
  EXPECT_EQ(scrape.Value(Labelled("upper_connections_active",
                                  absl::StrCat("mode=\"", other_mode(), "\""))),
            0);
  // Counted once the worker exists (in fork mode, after the fork).
  const std::string accepted =
      Labelled("upper_connections_accepted_total", ModeLabel());
  EXPECT_EQ(AwaitValue(metrics_port_, accepted, kOpen), kOpen);
  fds.clear();  // closes them all
  EXPECT_EQ(AwaitValue(metrics_port_, active, 0), 0);
}

TEST_P(MetricsTest, ByteTotalsGrowByExactlyTheBytesExchanged) {
  ASSERT_TRUE(StartUpperd());
  const std::string received =
      Labelled("upper_received_bytes_total", ModeLabel());
  const std::string sent = Labelled("upper_sent_bytes_total", ModeLabel());
  const Scrape before = MustScrape(metrics_port_);
  constexpr int kClients = 4;
  std::vector<UniqueFd> fds = OpenConnections(kClients);
  ASSERT_EQ(fds.size(), kClients);
  double total = 0;
  std::mt19937_64 rng(7);
  for (int i = 0; i < kClients; ++i) {
    const std::string payload = RandomPayload(1000 + 7919 * i, i);
    ASSERT_TRUE(SendSegmented(fds[i].get(), payload, 4096, rng,
                              /*half_close=*/false)
                    .ok());
    // Read it all back while the connection stays open: the figures must
    // not wait for a close.
    absl::StatusOr<std::string> reply = ReadExactly(
        fds[i].get(), payload.size(), absl::Now() + absl::Seconds(20));
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_TRUE(*reply == ExpectedUpper(payload));
    total += payload.size();
  }
  EXPECT_EQ(AwaitValue(metrics_port_, received, before.Value(received) + total),
            before.Value(received) + total);
  EXPECT_EQ(AwaitValue(metrics_port_, sent, before.Value(sent) + total),
            before.Value(sent) + total);
  // The other mode served nothing.
  const Scrape after = MustScrape(metrics_port_);
  const std::string other = absl::StrCat("mode=\"", other_mode(), "\"");
  EXPECT_EQ(after.Value(Labelled("upper_received_bytes_total", other)), 0);
  EXPECT_EQ(after.Value(Labelled("upper_sent_bytes_total", other)), 0);
}

TEST_P(MetricsTest, EachClosedConnectionIsOneObservationAndOneClientClose) {
  ASSERT_TRUE(StartUpperd());
  const std::string count =
      Labelled("upper_connection_duration_seconds_count", ModeLabel());
  const std::string closed =
      Labelled("upper_connections_closed_total",
               absl::StrCat(ModeLabel(), ",reason=\"client\""));
  const Scrape before = MustScrape(metrics_port_);
  constexpr int kClients = 6;
  for (int i = 0; i < kClients; ++i) {
    const std::string payload = RandomPayload(100 * i, i);
    absl::StatusOr<std::string> reply =
        Exchange(upperd_->data_port(), payload, 64, i, absl::Seconds(20));
    ASSERT_TRUE(reply.ok()) << reply.status();
  }
  EXPECT_EQ(AwaitValue(metrics_port_, count, before.Value(count) + kClients),
            before.Value(count) + kClients);
  EXPECT_EQ(AwaitValue(metrics_port_, closed, before.Value(closed) + kClients),
            before.Value(closed) + kClients);
  const Scrape after = MustScrape(metrics_port_);
  EXPECT_EQ(after.Value(Labelled("upper_connection_duration_seconds_bucket",
                                 absl::StrCat(ModeLabel(), ",le=\"+Inf\""))),
            kClients);
  EXPECT_GT(after.Value(
                Labelled("upper_connection_duration_seconds_sum", ModeLabel())),
            0);
  EXPECT_EQ(after.Value(Labelled("upper_connection_duration_seconds_count",
                                 absl::StrCat("mode=\"", other_mode(), "\""))),
            0);
  // Forks are timed one per connection; threads are not forked.
  EXPECT_EQ(after.Value("upper_fork_latency_seconds_count"),
            mode() == "fork" ? kClients : 0);
}

TEST_P(MetricsTest, ConnectionsOverTheLimitAreCountedAsRejected) {
  ASSERT_TRUE(StartUpperd({"--max_connections=2"}));
  std::vector<UniqueFd> held = OpenConnections(2);
  ASSERT_EQ(AwaitValue(metrics_port_,
                       Labelled("upper_connections_active", ModeLabel()), 2),
            2);
  constexpr int kRefused = 3;
  std::vector<UniqueFd> refused = OpenConnections(kRefused);
  const std::string limit =
      Labelled("upper_connections_rejected_total", "reason=\"limit\"");
  EXPECT_EQ(AwaitValue(metrics_port_, limit, kRefused), kRefused);
  const Scrape scrape = MustScrape(metrics_port_);
  EXPECT_EQ(scrape.Value("upper_connections_limit"), 2);
  const std::string accepted =
      Labelled("upper_connections_accepted_total", ModeLabel());
  EXPECT_EQ(AwaitValue(metrics_port_, accepted, 2), 2);
}

TEST_P(MetricsTest, FreshServerShowsEveryFamilyAndLabelAndItsMode) {
  ASSERT_TRUE(StartUpperd());
  const Scrape scrape = MustScrape(metrics_port_);
  EXPECT_EQ(scrape.Value(Labelled("upper_mode", ModeLabel())), 1);
  EXPECT_EQ(scrape.Value(Labelled("upper_mode",
                                  absl::StrCat("mode=\"", other_mode(), "\""))),
            0);
  for (const char* reason :
       {"limit", "fork_failed", "thread_failed", "fd_exhausted", "draining"}) {
    EXPECT_EQ(scrape.Value(Labelled("upper_connections_rejected_total",
                                    absl::StrCat("reason=\"", reason, "\""))),
              0)
        << reason;
  }
  for (const char* m : {"fork", "thread"}) {
    for (const char* reason : {"client", "idle_timeout", "killed", "error",
                               "drain", "send_timeout"}) {
      EXPECT_EQ(scrape.Value(Labelled(
                    "upper_connections_closed_total",
                    absl::StrCat("mode=\"", m, "\",reason=\"", reason, "\""))),
                0)
          << m << " " << reason;
    }
  }
  for (const char* series :
       {"upper_mode_switches_total", "upper_worker_crashes_total",
        "upper_fork_server_restarts_total", "upper_draining"}) {
    EXPECT_EQ(scrape.Value(series), 0) << series;
  }
  EXPECT_TRUE(absl::StrContains(scrape.text(), "upper_build_info{revision=\""))
      << scrape.text();
  // The process is upperd: started within the last minute, with some memory
  // and descriptors, under a descriptor limit.
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  EXPECT_NEAR(scrape.Value("process_start_time_seconds"), now, 60);
  EXPECT_GT(scrape.Value("process_resident_memory_bytes"), 1e6);
  EXPECT_GE(scrape.Value("process_virtual_memory_bytes"),
            scrape.Value("process_resident_memory_bytes"));
  EXPECT_GE(scrape.Value("process_cpu_seconds_total"), 0);
  EXPECT_GT(scrape.Value("process_open_fds"), 3);
  EXPECT_GE(scrape.Value("process_max_fds"), scrape.Value("process_open_fds"));
}

TEST_P(MetricsTest, AdminCallsAreCountedByMethodAndCode) {
  ASSERT_TRUE(StartUpperd());
  absl::StatusOr<uint16_t> admin_port = upperd_->Port("admin");
  ASSERT_TRUE(admin_port.ok()) << admin_port.status();
  auto stub = admin::v1::AdminService::NewStub(AdminChannel(*admin_port));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(GetStatus(*stub).ok());
  admin::v1::SetModeRequest bad;  // MODE_UNSPECIFIED: INVALID_ARGUMENT
  admin::v1::SetModeResponse ignored;
  EXPECT_FALSE(stub->SetMode(Context().get(), bad, &ignored).ok());
  const Scrape scrape = MustScrape(metrics_port_);
  EXPECT_EQ(scrape.Value("upper_admin_requests_total{code=\"OK\","
                         "method=\"upper.admin.v1.AdminService/GetStatus\"}"),
            3);
  EXPECT_EQ(scrape.Value("upper_admin_requests_total{code=\"INVALID_ARGUMENT\","
                         "method=\"upper.admin.v1.AdminService/SetMode\"}"),
            1);
}

TEST_P(MetricsTest, DrainingGaugeIsOneWhileShuttingDown) {
  ASSERT_TRUE(StartUpperd({"--drain_timeout=30s"}));
  std::vector<UniqueFd> held = OpenConnections(1);
  ASSERT_EQ(AwaitValue(metrics_port_,
                       Labelled("upper_connections_active", ModeLabel()), 1),
            1);
  upperd_->Signal(SIGTERM);
  EXPECT_EQ(AwaitValue(metrics_port_, "upper_draining", 1), 1);
  held.clear();  // the last connection ends, so the drain completes
  absl::StatusOr<int> code = upperd_->WaitExit(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << upperd_->Log();
}

INSTANTIATE_TEST_SUITE_P(BothModes, MetricsTest,
                         ::testing::Values("fork", "thread"));

// Runs `command` through the shell; its exit status and combined output.
std::pair<int, std::string> RunShell(const std::string& command) {
  std::string output;
  FILE* pipe = popen(absl::StrCat(command, " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    output.append(buffer, n);
  }
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

TEST(MetricsFormatTest, PromtoolFindsNoProblemInARealScrape) {
  if (RunShell("command -v promtool").first != 0) {
    GTEST_SKIP() << "promtool not installed (Debian package prometheus; "
                    ".ci/bootstrap installs it)";
  }
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start({.args = {"--mode=fork"}});
  ASSERT_TRUE(upperd.ok()) << upperd.status();
  absl::StatusOr<uint16_t> port = (*upperd)->Port("metrics");
  ASSERT_TRUE(port.ok()) << port.status();
  // Some traffic first, so histograms and counters hold real values.
  ASSERT_TRUE(Exchange((*upperd)->data_port(), RandomPayload(10000, 1), 512, 1,
                       absl::Seconds(20))
                  .ok());
  absl::StatusOr<std::string> body =
      HttpGet(*port, "/metrics", absl::Seconds(10));
  ASSERT_TRUE(body.ok()) << body.status();
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/upper_metrics_", getpid(), ".txt");
  {
    std::ofstream out(path);
    out << *body;
    ASSERT_TRUE(out.good()) << path;
  }
  const auto [status, output] =
      RunShell(absl::StrCat("promtool check metrics < '", path, "'"));
  std::remove(path.c_str());
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "") << *body;
}

TEST(MetricsStartupTest, MetricsPortInUseIsAStartupErrorNamingIt) {
  // Hold a listening socket on a free loopback port.
  UniqueFd holder(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(holder);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(
      bind(holder.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(holder.get(), 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(holder.get(), reinterpret_cast<sockaddr*>(&addr), &len),
            0);
  const int port = ntohs(addr.sin_port);

  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start({.args = {absl::StrCat("--metrics_port=", port)},
                            .wait_until_listening = false});
  ASSERT_TRUE(upperd.ok()) << upperd.status();
  absl::StatusOr<int> code = (*upperd)->WaitExit(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 1) << (*upperd)->Log();
  EXPECT_TRUE(absl::StrContains(
      (*upperd)->Log(),
      absl::StrCat("--metrics_port: cannot listen on 127.0.0.1:", port)))
      << (*upperd)->Log();
}

// upperd started with --metrics_bind=`bind`; null on failure.
std::unique_ptr<UpperdProcess> StartWithMetricsBind(const std::string& bind) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start({.args = {absl::StrCat("--metrics_bind=", bind)}});
  EXPECT_TRUE(upperd.ok()) << upperd.status();
  return upperd.ok() ? *std::move(upperd) : nullptr;
}

bool HasIpv6Loopback() {
  UniqueFd fd(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 addr = {};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  return fd &&
         bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

// A scrape from `ip` that has the table's figures.
void ExpectScrapeFrom(const std::string& ip, uint16_t port) {
  absl::StatusOr<std::string> body =
      HttpGet(ip, port, "/metrics", absl::Seconds(10));
  ASSERT_TRUE(body.ok()) << ip << ": " << body.status();
  EXPECT_TRUE(absl::StrContains(*body, "\nupper_draining 0\n")) << *body;
}

TEST(MetricsBindTest, AnyIpv6AddressServesIpv4AndIpv6Scrapers) {
  std::unique_ptr<UpperdProcess> upperd = StartWithMetricsBind("::");
  ASSERT_NE(upperd, nullptr);
  absl::StatusOr<uint16_t> port = upperd->Port("metrics");
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_TRUE(absl::StrContains(
      upperd->Log(),
      absl::StrCat("listening service=metrics addr=[::]:", *port, " ")))
      << upperd->Log();
  ExpectScrapeFrom("127.0.0.1", *port);
  if (!HasIpv6Loopback()) {
    GTEST_SKIP() << "this machine has no ::1 (IPv6 disabled); the IPv4 "
                    "scrape of the dual-stack socket passed";
  }
  ExpectScrapeFrom("::1", *port);
}

TEST(MetricsBindTest, Ipv6LoopbackServesIpv6) {
  if (!HasIpv6Loopback()) GTEST_SKIP() << "this machine has no ::1";
  std::unique_ptr<UpperdProcess> upperd = StartWithMetricsBind("::1");
  ASSERT_NE(upperd, nullptr);
  absl::StatusOr<uint16_t> port = upperd->Port("metrics");
  ASSERT_TRUE(port.ok()) << port.status();
  ExpectScrapeFrom("::1", *port);
}

TEST(MetricsBindTest, Ipv4LoopbackServesIpv4) {
  std::unique_ptr<UpperdProcess> upperd = StartWithMetricsBind("127.0.0.1");
  ASSERT_NE(upperd, nullptr);
  absl::StatusOr<uint16_t> port = upperd->Port("metrics");
  ASSERT_TRUE(port.ok()) << port.status();
  ExpectScrapeFrom("127.0.0.1", *port);
}

class MetricsBindNameTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MetricsBindNameTest, MetricsBindThatIsNotAnIpLiteralIsAFlagError) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd = UpperdProcess::Start(
      {.args = {absl::StrCat("--metrics_bind=", GetParam())},
       .wait_until_listening = false});
  ASSERT_TRUE(upperd.ok()) << upperd.status();
  absl::StatusOr<int> code = (*upperd)->WaitExit(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 2) << (*upperd)->Log();
  // One line, naming the flag and the value.
  EXPECT_EQ((*upperd)->Log(),
            absl::StrCat("upperd: --metrics_bind: '", GetParam(),
                         "' is not an IPv4 or IPv6 address\n"));
}

// Names are never looked up, as for --bind.
INSTANTIATE_TEST_SUITE_P(Names, MetricsBindNameTest,
                         ::testing::Values("localhost", "metrics.example",
                                           "::1%lo0x", "1.2.3"));

// Writes all of `data` (blocking); false on an error.
bool SendAll(int fd, const std::string& data) {
  for (size_t sent = 0; sent < data.size();) {
    const ssize_t n =
        send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// The endpoint as a peer sees it, on a real upperd (mode irrelevant).
class MetricsEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
        UpperdProcess::Start({});
    ASSERT_TRUE(started.ok()) << started.status();
    upperd_ = *std::move(started);
    absl::StatusOr<uint16_t> port = upperd_->Port("metrics");
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  // The whole answer to `request`, up to the server's close.
  std::string Exchange(const std::string& request) {
    absl::StatusOr<UniqueFd> fd = Connect(port_);
    EXPECT_TRUE(fd.ok()) << fd.status();
    if (!fd.ok()) return "";
    EXPECT_TRUE(SendAll(fd->get(), request));
    absl::StatusOr<std::string> reply =
        ReadUntilEof(fd->get(), absl::Now() + absl::Seconds(10));
    EXPECT_TRUE(reply.ok()) << reply.status();
    return reply.ok() ? *reply : "";
  }

  static std::string StatusLine(const std::string& reply) {
    return reply.substr(0, reply.find("\r\n"));
  }
  // Up to and including the blank line that ends the head.
  static std::string Head(const std::string& reply) {
    return reply.substr(0, reply.find("\r\n\r\n") + 4);
  }

  std::unique_ptr<UpperdProcess> upperd_;
  uint16_t port_ = 0;
};

// 20 peers that send `GET /metr` and stop, more than the server's 16 slots:
// the oldest are evicted to make room, so a scrape answers within 2 s (not
// after the 5 s header timeout), and the evictions are counted.
TEST_F(MetricsEndpointTest, TwentySlowlorisClientsDoNotDelayAScrape) {
  std::vector<UniqueFd> slow;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(port_);
    ASSERT_TRUE(fd.ok()) << fd.status();
    ASSERT_TRUE(SendAll(fd->get(), "GET /metr"));
    slow.push_back(*std::move(fd));
  }
  absl::SleepFor(absl::Milliseconds(200));  // let the server accept them all
  const absl::Time start = absl::Now();
  absl::StatusOr<Scrape> scrape = Scrape::Get(port_, absl::Seconds(2));
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  std::printf("scrape behind 20 slowloris clients: %s\n",
              absl::FormatDuration(took).c_str());
  EXPECT_LT(took, absl::Seconds(2));
  EXPECT_EQ(scrape->Value("upper_draining"), 0);
  // 21 connections for 16 slots: at least 5 were evicted.
  EXPECT_GE(
      scrape->Value(
          "upper_metrics_http_connections_closed_total{reason=\"evicted\"}"),
      5);
  EXPECT_GE(scrape->Value("upper_metrics_http_connections_accepted_total"), 21);
  // The slowloris peers still held (the scrape itself is read and answered
  // before it would be counted).
  EXPECT_GE(scrape->Value("upper_metrics_http_connections"), 1);
  EXPECT_LE(scrape->Value("upper_metrics_http_connections"), 16);
}

TEST_F(MetricsEndpointTest, HeadAnswersLikeGetWithoutTheBody) {
  const std::string get = Exchange("GET /metrics HTTP/1.1\r\n\r\n");
  const std::string head = Exchange("HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusLine(get), "HTTP/1.1 200 OK");
  EXPECT_EQ(StatusLine(head), "HTTP/1.1 200 OK");
  // The same head (Content-Length included: a scrape's size barely moves
  // between the two, so compare all but its value) and no body at all.
  EXPECT_TRUE(absl::EndsWith(head, "\r\n\r\n")) << head;
  EXPECT_EQ(head, Head(head));
  EXPECT_TRUE(
      absl::StrContains(head, "Content-Type: text/plain; version=0.0.4"))
      << head;
  EXPECT_TRUE(absl::StrContains(head, "Content-Length: ")) << head;
  EXPECT_TRUE(absl::StrContains(head, "Connection: close")) << head;
  EXPECT_TRUE(absl::StrContains(Head(get),
                                "Content-Type: text/plain; "
                                "version=0.0.4"));
  EXPECT_GT(get.size(), Head(get).size());
}

// Only /metrics is served; a query string is ignored (Prometheus may add
// params), a trailing slash or suffix is another path.
TEST_F(MetricsEndpointTest, OnlyTheExactPathIsServed) {
  for (const char* path : {"/metrics/", "/metricsx", "/Metrics", "/metrics.txt",
                           "/metrics/../metrics", "//metrics"}) {
    EXPECT_EQ(
        StatusLine(Exchange(absl::StrCat("GET ", path, " HTTP/1.1\r\n\r\n"))),
        "HTTP/1.1 404 Not Found")
        << path;
  }
  for (const char* path : {"/metrics", "/metrics?x", "/metrics?name[]=up"}) {
    EXPECT_EQ(
        StatusLine(Exchange(absl::StrCat("GET ", path, " HTTP/1.1\r\n\r\n"))),
        "HTTP/1.1 200 OK")
        << path;
  }
}

// The endpoint's own counts, with their HELP text: every response code it
// can send is a series from the start, and each answer counts once.
TEST_F(MetricsEndpointTest, TheServerCountsItsConnectionsAndResponses) {
  Exchange("GET /nothing HTTP/1.1\r\n\r\n");
  Exchange("POST /metrics HTTP/1.1\r\n\r\n");
  absl::StatusOr<Scrape> scrape = Scrape::Get(port_);
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  // The scrape counts itself as accepted, but its response is counted only
  // once it is sent (after the body was collected).
  EXPECT_EQ(scrape->Value("upper_metrics_http_connections_accepted_total"), 3);
  EXPECT_EQ(scrape->Value("upper_metrics_http_responses_total{code=\"404\"}"),
            1);
  EXPECT_EQ(scrape->Value("upper_metrics_http_responses_total{code=\"405\"}"),
            1);
  EXPECT_EQ(scrape->Value("upper_metrics_http_responses_total{code=\"200\"}"),
            0);
  for (const char* code : {"400", "408", "431", "500", "505"}) {
    EXPECT_EQ(scrape->Value(absl::StrCat(
                  "upper_metrics_http_responses_total{code=\"", code, "\"}")),
              0)
        << code;
  }
  for (const char* reason : {"evicted", "header_timeout", "write_timeout"}) {
    EXPECT_EQ(scrape->Value(absl::StrCat(
                  "upper_metrics_http_connections_closed_total{reason=\"",
                  reason, "\"}")),
              0)
        << reason;
  }
  EXPECT_EQ(scrape->Value("upper_metrics_http_connections_refused_total"), 0);
  EXPECT_TRUE(scrape->Has("upper_metrics_http_connections"));
  for (const char* help :
       {"# HELP upper_metrics_http_connections_accepted_total ",
        "# HELP upper_metrics_http_responses_total ",
        "# HELP upper_metrics_http_connections_closed_total ",
        "# TYPE upper_metrics_http_connections gauge"}) {
    EXPECT_TRUE(absl::StrContains(scrape->text(), help)) << help;
  }
  // The next scrape sees the first one's 200.
  EXPECT_EQ(
      AwaitValue(port_, "upper_metrics_http_responses_total{code=\"200\"}", 1),
      1);
}

}  // namespace
}  // namespace upper::testing
