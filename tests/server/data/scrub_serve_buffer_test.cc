// ScrubServeBuffer: what a cached thread or a pool child leaves of one
// connection's bytes for the next is nothing. The fork_pool and
// thread_cache integration tests cannot see this (Serve() never sends what
// recv() did not just write); here the buffer itself is read back.
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/data/serve.h"

namespace upper {
namespace {

// A page-aligned BSS buffer, as a fork child's is.
alignas(4096) char g_bss_buffer[kServeBufferSize];

bool AllZero(const char* p, size_t n) {
  return std::all_of(p, p + n, [](char c) { return c == 0; });
}

TEST(ScrubServeBuffer, ThePageAlignedBssBufferReadsAllZeroAndIsGivenBack) {
  std::memset(g_bss_buffer, 'A', sizeof(g_bss_buffer));
  ScrubServeBuffer(g_bss_buffer, sizeof(g_bss_buffer));
  // Resident no more: MADV_DONTNEED dropped the pages (the next touch maps
  // a zero page), checked before reading, which would fault them back in.
  std::vector<unsigned char> resident(sizeof(g_bss_buffer) / 4096);
  ASSERT_EQ(mincore(g_bss_buffer, sizeof(g_bss_buffer), resident.data()), 0);
  EXPECT_TRUE(std::all_of(resident.begin(), resident.end(),
                          [](unsigned char r) { return (r & 1) == 0; }));
  EXPECT_TRUE(AllZero(g_bss_buffer, sizeof(g_bss_buffer)));
}

TEST(ScrubServeBuffer, AnUnalignedStackBufferIsZeroedToItsLastByte) {
  // A thread's buffer is on its stack: whole pages inside, partial ends.
  alignas(64) char before[64];
  alignas(64) char buffer[kServeBufferSize + 64];
  char* start = buffer + 37;
  const size_t size = kServeBufferSize - 11;
  std::memset(before, 'B', sizeof(before));
  std::memset(buffer, 'A', sizeof(buffer));
  ScrubServeBuffer(start, size);
  EXPECT_TRUE(AllZero(start, size));
  // Nothing outside the buffer is touched.
  EXPECT_TRUE(std::all_of(buffer, start, [](char c) { return c == 'A'; }));
  EXPECT_TRUE(std::all_of(start + size, buffer + sizeof(buffer),
                          [](char c) { return c == 'A'; }));
  EXPECT_TRUE(
      std::all_of(before, before + 64, [](char c) { return c == 'B'; }));
}

TEST(ScrubServeBuffer, ABufferSmallerThanAPageIsZeroed) {
  char small[100];
  std::memset(small, 'C', sizeof(small));
  ScrubServeBuffer(small, sizeof(small));
  EXPECT_TRUE(AllZero(small, sizeof(small)));
}

TEST(ScrubServeBuffer, ASmallTouchedPrefixIsZeroedAndItsPageKept) {
  // A pool child after a small request: only what recv() wrote is memset;
  // its page stays resident for the next connection (no madvise, no fault).
  std::memset(g_bss_buffer, 0, sizeof(g_bss_buffer));
  std::memset(g_bss_buffer, 'A', 100);
  ScrubServeBuffer(g_bss_buffer, sizeof(g_bss_buffer), 100);
  unsigned char resident = 0;
  ASSERT_EQ(mincore(g_bss_buffer, 4096, &resident), 0);
  EXPECT_EQ(resident & 1, 1);
  EXPECT_TRUE(AllZero(g_bss_buffer, sizeof(g_bss_buffer)));
}

TEST(ScrubServeBuffer, ALargeTouchedPrefixIsGivenBackWhole) {
  std::memset(g_bss_buffer, 'A', kScrubByMemset + 1);
  ScrubServeBuffer(g_bss_buffer, sizeof(g_bss_buffer), kScrubByMemset + 1);
  unsigned char resident = 1;
  ASSERT_EQ(mincore(g_bss_buffer, 4096, &resident), 0);
  EXPECT_EQ(resident & 1, 0);
  EXPECT_TRUE(AllZero(g_bss_buffer, sizeof(g_bss_buffer)));
}

TEST(ScrubServeBuffer, ATouchedCountBeyondTheBufferIsBoundedByItsSize) {
  char small[100];
  std::memset(small, 'C', sizeof(small));
  ScrubServeBuffer(small, sizeof(small), 4000);
  EXPECT_TRUE(AllZero(small, sizeof(small)));
}

// Reads exactly n bytes from fd (the upper-cased reply).
std::string ReadExactly(int fd, size_t n) {
  std::string got(n, '\0');
  size_t have = 0;
  while (have < n) {
    const ssize_t r = recv(fd, got.data() + have, n - have, 0);
    if (r <= 0) break;
    have += static_cast<size_t>(r);
  }
  got.resize(have);
  return got;
}

TEST(ScrubServeBuffer, ServeReportsTheLargestRecvAndThatScrubLeavesAllZero) {
  // What a pool child does: Serve() into a zero buffer, then scrub only
  // `touched`; the whole buffer must read zero again.
  auto table = ConnectionTable::Create(4);
  ASSERT_TRUE(table.ok());
  const std::optional<uint32_t> slot =
      (*table)->Allocate(Mode::kFork, nullptr, 0);
  ASSERT_TRUE(slot.has_value());
  ASSERT_EQ((*table)->Writer(*slot).Claim(getpid(), 0),
            SlotWriter::ClaimResult::kClaimed);
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  std::memset(g_bss_buffer, 0, sizeof(g_bss_buffer));
  size_t touched = 0;
  std::thread server([&] {
    Serve(pair[1], (*table)->Writer(*slot), g_bss_buffer, sizeof(g_bss_buffer),
          &touched);
  });
  const std::string small(100, 'a'), larger(3000, 'b');
  ASSERT_EQ(send(pair[0], small.data(), small.size(), 0), 100);
  EXPECT_EQ(ReadExactly(pair[0], 100), std::string(100, 'A'));
  ASSERT_EQ(send(pair[0], larger.data(), larger.size(), 0), 3000);
  EXPECT_EQ(ReadExactly(pair[0], 3000), std::string(3000, 'B'));
  shutdown(pair[0], SHUT_WR);
  EXPECT_EQ(ReadExactly(pair[0], 1), "");  // EOF after the reply
  server.join();
  close(pair[0]);
  close(pair[1]);
  EXPECT_EQ(touched, 3000u);
  EXPECT_FALSE(AllZero(g_bss_buffer, sizeof(g_bss_buffer)));
  ScrubServeBuffer(g_bss_buffer, sizeof(g_bss_buffer), touched);
  EXPECT_TRUE(AllZero(g_bss_buffer, sizeof(g_bss_buffer)));
}

}  // namespace
}  // namespace upper
