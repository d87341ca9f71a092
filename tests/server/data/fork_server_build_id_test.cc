// A fork server handed a connection table of another build refuses it: it
// logs fork_server_failed with Attach's reason and exits non-zero, without
// touching the table. Runs the real fork server role of the upperd binary
// with the table on kTableFd and a control socket on kControlFd, as
// ForkWorkers starts it.
#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "server/data/connection_table.h"
#include "server/data/fork_protocol.h"
#include "tests/support/upperd_process.h"

extern char** environ;

namespace upper {
namespace {

struct Exit {
  int status = -1;
  std::string log;
};

// Runs upperd's fork server role on `memfd` until it exits (upperd's end of
// the control socket is closed at once, so a server that accepted the table
// would also exit, with 0).
Exit RunForkServerOn(int memfd) {
  int control[2], log[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control), 0);
  EXPECT_EQ(pipe2(log, O_CLOEXEC), 0);
  // Copies above the targets, so that each dup2 clears FD_CLOEXEC.
  const int table_copy = fcntl(memfd, F_DUPFD_CLOEXEC, 10);
  const int control_copy = fcntl(control[1], F_DUPFD_CLOEXEC, 10);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, table_copy, kTableFd);
  posix_spawn_file_actions_adddup2(&actions, control_copy, kControlFd);
  posix_spawn_file_actions_adddup2(&actions, log[1], STDERR_FILENO);
  std::string role(kForkServerRoleFlag);
  char* argv[] = {const_cast<char*>("upperd"), role.data(), nullptr};
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, testing::UpperdPath(), &actions, nullptr, argv,
                        environ),
            0);
  posix_spawn_file_actions_destroy(&actions);
  for (int fd : {table_copy, control_copy, control[1], log[1], control[0]}) {
    close(fd);
  }
  Exit exit;
  char buffer[4096];
  for (ssize_t n; (n = read(log[0], buffer, sizeof(buffer))) > 0;) {
    exit.log.append(buffer, static_cast<size_t>(n));
  }
  close(log[0]);
  EXPECT_EQ(waitpid(pid, &exit.status, 0), pid);
  return exit;
}

TEST(ForkServer, RefusesATableFromAnotherBuildAndExitsNonZero) {
  absl::StatusOr<std::unique_ptr<ConnectionTable>> table =
      ConnectionTable::Create(4);
  ASSERT_TRUE(table.ok()) << table.status();
  void* base = mmap(nullptr, sizeof(table_layout::Header),
                    PROT_READ | PROT_WRITE, MAP_SHARED, (*table)->memfd(), 0);
  ASSERT_NE(base, MAP_FAILED);
  auto* header = static_cast<table_layout::Header*>(base);
  const uint64_t ours = header->build_id;
  header->build_id = ours ^ 0x5a5a5a5a5a5a5a5a;
  munmap(base, sizeof(table_layout::Header));

  const Exit exit = RunForkServerOn((*table)->memfd());
  ASSERT_TRUE(WIFEXITED(exit.status)) << exit.log;
  EXPECT_NE(WEXITSTATUS(exit.status), 0) << exit.log;
  EXPECT_TRUE(absl::StrContains(exit.log, "fork_server_failed")) << exit.log;
  EXPECT_TRUE(
      absl::StrContains(exit.log, "connection table from another build"))
      << exit.log;
}

// The control case: the same run on an untouched table attaches, sees
// upperd's end closed, and exits 0.
TEST(ForkServer, AcceptsATableOfItsOwnBuild) {
  absl::StatusOr<std::unique_ptr<ConnectionTable>> table =
      ConnectionTable::Create(4);
  ASSERT_TRUE(table.ok()) << table.status();
  const Exit exit = RunForkServerOn((*table)->memfd());
  ASSERT_TRUE(WIFEXITED(exit.status)) << exit.log;
  EXPECT_EQ(WEXITSTATUS(exit.status), 0) << exit.log;
  EXPECT_TRUE(absl::StrContains(exit.log, "fork_server_started")) << exit.log;
}

}  // namespace
}  // namespace upper
