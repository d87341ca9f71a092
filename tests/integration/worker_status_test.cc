// Workers in GetStatus against a real upperd (issue 16): after a few
// thread-mode connections have ended, GetStatus over a real gRPC channel
// shows idle spares and spawns, every figure equal to what /metrics
// reports, and `upperctl status` prints the same numbers (text and JSON).
#include <sys/socket.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/stop_cleanly.h"
#include "tests/support/subprocess.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

#ifndef UPPERCTL_PATH
#error "UPPERCTL_PATH must be the path of the upperctl binary"
#endif

namespace upper::testing {
namespace {

namespace admin = ::upper::admin::v1;

// `n` thread-mode connections, each served one byte, then all closed.
void ServeAndClose(uint16_t port, int n) {
  std::vector<UniqueFd> fds;
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(port);
    ASSERT_TRUE(fd.ok()) << fd.status();
    ASSERT_EQ(send(fd->get(), "q", 1, MSG_NOSIGNAL), 1);
    ASSERT_EQ(
        ReadExactly(fd->get(), 1, absl::Now() + absl::Seconds(10)).value_or(""),
        "Q");
    fds.push_back(*std::move(fd));
  }
}

std::string ModeLabel(admin::Mode mode) {
  return mode == admin::MODE_FORK ? "fork" : "thread";
}

// Every figure of `pool` equals its /metrics series in `scrape`.
void ExpectEqualsMetrics(const admin::WorkerPool& pool, const Scrape& scrape) {
  const std::string mode = ModeLabel(pool.mode());
  const auto series = [&](const std::string& name, const std::string& labels) {
    return absl::StrCat(name, "{mode=\"", mode, "\"", labels, "}");
  };
  EXPECT_EQ(scrape.Value(series("upper_workers", ",state=\"busy\"")),
            pool.busy())
      << mode;
  EXPECT_EQ(scrape.Value(series("upper_workers", ",state=\"idle\"")),
            pool.idle())
      << mode;
  EXPECT_EQ(scrape.Value(series("upper_worker_spawns_total", "")),
            pool.spawns_total())
      << mode;
  EXPECT_FALSE(pool.exits_by_reason().empty()) << mode;
  for (const auto& [reason, n] : pool.exits_by_reason()) {
    EXPECT_EQ(scrape.Value(series("upper_worker_exits_total",
                                  absl::StrCat(",reason=\"", reason, "\""))),
              n)
        << mode << " " << reason;
  }
}

// "key  value" lines of `upperctl status` as a map.
std::map<std::string, std::string> StatusValues(const std::string& text) {
  std::map<std::string, std::string> values;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const size_t gap = line.find("  ");
    if (gap == absl::string_view::npos) continue;
    const size_t value = line.find_first_not_of(' ', gap);
    values[std::string(line.substr(0, gap))] = std::string(line.substr(value));
  }
  return values;
}

ProcessResult Upperctl(std::vector<std::string> args) {
  args.insert(args.begin(), UPPERCTL_PATH);
  absl::StatusOr<ProcessResult> result =
      RunProcess(args, {}, absl::Seconds(30));
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : ProcessResult{};
}

TEST(WorkerStatus, GetStatusShowsIdleSparesAndSpawnsAsMetricsDo) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start({.args = {"--mode=thread", "--thread_spare_max=4",
                                     "--thread_spare_timeout=10s"}});
  ASSERT_TRUE(upperd.ok()) << upperd.status();
  UpperdProcess& u = **upperd;
  absl::StatusOr<uint16_t> admin_port = u.Port("admin");
  absl::StatusOr<uint16_t> metrics_port = u.Port("metrics");
  ASSERT_TRUE(admin_port.ok() && metrics_port.ok()) << u.Log();
  auto stub = admin::AdminService::NewStub(AdminChannel(*admin_port));
  ServeAndClose(u.data_port(), 3);

  admin::ServerStatus status;
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<admin::ServerStatus> s = GetStatus(*stub);
        if (!s.ok() || s->workers_size() != 2) return false;
        status = *s;
        return s->workers(1).busy() == 0 && s->workers(1).idle() > 0;
      },
      absl::Seconds(10)))
      << status.DebugString();
  ASSERT_EQ(status.workers(0).mode(), admin::MODE_FORK);
  const admin::WorkerPool& thread = status.workers(1);
  ASSERT_EQ(thread.mode(), admin::MODE_THREAD);
  EXPECT_GT(thread.idle(), 0u);
  EXPECT_LE(thread.idle(), 4u);
  EXPECT_GE(thread.spawns_total(), 1u);

  // Nothing moves now (no connection, spares kept for 10 s): /metrics and
  // upperctl see the same figures.
  absl::StatusOr<Scrape> scrape = Scrape::Get(*metrics_port);
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  for (const admin::WorkerPool& pool : status.workers()) {
    ExpectEqualsMetrics(pool, *scrape);
  }
  const std::string addr = absl::StrCat("--addr=127.0.0.1:", *admin_port);
  ProcessResult run = Upperctl({"status", addr});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::map<std::string, std::string> values = StatusValues(run.out);
  const std::string row = values["thread workers"];
  EXPECT_EQ(row.substr(0, row.find(", hand-offs")),
            absl::StrCat("busy 0, idle ", thread.idle(), ", spawns ",
                         thread.spawns_total()))
      << run.out;
  EXPECT_EQ(values.count("fork workers"), 1u) << run.out;
  run = Upperctl({"status", "-o", "json", addr});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  admin::ServerStatus from_json;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(run.out, &from_json).ok())
      << run.out;
  ASSERT_EQ(from_json.workers_size(), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
        from_json.workers(i), status.workers(i)))
        << from_json.workers(i).DebugString();
  }
  StopCleanly(u);
}

}  // namespace
}  // namespace upper::testing
