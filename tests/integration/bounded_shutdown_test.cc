// Bounded shutdown against a real upperd (issue 14): the drain escalates to
// SIGKILL for a fork child that does not act on SIGTERM, a connection whose
// client holds it open with data in flight does not hold upperd up, and
// upperd as PID 1 of a pid namespace reaps the orphans re-parented to it.
// Each exits 0 within --drain_timeout + 5 s, the bound the README states.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/final_totals.h"
#include "tests/support/mode_test_base.h"
#include "tests/support/proc.h"
#include "tests/support/subprocess.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

constexpr absl::Duration kDrainTimeout = absl::Milliseconds(500);
const std::string kDrainFlag = "--drain_timeout=500ms";
// README, "Drain": upperd exits within --drain_timeout + 5 s.
constexpr absl::Duration kExitBound = absl::Seconds(5);
// upperd's close grace: the SIGKILL comes this long after the SIGTERM.
constexpr absl::Duration kCloseGrace = absl::Seconds(2);

constexpr char kNsenter[] = "/usr/bin/nsenter";

// The pid of the fork child serving upperd's only connection, from
// ListConnections (0 until the child has registered).
pid_t OnlyForkChild(UpperdProcess& upperd) {
  absl::StatusOr<uint16_t> port = upperd.Port("admin");
  if (!port.ok()) return 0;
  auto stub = admin::v1::AdminService::NewStub(AdminChannel(*port));
  pid_t pid = 0;
  Eventually(
      [&] {
        absl::StatusOr<std::vector<admin::v1::Connection>> list =
            ListConnections(*stub);
        if (!list.ok() || list->size() != 1) return false;
        pid = (*list)[0].worker_pid();
        return pid > 0;
      },
      absl::Seconds(5));
  return pid;
}

// Sends one byte and expects its upper-case echo.
bool Echoes(int fd) {
  if (send(fd, "e", 1, MSG_NOSIGNAL) != 1) return false;
  return ReadExactly(fd, 1, absl::Now() + absl::Seconds(5)).value_or("") == "E";
}

// SIGTERM to `target` (upperd's own pid), then the exit code of `upperd`'s
// process and how long it took.
struct Exit {
  int code = -1;
  absl::Duration took;
};
std::optional<Exit> TerminateAndWait(UpperdProcess& upperd, pid_t target) {
  const absl::Time start = absl::Now();
  if (kill(target, SIGTERM) != 0) return std::nullopt;
  // Past the bound, so that a late exit is measured rather than cut off.
  absl::StatusOr<int> code = upperd.WaitExit(kDrainTimeout + 2 * kExitBound);
  if (!code.ok()) return std::nullopt;
  return Exit{*code, absl::Now() - start};
}

TEST(BoundedDrain, ForkChildThatIgnoresSigtermIsKilledAndUpperdExitsInBound) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
      UpperdProcess::Start({.args = {"--mode=fork", kDrainFlag}});
  ASSERT_TRUE(started.ok()) << started.status();
  UpperdProcess& upperd = **started;
  absl::StatusOr<UniqueFd> client = Connect(upperd.data_port());
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE(Echoes(client->get()));
  const pid_t child = OnlyForkChild(upperd);
  ASSERT_GT(child, 0) << upperd.Log();

  // A stopped process does not act on SIGTERM (it stays pending), but
  // SIGKILL ends it: a child that ignores SIGTERM, without changing upperd.
  ASSERT_EQ(kill(child, SIGSTOP), 0);
  ASSERT_TRUE(Eventually(
      [&] { return ReadProcStat(child).value_or(ProcStat{}).state == 'T'; },
      absl::Seconds(5)));

  const std::optional<Exit> exit = TerminateAndWait(upperd, upperd.pid());
  ASSERT_TRUE(exit.has_value()) << upperd.Log();
  EXPECT_EQ(exit->code, 0) << upperd.Log();
  EXPECT_LT(exit->took, kDrainTimeout + kExitBound) << upperd.Log();
  // SIGTERM first, SIGKILL only once the close grace is over.
  EXPECT_GE(exit->took, kDrainTimeout + kCloseGrace) << upperd.Log();
  std::printf("stopped fork child: upperd exited %s after SIGTERM\n",
              absl::FormatDuration(exit->took).c_str());
  EXPECT_EQ(upperd.Field("drain_killed", "children").value_or(""), "1")
      << upperd.Log();
  // Reaped by the fork server: not running, not a zombie.
  EXPECT_TRUE(Eventually([&] { return !ReadProcStat(child).has_value(); },
                         absl::Seconds(2)))
      << "child " << child << " still there";
  // Killed at upperd's request: a drain close, not a crash.
  EXPECT_EQ(FinalTotal(upperd, "worker_crashes"), 0u) << upperd.Log();
  EXPECT_EQ(FinalTotal(upperd, "active"), 0u);
  EXPECT_EQ(FinalTotal(upperd, "accepted"), FinalTotal(upperd, "closed"));
}

class HeldOpenTest : public ModeTest {};

TEST_P(HeldOpenTest, ConnectionHeldOpenWithDataInFlightDrainsInBound) {
  auto upperd = StartUpperd({kDrainFlag});
  ASSERT_NE(upperd, nullptr);
  absl::StatusOr<UniqueFd> client = Connect(upperd->data_port());
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE(Echoes(client->get()));
  // The client never reads: upperd's worker blocks in send() with the
  // client's receive buffer full and more of its bytes queued behind.
  const uint64_t sent =
      SendUntilStalled(client->get(), absl::Milliseconds(300), 64 << 20);
  ASSERT_GT(sent, 0u);

  const std::optional<Exit> exit = TerminateAndWait(*upperd, upperd->pid());
  ASSERT_TRUE(exit.has_value()) << upperd->Log();
  EXPECT_EQ(exit->code, 0) << upperd->Log();
  EXPECT_LT(exit->took, kDrainTimeout + kExitBound) << upperd->Log();
  std::printf(
      "%s connection with %llu bytes in flight: exited %s after "
      "SIGTERM\n",
      GetParam().c_str(), static_cast<unsigned long long>(sent),
      absl::FormatDuration(exit->took).c_str());
  EXPECT_EQ(FinalTotal(*upperd, "active"), 0u) << upperd->Log();
  EXPECT_EQ(FinalTotal(*upperd, "accepted"), FinalTotal(*upperd, "closed"));
}

INSTANTIATE_TEST_SUITE_P(BothModes, HeldOpenTest,
                         ::testing::Values("thread", "fork"),
                         [](const auto& info) { return info.param; });

// Children of `parent` named `comm`, zombies included.
int ChildrenNamed(pid_t parent, const std::string& comm) {
  int n = 0;
  for (pid_t pid : Descendants(parent)) {
    const std::optional<ProcStat> stat = ReadProcStat(pid);
    const std::optional<std::string> name =
        ReadProcFile(absl::StrCat("/proc/", pid, "/comm"));
    if (stat && stat->ppid == parent && name && *name == comm + "\n") ++n;
  }
  return n;
}

TEST(Pid1, OrphansReparentedToUpperdAsPid1AreReaped) {
  absl::StatusOr<std::vector<std::string>> launcher = PidNamespaceLauncher();
  if (!launcher.ok()) GTEST_SKIP() << launcher.status();
  absl::StatusOr<std::unique_ptr<UpperdProcess>> started = UpperdProcess::Start(
      {.args = {"--mode=fork", kDrainFlag}, .launcher = *launcher});
  ASSERT_TRUE(started.ok()) << started.status();
  UpperdProcess& upperd = **started;
  // upperd says it is PID 1 (its pid inside the namespace).
  EXPECT_TRUE(absl::StrContains(
      upperd.WaitForLog("listening service=data", absl::Seconds(5))
          .value_or(""),
      " pid=1 "))
      << upperd.Log();
  pid_t init = 0;
  ASSERT_TRUE(
      Eventually([&] { return (init = NamespaceInit(upperd.pid())) > 0; },
                 absl::Seconds(5)));
  ASSERT_EQ(Exchange(upperd.data_port(), "pid one", 3, 1, absl::Seconds(10))
                .value_or(""),
            "PID ONE");

  // A shell entered into the namespace leaves children behind: they are
  // re-parented to the namespace's init, upperd, which must reap them (one
  // still running, one most likely a zombie already).
  constexpr int kShells = 5;
  for (int i = 0; i < kShells; ++i) {
    absl::StatusOr<ProcessResult> run = RunProcess(
        {kNsenter, "-t", absl::StrCat(init), "-p", "--", "/bin/sh", "-c",
         // Away from the pipes RunProcess waits on to end.
         "exec >/dev/null 2>&1; sleep 2 & sleep 0 & exit 0"},
        {}, absl::Seconds(10));
    ASSERT_TRUE(run.ok()) << run.status();
    ASSERT_EQ(run->exit_code, 0) << run->err;
  }
  EXPECT_TRUE(Eventually([&] { return ChildrenNamed(init, "sleep") > 0; },
                         absl::Seconds(1)))
      << "the orphans were not re-parented to upperd";
  EXPECT_TRUE(Eventually(
      [&] {
        return ChildrenNamed(init, "sleep") == 0 &&
               ZombieDescendants(init).empty();
      },
      absl::Seconds(5)))
      << ChildrenNamed(init, "sleep") << " orphans left, "
      << ZombieDescendants(init).size() << " zombies";

  // upperd's reaper, not the kernel, took them.
  EXPECT_TRUE(absl::StrContains(upperd.Log(), "unknown_child_reaped"));

  const std::optional<Exit> exit = TerminateAndWait(upperd, init);
  ASSERT_TRUE(exit.has_value()) << upperd.Log();
  EXPECT_EQ(exit->code, 0) << upperd.Log();
  EXPECT_LT(exit->took, kDrainTimeout + kExitBound);
  for (absl::string_view line : absl::StrSplit(upperd.Log(), '\n')) {
    EXPECT_FALSE(absl::StrContains(line, " error ")) << line;
  }
}

}  // namespace
}  // namespace upper::testing
