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
#include "tests/ctl/test_certificate.h"

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
        [this](const std::string& path,
               size_t max_size) -> absl::StatusOr<std::string> {
          max_sizes_[path] = max_size;
          auto it = files_.find(path);
          if (it == files_.end()) {
            return absl::InvalidArgumentError(path + ": no such file");
          }
          return it->second;
        });
  }

  absl::FlagSaver flag_saver_;  // flags are global: restore after each test
  std::map<std::string, std::string> env_;
  std::map<std::string, std::string> files_;
  std::map<std::string, size_t> max_sizes_;  // the bound each read was given
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
  inv = Parse({"--", "close", "-o"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, "close");
  EXPECT_THAT(inv->args, ElementsAre("-o"));
}

TEST_F(OptionsTest, NegativeNumbersArePositional) {
  absl::StatusOr<Invocation> inv = Parse({"close", "-1"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_THAT(inv->args, ElementsAre("-1"));
  inv = Parse({"close", "-42", "-o", "json"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_THAT(inv->args, ElementsAre("-42"));
  EXPECT_EQ(inv->options.output, OutputFormat::kJson);
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

TEST_F(OptionsTest, TokenFileIsReadWithItsBoundAndTrimmed) {
  files_ = {{"/t", "secret\r\n"}};
  absl::StatusOr<Invocation> inv = Parse({"status", "--token_file=/t"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->options.token, "secret");
  EXPECT_EQ(max_sizes_["/t"], 64u * 1024);
}

TEST_F(OptionsTest, TokenOfEverySourceIsTrimmedTheSameWay) {
  env_ = {{"UPPER_ADMIN_TOKEN", "\tt0k=\r\n"}};
  absl::StatusOr<Invocation> inv = Parse({"status"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->options.token, "t0k=");
  inv = Parse({"status", "--token", " a.b-c_d~e+f/g== "});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->options.token, "a.b-c_d~e+f/g==");
  env_ = {{"UPPER_ADMIN_TOKEN", ""}};  // empty: as if unset
  inv = Parse({"status"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->options.token, "");
}

TEST_F(OptionsTest, TlsCaImpliesTlsAndIsRead) {
  files_ = {{"/ca.pem", testing::kTestCaPem}};
  absl::StatusOr<Invocation> inv = Parse({"status", "--tls_ca", "/ca.pem"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->options.tls);
  EXPECT_EQ(inv->options.tls_ca_pem, testing::kTestCaPem);
  EXPECT_EQ(max_sizes_["/ca.pem"], 1024u * 1024);
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
  EXPECT_EQ(inv->options.page_size, 0);      // the server's default
  inv = Parse({"conns", "--mode", "FORK"});  // any case
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->options.mode_filter, upper::admin::v1::MODE_FORK);
  inv = Parse({"conns", "--mode=Thread"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->options.mode_filter, upper::admin::v1::MODE_THREAD);
  inv = Parse({"conns", "--page_size=250"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->options.page_size, 250);
}

TEST_F(OptionsTest, EachMistakeIsNamed) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"status", "--bogus"}, "unknown flag --bogus"},
      {{"status", "--timeout"}, "--timeout needs a value"},
      {{"status", "--timeout=soon"}, "--timeout=soon"},
      {{"status", "--timeout=0s"}, "--timeout must be between 1ms and 1h"},
      {{"status", "--timeout=-1s"}, "--timeout must be between"},
      {{"status", "--timeout=inf"}, "--timeout must be between 1ms and 1h"},
      {{"status", "--timeout=500us"}, "--timeout must be between"},
      {{"status", "--timeout=61m"}, "not 1h1m"},
      {{"status", "-o", "yaml"}, "table or json"},
      {{"status", "-o", "json", "--output", "table"}, "disagree"},
      {{"status", "--token=a", "--token_file=/t"}, "not both"},
      {{"status", "--token_file=/missing"}, "--token_file: /missing: no such"},
      {{"status", "--token=Qz\rcd"}, "--token: token: "},
      {{"status", "--token=Qz\tcd"}, "--token: token: "},
      {{"status",
        "--token=Qz\x01"
        "cd"},
       "--token: token: "},
      {{"status",
        "--token=Qz\xc3\xa9"
        "cd"},
       "--token: token: "},
      {{"status", "--token=a b"}, "--token: token: "},
      {{"status", "--token= \t "}, "--token: token: "},
      {{"status", std::string("--token=a\0b", 11)}, "--token: token: "},
      {{"status", "--token=" + std::string(4097, 'a')}, "--token: token: "},
      {{"status", "--token_file=/crlf"}, "--token_file: /crlf: token: "},
      {{"status", "--token_file=/nul"}, "--token_file: /nul: token: "},
      {{"status", "--token_file=/blank"}, "--token_file: /blank: token: "},
      {{"status", "--tls_ca=/missing"}, "--tls_ca: /missing: no such"},
      {{"status", "--tls_ca=/garbage"}, "--tls_ca: /garbage: no PEM"},
      {{"status", "--tls_ca=/bad.pem"}, "--tls_ca: /bad.pem: certificate 1"},
      {{"status", "--tls_ca=/key.pem"}, "--tls_ca: /key.pem: no PEM"},
      {{"conns", "--mode=process"}, "--mode must be fork or thread"},
      {{"conns", "--page_size=-1"}, "--page_size must not be negative"},
      {{"conns", "--page_size=many"}, "--page_size=many"},
      {{"watch", "--interval=10ms"}, "--interval must be between 100ms and 1h"},
      {{"watch", "--interval=inf"}, "--interval must be between 100ms and 1h"},
      {{"watch", "--interval=2h"}, "--interval must be between"},
      {{"watch", "--count=-1"}, "--count"},
      {{"status", "--tls=maybe"}, "--tls=maybe"},
  };
  files_ = {
      {"/crlf", "Qz\r\ncd\n"},
      {"/nul", std::string("Qz\0cd", 5)},
      {"/blank", " \n\t\n"},
      {"/garbage", "not a certificate\n"},
      {"/bad.pem",
       "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
      {"/key.pem",
       "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE "
       "KEY-----\n"},
  };
  for (const auto& [args, problem] : cases) {
    absl::StatusOr<Invocation> inv = Parse(args);
    ASSERT_FALSE(inv.ok()) << args.back();
    EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(inv.status().message(), HasSubstr(problem)) << args.back();
    // One line, and never the token itself.
    EXPECT_EQ(inv.status().message().find('\n'), absl::string_view::npos);
    EXPECT_EQ(inv.status().message().find("Qz"), absl::string_view::npos)
        << inv.status().message();
  }
}

TEST_F(OptionsTest, BadTokenInTheEnvironmentNamesTheVariable) {
  for (const std::string& raw :
       {std::string("ab\rcd"), std::string("ab\tcd"), std::string("\x7f"),
        std::string("\xff"), std::string(" \n ")}) {
    env_ = {{"UPPER_ADMIN_TOKEN", raw}};
    absl::StatusOr<Invocation> inv = Parse({"health"});
    ASSERT_FALSE(inv.ok());
    EXPECT_THAT(std::string(inv.status().message()),
                ::testing::StartsWith("$UPPER_ADMIN_TOKEN: token: "));
  }
}

TEST_F(OptionsTest, HelpIsNotAnError) {
  absl::StatusOr<Invocation> inv = Parse({"--help"});
  ASSERT_TRUE(inv.ok());
  EXPECT_TRUE(inv->help);
  EXPECT_EQ(inv->command, "");
  // Not even with a bad token or file around: help reads neither.
  env_ = {{"UPPER_ADMIN_TOKEN", "bad\rtoken"}};
  inv = Parse({"status", "--help", "--token_file=/missing"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->help);
}

}  // namespace
}  // namespace upper
