// ScrubServeBuffer: what a cached thread or a pool child leaves of one
// connection's bytes for the next is nothing. The fork_pool and
// thread_cache integration tests cannot see this (Serve() never sends what
// recv() did not just write); here the buffer itself is read back.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
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

}  // namespace
}  // namespace upper
