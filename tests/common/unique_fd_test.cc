#include "common/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/status/status.h"
#include "common/errno_status.h"
#include "gtest/gtest.h"

namespace upper {
namespace {

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) != -1; }

TEST(UniqueFd, ClosesOnDestructionAndMoveLeavesMinusOne) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  UniqueFd reader(fds[0]);
  {
    UniqueFd writer(fds[1]);
    UniqueFd moved(std::move(writer));
    EXPECT_EQ(writer.get(), -1);
    EXPECT_FALSE(writer.valid());
    EXPECT_EQ(moved.get(), fds[1]);
  }
  EXPECT_FALSE(IsOpen(fds[1]));
  EXPECT_TRUE(IsOpen(fds[0]));
  const int raw = reader.Release();
  EXPECT_FALSE(reader.valid());
  EXPECT_TRUE(IsOpen(raw));
  reader.Reset(raw);
  reader.Reset();
  EXPECT_FALSE(IsOpen(raw));
}

TEST(ErrnoStatus, NamesTheCallAndMapsTheCode) {
  const absl::Status status = ErrnoStatus("accept4", EMFILE);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("accept4"), absl::string_view::npos);
  EXPECT_EQ(ErrnoStatus("ftruncate", EINVAL).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RetryOnEintr, RetriesOnlyEintr) {
  int calls = 0;
  const int r = RetryOnEintr([&] {
    if (++calls < 3) {
      errno = EINTR;
      return -1;
    }
    return 7;
  });
  EXPECT_EQ(r, 7);
  EXPECT_EQ(calls, 3);
  calls = 0;
  EXPECT_EQ(RetryOnEintr([&] {
              ++calls;
              errno = EAGAIN;
              return -1;
            }),
            -1);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace upper
