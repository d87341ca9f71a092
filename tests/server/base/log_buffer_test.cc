#include "server/base/log_buffer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/unique_fd.h"
#include "gtest/gtest.h"

namespace upper {
namespace {

std::string DropLine(uint64_t n) { return absl::StrCat("dropped=", n, "\n"); }

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// A pipe of one page, so that a few lines fill it.
Pipe SmallPipe() {
  int fds[2];
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
  EXPECT_GT(fcntl(fds[1], F_SETPIPE_SZ, 4096), 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Reads the pipe until `done(out)` holds or 10 s passed.
template <typename F>
std::string ReadUntil(int fd, F done) {
  std::string out;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  char buffer[4096];
  while (!done(out) && absl::Now() < deadline) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      out.append(buffer, static_cast<size_t>(n));
    } else {
      absl::SleepFor(absl::Milliseconds(1));
    }
  }
  return out;
}

std::string ReadAll(int fd, size_t expected) {
  return ReadUntil(
      fd, [&](const std::string& out) { return out.size() >= expected; });
}

std::string Line(int i) {
  return absl::StrCat("line ", i, " ", std::string(80, 'x'), "\n");
}

TEST(LogBuffer, WritesEveryLineInOrder) {
  Pipe p = SmallPipe();
  LogBuffer buffer(p.write.get(), 1 << 20, DropLine);
  std::string expected;
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(buffer.Append(Line(i)));
    expected += Line(i);
  }
  EXPECT_EQ(ReadAll(p.read.get(), expected.size()), expected);
  EXPECT_TRUE(buffer.Flush(absl::Seconds(5)));
  EXPECT_EQ(buffer.dropped_total(), 0u);
}

// A reader that is stuck costs the writer of lines nothing but the lines
// that do not fit; the next line that fits says how many were dropped.
TEST(LogBuffer, FullPipeNeverBlocksAppendAndReportsDropsInTheNextLine) {
  Pipe p = SmallPipe();
  constexpr size_t kCapacity = 16 * 1024;
  LogBuffer buffer(p.write.get(), kCapacity, DropLine);
  const absl::Time start = absl::Now();
  int admitted = 0;
  for (int i = 0; i < 5000; ++i) admitted += buffer.Append(Line(i)) ? 1 : 0;
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  const uint64_t dropped = buffer.dropped_total();
  EXPECT_EQ(dropped, 5000u - static_cast<uint64_t>(admitted));
  EXPECT_GT(dropped, 4000u);
  // Whatever was admitted fits the pipe plus the buffer.
  EXPECT_LE(static_cast<size_t>(admitted) * Line(0).size(),
            kCapacity + 4096 + Line(0).size());

  std::thread reader;
  std::string out;
  reader = std::thread([&] {
    out = ReadUntil(p.read.get(), [](const std::string& got) {
      return absl::EndsWith(got, Line(9999));
    });
  });
  ASSERT_TRUE(buffer.Flush(absl::Seconds(5)));
  ASSERT_TRUE(buffer.Append(Line(9999)));
  ASSERT_TRUE(buffer.Flush(absl::Seconds(5)));
  reader.join();
  const std::vector<std::string> lines =
      absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines.back() + "\n", Line(9999));
  // The writer may drain some of the pipe while the loop above still
  // appends, so a line admitted between drops carries an earlier report:
  // every report comes right before an admitted line, and the reports add
  // up to the drops.
  uint64_t reported = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view line = lines[i];
    uint64_t n = 0;
    if (!absl::ConsumePrefix(&line, "dropped=")) continue;
    ASSERT_TRUE(absl::SimpleAtoi(line, &n)) << lines[i];
    ASSERT_LT(i + 1, lines.size());
    EXPECT_FALSE(absl::StartsWith(lines[i + 1], "dropped=")) << lines[i + 1];
    reported += n;
  }
  EXPECT_EQ(reported, dropped);
  EXPECT_EQ(buffer.dropped_total(), dropped);
}

TEST(LogBuffer, StopIsBoundedWhileTheReaderIsStuck) {
  Pipe p = SmallPipe();
  LogBuffer buffer(p.write.get(), 1 << 20, DropLine);
  for (int i = 0; i < 1000; ++i) buffer.Append(Line(i));
  EXPECT_FALSE(buffer.Flush(absl::Milliseconds(100)));
  const absl::Time start = absl::Now();
  buffer.Stop(absl::Milliseconds(200));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_FALSE(buffer.Append(Line(0)));  // stopped: dropped, not queued
}

TEST(LogBuffer, ConcurrentAppendsKeepLinesWhole) {
  Pipe p = SmallPipe();
  LogBuffer buffer(p.write.get(), 1 << 20, DropLine);
  constexpr int kThreads = 4, kLines = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&buffer, t] {
      for (int i = 0; i < kLines; ++i) buffer.Append(Line(t * kLines + i));
    });
  }
  for (std::thread& t : threads) t.join();
  const std::string out = ReadUntil(p.read.get(), [](const std::string& out) {
    return std::count(out.begin(), out.end(), '\n') == kThreads * kLines;
  });
  std::vector<bool> seen(kThreads * kLines, false);
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    const std::vector<absl::string_view> words = absl::StrSplit(line, ' ');
    ASSERT_EQ(words.size(), 3u) << line;
    int i = -1;
    ASSERT_TRUE(absl::SimpleAtoi(words[1], &i)) << line;
    ASSERT_EQ(absl::StrCat(line, "\n"), Line(i));
    seen[static_cast<size_t>(i)] = true;
  }
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_TRUE(seen[i]) << i;
}

}  // namespace
}  // namespace upper
