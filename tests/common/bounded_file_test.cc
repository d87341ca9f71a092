// Bounded reads of flag-named files: a FIFO, a device, a directory or a
// huge file is refused at once, never read without bound or waited on.
#include "common/bounded_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace upper {
namespace {

class BoundedFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "bounded_file_" + std::to_string(getpid());
    mkdir(dir_.c_str(), 0700);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  std::string Error(const std::string& path, size_t max = 64) {
    absl::StatusOr<std::string> read = ReadBoundedRegularFile(path, max);
    EXPECT_FALSE(read.ok()) << path;
    EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(read.status().message(), path + ": "))
        << read.status();
    return std::string(read.status().message());
  }
  std::string dir_;
};

TEST_F(BoundedFileTest, ARegularFileUpToTheBoundIsReadWhole) {
  EXPECT_EQ(ReadBoundedRegularFile(Write("a", "hello\n"), 64).value_or(""),
            "hello\n");
  const std::string exact(64, 'x');
  EXPECT_EQ(ReadBoundedRegularFile(Write("b", exact), 64).value_or(""), exact);
}

TEST_F(BoundedFileTest, TooBigEmptyMissingAndNonRegularFilesAreRefused) {
  EXPECT_TRUE(absl::StrContains(Error(Write("big", std::string(65, 'x'))),
                                "larger than 64 bytes"));
  EXPECT_TRUE(absl::StrContains(Error(Write("empty", "")), "empty"));
  EXPECT_TRUE(absl::StrContains(Error(dir_ + "/missing"), "No such file"));
  EXPECT_TRUE(absl::StrContains(Error(dir_), "a directory"));
  EXPECT_TRUE(absl::StrContains(Error("/dev/zero"), "a character device"));
  EXPECT_TRUE(absl::StrContains(Error("/dev/null"), "a character device"));
}

TEST_F(BoundedFileTest, AFifoWithNoWriterIsRefusedAtOnceNotWaitedOn) {
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_TRUE(absl::StrContains(Error(fifo), "a FIFO"));
}

}  // namespace
}  // namespace upper
