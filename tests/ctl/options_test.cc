// upperctl's argument parsing: flags anywhere, environment fallbacks, and
// every way a command line can be wrong (each an InvalidArgument that
// becomes exit 2).
#include "ctl/options.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace upper {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::upper::ctl::Invocation;
using ::upper::ctl::OutputFormat;
using ::upper::ctl::ParseInvocation;

class OptionsTest : public ::testing::Test {
 protected:
  absl::StatusOr<Invocation> Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "upperctl");
    return ParseInvocation(
        args,
        [this](const char* name) -> std::optional<std::string> {
          auto it = env_.find(name);
          if (it == env_.end()) return std::nullopt;
          return it->second;
        },
        [this](const std::string& path) -> absl::StatusOr<std::string> {
          auto it = files_.find(path);
          if (it == files_.end()) return absl::NotFoundError("no such file");
          return it->second;
        });
  }

  absl::FlagSaver flag_saver_;  // flags are global: restore after each test
  std::map<std::string, std::string> env_;
  std::map<std::string, std::string> files_;
};

TEST_F(OptionsTest, DefaultsWhenNothingIsGiven) {
  absl::StatusOr<Invocation> inv = Parse({"status"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, "status");
  EXPECT_TRUE(inv->args.empty());
  EXPECT_EQ(inv->options.addr, "localhost:50051");
  EXPECT_EQ(inv->options.token, "");
  EXPECT_EQ(inv->options.timeout, absl::Seconds(5));
  EXPECT_EQ(inv->options.output, OutputFormat::kTable);
  EXPECT_FALSE(inv->options.tls);
}

TEST_F(OptionsTest, FlagsMayComeBeforeOrAfterTheCommand) {
  absl::StatusOr<Invocation> inv =
      Parse({"--addr=h:1", "close", "-o", "json", "42", "--timeout", "2s"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, "close");
  EXPECT_THAT(inv->args, ElementsAre("42"));
  EXPECT_EQ(inv->options.addr, "h:1");
  EXPECT_EQ(inv->options.output, OutputFormat::kJson);
  EXPECT_EQ(inv->options.timeout, absl::Seconds(2));
}

TEST_F(OptionsTest, DoubleDashEndsFlags) {
  absl::StatusOr<Invocation> inv = Parse({"mode", "--", "--weird"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_THAT(inv->args, ElementsAre("--weird"));
}

TEST_F(OptionsTest, EnvironmentFillsInAndFlagsWin) {
  env_ = {{"UPPERCTL_ADDR", "env:1"}, {"UPPER_ADMIN_TOKEN", " t0k \n"}};
  absl::StatusOr<Invocation> inv = Parse({"status"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->options.addr, "env:1");
  EXPECT_EQ(inv->options.token, "t0k");
  inv = Parse({"status", "--addr", "flag:2", "--token", "other"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->options.addr, "flag:2");
  EXPECT_EQ(inv->options.token, "other");
}

TEST_F(OptionsTest, TokenFileIsReadAndTrimmed) {
  files_ = {{"/t", "secret\n"}};
  absl::StatusOr<Invocation> inv = Parse({"status", "--token_file=/t"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->options.token, "secret");
}

TEST_F(OptionsTest, TlsCaImpliesTlsAndIsRead) {
  files_ = {{"/ca.pem", "PEM"}};
  absl::StatusOr<Invocation> inv = Parse({"status", "--tls_ca", "/ca.pem"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->options.tls);
  EXPECT_EQ(inv->options.tls_ca_pem, "PEM");
  inv = Parse({"status", "--tls", "--notls"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_FALSE(inv->options.tls);
}

TEST_F(OptionsTest, WatchAndConnectionsFlags) {
  absl::StatusOr<Invocation> inv =
      Parse({"watch", "--interval=250ms", "--count=3"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->options.interval, absl::Milliseconds(250));
  EXPECT_EQ(inv->options.count, 3);
  inv = Parse({"conns", "--mode", "fork"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->options.mode_filter, upper::admin::v1::MODE_FORK);
  EXPECT_EQ(inv->options.page_size, 0);  // the server's default
  inv = Parse({"conns", "--page_size=250"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->options.page_size, 250);
}

TEST_F(OptionsTest, EachMistakeIsNamed) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"status", "--bogus"}, "unknown flag --bogus"},
      {{"status", "--timeout"}, "--timeout needs a value"},
      {{"status", "--timeout=soon"}, "--timeout=soon"},
      {{"status", "--timeout=0s"}, "--timeout must be positive"},
      {{"status", "-o", "yaml"}, "table or json"},
      {{"status", "-o", "json", "--output", "table"}, "disagree"},
      {{"status", "--token=a", "--token_file=/t"}, "not both"},
      {{"status", "--token_file=/missing"}, "--token_file"},
      {{"conns", "--mode=process"}, "--mode must be fork or thread"},
      {{"conns", "--page_size=-1"}, "--page_size must not be negative"},
      {{"conns", "--page_size=many"}, "--page_size=many"},
      {{"watch", "--interval=10ms"}, "at least 100ms"},
      {{"watch", "--count=-1"}, "--count"},
      {{"status", "--tls=maybe"}, "--tls=maybe"},
  };
  for (const auto& [args, problem] : cases) {
    absl::StatusOr<Invocation> inv = Parse(args);
    ASSERT_FALSE(inv.ok()) << args.back();
    EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(inv.status().message(), HasSubstr(problem));
  }
}

TEST_F(OptionsTest, HelpIsNotAnError) {
  absl::StatusOr<Invocation> inv = Parse({"--help"});
  ASSERT_TRUE(inv.ok());
  EXPECT_TRUE(inv->help);
  EXPECT_EQ(inv->command, "");
}

}  // namespace
}  // namespace upper
