// Who may reach upperd's admin port, and what stock gRPC tooling finds
// there: the bearer token (off, missing, wrong, right, from the flag or the
// environment), TLS with a self-signed certificate, the standard health
// service (open without a token, NOT_SERVING during the drain), server
// reflection, and start-up errors that name the flag.
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

using admin::v1::AdminService;
using grpc::health::v1::HealthCheckResponse;

constexpr char kToken[] = "0123456789abcdef-upper-test-token";
constexpr char kAdminService[] = "upper.admin.v1.AdminService";

// A directory for the test's files, and the admin port of an upperd.
class AdminAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> dir = MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
  }
  void TearDown() override {
    if (!dir_.empty())
      RunShell(absl::StrCat("rm -rf '", dir_, "'")).IgnoreError();
  }

  std::string TokenFile(const std::string& content) {
    const std::string path = dir_ + "/token";
    EXPECT_TRUE(WriteFile(path, content).ok());
    return path;
  }

  // Starts upperd and returns its admin port (0 on failure).
  uint16_t StartUpperd(UpperdOptions options) {
    absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
        UpperdProcess::Start(std::move(options));
    EXPECT_TRUE(upperd.ok()) << upperd.status();
    if (!upperd.ok()) return 0;
    upperd_ = *std::move(upperd);
    absl::StatusOr<uint16_t> port = upperd_->Port("admin");
    EXPECT_TRUE(port.ok()) << port.status() << upperd_->Log();
    return port.value_or(0);
  }

  // Runs upperd expecting a start-up failure; returns its exit code and
  // leaves its log in `log`.
  int FailingStart(std::vector<std::string> args, std::string& log,
                   std::map<std::string, std::string> env = {}) {
    absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
        UpperdProcess::Start({.args = std::move(args),
                              .env = std::move(env),
                              .wait_until_listening = false});
    EXPECT_TRUE(upperd.ok());
    if (!upperd.ok()) return -1;
    absl::StatusOr<int> code = (*upperd)->WaitExit(absl::Seconds(10));
    EXPECT_TRUE(code.ok()) << code.status();
    log = (*upperd)->Log();
    return code.value_or(-1);
  }

  std::string dir_;
  std::unique_ptr<UpperdProcess> upperd_;
};

grpc::StatusCode GetStatusCode(AdminService::Stub& stub,
                               std::unique_ptr<grpc::ClientContext> context,
                               std::string* message = nullptr) {
  admin::v1::ServerStatus status;
  const grpc::Status s =
      stub.GetStatus(context.get(), admin::v1::GetStatusRequest(), &status);
  if (message != nullptr) *message = s.error_message();
  return s.error_code();
}

TEST_F(AdminAccessTest, WithoutATokenConfiguredCallsNeedNone) {
  const uint16_t port = StartUpperd({});
  ASSERT_NE(port, 0);
  auto stub = AdminService::NewStub(AdminChannel(port));
  EXPECT_EQ(GetStatusCode(*stub, Context()), grpc::StatusCode::OK);
  // A token sent anyway is ignored.
  EXPECT_EQ(GetStatusCode(*stub, Context("anything")), grpc::StatusCode::OK);
}

TEST_F(AdminAccessTest, WithATokenOnlyTheRightOnePasses) {
  const uint16_t port = StartUpperd(
      {.args = {absl::StrCat("--admin_token_file=",
                             TokenFile(std::string(kToken) + "\n"))}});
  ASSERT_NE(port, 0);
  EXPECT_TRUE(absl::StrContains(upperd_->Log(), "auth=token"));
  auto channel = AdminChannel(port);
  auto stub = AdminService::NewStub(channel);
  std::string message;
  EXPECT_EQ(GetStatusCode(*stub, Context(), &message),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(absl::StrContains(message, "requires a token")) << message;
  EXPECT_EQ(GetStatusCode(*stub, Context("wrong"), &message),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(absl::StrContains(message, "wrong token")) << message;
  EXPECT_EQ(GetStatusCode(*stub, Context(std::string(kToken) + "x")),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(GetStatusCode(*stub, Context(std::string(kToken).substr(1))),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(GetStatusCode(*stub, Context(kToken)), grpc::StatusCode::OK);

  // Every AdminService method checks, steering ones included: a refused
  // SetMode changes nothing.
  auto context = Context();
  admin::v1::SetModeRequest request;
  request.set_mode(admin::v1::MODE_FORK);
  admin::v1::SetModeResponse response;
  EXPECT_EQ(stub->SetMode(context.get(), request, &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  absl::StatusOr<admin::v1::ServerStatus> status = GetStatus(*stub, kToken);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->mode(), admin::v1::MODE_THREAD);
  auto list_context = Context("wrong");
  admin::v1::ListConnectionsResponse listed;
  EXPECT_EQ(stub->ListConnections(list_context.get(),
                                  admin::v1::ListConnectionsRequest(), &listed)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  auto watch_context = Context();
  auto watch =
      stub->WatchStatus(watch_context.get(), admin::v1::WatchStatusRequest());
  admin::v1::ServerStatus ignored;
  EXPECT_FALSE(watch->Read(&ignored));
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // Health stays open, for probes; reflection is behind the same token as
  // the service (it describes the API to whoever asks).
  EXPECT_EQ(CheckHealth(*channel, "").value_or(HealthCheckResponse::UNKNOWN),
            HealthCheckResponse::SERVING);
  EXPECT_EQ(ReflectionListServices(*channel).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ReflectionListServices(*channel, "wrong").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(ReflectionListServices(*channel, kToken).ok());
}

TEST_F(AdminAccessTest, TokenFileComesFromTheEnvironmentToo) {
  const uint16_t port =
      StartUpperd({.env = {{"UPPER_ADMIN_TOKEN_FILE", TokenFile(kToken)}}});
  ASSERT_NE(port, 0);
  auto stub = AdminService::NewStub(AdminChannel(port));
  EXPECT_EQ(GetStatusCode(*stub, Context()), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(GetStatusCode(*stub, Context(kToken)), grpc::StatusCode::OK);
}

TEST_F(AdminAccessTest, EmptyOrMissingTokenFileStopsStartUpNamingTheFlag) {
  std::string log;
  EXPECT_EQ(FailingStart({"--admin_token_file=" + TokenFile("\n")}, log), 2);
  EXPECT_TRUE(absl::StrContains(log, "--admin_token_file")) << log;
  EXPECT_EQ(FailingStart({"--admin_token_file=" + dir_ + "/absent"}, log), 2);
  EXPECT_TRUE(absl::StrContains(
      log, "--admin_token_file: " + dir_ + "/absent: No such file"))
      << log;
}

TEST_F(AdminAccessTest, AdminPortInUseStopsStartUpWithExitOne) {
  const uint16_t port = StartUpperd({});
  ASSERT_NE(port, 0);
  std::string log;
  EXPECT_EQ(FailingStart({absl::StrCat("--admin_port=", port)}, log), 1);
  EXPECT_TRUE(absl::StrContains(log, absl::StrCat("127.0.0.1:", port))) << log;
  EXPECT_TRUE(absl::StrContains(log, "--admin_port")) << log;
}

TEST_F(AdminAccessTest, HealthIsServingThenNotServingDuringTheDrain) {
  const uint16_t port = StartUpperd({.args = {"--drain_timeout=10s"}});
  ASSERT_NE(port, 0);
  auto channel = AdminChannel(port);
  for (const char* service : {"", kAdminService}) {
    EXPECT_EQ(
        CheckHealth(*channel, service).value_or(HealthCheckResponse::UNKNOWN),
        HealthCheckResponse::SERVING)
        << "'" << service << "'";
  }
  EXPECT_EQ(CheckHealth(*channel, "no.such.Service").status().code(),
            absl::StatusCode::kNotFound);

  // A client mid-stream keeps the drain going for up to 10 s.
  absl::StatusOr<UniqueFd> held = Connect(upperd_->data_port());
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(send(held->get(), "x", 1, MSG_NOSIGNAL), 1);
  ASSERT_TRUE(ReadExactly(held->get(), 1, absl::Now() + absl::Seconds(5)).ok());
  upperd_->Signal(SIGTERM);
  for (const char* service : {"", kAdminService}) {
    EXPECT_TRUE(Eventually(
        [&] {
          return CheckHealth(*channel, service)
                     .value_or(HealthCheckResponse::UNKNOWN) ==
                 HealthCheckResponse::NOT_SERVING;
        },
        absl::Seconds(5)))
        << "'" << service << "'";
  }
  // Still draining, not gone: the status says so.
  auto stub = AdminService::NewStub(channel);
  absl::StatusOr<admin::v1::ServerStatus> status = GetStatus(*stub);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(status->draining());
  EXPECT_EQ(status->active_connections(), 1u);
  held->Reset();
  absl::StatusOr<int> code = upperd_->WaitExit(absl::Seconds(10));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
}

TEST_F(AdminAccessTest, ReflectionListsTheServicesAndServesTheirFiles) {
  const uint16_t port = StartUpperd({});
  ASSERT_NE(port, 0);
  auto channel = AdminChannel(port);
  absl::StatusOr<std::vector<std::string>> services =
      ReflectionListServices(*channel);
  ASSERT_TRUE(services.ok()) << services.status();
  for (const char* expected : {kAdminService, "grpc.health.v1.Health",
                               "grpc.reflection.v1alpha.ServerReflection"}) {
    EXPECT_NE(std::find(services->begin(), services->end(), expected),
              services->end())
        << expected;
  }
  // What grpcurl needs to call a method: the service's file descriptors.
  absl::StatusOr<std::vector<std::string>> files =
      ReflectionFilesForSymbol(*channel, kAdminService);
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_FALSE(files->empty());
  EXPECT_EQ(files->front(), "upper/admin/v1/admin.proto");
}

TEST_F(AdminAccessTest, TlsWithASelfSignedCertificate) {
  const std::string cert = dir_ + "/cert.pem";
  const std::string key = dir_ + "/key.pem";
  ASSERT_TRUE(
      RunShell(absl::StrCat("openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
                            "-subj /CN=upperd.test -addext "
                            "subjectAltName=DNS:upperd.test -keyout '",
                            key, "' -out '", cert, "' 2>/dev/null"))
          .ok());
  const uint16_t port = StartUpperd(
      {.args = {"--admin_tls_cert=" + cert, "--admin_tls_key=" + key,
                "--admin_token_file=" + TokenFile(kToken)}});
  ASSERT_NE(port, 0);
  EXPECT_TRUE(absl::StrContains(upperd_->Log(), "tls=on"));
  absl::StatusOr<std::string> root = ReadFile(cert);
  ASSERT_TRUE(root.ok());
  auto channel = AdminTlsChannel(port, *root, "upperd.test");
  auto stub = AdminService::NewStub(channel);
  absl::StatusOr<admin::v1::ServerStatus> status = GetStatus(*stub, kToken);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->pid(), upperd_->pid());
  EXPECT_EQ(CheckHealth(*channel, "").value_or(HealthCheckResponse::UNKNOWN),
            HealthCheckResponse::SERVING);
  // A plaintext client gets nowhere.
  auto plain = AdminService::NewStub(AdminChannel(port));
  auto context = Context(kToken, absl::Seconds(3));
  EXPECT_EQ(GetStatusCode(*plain, std::move(context)),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(AdminAccessTest, UnreadableTlsFilesStopStartUpNamingTheFlag) {
  const std::string cert = dir_ + "/cert.pem";
  ASSERT_TRUE(WriteFile(cert, "not really a certificate").ok());
  std::string log;
  EXPECT_EQ(FailingStart({"--admin_tls_cert=" + cert,
                          "--admin_tls_key=" + dir_ + "/absent.pem"},
                         log),
            2);
  EXPECT_TRUE(absl::StrContains(
      log, "--admin_tls_key: " + dir_ + "/absent.pem: No such file"))
      << log;
  EXPECT_EQ(FailingStart({"--admin_tls_cert=" + dir_ + "/absent.pem",
                          "--admin_tls_key=" + cert},
                         log),
            2);
  EXPECT_TRUE(absl::StrContains(log, "--admin_tls_cert")) << log;
}

}  // namespace
}  // namespace upper::testing
