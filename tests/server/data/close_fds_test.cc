// CloseFdsFrom closes every fd from a number up and keeps those below, by
// close_range and by each of its fallbacks (forced through its seams, so
// each loop really runs). Descriptors are placed at 600 and up, far above
// any that gtest or the runtime hold.
#include "server/data/close_fds.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "gtest/gtest.h"

namespace upper {
namespace {

constexpr int kFirst = 600;
constexpr int kLimit = 700;

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

// Opens /dev/null at each of `numbers`.
void OpenAt(const std::vector<int>& numbers) {
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(null_fd, 0);
  for (int fd : numbers) ASSERT_EQ(dup2(null_fd, fd), fd);
  close(null_fd);
}

int RefuseCloseRange(unsigned, unsigned, int) {
  errno = ENOSYS;  // a kernel before 5.9, or seccomp returning ENOSYS
  return -1;
}

// Runs CloseFdsFrom(kFirst) with fds on both sides of kFirst and at the
// last number below kLimit; checks which survived and the path taken.
void ExpectClosesFromFirst(const CloseFdsSeams& seams, CloseFdsPath want) {
  const std::vector<int> below = {kFirst - 2, kFirst - 1};
  const std::vector<int> above = {kFirst, kFirst + 1, kFirst + 37, kLimit - 1};
  OpenAt(below);
  OpenAt(above);
  EXPECT_EQ(CloseFdsFrom(kFirst, kLimit, seams), want);
  for (int fd : below) EXPECT_TRUE(IsOpen(fd)) << fd << " was closed";
  for (int fd : above) EXPECT_FALSE(IsOpen(fd)) << fd << " stayed open";
  for (int fd : below) close(fd);
}

TEST(CloseFdsFrom, CloseRangeClosesEveryFdFromFirstAndKeepsThoseBelow) {
  ExpectClosesFromFirst(CloseFdsSeams{}, CloseFdsPath::kCloseRange);
}

TEST(CloseFdsFrom, WithoutCloseRangeReadsProcSelfFd) {
  if (access("/proc/self/fd", R_OK) != 0) GTEST_SKIP() << "no /proc";
  CloseFdsSeams seams;
  seams.close_range = &RefuseCloseRange;
  ExpectClosesFromFirst(seams, CloseFdsPath::kProcFdDir);
}

TEST(CloseFdsFrom, WithoutCloseRangeOrProcClosesEveryNumberBelowLimit) {
  CloseFdsSeams seams;
  seams.close_range = &RefuseCloseRange;
  seams.fd_dir = nullptr;
  ExpectClosesFromFirst(seams, CloseFdsPath::kEveryNumber);
}

TEST(CloseFdsFrom, AnUnreadableFdDirFallsBackToEveryNumber) {
  CloseFdsSeams seams;
  seams.close_range = &RefuseCloseRange;
  seams.fd_dir = "/nonexistent/fd";
  ExpectClosesFromFirst(seams, CloseFdsPath::kEveryNumber);
}

// The fork child's case: what it inherits above `first` is gone after the
// call, in a real child, by the fallback alone.
TEST(CloseFdsFrom, ForkedChildKeepsNothingAboveFirst) {
  OpenAt({kFirst, kFirst + 5});
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    CloseFdsSeams seams;
    seams.close_range = &RefuseCloseRange;
    CloseFdsFrom(kFirst, kLimit, seams);
    _exit(IsOpen(kFirst) || IsOpen(kFirst + 5) || !IsOpen(2) ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(IsOpen(kFirst));  // the parent's copies are untouched
  close(kFirst);
  close(kFirst + 5);
}

}  // namespace
}  // namespace upper
