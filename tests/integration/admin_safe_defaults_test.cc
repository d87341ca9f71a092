// Safe defaults of the admin endpoint (issue 12), against a real upperd: an
// --admin_bind beyond loopback without a token starts, but says so in one
// warning line at start (text and JSON logs), in GetStatus
// (admin_security, warnings) and in `upperctl status` (text and -o json);
// with a token, or on loopback, there is no warning. A token or TLS file
// variable that is set but empty stops start-up with exit 2 naming it.
#include <csignal>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/stop_cleanly.h"
#include "tests/support/subprocess.h"
#include "tests/support/upperd_process.h"
#include "upper/admin/v1/admin.grpc.pb.h"

namespace upper::testing {
namespace {

using admin::v1::AdminService;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "exposure-test-token-0123456789";

// Lines of `log` that contain `needle`.
std::vector<std::string> LinesWith(const std::string& log,
                                   const std::string& needle) {
  std::vector<std::string> found;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::StrContains(line, needle)) found.emplace_back(line);
  }
  return found;
}

ProcessResult Upperctl(std::vector<std::string> args) {
  args.insert(args.begin(), UPPERCTL_PATH);
  absl::StatusOr<ProcessResult> result =
      RunProcess(args, {}, absl::Seconds(30));
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : ProcessResult{};
}

class AdminSafeDefaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> dir = MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
  }
  void TearDown() override {
    if (upperd_ != nullptr && upperd_->running()) StopCleanly(*upperd_);
    if (!dir_.empty())
      RunShell(absl::StrCat("rm -rf '", dir_, "'")).IgnoreError();
  }

  std::string TokenFile() {
    const std::string path = dir_ + "/token";
    EXPECT_TRUE(WriteFile(path, std::string(kToken) + "\n").ok());
    return path;
  }

  // Starts upperd (text log) and returns its admin port, 0 on failure.
  uint16_t Start(std::vector<std::string> args) {
    absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
        UpperdProcess::Start({.args = std::move(args)});
    EXPECT_TRUE(upperd.ok()) << upperd.status();
    if (!upperd.ok()) return 0;
    upperd_ = *std::move(upperd);
    absl::StatusOr<uint16_t> port = upperd_->Port("admin");
    EXPECT_TRUE(port.ok()) << port.status() << upperd_->Log();
    return port.value_or(0);
  }

  absl::StatusOr<admin::v1::ServerStatus> Status(uint16_t port,
                                                 const std::string& token) {
    auto stub = AdminService::NewStub(AdminChannel(port));
    return GetStatus(*stub, token);
  }

  std::string dir_;
  std::unique_ptr<UpperdProcess> upperd_;
};

TEST_F(AdminSafeDefaultsTest, WildcardBindWithoutATokenWarnsOnceAtStart) {
  const uint16_t port = Start({"--admin_bind=0.0.0.0"});
  ASSERT_NE(port, 0);
  // The warning follows the admin listening line, which Start waited for.
  ASSERT_TRUE(upperd_->WaitForLog(" admin_exposed ", absl::Seconds(5)).ok())
      << upperd_->Log();
  const std::vector<std::string> lines =
      LinesWith(upperd_->Log(), " admin_exposed ");
  ASSERT_EQ(lines.size(), 1u) << upperd_->Log();
  const std::string& line = lines[0];
  EXPECT_THAT(line, HasSubstr(" warning admin_exposed flag=--admin_bind "
                              "bind=0.0.0.0 "));
  EXPECT_THAT(line, HasSubstr(absl::StrCat(" addr=0.0.0.0:", port, " ")));
  EXPECT_THAT(line, HasSubstr(" auth=none tls=off fix="));
  EXPECT_THAT(line, HasSubstr("--admin_token_file"));
  EXPECT_THAT(line, HasSubstr("UPPER_ADMIN_TOKEN_FILE"));
  EXPECT_THAT(line, HasSubstr("--admin_bind=127.0.0.1"));
}

TEST_F(AdminSafeDefaultsTest, WildcardBindWithoutATokenWarnsInGetStatus) {
  const uint16_t port = Start({"--admin_bind=0.0.0.0"});
  ASSERT_NE(port, 0);
  absl::StatusOr<admin::v1::ServerStatus> status = Status(port, "");
  ASSERT_TRUE(status.ok()) << status.status();
  const admin::v1::AdminSecurity& security = status->admin_security();
  EXPECT_EQ(security.bind(), "0.0.0.0");
  EXPECT_FALSE(security.loopback());
  EXPECT_FALSE(security.token_required());
  EXPECT_FALSE(security.tls());
  EXPECT_TRUE(security.exposed());
  ASSERT_EQ(status->warnings_size(), 1);
  EXPECT_THAT(status->warnings(0), HasSubstr("--admin_bind=0.0.0.0"));
  EXPECT_THAT(status->warnings(0), HasSubstr("--admin_token_file"));
}

TEST_F(AdminSafeDefaultsTest, WildcardBindWithoutATokenWarnsInUpperctlStatus) {
  const uint16_t port = Start({"--admin_bind=0.0.0.0"});
  ASSERT_NE(port, 0);
  const std::string addr = absl::StrCat("--addr=127.0.0.1:", port);
  ProcessResult run = Upperctl({"status", addr});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  // (The key column is as wide as the longest key.)
  EXPECT_THAT(run.out, HasSubstr("\nadmin access "));
  EXPECT_THAT(run.out, HasSubstr(" 0.0.0.0: EXPOSED (no token), TLS off\n"));
  EXPECT_THAT(run.out, HasSubstr("\nWARNING: admin endpoint exposed: "
                                 "--admin_bind=0.0.0.0 is not loopback"));

  run = Upperctl({"status", "-o", "json", addr});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  admin::v1::ServerStatus parsed;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(run.out, &parsed).ok())
      << run.out;
  EXPECT_TRUE(parsed.admin_security().exposed());
  ASSERT_EQ(parsed.warnings_size(), 1) << run.out;
  EXPECT_THAT(run.out, HasSubstr("\"exposed\": true"));
}

TEST_F(AdminSafeDefaultsTest, JsonLogCarriesTheWarningAsOneParsableLine) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd = UpperdProcess::Start(
      {.args = {"--admin_bind=0.0.0.0", "--log_format=json"},
       .wait_until_listening = false});
  ASSERT_TRUE(upperd.ok()) << upperd.status();
  upperd_ = *std::move(upperd);
  absl::StatusOr<std::string> found =
      upperd_->WaitForLog("\"admin_exposed\"", absl::Seconds(10));
  ASSERT_TRUE(found.ok()) << found.status() << upperd_->Log();
  const std::vector<std::string> lines =
      LinesWith(upperd_->Log(), "\"admin_exposed\"");
  ASSERT_EQ(lines.size(), 1u) << upperd_->Log();
  google::protobuf::Struct line;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[0], &line).ok())
      << lines[0];
  const auto& fields = line.fields();
  EXPECT_EQ(fields.at("level").string_value(), "warning");
  EXPECT_EQ(fields.at("event").string_value(), "admin_exposed");
  EXPECT_EQ(fields.at("flag").string_value(), "--admin_bind");
  EXPECT_EQ(fields.at("bind").string_value(), "0.0.0.0");
  EXPECT_TRUE(absl::StartsWith(fields.at("addr").string_value(), "0.0.0.0:"));
  EXPECT_EQ(fields.at("auth").string_value(), "none");
  EXPECT_THAT(fields.at("fix").string_value(), HasSubstr("--admin_token_file"));
}

TEST_F(AdminSafeDefaultsTest, WildcardBindWithATokenDoesNotWarn) {
  const uint16_t port =
      Start({"--admin_bind=0.0.0.0", "--admin_token_file=" + TokenFile()});
  ASSERT_NE(port, 0);
  absl::StatusOr<admin::v1::ServerStatus> status = Status(port, kToken);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->admin_security().bind(), "0.0.0.0");
  EXPECT_TRUE(status->admin_security().token_required());
  EXPECT_FALSE(status->admin_security().exposed());
  EXPECT_EQ(status->warnings_size(), 0);
  ProcessResult run =
      Upperctl({"status", absl::StrCat("--addr=127.0.0.1:", port),
                "--token_file", dir_ + "/token"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("0.0.0.0: token, TLS off\n"));
  EXPECT_THAT(run.out, Not(HasSubstr("WARNING")));
  StopCleanly(*upperd_);
  EXPECT_THAT(upperd_->Log(), Not(HasSubstr("admin_exposed")));
}

TEST_F(AdminSafeDefaultsTest, LoopbackBindWithoutATokenDoesNotWarn) {
  for (const char* bind : {"127.0.0.1"}) {  // host names are refused now
    const uint16_t port = Start({absl::StrCat("--admin_bind=", bind)});
    ASSERT_NE(port, 0) << bind;
    absl::StatusOr<admin::v1::ServerStatus> status = Status(port, "");
    ASSERT_TRUE(status.ok()) << bind << ": " << status.status();
    EXPECT_EQ(status->admin_security().bind(), bind);
    EXPECT_TRUE(status->admin_security().loopback()) << bind;
    EXPECT_FALSE(status->admin_security().exposed()) << bind;
    EXPECT_EQ(status->warnings_size(), 0) << bind;
    StopCleanly(*upperd_);
    EXPECT_THAT(upperd_->Log(), Not(HasSubstr("admin_exposed"))) << bind;
  }
}

// Runs upperd expecting a start-up failure: exit code and stderr.
std::pair<int, std::string> FailingStart(UpperdOptions options) {
  options.wait_until_listening = false;
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start(std::move(options));
  if (!upperd.ok()) return {-1000, upperd.status().ToString()};
  absl::StatusOr<int> code = (*upperd)->WaitExit(absl::Seconds(10));
  if (!code.ok()) return {-1000, code.status().ToString()};
  return {*code, (*upperd)->Log()};
}

TEST_F(AdminSafeDefaultsTest, EmptyTokenFileVariableExitsTwoNamingIt) {
  const auto [code, log] =
      FailingStart({.env = {{"UPPER_ADMIN_TOKEN_FILE", ""}}});
  EXPECT_EQ(code, 2) << log;
  EXPECT_EQ(log,
            "upperd: UPPER_ADMIN_TOKEN_FILE: set but empty; unset it for no "
            "token, or name the file\n");
}

TEST_F(AdminSafeDefaultsTest, EmptyTokenFileFlagExitsTwoNamingIt) {
  const auto [code, log] = FailingStart({.args = {"--admin_token_file="}});
  EXPECT_EQ(code, 2) << log;
  EXPECT_EQ(log,
            "upperd: --admin_token_file: given empty; leave the flag out for "
            "no token, or name the file\n");
}

TEST_F(AdminSafeDefaultsTest, EmptyTlsVariablesExitTwoNamingThem) {
  for (const char* var : {"UPPER_ADMIN_TLS_CERT", "UPPER_ADMIN_TLS_KEY"}) {
    const auto [code, log] = FailingStart({.env = {{var, ""}}});
    EXPECT_EQ(code, 2) << var << ": " << log;
    EXPECT_EQ(log, absl::StrCat("upperd: ", var,
                                ": set but empty; unset it for no TLS, or "
                                "name the file\n"));
  }
}

}  // namespace
}  // namespace upper::testing
