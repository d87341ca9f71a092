// A log collector that stops reading (issue 15): upperd's stderr is a pipe
// of one page that nobody reads while admin calls make upperd log a line
// each (mode_set_by_admin). The data plane keeps serving, every byte exact,
// in both modes; the lines that do not fit upperd's log buffer are counted
// in upper_log_lines_dropped_total; once the pipe is read again, the next
// line is preceded by `log_lines_dropped dropped=N`, and the N reported add
// up to the metric. SIGTERM still ends upperd at once, its `stopped` line
// flushed at exit.
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/unique_fd.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/proc.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

constexpr char kDropped[] = "upper_log_lines_dropped_total";
// Enough admin calls to fill the 1 MiB buffer with ~110-byte lines several
// times over; the loop ends as soon as drops are seen.
constexpr int kMaxCalls = 60000;
constexpr absl::Duration kMaxFill = absl::Seconds(90);

class StuckLogTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
        UpperdProcess::Start({.args = {absl::StrCat("--mode=", GetParam())},
                              .stderr_pipe_bytes = 4096});
    ASSERT_TRUE(started.ok()) << started.status();
    upperd_ = *std::move(started);
    absl::StatusOr<uint16_t> admin = upperd_->Port("admin");
    absl::StatusOr<uint16_t> metrics = upperd_->Port("metrics");
    ASSERT_TRUE(admin.ok() && metrics.ok());
    metrics_port_ = *metrics;
    stub_ = admin::v1::AdminService::NewStub(AdminChannel(*admin));
  }

  // One SetMode to the mode upperd is in: one log line, nothing changes.
  void LogOneLine() {
    admin::v1::SetModeRequest request;
    request.set_mode(GetParam() == "fork" ? admin::v1::MODE_FORK
                                          : admin::v1::MODE_THREAD);
    admin::v1::SetModeResponse response;
    ASSERT_TRUE(stub_->SetMode(Context().get(), request, &response).ok());
  }

  double Dropped() {
    absl::StatusOr<Scrape> scrape = Scrape::Get(metrics_port_);
    EXPECT_TRUE(scrape.ok()) << scrape.status();
    return scrape.ok() ? scrape->Value(kDropped) : -1;
  }

  void ExpectServes(uint64_t seed) {
    const std::string payload = RandomPayload(256 * 1024, seed);
    absl::StatusOr<std::string> reply = Exchange(
        upperd_->data_port(), payload, 16 * 1024, seed, absl::Seconds(20));
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(*reply, ExpectedUpper(payload));
  }

  // The N of every `log_lines_dropped dropped=N` line of upperd's so far
  // (not the fork server's: process=fork_server), summed.
  uint64_t ReportedDrops() {
    uint64_t sum = 0;
    for (absl::string_view line : absl::StrSplit(upperd_->Log(), '\n')) {
      if (!absl::StrContains(line, " log_lines_dropped ") ||
          absl::StrContains(line, "process=fork_server")) {
        continue;
      }
      const size_t at = line.find("dropped=");
      uint64_t n = 0;
      if (at != absl::string_view::npos &&
          absl::SimpleAtoi(line.substr(at + 8), &n)) {
        sum += n;
      }
    }
    return sum;
  }

  std::unique_ptr<UpperdProcess> upperd_;
  uint16_t metrics_port_ = 0;
  std::unique_ptr<admin::v1::AdminService::Stub> stub_;
};

TEST_P(StuckLogTest, DataPlaneServesAndDropsAreCountedThenReported) {
  ASSERT_EQ(Dropped(), 0);
  upperd_->PauseStderr(true);
  const absl::Time deadline = absl::Now() + kMaxFill;
  int calls = 0;
  double dropped = 0;
  for (; calls < kMaxCalls && absl::Now() < deadline && dropped == 0; ++calls) {
    ASSERT_NO_FATAL_FAILURE(LogOneLine());
    if (calls % 500 == 499) dropped = Dropped();
    if (calls % 4000 == 3999) {
      ASSERT_NO_FATAL_FAILURE(ExpectServes(calls));
    }
  }
  ASSERT_GT(dropped, 0) << calls << " calls logged without a drop";
  std::printf("first drop seen after %d admin calls\n", calls);
  // Stuck stderr: the data plane serves, every byte exact, and every line
  // logged meanwhile is dropped and counted.
  for (int i = 0; i < 4; ++i) ASSERT_NO_FATAL_FAILURE(ExpectServes(100 + i));
  for (int i = 0; i < 200; ++i) ASSERT_NO_FATAL_FAILURE(LogOneLine());
  const double later = Dropped();
  EXPECT_GE(later, dropped + 200);

  // The collector reads again: the next line that gets through says how
  // many went before it; all reports together are the metric's count.
  upperd_->PauseStderr(false);
  ASSERT_TRUE(Eventually(
      [&] {
        LogOneLine();
        return upperd_->WaitForLog(" log_lines_dropped ", absl::Seconds(1))
            .ok();
      },
      absl::Seconds(20)))
      << "no log_lines_dropped line";
  const double total = Dropped();
  EXPECT_TRUE(
      Eventually([&] { return ReportedDrops() == total; }, absl::Seconds(10)))
      << ReportedDrops() << " reported, " << total << " counted";

  upperd_->Signal(SIGTERM);
  absl::StatusOr<int> code = upperd_->WaitExit(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_TRUE(upperd_->Field("stopped", "accepted").has_value())
      << "the stopped line was not flushed at exit";
}

// upperd's live fork server (its child named upperd-fork), or -1.
pid_t ForkServerOf(pid_t upperd) {
  for (pid_t pid : Descendants(upperd)) {
    const std::optional<ProcStat> stat = ReadProcStat(pid);
    if (stat && stat->ppid == upperd && stat->state != 'Z' &&
        ReadProcFile(absl::StrCat("/proc/", pid, "/comm")).value_or("") ==
            "upperd-fork\n") {
      return pid;
    }
  }
  return -1;
}

// Kills upperd's fork server through a pidfd (never a bare pid that may
// have been reaped and reused) and waits for its replacement.
void ReplaceForkServer(pid_t upperd) {
  const pid_t old = ForkServerOf(upperd);
  ASSERT_GT(old, 0);
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, old, 0)));
  ASSERT_TRUE(pidfd.valid());
  ASSERT_EQ(syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0),
            0);
  ASSERT_TRUE(Eventually(
      [&] {
        const pid_t now = ForkServerOf(upperd);
        return now > 0 && now != old;
      },
      absl::Seconds(5)));
}

// A fork server started while stderr is stuck (its predecessor killed)
// must not wait on its first line: were it to, it would never take a
// hand-off, the watchdog would kill it and each replacement in turn, and
// fork mode would refuse for as long as the collector is stuck. Instead it
// drops the line, counts it, and serves at once. Replaced three times, so
// that the slack a one-page pipe may still have holds no line.
TEST(StuckLogForkServer, ReplacementsStartedUnderAStuckStderrServeAtOnce) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
      UpperdProcess::Start({.args = {"--mode=fork", "--fork_server_timeout=2s"},
                            .stderr_pipe_bytes = 4096});
  ASSERT_TRUE(started.ok()) << started.status();
  UpperdProcess& upperd = **started;
  absl::StatusOr<uint16_t> admin = upperd.Port("admin");
  absl::StatusOr<uint16_t> metrics = upperd.Port("metrics");
  ASSERT_TRUE(admin.ok() && metrics.ok());
  auto stub = admin::v1::AdminService::NewStub(AdminChannel(*admin));
  ASSERT_TRUE(upperd.WaitForLog("fork_server_started", absl::Seconds(5)).ok());

  // Stuck: the one-page pipe fills with upperd's lines (the rest wait in
  // upperd's buffer, its writer blocked), then with newlines written one
  // byte at a time, so that not even the page's slack holds a line.
  upperd.PauseStderr(true);
  for (int i = 0; i < 300; ++i) {
    admin::v1::SetModeRequest request;
    request.set_mode(admin::v1::MODE_FORK);
    admin::v1::SetModeResponse response;
    ASSERT_TRUE(stub->SetMode(Context().get(), request, &response).ok());
  }
  UniqueFd filler(open(absl::StrCat("/proc/", upperd.pid(), "/fd/2").c_str(),
                       O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(filler.valid()) << std::strerror(errno);
  int filled = 0;
  while (filled < 65536 && write(filler.get(), "\n", 1) == 1) ++filled;
  ASSERT_EQ(errno, EAGAIN);
  for (int round = 0; round < 3; ++round) {
    // Past the 1 s respawn interval since the last start.
    absl::SleepFor(absl::Milliseconds(1100));
    ASSERT_NO_FATAL_FAILURE(ReplaceForkServer(upperd.pid()));
    // A replacement blocked on its first line would take none of these,
    // and be killed by the watchdog 2 s after the first.
    for (int i = 0; i < 10; ++i) {
      const std::string payload = RandomPayload(4096, round * 10 + i);
      absl::StatusOr<std::string> reply = Exchange(
          upperd.data_port(), payload, 1024, round * 10 + i, absl::Seconds(10));
      ASSERT_TRUE(reply.ok()) << round << "/" << i << ": " << reply.status();
      EXPECT_EQ(*reply, ExpectedUpper(payload));
    }
  }
  absl::SleepFor(absl::Milliseconds(2500));  // one more watchdog timeout
  absl::StatusOr<Scrape> scrape = Scrape::Get(*metrics);
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  EXPECT_EQ(scrape->Value("upper_fork_server_hangs_total"), 0);
  EXPECT_EQ(scrape->Value("upper_fork_server_restarts_total"), 3);
  EXPECT_GE(scrape->Value("upper_fork_server_log_lines_dropped_total"), 1);

  upperd.PauseStderr(false);
  upperd.Signal(SIGTERM);
  absl::StatusOr<int> code = upperd.WaitExit(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(upperd.Field("stopped", "active").value_or(""), "0");
}

INSTANTIATE_TEST_SUITE_P(Modes, StuckLogTest,
                         ::testing::Values("thread", "fork"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace upper::testing
