#include "server/base/resource_limits.h"

#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace upper {
namespace {

// A scratch cgroup tree: files written for real, read by the code under test.
class CgroupTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/upper-cgroup-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    files_.mount = dir;
    files_.self = files_.mount + "/self";
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + files_.mount + "'";
    ASSERT_EQ(system(cmd.c_str()), 0);
  }
  // Writes `text` to mount/`path`, creating the directories on the way.
  void Write(const std::string& path, const std::string& text) {
    for (size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      mkdir((files_.mount + "/" + path.substr(0, slash)).c_str(), 0700);
    }
    std::ofstream(files_.mount + "/" + path) << text;
  }

  CgroupFiles files_;
};

TEST_F(CgroupTree, V2TakesTheTightestLimitOnTheWayToTheRoot) {
  Write("cgroup.controllers", "cpu memory pids\n");
  Write("self", "0::/kubepods/pod1/c1\n");
  Write("kubepods/pids.max", "max\n");
  Write("kubepods/pod1/pids.max", "300\n");
  Write("kubepods/pod1/c1/pids.max", "max\n");
  Write("kubepods/memory.max", "1073741824\n");
  Write("kubepods/pod1/c1/memory.max", "268435456\n");
  EXPECT_EQ(CgroupLimit(files_, "pids", "pids.max", "pids.max"), 300u);
  EXPECT_EQ(
      CgroupLimit(files_, "memory", "memory.limit_in_bytes", "memory.max"),
      268435456u);
}

TEST_F(CgroupTree, V2MaxEverywhereIsNoLimit) {
  Write("cgroup.controllers", "pids\n");
  Write("self", "0::/a\n");
  Write("a/pids.max", "max\n");
  EXPECT_EQ(CgroupLimit(files_, "pids", "pids.max", "pids.max"), std::nullopt);
}

// Docker on cgroup v1 without a cgroup namespace: /proc/self/cgroup names
// the host's path, /sys/fs/cgroup/pids is the container's own cgroup.
TEST_F(CgroupTree, V1InAContainerFindsTheMountedCgroupsOwnFile) {
  Write("self",
        "12:pids:/docker/0123abcd\n"
        "5:cpu,cpuacct:/docker/0123abcd\n"
        "4:memory:/docker/0123abcd\n"
        "0::/system.slice/containerd.service\n");
  Write("pids/pids.max", "300\n");
  Write("memory/memory.limit_in_bytes", "536870912\n");
  EXPECT_EQ(CgroupLimit(files_, "pids", "pids.max", "pids.max"), 300u);
  EXPECT_EQ(
      CgroupLimit(files_, "memory", "memory.limit_in_bytes", "memory.max"),
      536870912u);
}

TEST_F(CgroupTree, V1UnlimitedMemoryIsNoLimit) {
  Write("self", "4:memory:/\n");
  // PAGE_COUNTER_MAX pages, what v1 shows for "no limit".
  Write("memory/memory.limit_in_bytes", "9223372036854771712\n");
  EXPECT_EQ(
      CgroupLimit(files_, "memory", "memory.limit_in_bytes", "memory.max"),
      std::nullopt);
}

TEST_F(CgroupTree, UnreadableMembershipOrGarbageIsNoLimit) {
  EXPECT_EQ(CgroupLimit(files_, "pids", "pids.max", "pids.max"), std::nullopt);
  Write("self", "12:pids:/x\n");
  Write("pids/x/pids.max", "lots\n");
  EXPECT_EQ(CgroupLimit(files_, "pids", "pids.max", "pids.max"), std::nullopt);
  // A directory where the file should be is not a file.
  Write("pids/pids.max/x", "1\n");
  EXPECT_EQ(CgroupLimit(files_, "pids", "pids.max", "pids.max"), std::nullopt);
}

// The real syscalls, on this test process: a low soft limit is raised to
// the hard one, as containerd 2.x's 1024 would be.
TEST(ResourceLimits, RaiseOpenFileLimitLiftsTheSoftLimitToTheHardOne) {
  rlimit before;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &before), 0);
  ASSERT_GT(before.rlim_max, 256u) << "needs a hard limit above 256";
  rlimit low = before;
  low.rlim_cur = 256;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  ASSERT_TRUE(RaiseOpenFileLimit().ok());
  rlimit after;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &after), 0);
  EXPECT_EQ(after.rlim_cur, before.rlim_max);
  EXPECT_EQ(after.rlim_max, before.rlim_max);
  absl::StatusOr<ResourceLimits> limits = ReadResourceLimits();
  ASSERT_TRUE(limits.ok()) << limits.status();
  EXPECT_EQ(limits->open_files, before.rlim_max);
  EXPECT_EQ(limits->open_files_hard, before.rlim_max);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &before), 0);
}

TEST(ResourceLimits, ReadsTheProcessLimit) {
  rlimit nproc;
  ASSERT_EQ(getrlimit(RLIMIT_NPROC, &nproc), 0);
  rlimit lower = nproc;
  lower.rlim_cur = 4321;
  ASSERT_EQ(setrlimit(RLIMIT_NPROC, &lower), 0);
  absl::StatusOr<ResourceLimits> limits = ReadResourceLimits();
  ASSERT_EQ(setrlimit(RLIMIT_NPROC, &nproc), 0);
  ASSERT_TRUE(limits.ok()) << limits.status();
  EXPECT_EQ(limits->max_processes, 4321u);
}

TEST(ResourceLimits, CheckCountsOneFdAndOneTaskPerConnectionPlusReserves) {
  ResourceLimits roomy{.open_files = 524288,
                       .open_files_hard = 524288,
                       .max_processes = 0,
                       .pids_limit = 0,
                       .memory_limit_bytes = 0};
  EXPECT_TRUE(CheckLimits(roomy, 10000).empty());
  ResourceLimits tight{.open_files = 1024,
                       .open_files_hard = 1024,
                       .max_processes = 5000,
                       .pids_limit = 300,
                       .memory_limit_bytes = 0};
  const std::vector<LimitShortfall> s = CheckLimits(tight, 10000);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].limit, "open_files");
  EXPECT_EQ(s[0].available, 1024u);
  EXPECT_EQ(s[0].needed, 10000 + kOwnFdReserve);
  EXPECT_EQ(s[1].limit, "max_processes");
  EXPECT_EQ(s[1].needed, 10000 + kOwnTaskReserve);
  EXPECT_EQ(s[2].limit, "pids");
  EXPECT_EQ(s[2].available, 300u);
  // Exactly enough is enough.
  EXPECT_TRUE(CheckLimits({.open_files = 1024 + kOwnFdReserve}, 1024).empty());
}

TEST(ResourceLimits, CheckCountsSpareThreadsAndSpareChildrenAsTasks) {
  const ResourceLimits pids{.open_files = 524288,
                            .open_files_hard = 524288,
                            .max_processes = 0,
                            .pids_limit = 1000 + 10 + 20 + kOwnTaskReserve,
                            .memory_limit_bytes = 0};
  EXPECT_TRUE(CheckLimits(pids, 1000, 10, 20).empty());
  const std::vector<LimitShortfall> s = CheckLimits(pids, 1000, 10, 21);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].limit, "pids");
  EXPECT_EQ(s[0].needed, 1000 + 10 + 21 + kOwnTaskReserve);
  ResourceLimits nproc = pids;
  nproc.pids_limit = 0;
  nproc.max_processes = 1000 + kOwnTaskReserve;
  const std::vector<LimitShortfall> n = CheckLimits(nproc, 1000, 0, 1);
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].limit, "max_processes");
  EXPECT_EQ(n[0].needed, 1000 + 1 + kOwnTaskReserve);
}

TEST(ResourceLimits, CheckCountsASocketPerSpareChildAsAnOpenFile) {
  // The fork server keeps a socket to every pool child, busy or idle; spare
  // threads hold no descriptor.
  const ResourceLimits nofile{.open_files = 1000 + 20 + kOwnFdReserve,
                              .open_files_hard = 1000 + 20 + kOwnFdReserve,
                              .max_processes = 0,
                              .pids_limit = 0,
                              .memory_limit_bytes = 0};
  EXPECT_TRUE(CheckLimits(nofile, 1000, 500, 20).empty());
  const std::vector<LimitShortfall> s = CheckLimits(nofile, 1000, 0, 21);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].limit, "open_files");
  EXPECT_EQ(s[0].needed, 1000 + 21 + kOwnFdReserve);
}

}  // namespace
}  // namespace upper
