// An in-place upgrade of the fork server's program (a new file renamed over
// its path, as a package manager does) while upperd runs: a restarted fork
// server is still the program upperd started with, the one built for its
// connection table, not whatever the path holds now.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

namespace fs = std::filesystem;

// The only descendant of upperd once its fork server runs and no fork
// child does; -1 if that does not happen within 5 s or it is `not_pid`.
pid_t ForkServerPid(UpperdProcess& upperd, pid_t not_pid = -1) {
  std::vector<pid_t> family;
  Eventually(
      [&] {
        family = Descendants(upperd.pid());
        return family.size() == 1 && family.front() != not_pid;
      },
      absl::Seconds(5));
  return family.size() == 1 && family.front() != not_pid ? family.front() : -1;
}

// The inode of the program `pid` runs (its /proc/pid/exe), 0 if unknown.
ino_t ExeInode(pid_t pid) {
  struct stat st;
  return stat(absl::StrCat("/proc/", pid, "/exe").c_str(), &st) == 0 ? st.st_ino
                                                                     : 0;
}

// upperd and its fork server copied into a fresh directory, so that the
// test may rename another program over the copy.
class Installed {
 public:
  Installed() {
    char pattern[] = "/tmp/upper-upgrade-XXXXXX";
    dir_ = mkdtemp(pattern);
    const fs::path built = fs::path(UpperdPath()).parent_path();
    for (const char* name : {"upperd", "upperd-fork-server"}) {
      if (fs::exists(built / name)) fs::copy_file(built / name, dir_ / name);
    }
  }
  ~Installed() { fs::remove_all(dir_); }
  fs::path upperd() const { return dir_ / "upperd"; }
  // The file upperd starts as its fork server: the static helper when it
  // was built (not in sanitizer builds), else upperd itself.
  fs::path fork_server() const {
    return fs::exists(dir_ / "upperd-fork-server") ? dir_ / "upperd-fork-server"
                                                   : upperd();
  }
  // Renames a copy of /bin/false over `target`: what an upgrade does, with a
  // program that would fail as a fork server.
  void ReplaceWithFalse(const fs::path& target) const {
    const fs::path staged = dir_ / "staged";
    fs::copy_file("/bin/false", staged);
    fs::rename(staged, target);
  }

 private:
  fs::path dir_;
};

TEST(ForkServerUpgrade, RestartRunsTheOriginalProgramNotTheFileNowAtItsPath) {
  Installed installed;
  UpperdOptions options;
  options.binary = installed.upperd().string();
  options.args = {"--mode=fork"};
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start(options);
  ASSERT_TRUE(upperd.ok()) << upperd.status();
  ASSERT_TRUE(
      (*upperd)->WaitForLog("fork_server_started", absl::Seconds(5)).ok());
  const pid_t first = ForkServerPid(**upperd);
  ASSERT_GT(first, 0);
  const ino_t original = ExeInode(first);
  ASSERT_NE(original, 0u);

  installed.ReplaceWithFalse(installed.fork_server());
  ASSERT_EQ(kill(first, SIGKILL), 0);
  ASSERT_TRUE(
      (*upperd)->WaitForLog("fork_server_restarted", absl::Seconds(5)).ok())
      << (*upperd)->Log();
  const pid_t second = ForkServerPid(**upperd, first);
  ASSERT_GT(second, 0) << (*upperd)->Log();
  EXPECT_EQ(ExeInode(second), original);

  // And it serves: fork mode still echoes, by the restarted fork server.
  EXPECT_EQ(
      Exchange((*upperd)->data_port(), "upgraded", 3, 1, absl::Seconds(10))
          .value_or(""),
      "UPGRADED")
      << (*upperd)->Log();
  EXPECT_EQ(ForkServerPid(**upperd), second);
  EXPECT_EQ((*upperd)->Log().find("fork_server_started_by_path"),
            std::string::npos)
      << (*upperd)->Log();
}

}  // namespace
}  // namespace upper::testing
