#include "server/base/config.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/kubelet_env.h"

namespace upper {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  absl::StatusOr<ParsedCommandLine> Parse(std::vector<const char*> args) {
    args.insert(args.begin(), "upperd");
    return ParseCommandLine(
        static_cast<int>(args.size()), args.data(),
        [this](absl::string_view name) -> std::optional<std::string> {
          auto it = env_.find(std::string(name));
          if (it == env_.end()) return std::nullopt;
          return it->second;
        });
  }
  std::string ErrorOf(std::vector<const char*> args) {
    absl::StatusOr<ParsedCommandLine> parsed = Parse(std::move(args));
    EXPECT_FALSE(parsed.ok());
    if (parsed.ok()) return "";
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(parsed.status().message());
  }

  absl::FlagSaver saver_;  // every test starts from the defaults
  std::map<std::string, std::string> env_;
};

TEST_F(ConfigTest, DefaultsMatchTheDesign) {
  absl::StatusOr<ParsedCommandLine> parsed = Parse({});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const Config& c = parsed->config;
  EXPECT_EQ(parsed->action, ParsedCommandLine::Action::kRun);
  EXPECT_EQ(c.bind, "0.0.0.0");
  EXPECT_EQ(c.data_port, 9999);
  EXPECT_EQ(c.mode, Mode::kThread);
  EXPECT_EQ(c.max_connections, 10000u);
  EXPECT_EQ(c.idle_timeout, absl::Seconds(300));
  EXPECT_EQ(c.drain_timeout, absl::Seconds(30));
  EXPECT_EQ(c.fork_server_timeout, absl::Seconds(5));
  EXPECT_EQ(c.log_format, LogFormat::kText);
  EXPECT_EQ(c.admin_bind, "127.0.0.1");
  EXPECT_EQ(c.admin_port, 50051);
  EXPECT_EQ(c.admin_token_file, "");
  EXPECT_EQ(c.admin_nice, 10);
  EXPECT_EQ(c.metrics_bind, "0.0.0.0");
  EXPECT_EQ(c.metrics_port, 9464);
}

TEST_F(ConfigTest, AdminAndMetricsFlagsAndEnvironment) {
  env_["UPPER_ADMIN_BIND"] = "0.0.0.0";
  env_["UPPER_METRICS_PORT"] = "9000";
  absl::StatusOr<ParsedCommandLine> parsed =
      Parse({"--admin_port=0", "--admin_token_file=/run/token",
             "--admin_tls_cert=c.pem", "--admin_tls_key=k.pem"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const Config& c = parsed->config;
  EXPECT_EQ(c.admin_bind, "0.0.0.0");
  EXPECT_EQ(c.admin_port, 0);
  EXPECT_EQ(c.admin_token_file, "/run/token");
  EXPECT_EQ(c.admin_tls_cert, "c.pem");
  EXPECT_EQ(c.admin_tls_key, "k.pem");
  EXPECT_EQ(c.metrics_port, 9000);
}

TEST_F(ConfigTest, AdminAndMetricsErrorsNameTheFlag) {
  EXPECT_EQ(ErrorOf({"--admin_port=65536"}),
            "--admin_port: 65536 is out of range (0..65535)");
  EXPECT_EQ(ErrorOf({"--metrics_port=-5"}),
            "--metrics_port: '-5' is not a port (decimal digits, 0..65535)");
  EXPECT_EQ(ErrorOf({"--admin_tls_cert=c.pem"}),
            "--admin_tls_key: required when --admin_tls_cert is set");
  EXPECT_EQ(ErrorOf({"--admin_bind="}), "--admin_bind: must not be empty");
}

TEST_F(ConfigTest, EmptyFileVariableIsAnErrorNamingTheVariable) {
  // Set but empty (an unset secret in a template) would otherwise turn
  // authentication or TLS off without a word.
  env_["UPPER_ADMIN_TOKEN_FILE"] = "";
  EXPECT_EQ(ErrorOf({}),
            "UPPER_ADMIN_TOKEN_FILE: set but empty; unset it for no token, or "
            "name the file");
  env_.clear();
  env_["UPPER_ADMIN_TLS_CERT"] = "";
  EXPECT_EQ(ErrorOf({}),
            "UPPER_ADMIN_TLS_CERT: set but empty; unset it for no TLS, or "
            "name the file");
  env_.clear();
  env_["UPPER_ADMIN_TLS_KEY"] = "";
  EXPECT_EQ(ErrorOf({"--admin_tls_cert=c.pem"}),
            "UPPER_ADMIN_TLS_KEY: set but empty; unset it for no TLS, or name "
            "the file");
}

TEST_F(ConfigTest, EmptyFileFlagIsAnErrorNamingTheFlag) {
  EXPECT_EQ(ErrorOf({"--admin_token_file="}),
            "--admin_token_file: given empty; leave the flag out for no "
            "token, or name the file");
  EXPECT_EQ(ErrorOf({"--admin_tls_cert", "", "--admin_tls_key=k.pem"}),
            "--admin_tls_cert: given empty; leave the flag out for no TLS, or "
            "name the file");
  EXPECT_EQ(ErrorOf({"--admin_tls_cert=c.pem", "--admin_tls_key="}),
            "--admin_tls_key: given empty; leave the flag out for no TLS, or "
            "name the file");
}

TEST_F(ConfigTest, FlagOverridesAnEmptyFileVariable) {
  // Flags win: the variable of a flag on the command line is not read.
  env_["UPPER_ADMIN_TOKEN_FILE"] = "";
  absl::StatusOr<ParsedCommandLine> parsed =
      Parse({"--admin_token_file=/run/token"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.admin_token_file, "/run/token");
}

TEST_F(ConfigTest, AdminNiceIsAnIncrementFromZeroToNineteen) {
  absl::StatusOr<ParsedCommandLine> parsed = Parse({"--admin_nice=0"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.admin_nice, 0);
  env_["UPPER_ADMIN_NICE"] = "19";
  parsed = Parse({});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.admin_nice, 19);
  EXPECT_EQ(ErrorOf({"--admin_nice=20"}),
            "--admin_nice: 20 is out of range (0..19)");
  EXPECT_EQ(ErrorOf({"--admin_nice=-1"}),
            "--admin_nice: -1 is out of range (0..19)");
  env_["UPPER_ADMIN_NICE"] = "25";
  EXPECT_EQ(ErrorOf({}), "UPPER_ADMIN_NICE: 25 is out of range (0..19)");
}

// The thread cache's bounds (issue 16): min <= max <= 10000, a timeout of
// 1ms..1h; errors name the flag or the variable.
TEST_F(ConfigTest, ThreadCacheFlagsAndTheirBounds) {
  absl::StatusOr<ParsedCommandLine> parsed = Parse({});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.thread_spare_min, 0u);
  EXPECT_EQ(parsed->config.thread_spare_max, 0u);
  EXPECT_EQ(parsed->config.thread_spare_timeout, absl::Seconds(10));
  env_["UPPER_THREAD_SPARE_MIN"] = "3";
  env_["UPPER_THREAD_SPARE_TIMEOUT"] = "1.2ms";
  parsed = Parse({"--thread_spare_max=3"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.thread_spare_min, 3u);
  EXPECT_EQ(parsed->config.thread_spare_max, 3u);
  EXPECT_EQ(parsed->config.thread_spare_timeout, absl::Milliseconds(2));
  EXPECT_EQ(ErrorOf({"--thread_spare_max=2"}),
            "UPPER_THREAD_SPARE_MIN: 3 is out of range (0..2, the "
            "--thread_spare_max)");
  env_.clear();
  EXPECT_EQ(ErrorOf({"--thread_spare_max=10001"}),
            "--thread_spare_max: 10001 is out of range (0..10000)");
  EXPECT_EQ(ErrorOf({"--thread_spare_timeout=0"}),
            "--thread_spare_timeout: 0 is out of range (1ms..1h; "
            "--thread_spare_max=0 turns the cache off)");
  EXPECT_TRUE(Parse({"--thread_spare_max=0"}).ok());
}

// The fork pool's bounds (issue 16), as the thread cache's: min <= max <=
// 10000, a timeout of 1ms..1h; a child serves 1..10^9 connections.
TEST_F(ConfigTest, ForkPoolFlagsAndTheirBounds) {
  absl::StatusOr<ParsedCommandLine> parsed = Parse({});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.fork_spare_min, 0u);
  EXPECT_EQ(parsed->config.fork_spare_max, 0u);
  EXPECT_EQ(parsed->config.fork_spare_timeout, absl::Seconds(10));
  EXPECT_EQ(parsed->config.fork_child_max_connections, 1u);
  env_["UPPER_FORK_SPARE_MIN"] = "4";
  env_["UPPER_FORK_SPARE_TIMEOUT"] = "1.2ms";
  env_["UPPER_FORK_CHILD_MAX_CONNECTIONS"] = "1000";
  parsed = Parse({"--fork_spare_max=4"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.fork_spare_min, 4u);
  EXPECT_EQ(parsed->config.fork_spare_max, 4u);
  EXPECT_EQ(parsed->config.fork_spare_timeout, absl::Milliseconds(2));
  EXPECT_EQ(parsed->config.fork_child_max_connections, 1000u);
  EXPECT_EQ(parsed->config.from_env.count("fork_child_max_connections"), 1u);
  // The thread cache is left alone.
  EXPECT_EQ(parsed->config.thread_spare_max, 0u);
  EXPECT_EQ(ErrorOf({"--fork_spare_max=3"}),
            "UPPER_FORK_SPARE_MIN: 4 is out of range (0..3, the "
            "--fork_spare_max)");
  env_["UPPER_FORK_CHILD_MAX_CONNECTIONS"] = "0";
  EXPECT_EQ(ErrorOf({"--fork_spare_max=4"}),
            "UPPER_FORK_CHILD_MAX_CONNECTIONS: 0 is out of range "
            "(1..1000000000; 1 = a fresh child for every connection)");
  env_.clear();
  EXPECT_EQ(ErrorOf({"--fork_spare_max=10001"}),
            "--fork_spare_max: 10001 is out of range (0..10000)");
  EXPECT_EQ(ErrorOf({"--fork_spare_min=-1"}),
            "--fork_spare_min: -1 is out of range (0..0, the "
            "--fork_spare_max)");
  EXPECT_EQ(ErrorOf({"--fork_spare_timeout=2h"}),
            "--fork_spare_timeout: 2h is out of range (1ms..1h; "
            "--fork_spare_max=0 turns the pool off)");
  EXPECT_EQ(ErrorOf({"--fork_child_max_connections=1000000001"}),
            "--fork_child_max_connections: 1000000001 is out of range "
            "(1..1000000000; 1 = a fresh child for every connection)");
  parsed = Parse({"--fork_child_max_connections=1000000000"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.fork_child_max_connections, 1000000000u);
}

// Like every UPPER_* variable, a link-shaped value in one of the fork pool's
// is reported as such, and not read when its flag is given.
TEST_F(ConfigTest, ForkPoolVariableWithAServiceLinkValueIsRefused) {
  env_["UPPER_FORK_SPARE_MAX"] = "tcp://10.96.0.11:50051";
  const std::string error = ErrorOf({});
  EXPECT_EQ(error.rfind("UPPER_FORK_SPARE_MAX=tcp://10.96.0.11:50051 looks "
                        "like a Kubernetes service link",
                        0),
            0u)
      << error;
  EXPECT_TRUE(Parse({"--fork_spare_max=2"}).ok());
}

// --send_timeout (issue 15) is validated exactly like --idle_timeout.
TEST_F(ConfigTest, SendTimeoutIsValidatedLikeTheIdleTimeout) {
  absl::StatusOr<ParsedCommandLine> parsed = Parse({});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.send_timeout, absl::Seconds(60));
  parsed = Parse({"--send_timeout=1.2ms"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.send_timeout, absl::Milliseconds(2));
  env_["UPPER_SEND_TIMEOUT"] = "0";
  parsed = Parse({});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.send_timeout, absl::ZeroDuration());
  EXPECT_EQ(ErrorOf({"--send_timeout=500us"}),
            "--send_timeout: 500us is out of range (0, or 1ms..576h)");
  EXPECT_EQ(ErrorOf({"--send_timeout=-1s"}).rfind("--send_timeout: ", 0), 0u);
  env_["UPPER_SEND_TIMEOUT"] = "1000h";
  EXPECT_EQ(ErrorOf({}),
            "UPPER_SEND_TIMEOUT: 1000h is out of range (0, or 1ms..576h)");
}

TEST_F(ConfigTest, RequestedLogFormatIsReadBeforeTheFullParse) {
  const auto requested = [this](std::vector<const char*> args) {
    args.insert(args.begin(), "upperd");
    return RequestedLogFormat(
        static_cast<int>(args.size()), args.data(),
        [this](absl::string_view name) -> std::optional<std::string> {
          auto it = env_.find(std::string(name));
          if (it == env_.end()) return std::nullopt;
          return it->second;
        });
  };
  EXPECT_EQ(requested({"--bogus"}), LogFormat::kText);
  EXPECT_EQ(requested({"--log_format=json", "--bogus"}), LogFormat::kJson);
  EXPECT_EQ(requested({"-log_format", "json"}), LogFormat::kJson);
  EXPECT_EQ(requested({"--log_format=json", "--log_format=text"}),
            LogFormat::kText);
  EXPECT_EQ(requested({"--", "--log_format=json"}), LogFormat::kText);
  env_["UPPER_LOG_FORMAT"] = "json";
  EXPECT_EQ(requested({"--admin_nice=30"}), LogFormat::kJson);
  EXPECT_EQ(requested({"--log_format=text"}), LogFormat::kText);
  env_["UPPER_LOG_FORMAT"] = "yaml";  // the full parse reports it
  EXPECT_EQ(requested({}), LogFormat::kText);
}

TEST_F(ConfigTest, FlagsInBothSpellings) {
  absl::StatusOr<ParsedCommandLine> parsed =
      Parse({"--mode=fork", "--data_port", "1234", "--idle_timeout=0",
             "-max_connections=7", "--drain_timeout=1.5s", "--log_format=json",
             "--bind=::1"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const Config& c = parsed->config;
  EXPECT_EQ(c.mode, Mode::kFork);
  EXPECT_EQ(c.data_port, 1234);
  EXPECT_EQ(c.idle_timeout, absl::ZeroDuration());
  EXPECT_EQ(c.max_connections, 7u);
  EXPECT_EQ(c.drain_timeout, absl::Milliseconds(1500));
  EXPECT_EQ(c.log_format, LogFormat::kJson);
  EXPECT_EQ(c.bind, "::1");
}

TEST_F(ConfigTest, EnvironmentSetsAndFlagsWin) {
  env_["UPPER_MODE"] = "fork";
  env_["UPPER_DATA_PORT"] = "4000";
  absl::StatusOr<ParsedCommandLine> parsed = Parse({"--data_port=5000"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.mode, Mode::kFork);
  EXPECT_EQ(parsed->config.data_port, 5000);
}

TEST_F(ConfigTest, BadModeNamesTheFlag) {
  EXPECT_EQ(ErrorOf({"--mode=foo"}),
            "--mode: 'foo' is not a mode (expected fork or thread)");
}

TEST_F(ConfigTest, BadEnvironmentValueNamesTheVariable) {
  env_["UPPER_MODE"] = "spoon";
  EXPECT_EQ(ErrorOf({}),
            "UPPER_MODE: 'spoon' is not a mode (expected fork or thread)");
}

TEST_F(ConfigTest, OutOfRangeEnvironmentValueNamesTheVariable) {
  env_["UPPER_DATA_PORT"] = "65536";
  EXPECT_EQ(ErrorOf({}), "UPPER_DATA_PORT: 65536 is out of range (0..65535)");
  // The same value given as a flag names the flag, even with the variable
  // set to something valid.
  env_["UPPER_DATA_PORT"] = "80";
  EXPECT_EQ(ErrorOf({"--data_port=65536"}),
            "--data_port: 65536 is out of range (0..65535)");
}

TEST_F(ConfigTest, BindMustBeAnIpLiteral) {
  EXPECT_EQ(ErrorOf({"--bind=localhost"}),
            "--bind: 'localhost' is not an IPv4 or IPv6 address");
  env_["UPPER_BIND"] = "";
  EXPECT_EQ(ErrorOf({}), "UPPER_BIND: '' is not an IPv4 or IPv6 address");
  absl::StatusOr<ParsedCommandLine> bracketed = Parse({"--bind=[::1]"});
  EXPECT_TRUE(bracketed.ok()) << bracketed.status();
}

TEST_F(ConfigTest, MetricsBindIsAnIpv4OrIpv6Literal) {
  for (const char* ok : {"0.0.0.0", "127.0.0.1", "::", "::1", "[::]"}) {
    absl::StatusOr<ParsedCommandLine> parsed =
        Parse({absl::StrCat("--metrics_bind=", ok).c_str()});
    ASSERT_TRUE(parsed.ok()) << ok << ": " << parsed.status();
    EXPECT_EQ(parsed->config.metrics_bind, ok);
  }
  EXPECT_EQ(ErrorOf({"--metrics_bind=localhost"}),
            "--metrics_bind: 'localhost' is not an IPv4 or IPv6 address");
  env_["UPPER_METRICS_BIND"] = "metrics.local";
  EXPECT_EQ(ErrorOf({}),
            "UPPER_METRICS_BIND: 'metrics.local' is not an IPv4 or IPv6 "
            "address");
}

TEST_F(ConfigTest, PortOutOfRange) {
  EXPECT_EQ(ErrorOf({"--data_port=70000"}),
            "--data_port: 70000 is out of range (0..65535)");
  EXPECT_EQ(ErrorOf({"--data_port=-1"}),
            "--data_port: '-1' is not a port (decimal digits, 0..65535)");
}

TEST_F(ConfigTest, PortsAreDecimalDigitsOnly) {
  for (const char* port : {"0x2710", "+80", " 80", "80 ", "1e3", ""}) {
    EXPECT_EQ(ErrorOf({absl::StrCat("--admin_port=", port).c_str()}),
              absl::StrCat("--admin_port: '", port,
                           "' is not a port (decimal digits, 0..65535)"));
  }
}

TEST_F(ConfigTest, DurationsAreWholeMillisecondsRoundedUp) {
  absl::StatusOr<ParsedCommandLine> parsed =
      Parse({"--idle_timeout=1.2ms", "--drain_timeout=1500us"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.idle_timeout, absl::Milliseconds(2));
  EXPECT_EQ(parsed->config.drain_timeout, absl::Milliseconds(2));
  EXPECT_EQ(ErrorOf({"--idle_timeout=500us"}),
            "--idle_timeout: 500us is out of range (0, or 1ms..576h)");
  EXPECT_EQ(ErrorOf({"--drain_timeout=inf"}),
            "--drain_timeout: inf is out of range (0, or 1ms..1h)");
}

// --fork_server_timeout is a duration like the others: whole milliseconds,
// 0 (the watchdog off) or 1ms..1h, errors naming the flag or its variable.
TEST_F(ConfigTest, ForkServerTimeoutIsValidatedLikeTheOtherDurations) {
  absl::StatusOr<ParsedCommandLine> parsed =
      Parse({"--fork_server_timeout=1.2ms"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.fork_server_timeout, absl::Milliseconds(2));
  parsed = Parse({"--fork_server_timeout=0"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.fork_server_timeout, absl::ZeroDuration());
  EXPECT_EQ(ErrorOf({"--fork_server_timeout=2h"}),
            "--fork_server_timeout: 2h is out of range (0, or 1ms..1h)");
  EXPECT_EQ(ErrorOf({"--fork_server_timeout=soon"})
                .rfind("--fork_server_timeout: ", 0),
            0u);
  env_["UPPER_FORK_SERVER_TIMEOUT"] = "500us";
  EXPECT_EQ(ErrorOf({}),
            "UPPER_FORK_SERVER_TIMEOUT: 500us is out of range (0, or "
            "1ms..1h)");
  env_["UPPER_FORK_SERVER_TIMEOUT"] = "750ms";
  parsed = Parse({});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.fork_server_timeout, absl::Milliseconds(750));
}

TEST_F(ConfigTest, AdminBindIsALiteralLikeTheOtherBinds) {
  EXPECT_EQ(ErrorOf({"--admin_bind=localhost"}),
            "--admin_bind: 'localhost' is not an IPv4 or IPv6 address (for "
            "loopback use 127.0.0.1 or ::1)");
  absl::StatusOr<ParsedCommandLine> parsed = Parse({"--admin_bind=[::1]"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.admin_bind, "::1");
}

TEST_F(ConfigTest, NonNumericPort) {
  const std::string error = ErrorOf({"--data_port=http"});
  EXPECT_EQ(error.rfind("--data_port: ", 0), 0u) << error;
}

TEST_F(ConfigTest, MaxConnectionsMustBePositive) {
  EXPECT_EQ(ErrorOf({"--max_connections=0"}),
            "--max_connections: 0 is out of range (1..1000000)");
}

TEST_F(ConfigTest, BadDurations) {
  EXPECT_EQ(ErrorOf({"--idle_timeout=-1s"}).rfind("--idle_timeout: ", 0), 0u);
  EXPECT_EQ(ErrorOf({"--drain_timeout=soon"}).rfind("--drain_timeout: ", 0),
            0u);
}

TEST_F(ConfigTest, BadLogFormat) {
  EXPECT_EQ(ErrorOf({"--log_format=xml"}),
            "--log_format: 'xml' is not a format (expected text or json)");
}

TEST_F(ConfigTest, UnknownFlagAndStrayArgument) {
  EXPECT_EQ(ErrorOf({"--colour=red"}), "--colour: unknown flag (see --help)");
  EXPECT_EQ(ErrorOf({"serve"}),
            "unexpected argument 'serve' (upperd takes only flags)");
  EXPECT_EQ(ErrorOf({"--mode"}), "--mode: missing value");
}

// --flag=value for every flag, as a chart passes them; values differ from
// the defaults, so a test can tell that each one was applied.
const std::vector<const char*> kEveryFlag = {"--bind=127.0.0.1",
                                             "--data_port=19999",
                                             "--mode=fork",
                                             "--max_connections=77",
                                             "--idle_timeout=7s",
                                             "--drain_timeout=9s",
                                             "--fork_server_timeout=3s",
                                             "--thread_spare_min=1",
                                             "--thread_spare_max=2",
                                             "--thread_spare_timeout=3s",
                                             "--fork_spare_min=4",
                                             "--fork_spare_max=5",
                                             "--fork_spare_timeout=6s",
                                             "--fork_child_max_connections=7",
                                             "--log_format=json",
                                             "--admin_bind=0.0.0.0",
                                             "--admin_port=15051",
                                             "--admin_token_file=/run/token",
                                             "--admin_tls_cert=/c.pem",
                                             "--admin_tls_key=/k.pem",
                                             "--metrics_bind=0.0.0.0",
                                             "--metrics_port=19464"};

TEST_F(ConfigTest, GivenFlagsDoNotEvenParseTheirVariables) {
  // Values that cannot be parsed: each would fail if it were read.
  env_["UPPER_ADMIN_PORT"] = "tcp://10.96.0.11:50051";
  env_["UPPER_DATA_PORT"] = "not a port";
  env_["UPPER_MODE"] = "spoon";
  absl::StatusOr<ParsedCommandLine> parsed =
      Parse({"--admin_port=50051", "--data_port", "9999", "-mode=fork"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.admin_port, 50051);
  EXPECT_EQ(parsed->config.data_port, 9999);
  EXPECT_EQ(parsed->config.mode, Mode::kFork);
}

TEST_F(ConfigTest, EveryFlagGivenIgnoresEveryVariable) {
  for (const char* flag : kEveryFlag) {
    std::string name(absl::string_view(flag).substr(2));
    name = name.substr(0, name.find('='));
    env_["UPPER_" + absl::AsciiStrToUpper(name)] = "tcp://10.0.0.1:1";
  }
  absl::StatusOr<ParsedCommandLine> parsed = Parse(kEveryFlag);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.metrics_port, 19464);
  EXPECT_EQ(parsed->config.admin_tls_key, "/k.pem");
}

TEST_F(ConfigTest, ServiceLinkForAMissingFlagNamesTheVariable) {
  env_["UPPER_ADMIN_PORT"] = "tcp://10.96.0.11:50051";
  EXPECT_EQ(ErrorOf({"--data_port=9999"}),
            "UPPER_ADMIN_PORT=tcp://10.96.0.11:50051 looks like a Kubernetes "
            "service link (a Service named \"upper-admin\" in this "
            "namespace), not a port: set enableServiceLinks: false in the pod "
            "spec or pass --admin_port");
}

// The whole set a kubelet injects for the chart's Services (upper,
// upper-admin, upper-headless; ports data, admin, metrics). Only
// UPPER_ADMIN_PORT is one of upperd's variables: no flag is named port,
// service_host, service_port, headless_port...
TEST_F(ConfigTest, KubeletServiceLinksCollideOnlyWithAdminPort) {
  const std::map<std::string, std::string> injected =
      testing::KubeletServiceLinkEnv(testing::ChartServices());
  ASSERT_EQ(injected.at("UPPER_ADMIN_PORT"), "tcp://10.96.0.11:50051");
  std::set<std::string> colliding;
  for (const auto& [var, value] : injected) {
    env_ = {{var, value}};
    absl::StatusOr<ParsedCommandLine> parsed = Parse({});
    if (parsed.ok()) {
      EXPECT_EQ(parsed->config.admin_port, 50051) << var;
      EXPECT_EQ(parsed->config.data_port, 9999) << var;
      EXPECT_EQ(parsed->config.metrics_port, 9464) << var;
      continue;
    }
    colliding.insert(var);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(parsed.status().message(),
                                 absl::StrCat(var, "=", value,
                                              " looks like a Kubernetes "
                                              "service link")))
        << parsed.status();
  }
  EXPECT_EQ(colliding, std::set<std::string>{"UPPER_ADMIN_PORT"});
}

TEST_F(ConfigTest, KubeletServiceLinksAreHarmlessWithTheChartsFlags) {
  env_ = testing::KubeletServiceLinkEnv(testing::ChartServices());
  absl::StatusOr<ParsedCommandLine> parsed = Parse(kEveryFlag);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const Config& c = parsed->config;
  EXPECT_EQ(c.bind, "127.0.0.1");
  EXPECT_EQ(c.data_port, 19999);
  EXPECT_EQ(c.admin_port, 15051);
  EXPECT_EQ(c.metrics_port, 19464);
  EXPECT_EQ(c.thread_spare_max, 2u);
  EXPECT_EQ(c.fork_spare_min, 4u);
  EXPECT_EQ(c.fork_spare_max, 5u);
  EXPECT_EQ(c.fork_spare_timeout, absl::Seconds(6));
  EXPECT_EQ(c.fork_child_max_connections, 7u);
  EXPECT_EQ(c.max_connections, 77u);
  // All together without the flags: the first colliding variable fails.
  absl::StatusOr<ParsedCommandLine> bare = Parse({});
  ASSERT_FALSE(bare.ok());
  EXPECT_TRUE(absl::StartsWith(bare.status().message(),
                               "UPPER_ADMIN_PORT=tcp://10.96.0.11:50051 looks "
                               "like a Kubernetes service link"));
}

TEST_F(ConfigTest, HelpAndVersion) {
  absl::StatusOr<ParsedCommandLine> help = Parse({"--help"});
  ASSERT_TRUE(help.ok());
  EXPECT_EQ(help->action, ParsedCommandLine::Action::kHelp);
  const std::string usage = UsageText();
  for (const char* flag :
       {"--bind", "--data_port", "--mode", "--max_connections",
        "--idle_timeout", "--send_timeout", "--drain_timeout",
        "--fork_server_timeout", "UPPER_FORK_SERVER_TIMEOUT", "--log_format",
        "UPPER_MODE", "UPPER_SEND_TIMEOUT", "--fork_spare_min",
        "--fork_spare_max", "--fork_spare_timeout",
        "--fork_child_max_connections", "UPPER_FORK_CHILD_MAX_CONNECTIONS"}) {
    EXPECT_NE(usage.find(flag), std::string::npos) << flag;
  }
  absl::StatusOr<ParsedCommandLine> version = Parse({"--version"});
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version->action, ParsedCommandLine::Action::kVersion);
}

}  // namespace
}  // namespace upper
