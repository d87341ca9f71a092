// Issue 12: `upperctl connections` lists 100,000 connections, every one.
//
// upperd cannot hold 100,000 real connections on the test machine (its hard
// RLIMIT_NOFILE is 20,000 and kernel.pid_max 32,768, shared with every other
// process; tests/integration/list_connections_test.cc lists 3,000 real
// ones). So the table is upperd's own ConnectionTable filled directly (as
// fake_server_control.h does), served by the real AdminServiceImpl on a real
// grpc::Server over loopback, and read by the real upperctl binary, which
// follows the pages within gRPC's default 4 MiB receive limit.
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/admin/admin_service.h"
#include "tests/server/admin/admin_service_test_support.h"
#include "tests/server/admin/fake_server_control.h"
#include "tests/support/subprocess.h"

namespace upper {
namespace {

constexpr int kConnections = 100000;

// The values of every `"id": "<n>"` in upperctl's JSON output.
std::vector<uint64_t> IdsIn(const std::string& json) {
  std::vector<uint64_t> ids;
  for (absl::string_view piece : absl::StrSplit(json, "\"id\": \"")) {
    const size_t end = piece.find('"');
    uint64_t id = 0;
    if (end != absl::string_view::npos &&
        absl::SimpleAtoi(piece.substr(0, end), &id)) {
      ids.push_back(id);
    }
  }
  return ids;
}

TEST(UpperctlLists100000, EveryConnectionComesBackOnceThroughThePages) {
  FakeServerControl fake(kConnections);
  std::set<uint64_t> want;
  for (int i = 0; i < kConnections; ++i) {
    const ConnectionInfo c =
        fake.Connect(i % 3 == 0 ? Mode::kFork : Mode::kThread,
                     static_cast<uint16_t>(1024 + i % 60000));
    ASSERT_NE(c.id, 0u);
    want.insert(c.id);
  }
  AdminServiceImpl service(fake, testing::TestConfig(), "");
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  absl::StatusOr<testing::ProcessResult> run = testing::RunProcess(
      {UPPERCTL_PATH, absl::StrCat("--addr=127.0.0.1:", port), "-o", "json",
       "connections"},
      {}, absl::Seconds(120));
  server->Shutdown();
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->exit_code, 0) << run->err;
  const std::vector<uint64_t> ids = IdsIn(run->out);
  EXPECT_EQ(ids.size(), static_cast<size_t>(kConnections));
  EXPECT_EQ(std::set<uint64_t>(ids.begin(), ids.end()), want);
}

}  // namespace
}  // namespace upper
