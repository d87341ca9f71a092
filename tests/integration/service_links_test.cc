// upperd started as a kubelet starts the chart's container: every
// service-link variable a kubelet injects for the chart's Services (upper,
// upper-admin, upper-headless) in the environment, and the chart's flags on
// the command line. Before flags won for real, UPPER_ADMIN_PORT=tcp://...
// made every such pod exit 2 (issue 11).
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/kubelet_env.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

// deploy/helm/upper/templates/deployment.yaml's args, on free ports.
std::vector<std::string> ChartArgs(bool with_admin_port = true) {
  std::vector<std::string> args = {
      "--bind=0.0.0.0",         "--data_port=0",       "--admin_bind=0.0.0.0",
      "--metrics_bind=0.0.0.0", "--metrics_port=0",    "--mode=thread",
      "--max_connections=1000", "--idle_timeout=300s", "--drain_timeout=30s",
      "--log_format=text"};
  if (with_admin_port) args.push_back("--admin_port=0");
  return args;
}

TEST(KubeletEnvironment, ChartFlagsWinOverEveryServiceLink) {
  const std::map<std::string, std::string> env =
      KubeletServiceLinkEnv(ChartServices());
  ASSERT_EQ(env.at("UPPER_ADMIN_PORT"), "tcp://10.96.0.11:50051");
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd = UpperdProcess::Start(
      {.args = ChartArgs(), .env = env, .default_endpoint_flags = false});
  ASSERT_TRUE(upperd.ok()) << upperd.status();
  // It serves: exact bytes back on the data port...
  const std::string payload = RandomPayload(256 * 1024, 11);
  absl::StatusOr<std::string> echoed =
      Exchange((*upperd)->data_port(), payload, 4096, 11, absl::Seconds(10));
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(*echoed, ExpectedUpper(payload));
  // ...and GetStatus on the admin port the flag chose, not the link's.
  absl::StatusOr<uint16_t> admin_port = (*upperd)->Port("admin");
  ASSERT_TRUE(admin_port.ok()) << admin_port.status();
  EXPECT_NE(*admin_port, 50051);
  auto stub = admin::v1::AdminService::NewStub(AdminChannel(*admin_port));
  absl::StatusOr<admin::v1::ServerStatus> status = GetStatus(*stub);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->max_connections(), 1000u);
  EXPECT_EQ(status->accepted_total(), 1u);
}

TEST(KubeletEnvironment, ServiceLinkWithoutItsFlagExitsTwoNamingIt) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start({.args = ChartArgs(/*with_admin_port=*/false),
                            .env = KubeletServiceLinkEnv(ChartServices()),
                            .wait_until_listening = false,
                            .default_endpoint_flags = false});
  ASSERT_TRUE(upperd.ok()) << upperd.status();
  absl::StatusOr<int> code = (*upperd)->WaitExit(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 2);
  EXPECT_EQ((*upperd)->Log(),
            "upperd: UPPER_ADMIN_PORT=tcp://10.96.0.11:50051 looks like a "
            "Kubernetes service link (a Service named \"upper-admin\" in this "
            "namespace), not a port: set enableServiceLinks: false in the pod "
            "spec or pass --admin_port\n");
}

}  // namespace
}  // namespace upper::testing
