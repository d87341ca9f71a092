// The admin and metrics planes under data-plane load, against a real
// upperd:
// - the mode switched every 50 ms while ~200 clients (long streams and short
//   connections) run for 10 s: every byte verified, and afterwards GetStatus
//   shows zero active and byte totals equal to what the clients verified;
// - fork-mode load while GetStatus, ListConnections and /metrics scrapes run
//   back to back: every call completes within a bound (the watchdog), and
//   the fork latency histogram counts exactly one fork per fork-mode
//   connection served (its p50/p99 are printed);
// - /metrics scraped without pause while SIGTERM drains: every scrape is
//   either a complete, well-formed exposition or a connection error
//   (refused once the metrics port is closed, or closed unanswered), never
//   a 404, a 503 or a truncated body, and upperd exits 0.
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/load_driver.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/proc.h"
#include "tests/support/stop_cleanly.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

using admin::v1::AdminService;
using admin::v1::ServerStatus;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// The watchdog's bound on one admin call or scrape. Measured calls take a
// few milliseconds even under load; 2 s means "hung", not "slow". Sanitizer
// builds run everything several times slower, upperd included.
const absl::Duration kCallBound = absl::Seconds(kSanitized ? 10 : 2);

struct Upperd {
  std::unique_ptr<UpperdProcess> process;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<AdminService::Stub> stub;
  uint16_t metrics_port = 0;
};

Upperd StartUpperd(std::vector<std::string> args) {
  Upperd u;
  absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
      UpperdProcess::Start({.args = std::move(args)});
  EXPECT_TRUE(started.ok()) << started.status();
  if (!started.ok()) return u;
  u.process = *std::move(started);
  absl::StatusOr<uint16_t> admin = u.process->Port("admin");
  absl::StatusOr<uint16_t> metrics = u.process->Port("metrics");
  EXPECT_TRUE(admin.ok() && metrics.ok()) << u.process->Log();
  if (!admin.ok() || !metrics.ok()) return u;
  u.channel = AdminChannel(*admin);
  u.stub = AdminService::NewStub(u.channel);
  u.metrics_port = *metrics;
  return u;
}

absl::StatusOr<LoadFigures> Combine(
    std::vector<std::future<absl::StatusOr<LoadFigures>>>& drivers) {
  LoadFigures total;
  absl::Status first_error;
  for (auto& driver : drivers) {
    absl::StatusOr<LoadFigures> f = driver.get();
    if (!f.ok()) {
      if (first_error.ok()) first_error = f.status();
      continue;
    }
    total.connections += f->connections;
    total.bytes += f->bytes;
  }
  if (!first_error.ok()) return first_error;
  return total;
}

// ~200 clients: long streams (up to 1 MiB each) and short connections (up
// to 2 KiB: connect, send, half-close, read, close), each pattern from its
// own driver thread.
std::vector<std::future<absl::StatusOr<LoadFigures>>> StartMixedLoad(
    uint16_t port, absl::Duration duration, int long_streams,
    int short_connections) {
  std::vector<std::future<absl::StatusOr<LoadFigures>>> drivers;
  drivers.push_back(std::async(std::launch::async, [=] {
    return LoadDriver({.port = port,
                       .concurrency = long_streams,
                       .seed = 11,
                       .max_stream_bytes = 1 << 20})
        .Run(duration);
  }));
  drivers.push_back(std::async(std::launch::async, [=] {
    return LoadDriver({.port = port,
                       .concurrency = short_connections,
                       .seed = 12,
                       .max_stream_bytes = 2048})
        .Run(duration);
  }));
  return drivers;
}

// The live switch with each mode's workers made per connection, and with
// both pools on (issue 16): a switch moves new connections to the other
// mode's workers while the old mode's idle pool waits, then shrinks.
struct PoolSetting {
  const char* name;
  std::vector<std::string> args;
  int fork_spare_min = 0;
  int thread_spare_min = 0;
};

class ModeSwitchUnderLoad : public ::testing::TestWithParam<PoolSetting> {};

// The fork server's live children (upperd's grandchildren).
int CountForkChildren(pid_t upperd) {
  pid_t server = -1;
  const std::vector<pid_t> all = Descendants(upperd);
  for (pid_t pid : all) {
    const std::optional<ProcStat> stat = ReadProcStat(pid);
    if (stat && stat->ppid == upperd) server = pid;
  }
  int n = 0;
  for (pid_t pid : all) {
    const std::optional<ProcStat> stat = ReadProcStat(pid);
    if (stat && stat->ppid == server && stat->state != 'Z') ++n;
  }
  return n;
}

// upperd's own threads: the data plane's, named "upperd" as the process
// (gRPC names its threads, which come and go with admin calls).
int CountOwnThreads(pid_t upperd) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(
           absl::StrCat("/proc/", upperd, "/task"),
           std::filesystem::directory_options::skip_permission_denied)) {
    const std::optional<std::string> comm =
        ReadProcFile(entry.path().string() + "/comm");
    if (comm && *comm == "upperd\n") ++n;
  }
  return n;
}

TEST_P(ModeSwitchUnderLoad, EveryFiftyMillisecondsLosesNoByte) {
  ASSERT_TRUE(RaiseFdLimit(4096).ok());  // upperd inherits it
  const PoolSetting& pools = GetParam();
  std::vector<std::string> args = pools.args;
  args.push_back("--mode=thread");
  Upperd u = StartUpperd(args);
  ASSERT_NE(u.stub, nullptr);
  const pid_t pid = u.process->pid();
  ASSERT_TRUE(
      Eventually([&] { return CountForkChildren(pid) == pools.fork_spare_min; },
                 absl::Seconds(5)));
  // The admin channel is connected first: its socket is part of the
  // baseline.
  ASSERT_TRUE(GetStatus(*u.stub).ok());
  const int baseline_fds = CountFds(pid);
  const int baseline_threads = CountOwnThreads(pid);
  constexpr absl::Duration kLoad = absl::Seconds(10);
  auto drivers = StartMixedLoad(u.process->data_port(), kLoad, 150, 50);

  // Switch on a fixed 50 ms cadence until the load stops opening streams.
  int switches = 0;
  int failed = 0;
  std::string first_failure;
  const absl::Time start = absl::Now();
  for (absl::Time next = start; next < start + kLoad && switches < 1000;
       next += absl::Milliseconds(50)) {
    absl::SleepFor(next - absl::Now());
    auto context = Context("", kCallBound);
    admin::v1::SetModeRequest request;
    request.set_mode(switches % 2 == 0 ? admin::v1::MODE_FORK
                                       : admin::v1::MODE_THREAD);
    admin::v1::SetModeResponse response;
    const grpc::Status s = u.stub->SetMode(context.get(), request, &response);
    if (!s.ok()) {
      if (failed++ == 0) first_failure = s.error_message();
      continue;
    }
    ++switches;
  }
  absl::StatusOr<LoadFigures> load = Combine(drivers);
  ASSERT_TRUE(load.ok()) << load.status();
  EXPECT_EQ(failed, 0) << first_failure;

  const ServerStatus status = StatusWhen(*u.stub, [&](const ServerStatus& s) {
    return s.active_connections() == 0 && s.closed_total() == load->connections;
  });
  EXPECT_EQ(status.active_connections(), 0u);
  EXPECT_EQ(PerMode(status, admin::v1::MODE_FORK).active_connections(), 0u);
  EXPECT_EQ(PerMode(status, admin::v1::MODE_THREAD).active_connections(), 0u);
  EXPECT_EQ(status.mode_switches_total(), static_cast<uint64_t>(switches));
  EXPECT_EQ(status.accepted_total(), load->connections);
  EXPECT_EQ(status.closed_total(), load->connections);
  EXPECT_EQ(status.rejected_total(), 0u);
  EXPECT_EQ(status.worker_crashes_total(), 0u);
  EXPECT_EQ(status.received_bytes_total(), load->bytes);
  EXPECT_EQ(status.sent_bytes_total(), load->bytes);
  EXPECT_GT(PerMode(status, admin::v1::MODE_FORK).accepted_total(), 0u);
  EXPECT_GT(PerMode(status, admin::v1::MODE_THREAD).accepted_total(), 0u);
  std::printf(
      "mode switched %d times in %s under 150 long streams + 50 short "
      "connections: %llu connections (%llu fork, %llu thread), %llu bytes "
      "verified each way\n",
      switches, absl::FormatDuration(kLoad).c_str(),
      static_cast<unsigned long long>(load->connections),
      static_cast<unsigned long long>(
          PerMode(status, admin::v1::MODE_FORK).accepted_total()),
      static_cast<unsigned long long>(
          PerMode(status, admin::v1::MODE_THREAD).accepted_total()),
      static_cast<unsigned long long>(load->bytes));

  // Back to the baseline once the pools' timeouts (1 s) have passed: the
  // same descriptors, no thread or child beyond the pools' minimums.
  EXPECT_TRUE(Eventually(
      [&] {
        return CountFds(pid) == baseline_fds &&
               CountOwnThreads(pid) <=
                   baseline_threads + pools.thread_spare_min &&
               CountForkChildren(pid) == pools.fork_spare_min;
      },
      absl::Seconds(15)))
      << CountFds(pid) << " fds (" << baseline_fds << " at start), "
      << CountOwnThreads(pid) << " data-plane threads (" << baseline_threads
      << "), " << CountForkChildren(pid) << " fork children";
  StopCleanly(*u.process);
}

INSTANTIATE_TEST_SUITE_P(
    Pools, ModeSwitchUnderLoad,
    ::testing::Values(PoolSetting{"PerConnectionWorkers", {}},
                      PoolSetting{
                          "PoolsOn",
                          {"--fork_spare_min=2", "--fork_spare_max=64",
                           "--fork_spare_timeout=1s",
                           "--fork_child_max_connections=1000",
                           "--thread_spare_min=2", "--thread_spare_max=64",
                           "--thread_spare_timeout=1s"},
                          2,
                          2}),
    [](const ::testing::TestParamInfo<PoolSetting>& info) {
      return std::string(info.param.name);
    });

// Cumulative bucket counts of upper_fork_latency_seconds by upper bound in
// seconds (+Inf as infinity), from a scrape's text.
std::map<double, double> ForkLatencyBuckets(const Scrape& scrape) {
  std::map<double, double> buckets;
  constexpr absl::string_view kPrefix = "upper_fork_latency_seconds_bucket{";
  for (absl::string_view line : absl::StrSplit(scrape.text(), '\n')) {
    if (!absl::StartsWith(line, kPrefix)) continue;
    const size_t le = line.find("le=\"");
    const size_t le_end = line.find('"', le + 4);
    const size_t space = line.rfind(' ');
    if (le == absl::string_view::npos || le_end == absl::string_view::npos ||
        space == absl::string_view::npos) {
      ADD_FAILURE() << "unexpected bucket line: " << line;
      continue;
    }
    const absl::string_view bound = line.substr(le + 4, le_end - le - 4);
    double upper = std::numeric_limits<double>::infinity();
    double count = 0;
    if (bound != "+Inf" && !absl::SimpleAtod(bound, &upper)) {
      ADD_FAILURE() << "bad le in: " << line;
    }
    if (!absl::SimpleAtod(line.substr(space + 1), &count)) {
      ADD_FAILURE() << "bad value in: " << line;
    }
    buckets[upper] = count;
  }
  return buckets;
}

// The q-quantile of the observations between two scrapes, interpolated
// linearly inside its bucket as PromQL's histogram_quantile does.
double Quantile(const std::map<double, double>& before,
                const std::map<double, double>& after, double q) {
  std::vector<std::pair<double, double>> delta;  // bound, cumulative count
  for (const auto& [bound, count] : after) {
    const auto it = before.find(bound);
    delta.emplace_back(bound, count - (it == before.end() ? 0 : it->second));
  }
  if (delta.empty() || delta.back().second == 0) return 0;
  const double rank = q * delta.back().second;
  double lower = 0, below = 0;
  for (const auto& [bound, cumulative] : delta) {
    if (cumulative >= rank) {
      if (std::isinf(bound)) return lower;  // above the last finite bound
      return lower + (bound - lower) * (rank - below) / (cumulative - below);
    }
    lower = bound;
    below = cumulative;
  }
  return lower;
}

// Calls `call` back to back until `stop`, timing each; keeps the slowest
// and the first failure.
struct Poller {
  std::string name;
  int calls = 0;
  absl::Duration slowest;
  std::string first_error;

  template <typename F>
  void Run(const std::atomic<bool>& stop, F call) {
    while (!stop.load() && calls < 1000000) {
      const absl::Time begin = absl::Now();
      const absl::Status s = call();
      slowest = std::max(slowest, absl::Now() - begin);
      ++calls;
      if (!s.ok() && first_error.empty()) first_error = s.ToString();
    }
  }
};

TEST(AdminUnderLoad, ForkLoadWithNonStopAdminCallsAndScrapesNeverHangs) {
  ASSERT_TRUE(RaiseFdLimit(4096).ok());
  Upperd u = StartUpperd({"--mode=fork"});
  ASSERT_NE(u.stub, nullptr);
  // One connection first, so that the fork server is up and warm.
  ASSERT_EQ(Exchange(u.process->data_port(), "warm", 4, 1, absl::Seconds(10))
                .value_or(""),
            "WARM");
  const ServerStatus before = StatusWhen(*u.stub, [](const ServerStatus& s) {
    return s.active_connections() == 0;
  });
  absl::StatusOr<Scrape> scrape_before = Scrape::Get(u.metrics_port);
  ASSERT_TRUE(scrape_before.ok()) << scrape_before.status();
  const double forks_before =
      scrape_before->Value("upper_fork_latency_seconds_count");
  ASSERT_EQ(forks_before,
            PerMode(before, admin::v1::MODE_FORK).accepted_total());

  std::atomic<bool> stop{false};
  Poller status{"GetStatus"}, listing{"ListConnections"}, scrapes{"/metrics"};
  uint64_t most_listed = 0;
  std::vector<std::thread> pollers;
  pollers.emplace_back([&] {
    status.Run(stop, [&] {
      auto context = Context("", kCallBound);
      ServerStatus s;
      const grpc::Status r =
          u.stub->GetStatus(context.get(), admin::v1::GetStatusRequest(), &s);
      return r.ok() ? absl::OkStatus()
                    : absl::UnknownError(absl::StrCat(r.error_code(), ": ",
                                                      r.error_message()));
    });
  });
  pollers.emplace_back([&] {
    listing.Run(stop, [&] {
      auto context = Context("", kCallBound);
      admin::v1::ListConnectionsResponse listed;
      const grpc::Status r = u.stub->ListConnections(
          context.get(), admin::v1::ListConnectionsRequest(), &listed);
      most_listed = std::max<uint64_t>(most_listed, listed.connections_size());
      return r.ok() ? absl::OkStatus()
                    : absl::UnknownError(absl::StrCat(r.error_code(), ": ",
                                                      r.error_message()));
    });
  });
  pollers.emplace_back([&] {
    scrapes.Run(stop, [&] {
      absl::StatusOr<Scrape> s = Scrape::Get(u.metrics_port, kCallBound);
      if (!s.ok()) return s.status();
      return s->Has("upper_fork_latency_seconds_count")
                 ? absl::OkStatus()
                 : absl::DataLossError("no fork latency in the scrape");
    });
  });

  constexpr absl::Duration kLoad = absl::Seconds(10);
  auto drivers = StartMixedLoad(u.process->data_port(), kLoad, 50, 100);
  absl::StatusOr<LoadFigures> load = Combine(drivers);
  stop = true;
  for (std::thread& t : pollers) t.join();
  ASSERT_TRUE(load.ok()) << load.status();

  for (const Poller* p : {&status, &listing, &scrapes}) {
    EXPECT_TRUE(p->first_error.empty()) << p->name << ": " << p->first_error;
    EXPECT_LT(p->slowest, kCallBound) << p->name;
    EXPECT_GT(p->calls, 0) << p->name;
  }
  EXPECT_GT(most_listed, 0u);

  // One fork, hence one latency observation, per fork-mode connection.
  const ServerStatus after = StatusWhen(*u.stub, [&](const ServerStatus& s) {
    return s.active_connections() == 0 &&
           s.closed_total() == before.closed_total() + load->connections;
  });
  EXPECT_EQ(after.active_connections(), 0u);
  EXPECT_EQ(PerMode(after, admin::v1::MODE_FORK).accepted_total() -
                PerMode(before, admin::v1::MODE_FORK).accepted_total(),
            load->connections);
  EXPECT_EQ(after.received_bytes_total() - before.received_bytes_total(),
            load->bytes);
  EXPECT_EQ(after.sent_bytes_total() - before.sent_bytes_total(), load->bytes);
  EXPECT_EQ(after.rejected_total(), 0u);
  EXPECT_EQ(after.worker_crashes_total(), 0u);
  absl::StatusOr<Scrape> scrape_after = Scrape::Get(u.metrics_port);
  ASSERT_TRUE(scrape_after.ok()) << scrape_after.status();
  const double forks_after =
      scrape_after->Value("upper_fork_latency_seconds_count");
  EXPECT_EQ(forks_after - forks_before, static_cast<double>(load->connections));

  const std::map<double, double> buckets_before =
      ForkLatencyBuckets(*scrape_before);
  const std::map<double, double> buckets_after =
      ForkLatencyBuckets(*scrape_after);
  const double sum_seconds =
      scrape_after->Value("upper_fork_latency_seconds_sum") -
      scrape_before->Value("upper_fork_latency_seconds_sum");
  std::printf(
      "fork load: %llu fork-mode connections (%llu bytes verified) in %s "
      "beside %d GetStatus (slowest %s), %d ListConnections (slowest %s, up "
      "to %llu listed), %d scrapes (slowest %s); fork latency p50 %.0f us, "
      "p99 %.0f us, mean %.0f us\n",
      static_cast<unsigned long long>(load->connections),
      static_cast<unsigned long long>(load->bytes),
      absl::FormatDuration(kLoad).c_str(), status.calls,
      absl::FormatDuration(status.slowest).c_str(), listing.calls,
      absl::FormatDuration(listing.slowest).c_str(),
      static_cast<unsigned long long>(most_listed), scrapes.calls,
      absl::FormatDuration(scrapes.slowest).c_str(),
      Quantile(buckets_before, buckets_after, 0.5) * 1e6,
      Quantile(buckets_before, buckets_after, 0.99) * 1e6,
      load->connections == 0 ? 0.0 : sum_seconds / load->connections * 1e6);

  StopCleanly(*u.process);
}

// One scrape during shutdown, classified. Stopping the metrics server
// closes its port at once (server/metrics/http_server.h): there is no
// in-between state with an answer of its own.
enum class ScrapeOutcome { kWellFormed, kConnectionError, kBad };

ScrapeOutcome ScrapeOnce(uint16_t port, std::string& detail,
                         bool& saw_draining) {
  absl::StatusOr<UniqueFd> fd = Connect(port);
  if (!fd.ok()) return ScrapeOutcome::kConnectionError;  // refused
  // Once upperd is gone nothing listens on its (ephemeral-range) port, and
  // Linux may then connect a socket to itself (TCP simultaneous open) when
  // it picks that same port as the source: no server either.
  if (LocalPort(fd->get()) == port) return ScrapeOutcome::kConnectionError;
  const std::string request =
      "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (send(fd->get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return ScrapeOutcome::kConnectionError;  // reset or closed under us
  }
  // The metrics thread wakes on its eventfd the moment it is stopped, so a
  // scrape accepted just then is closed within the call bound.
  absl::StatusOr<std::string> response =
      ReadUntilEof(fd->get(), absl::Now() + kCallBound);
  if (!response.ok()) {
    if (absl::IsDeadlineExceeded(response.status())) {
      detail = "scrape hung";
      return ScrapeOutcome::kBad;
    }
    return ScrapeOutcome::kConnectionError;  // reset
  }
  // Closed before answering: a connection error too. An answer, though,
  // must be whole.
  if (response->empty()) return ScrapeOutcome::kConnectionError;
  const size_t header_end = response->find("\r\n\r\n");
  if (header_end == std::string::npos ||
      !absl::StartsWith(*response, "HTTP/1.1 200 ")) {
    detail = absl::StrCat("not a 200 response: ", response->substr(0, 200));
    return ScrapeOutcome::kBad;
  }
  const std::string headers = response->substr(0, header_end);
  const std::string body = response->substr(header_end + 4);
  for (absl::string_view line : absl::StrSplit(headers, "\r\n")) {
    size_t length = 0;
    if (absl::StartsWithIgnoreCase(line, "Content-Length: ") &&
        (!absl::SimpleAtoi(line.substr(16), &length) ||
         length != body.size())) {
      detail = absl::StrCat("truncated: ", line, " but ", body.size(),
                            " bytes of body");
      return ScrapeOutcome::kBad;
    }
  }
  absl::StatusOr<std::map<std::string, double>> samples = ParseExposition(body);
  if (!samples.ok() || body.empty() || body.back() != '\n' ||
      !samples->contains("upper_draining") ||
      !samples->contains("upper_connections_accepted_total{mode=\"thread\"}")) {
    detail = absl::StrCat(
        "malformed body: ",
        samples.ok() ? "missing series" : samples.status().ToString());
    return ScrapeOutcome::kBad;
  }
  if (samples->at("upper_draining") == 1) saw_draining = true;
  return ScrapeOutcome::kWellFormed;
}

class ScrapeDuringShutdownTest : public ::testing::TestWithParam<std::string> {
};

TEST_P(ScrapeDuringShutdownTest, EveryScrapeIsWholeOrAConnectionError) {
  Upperd u =
      StartUpperd({absl::StrCat("--mode=", GetParam()), "--drain_timeout=2s"});
  ASSERT_NE(u.stub, nullptr);
  // Connections that keep the drain going until its timeout closes them.
  std::vector<UniqueFd> held;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(u.process->data_port());
    ASSERT_TRUE(fd.ok());
    held.push_back(*std::move(fd));
  }
  ASSERT_EQ(StatusWhen(*u.stub,
                       [](const ServerStatus& s) {
                         return s.active_connections() == 4;
                       })
                .active_connections(),
            4u);

  std::atomic<bool> exited{false};
  int well_formed = 0, connection_errors = 0, after_exit = 0;
  bool saw_draining = false;
  std::vector<std::string> bad;
  std::thread scraper([&] {
    // Scrape back to back until a few scrapes after upperd has exited.
    for (int i = 0; i < 200000 && after_exit < 20; ++i) {
      const bool gone = exited.load();
      std::string detail;
      switch (ScrapeOnce(u.metrics_port, detail, saw_draining)) {
        case ScrapeOutcome::kWellFormed:
          ++well_formed;
          break;
        case ScrapeOutcome::kConnectionError:
          ++connection_errors;
          break;
        case ScrapeOutcome::kBad:
          if (bad.size() < 5) {
            bad.push_back(absl::StrCat(detail, " (scrape ", i, ", ",
                                       absl::FormatTime(absl::Now()), ")"));
          }
          break;
      }
      if (gone) ++after_exit;
    }
  });
  absl::SleepFor(absl::Milliseconds(200));  // scrapes before the signal
  u.process->Signal(SIGTERM);
  absl::StatusOr<int> code = u.process->WaitExit(absl::Seconds(30));
  const absl::Time exit_seen = absl::Now();
  exited = true;
  scraper.join();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << u.process->Log();
  EXPECT_TRUE(bad.empty()) << bad.size() << " bad scrapes, first: "
                           << (bad.empty() ? "" : bad.front())
                           << "; upperd exit seen at "
                           << absl::FormatTime(exit_seen) << "\n"
                           << u.process->Log();
  EXPECT_TRUE(saw_draining) << "no scrape during the drain";
  EXPECT_GT(well_formed, 0);
  EXPECT_GE(connection_errors, after_exit);  // every one after exit failed
  for (UniqueFd& fd : held) {
    EXPECT_TRUE(ReadUntilEof(fd.get(), absl::Now() + absl::Seconds(5)).ok());
  }
  std::printf(
      "scrapes during shutdown (%s): %d well-formed, %d connection errors, "
      "%zu bad\n",
      GetParam().c_str(), well_formed, connection_errors, bad.size());
}

INSTANTIATE_TEST_SUITE_P(BothModes, ScrapeDuringShutdownTest,
                         ::testing::Values("thread", "fork"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace upper::testing
