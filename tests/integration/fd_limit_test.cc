// upperd started with containerd 2.x's descriptor limits scaled down (soft
// 1024, hard 4096): it raises the soft limit to the hard one, says so in
// its start line and in GetStatus, and then really holds more than 1024
// connections at once, every byte checked.
#include <sys/resource.h>
#include <sys/socket.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

constexpr uint64_t kSoft = 1024;
constexpr uint64_t kHard = 4096;
// Past the soft limit by far more than upperd's own few dozen descriptors.
constexpr int kConnections = 1500;

// Each connection's bytes name it, so a byte from another connection fails.
std::string PayloadOf(int i) {
  return absl::StrCat("connection ", i, " of ", kConnections, ": ",
                      RandomPayload(200, static_cast<uint64_t>(i)), "\n");
}

TEST(FdLimitRaise, RaisesALowSoftLimitAndServesPastIt) {
  rlimit own;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &own), 0);
  if (own.rlim_max < kHard || own.rlim_cur < 2 * kConnections) {
    GTEST_SKIP() << "the test needs a hard fd limit of at least " << kHard
                 << " and a soft one of " << 2 * kConnections;
  }
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start({.args = {"--max_connections=2000"},
                            .rlimit_nofile = kSoft,
                            .rlimit_nofile_hard = kHard});
  ASSERT_TRUE(upperd.ok()) << upperd.status();
  EXPECT_EQ((*upperd)->Field("listening service=data", "open_files_limit"),
            absl::StrCat(kHard));
  EXPECT_EQ((*upperd)->Field("listening service=data", "open_files_hard_limit"),
            absl::StrCat(kHard));
  // 2,000 + the reserve do not fit in 4,096? They do: no warning.
  EXPECT_EQ((*upperd)->Log().find("limit_below_max_connections"),
            std::string::npos)
      << (*upperd)->Log();

  std::vector<UniqueFd> conns;
  for (int i = 0; i < kConnections; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect((*upperd)->data_port());
    ASSERT_TRUE(fd.ok()) << "connection " << i << ": " << fd.status();
    const std::string payload = PayloadOf(i);
    ASSERT_EQ(send(fd->get(), payload.data(), payload.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(payload.size()));
    conns.push_back(*std::move(fd));
  }
  // All of them at once: every reply arrives while every connection is open.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (int i = 0; i < kConnections; ++i) {
    const std::string expected = ExpectedUpper(PayloadOf(i));
    absl::StatusOr<std::string> reply =
        ReadExactly(conns[i].get(), expected.size(), deadline);
    ASSERT_TRUE(reply.ok()) << "connection " << i << ": " << reply.status();
    ASSERT_EQ(*reply, expected) << "connection " << i;
  }
  absl::StatusOr<uint16_t> admin_port = (*upperd)->Port("admin");
  ASSERT_TRUE(admin_port.ok()) << admin_port.status();
  auto stub = admin::v1::AdminService::NewStub(AdminChannel(*admin_port));
  absl::StatusOr<admin::v1::ServerStatus> status = GetStatus(*stub);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->active_connections(), static_cast<uint64_t>(kConnections));
  EXPECT_EQ(status->rejected_total(), 0u);
  EXPECT_EQ(status->limits().open_files_limit(), kHard);
  EXPECT_EQ(status->limits().open_files_hard_limit(), kHard);
}

// The open_files warning of an upperd started with `args` under soft and
// hard limits of kSoft (its log in the error when there is none).
absl::StatusOr<std::string> OpenFilesWarning(std::vector<std::string> args) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start({.args = std::move(args),
                            .rlimit_nofile = kSoft,
                            .rlimit_nofile_hard = kSoft});
  if (!upperd.ok()) return upperd.status();
  absl::StatusOr<std::string> line = (*upperd)->WaitForLog(
      "limit_below_max_connections limit=open_files", absl::Seconds(5));
  if (line.ok()) return line;
  return absl::Status(
      line.status().code(),
      absl::StrCat(line.status().message(), "; log: ", (*upperd)->Log()));
}

TEST(FdLimitRaise, WarnsWhenMaxConnectionsCannotFit) {
  absl::StatusOr<std::string> line =
      OpenFilesWarning({"--max_connections=10000"});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_NE(line->find("available=1024 needed=10064 max_connections=10000"),
            std::string::npos)
      << *line;
}

// The fork server keeps a socket to each pool child: the check counts the
// most idle children the pool can hold, and none without a pool.
TEST(FdLimitRaise, CountsThePoolChildrenSocketsOnlyWithAPool) {
  const std::vector<std::string> pool = {
      "--max_connections=900", "--fork_spare_min=8", "--fork_spare_max=64"};
  std::vector<std::string> pooled = pool;
  pooled.push_back("--fork_child_max_connections=2");
  absl::StatusOr<std::string> line = OpenFilesWarning(pooled);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_NE(line->find("available=1024 needed=1028 max_connections=900"),
            std::string::npos)
      << *line;

  // A child per connection (the default): 64 spare_max allow no spare.
  absl::StatusOr<std::unique_ptr<UpperdProcess>> strict = UpperdProcess::Start(
      {.args = pool, .rlimit_nofile = kSoft, .rlimit_nofile_hard = kSoft});
  ASSERT_TRUE(strict.ok()) << strict.status();
  // A connection served means the start-up check (before the loop) ran.
  absl::StatusOr<std::string> echoed =
      Exchange((*strict)->data_port(), "pool", 4, 1, absl::Seconds(5));
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(
      (*strict)->Log().find("limit_below_max_connections limit=open_files"),
      std::string::npos)
      << (*strict)->Log();
}

}  // namespace
}  // namespace upper::testing
