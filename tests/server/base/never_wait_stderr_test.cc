// NeverWaitStderr against real pipes and sockets put on fd 2: a full pipe
// drops the line at once (no wait, nothing half written), the reopened pipe
// is non-blocking for this process only, and lines get through again once
// the reader drains.
#include "server/base/never_wait_stderr.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace upper {
namespace {

// Puts `fd` on fd 2 for the test's length, then restores stderr.
class StderrSwap {
 public:
  explicit StderrSwap(int fd) : saved_(dup(STDERR_FILENO)) {
    EXPECT_GE(saved_, 0);
    EXPECT_EQ(dup2(fd, STDERR_FILENO), STDERR_FILENO);
  }
  ~StderrSwap() {
    dup2(saved_, STDERR_FILENO);
    close(saved_);
  }

 private:
  int saved_;
};

struct Pipe {
  Pipe() {
    EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
    EXPECT_GT(fcntl(fds[1], F_SETPIPE_SZ, 4096), 0);
  }
  ~Pipe() {
    close(fds[0]);
    close(fds[1]);
  }
  int fds[2];
};

// Writes lines until one is refused; each must be whole. Returns how many.
int FillUntilRefused(NeverWaitStderr& out, const std::string& line) {
  int written = 0;
  while (written < 10000 && out.Write(line)) ++written;
  return written;
}

void ExpectWholeLines(int read_fd, const std::string& line, int count) {
  std::string got(line.size() * count + 1, '\0');
  const ssize_t n = read(read_fd, got.data(), got.size());
  ASSERT_EQ(n, static_cast<ssize_t>(line.size() * count));
  got.resize(n);
  for (int i = 0; i < count; ++i) {
    EXPECT_EQ(got.substr(i * line.size(), line.size()), line);
  }
}

void ExpectFullPipeRefusesAtOnce(NeverWaitStderr out, const Pipe& p) {
  const std::string line(100, 'a');
  const std::string with_newline = line + "\n";
  const int written = FillUntilRefused(out, with_newline);
  EXPECT_GT(written, 0);
  const absl::Time start = absl::Now();
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(out.Write(with_newline));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));  // never waited
  // Nothing half written: the reader finds whole lines only.
  ExpectWholeLines(p.fds[0], with_newline, written);
  EXPECT_TRUE(out.Write(with_newline));
}

TEST(NeverWaitStderr, AFullPipeRefusesTheLineAtOnce) {
  Pipe p;
  StderrSwap swap(p.fds[1]);
  NeverWaitStderr out = NeverWaitStderr::Prepare();
  ExpectFullPipeRefusesAtOnce(out, p);
  // The non-blocking flag is on a description of this process's own: the
  // pipe's original write end (shared with whoever made it) is unchanged.
  EXPECT_EQ(fcntl(p.fds[1], F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK, 0);
}

TEST(NeverWaitStderr, PollingFirstAlsoRefusesAFullPipeAtOnce) {
  Pipe p;
  StderrSwap swap(p.fds[1]);
  ExpectFullPipeRefusesAtOnce(NeverWaitStderr::PollFirstForTest(), p);
  EXPECT_EQ(fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK, 0);
}

TEST(NeverWaitStderr, AFullSocketRefusesTheLineAtOnce) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
  StderrSwap swap(sv[0]);
  NeverWaitStderr out = NeverWaitStderr::Prepare();
  const std::string line(200, 'b');
  EXPECT_GT(FillUntilRefused(out, line), 0);
  const absl::Time start = absl::Now();
  EXPECT_FALSE(out.Write(line));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  char buf[256];
  EXPECT_EQ(read(sv[1], buf, sizeof(buf)), 200);
  EXPECT_TRUE(out.Write(line));
  close(sv[0]);
  close(sv[1]);
}

// A stream socket (journald's) may take part of a line: the rest is
// dropped, and the next line still starts on a line of its own.
TEST(NeverWaitStderr, AStreamSocketsPartLineIsEndedBeforeTheNextLine) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  const int small = 4096;
  ASSERT_EQ(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  StderrSwap swap(sv[0]);
  NeverWaitStderr out = NeverWaitStderr::Prepare();
  const std::string line = std::string(999, 'b') + "\n";
  EXPECT_GT(FillUntilRefused(out, line), 0);
  std::string got;
  char buf[65536];
  auto drain = [&] {
    for (;;) {
      const ssize_t n = recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
  };
  drain();
  EXPECT_TRUE(out.Write(line));
  drain();
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back(), '\n');
  got.pop_back();
  const std::vector<std::string> lines = absl::StrSplit(got, '\n');
  for (const std::string& l : lines) {
    EXPECT_LE(l.size(), 999u);  // never a fragment run on into a line
    EXPECT_EQ(l.find_first_not_of('b'), std::string::npos);
  }
  EXPECT_EQ(lines.back().size(), 999u);  // the last line whole
  close(sv[0]);
  close(sv[1]);
}

TEST(NeverWaitStderr, ALineLongerThanPipeBufIsCutNotHalfWritten) {
  Pipe p;
  StderrSwap swap(p.fds[1]);
  NeverWaitStderr out = NeverWaitStderr::Prepare();
  const std::string huge(3 * PIPE_BUF, 'c');
  EXPECT_TRUE(out.Write(huge));
  std::string got(4 * PIPE_BUF, '\0');
  EXPECT_EQ(read(p.fds[0], got.data(), got.size()), PIPE_BUF);
}

}  // namespace
}  // namespace upper
