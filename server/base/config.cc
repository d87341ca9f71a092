#include "server/base/config.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/host_port.h"
#include "server/base/service_link.h"

// Defaults here are the product's defaults; Config's initialisers match.
ABSL_FLAG(std::string, bind, "0.0.0.0",
          "Address the data port listens on (IPv4 or IPv6 literal)");
ABSL_FLAG(int32_t, data_port, 9999,
          "TCP port of the upper-casing data service; 0 picks a free one");
ABSL_FLAG(upper::Mode, mode, upper::Mode::kThread,
          "Worker mode for new connections: fork or thread");
ABSL_FLAG(int32_t, max_connections, 10000,
          "Connections served at once; the next one is accepted, closed "
          "and counted as rejected");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(300),
          "Close a connection with no progress for this long; 0 = never, "
          "else 1ms..576h, sub-millisecond remainders rounded up");
ABSL_FLAG(absl::Duration, send_timeout, absl::Seconds(60),
          "Close a connection whose peer accepts no byte of its output for "
          "this long; 0 = never, else 1ms..576h, sub-millisecond "
          "remainders rounded up");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(30),
          "On SIGTERM/SIGINT, how long live connections may finish; "
          "0..1h, sub-millisecond remainders rounded up");
ABSL_FLAG(absl::Duration, fork_server_timeout, absl::Seconds(5),
          "Kill and replace the fork server when work handed to it is not "
          "acknowledged for this long; 0 = never, else 1ms..1h, "
          "sub-millisecond remainders rounded up");
ABSL_FLAG(int32_t, thread_spare_min, 0,
          "Thread mode: spare threads always kept waiting for the next "
          "connection (0..thread_spare_max)");
ABSL_FLAG(int32_t, thread_spare_max, 0,
          "Thread mode: most spare threads kept waiting for the next "
          "connection; 0 (the default for now) = every thread exits after "
          "its connection; 0..10000, 64 recommended");
ABSL_FLAG(absl::Duration, thread_spare_timeout, absl::Seconds(10),
          "Thread mode: a spare beyond --thread_spare_min exits after "
          "waiting this long; 1ms..1h, sub-millisecond remainders rounded up");
ABSL_FLAG(int32_t, fork_spare_min, 0,
          "Fork mode: spare children the fork server always keeps ready "
          "for the next connection (0..fork_spare_max)");
ABSL_FLAG(int32_t, fork_spare_max, 0,
          "Fork mode: most spare children kept ready for the next "
          "connection; 0 (the default) = a child is forked when its "
          "connection arrives; 0..10000");
ABSL_FLAG(absl::Duration, fork_spare_timeout, absl::Seconds(10),
          "Fork mode: a spare child beyond --fork_spare_min exits after "
          "waiting this long; 1ms..1h, sub-millisecond remainders rounded up");
ABSL_FLAG(int32_t, fork_child_max_connections, 1,
          "Fork mode: connections one child serves, one after another, "
          "before it exits; 1 (the default) = a fresh process for every "
          "connection, so nothing of one connection is left in the process "
          "that serves the next; 1..1000000000");
ABSL_FLAG(std::string, log_format, "text", "Log lines as text or json");
ABSL_FLAG(std::string, admin_bind, "127.0.0.1",
          "Address of the gRPC admin endpoint (the container image sets "
          "0.0.0.0)");
ABSL_FLAG(int32_t, admin_port, 50051,
          "TCP port of the gRPC admin endpoint; 0 picks a free one");
ABSL_FLAG(std::string, admin_token_file, "",
          "File holding the bearer token every AdminService call must carry; "
          "leave it out for no token (an empty value is an error)");
ABSL_FLAG(std::string, admin_tls_cert, "",
          "PEM certificate for TLS on the admin port (with --admin_tls_key)");
ABSL_FLAG(std::string, admin_tls_key, "",
          "PEM private key for TLS on the admin port (with --admin_tls_cert)");
ABSL_FLAG(int32_t, admin_nice, 10,
          "How much lower the admin plane's CPU priority is than the data "
          "plane's (a nice increment, 0..19; every gRPC thread runs at it)");
ABSL_FLAG(std::string, metrics_bind, "0.0.0.0",
          "Address of the Prometheus /metrics endpoint (IPv4 or IPv6 "
          "literal; \"::\" serves both)");
ABSL_FLAG(int32_t, metrics_port, 9464,
          "TCP port of the Prometheus /metrics endpoint; 0 picks a free one");

namespace upper {
namespace {

// Every flag upperd reads, in --help order.
constexpr absl::string_view kFlagNames[] = {"bind",
                                            "data_port",
                                            "mode",
                                            "max_connections",
                                            "idle_timeout",
                                            "send_timeout",
                                            "drain_timeout",
                                            "fork_server_timeout",
                                            "thread_spare_min",
                                            "thread_spare_max",
                                            "thread_spare_timeout",
                                            "fork_spare_min",
                                            "fork_spare_max",
                                            "fork_spare_timeout",
                                            "fork_child_max_connections",
                                            "log_format",
                                            "admin_bind",
                                            "admin_port",
                                            "admin_token_file",
                                            "admin_tls_cert",
                                            "admin_tls_key",
                                            "admin_nice",
                                            "metrics_bind",
                                            "metrics_port"};

// Flags that name a file and turn a feature off when left out (no token,
// no TLS), with what leaving them out means. Given empty, as a flag or as a
// variable that is set ("UPPER_ADMIN_TOKEN_FILE=", an unset secret in a
// template), they would turn that feature off silently: an error instead.
struct OptionalFileFlag {
  absl::string_view name;
  absl::string_view when_left_out;
};
constexpr OptionalFileFlag kOptionalFileFlags[] = {
    {"admin_token_file", "no token"},
    {"admin_tls_cert", "no TLS"},
    {"admin_tls_key", "no TLS"},
};

// InvalidArgument when `value` is empty and `name` is an optional file
// flag; `source` is "--flag" or the variable, `given` how it was given.
absl::Status RejectEmptyFile(absl::string_view source, absl::string_view name,
                             absl::string_view value, absl::string_view given,
                             absl::string_view leave_out) {
  if (!value.empty()) return absl::OkStatus();
  for (const OptionalFileFlag& flag : kOptionalFileFlags) {
    if (flag.name != name) continue;
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": ", given, " empty; ", leave_out, " for ",
                     flag.when_left_out, ", or name the file"));
  }
  return absl::OkStatus();
}

bool IsOurFlag(absl::string_view name) {
  for (absl::string_view known : kFlagNames) {
    if (known == name) return true;
  }
  return false;
}

std::string EnvName(absl::string_view flag) {
  return absl::StrCat("UPPER_", absl::AsciiStrToUpper(flag));
}

absl::Status SetFlagFromText(absl::string_view source, absl::string_view name,
                             absl::string_view value) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  if (flag == nullptr || !IsOurFlag(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": unknown flag (see --help)"));
  }
  // absl's int parser takes "0x2710" (10000), "+80" and surrounding
  // spaces; a port is written in decimal digits only.
  if (absl::EndsWith(name, "_port") &&
      (value.empty() || value.size() > 5 ||
       !std::all_of(value.begin(), value.end(), absl::ascii_isdigit))) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": '", value, "' is not a port (decimal digits, 0..65535)"));
  }
  std::string error;
  if (!flag->ParseFrom(value, &error)) {
    // absl prefixes "Illegal value 'x' specified for flag 'y'; " when the
    // type's parser gave its own reason: keep just the reason.
    absl::string_view reason = error;
    if (const size_t cut = reason.find("; ");
        cut != absl::string_view::npos &&
        absl::StartsWith(reason, "Illegal value")) {
      reason.remove_prefix(cut + 2);
    }
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", reason));
  }
  return absl::OkStatus();
}

absl::Status ValidatePort(absl::string_view flag, int32_t port, uint16_t* out) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": ", port, " is out of range (0..65535)"));
  }
  *out = static_cast<uint16_t>(port);
  return absl::OkStatus();
}

// A duration flag as upperd uses it, in whole milliseconds: 0 or 1ms..`max`,
// a sub-millisecond remainder rounded up (1.2ms is 2ms). Below 1ms a
// non-zero value is refused: it used to be shown as 0 ms and mean "never".
absl::StatusOr<absl::Duration> WholeMilliseconds(absl::string_view flag,
                                                 absl::Duration d,
                                                 absl::Duration max) {
  if (d == absl::ZeroDuration()) return d;
  if (d < absl::Milliseconds(1) || d > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, ": ", absl::FormatDuration(d),
        " is out of range (0, or 1ms..", absl::FormatDuration(max), ")"));
  }
  return absl::Ceil(d, absl::Milliseconds(1));
}

absl::Status DurationsFromFlags(Config& c) {
  struct DurationFlag {
    const char* name;
    const absl::Flag<absl::Duration>& flag;
    absl::Duration max;
    absl::Duration Config::*field;
  };
  const DurationFlag flags[] = {
      {"idle_timeout", FLAGS_idle_timeout, absl::Hours(576),
       &Config::idle_timeout},
      {"send_timeout", FLAGS_send_timeout, absl::Hours(576),
       &Config::send_timeout},
      {"drain_timeout", FLAGS_drain_timeout, absl::Hours(1),
       &Config::drain_timeout},
      {"fork_server_timeout", FLAGS_fork_server_timeout, absl::Hours(1),
       &Config::fork_server_timeout},
  };
  for (const DurationFlag& d : flags) {
    absl::StatusOr<absl::Duration> value =
        WholeMilliseconds(d.name, absl::GetFlag(d.flag), d.max);
    if (!value.ok()) return value.status();
    c.*d.field = *value;
  }
  return absl::OkStatus();
}

// A pool of spare workers (--thread_spare_* or --fork_spare_*): min <= max
// <= 10000, a timeout of 1ms..1h (0 would make every spare leave at once:
// max=0 says that).
struct SparePoolFlags {
  absl::string_view prefix;  // "thread_spare" or "fork_spare"
  absl::string_view pool;    // what max=0 turns off
  const absl::Flag<int32_t>& min;
  const absl::Flag<int32_t>& max;
  const absl::Flag<absl::Duration>& timeout;
};

struct SparePool {
  uint32_t min = 0;
  uint32_t max = 0;
  absl::Duration timeout;
};

absl::StatusOr<SparePool> SparePoolFromFlags(const SparePoolFlags& f) {
  const int32_t min = absl::GetFlag(f.min);
  const int32_t max = absl::GetFlag(f.max);
  if (max < 0 || max > 10000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", f.prefix, "_max: ", max, " is out of range (0..10000)"));
  }
  if (min < 0 || min > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", f.prefix, "_min: ", min, " is out of range (0..",
                     max, ", the --", f.prefix, "_max)"));
  }
  const absl::Duration timeout = absl::GetFlag(f.timeout);
  if (timeout < absl::Milliseconds(1) || timeout > absl::Hours(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", f.prefix, "_timeout: ", absl::FormatDuration(timeout),
        " is out of range (1ms..1h; --", f.prefix, "_max=0 turns the ", f.pool,
        " off)"));
  }
  return SparePool{.min = static_cast<uint32_t>(min),
                   .max = static_cast<uint32_t>(max),
                   .timeout = absl::Ceil(timeout, absl::Milliseconds(1))};
}

// The thread cache (--thread_spare_*) and the fork pool (--fork_spare_*,
// --fork_child_max_connections: 1..10^9, 1 = a fresh child each).
absl::Status WorkerPoolsFromFlags(Config& c) {
  absl::StatusOr<SparePool> threads =
      SparePoolFromFlags({"thread_spare", "cache", FLAGS_thread_spare_min,
                          FLAGS_thread_spare_max, FLAGS_thread_spare_timeout});
  if (!threads.ok()) return threads.status();
  c.thread_spare_min = threads->min;
  c.thread_spare_max = threads->max;
  c.thread_spare_timeout = threads->timeout;
  absl::StatusOr<SparePool> children =
      SparePoolFromFlags({"fork_spare", "pool", FLAGS_fork_spare_min,
                          FLAGS_fork_spare_max, FLAGS_fork_spare_timeout});
  if (!children.ok()) return children.status();
  c.fork_spare_min = children->min;
  c.fork_spare_max = children->max;
  c.fork_spare_timeout = children->timeout;
  const int32_t per_child = absl::GetFlag(FLAGS_fork_child_max_connections);
  if (per_child < 1 || per_child > 1000000000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--fork_child_max_connections: ", per_child,
                     " is out of range (1..1000000000; 1 = a fresh child for "
                     "every connection)"));
  }
  c.fork_child_max_connections = static_cast<uint32_t>(per_child);
  return absl::OkStatus();
}

absl::Status AdminAndMetricsFromFlags(Config& c) {
  c.admin_bind = absl::GetFlag(FLAGS_admin_bind);
  if (c.admin_bind.empty()) {
    return absl::InvalidArgumentError("--admin_bind: must not be empty");
  }
  // As --bind and --metrics_bind: a literal, no name lookup.
  if (!IsIpLiteral(StripBrackets(c.admin_bind))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--admin_bind: '", c.admin_bind, "' is not an IPv4 or IPv6 address",
        absl::EqualsIgnoreCase(c.admin_bind, "localhost")
            ? " (for loopback use 127.0.0.1 or ::1)"
            : ""));
  }
  // Kept without brackets: JoinHostPort adds them back for the listener.
  c.admin_bind = std::string(StripBrackets(c.admin_bind));
  if (absl::Status s = ValidatePort(
          "admin_port", absl::GetFlag(FLAGS_admin_port), &c.admin_port);
      !s.ok()) {
    return s;
  }
  c.admin_token_file = absl::GetFlag(FLAGS_admin_token_file);
  c.admin_tls_cert = absl::GetFlag(FLAGS_admin_tls_cert);
  c.admin_tls_key = absl::GetFlag(FLAGS_admin_tls_key);
  if (c.admin_tls_cert.empty() != c.admin_tls_key.empty()) {
    return absl::InvalidArgumentError(
        c.admin_tls_cert.empty()
            ? "--admin_tls_cert: required when --admin_tls_key is set"
            : "--admin_tls_key: required when --admin_tls_cert is set");
  }
  const int32_t admin_nice = absl::GetFlag(FLAGS_admin_nice);
  if (admin_nice < 0 || admin_nice > 19) {
    return absl::InvalidArgumentError(
        absl::StrCat("--admin_nice: ", admin_nice, " is out of range (0..19)"));
  }
  c.admin_nice = admin_nice;
  c.metrics_bind = absl::GetFlag(FLAGS_metrics_bind);
  if (c.metrics_bind.empty()) {
    return absl::InvalidArgumentError("--metrics_bind: must not be empty");
  }
  // As --bind: an IPv4 or IPv6 literal, no name lookup; "::" is dual stack.
  if (!IsIpLiteral(StripBrackets(c.metrics_bind))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics_bind: '", c.metrics_bind,
                     "' is not an IPv4 or IPv6 address"));
  }
  return ValidatePort("metrics_port", absl::GetFlag(FLAGS_metrics_port),
                      &c.metrics_port);
}

absl::StatusOr<Config> ConfigFromFlags() {
  Config c;
  c.bind = absl::GetFlag(FLAGS_bind);
  // "0.0.0.0", "::1" or "[::1]": what the data listener binds without a
  // name lookup.
  if (!IsIpLiteral(StripBrackets(c.bind))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--bind: '", c.bind, "' is not an IPv4 or IPv6 address"));
  }
  if (absl::Status s = ValidatePort("data_port", absl::GetFlag(FLAGS_data_port),
                                    &c.data_port);
      !s.ok()) {
    return s;
  }
  c.mode = absl::GetFlag(FLAGS_mode);
  if (c.mode != Mode::kFork && c.mode != Mode::kThread) {
    return absl::InvalidArgumentError("--mode: expected fork or thread");
  }
  const int32_t max_connections = absl::GetFlag(FLAGS_max_connections);
  if (max_connections < 1 || max_connections > 1000000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_connections: ", max_connections,
                     " is out of range (1..1000000)"));
  }
  c.max_connections = static_cast<uint32_t>(max_connections);
  if (absl::Status s = DurationsFromFlags(c); !s.ok()) return s;
  if (absl::Status s = WorkerPoolsFromFlags(c); !s.ok()) return s;
  const std::string log_format = absl::GetFlag(FLAGS_log_format);
  if (!ParseLogFormat(log_format, &c.log_format)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--log_format: '", log_format,
                     "' is not a format (expected text or "
                     "json)"));
  }
  if (absl::Status s = AdminAndMetricsFromFlags(c); !s.ok()) return s;
  return c;
}

// Validation errors start with "--<flag>: "; when that flag's value came
// from UPPER_<FLAG>, say so instead.
absl::Status NameTheVariable(const absl::Status& error,
                             const std::set<std::string>& from_env) {
  absl::string_view message = error.message();
  if (!absl::ConsumePrefix(&message, "--")) return error;
  const size_t colon = message.find(": ");
  if (colon == absl::string_view::npos) return error;
  const std::string flag(message.substr(0, colon));
  if (!from_env.contains(flag)) return error;
  return absl::Status(error.code(),
                      absl::StrCat(EnvName(flag), message.substr(colon)));
}

// Sets every flag back to its default, so that a parse depends only on its
// argv and environment (not on an earlier parse in the same process).
void ResetFlagsToDefaults() {
  for (absl::string_view name : kFlagNames) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::string ignored;
    flag->ParseFrom(flag->DefaultValue(), &ignored);
  }
}

// One flag of argv, as written: "--name=value", "--name value" or the same
// with one dash.
struct FlagArgument {
  std::string name;
  std::string value;
};

// What argv says, before anything is parsed: the action, and the flags in
// order. Scanning first lets the environment skip every flag the command
// line gives, so that "flags win" holds even for a variable that could not
// be parsed (a kubelet's UPPER_ADMIN_PORT=tcp://... service link).
struct ScannedArguments {
  ParsedCommandLine::Action action = ParsedCommandLine::Action::kRun;
  std::vector<FlagArgument> flags;
};

// argv[i] as a flag; advances `i` past a separate value.
absl::StatusOr<FlagArgument> ScanFlagArgument(int argc, const char* const* argv,
                                              int& i) {
  absl::string_view arg = argv[i];
  if (!absl::StartsWith(arg, "-") || arg == "-" || arg == "--") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unexpected argument '", arg, "' (upperd takes only flags)"));
  }
  arg.remove_prefix(absl::StartsWith(arg, "--") ? 2 : 1);
  const size_t eq = arg.find('=');
  FlagArgument flag;
  flag.name = std::string(arg.substr(0, eq));
  if (!IsOurFlag(flag.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag.name, ": unknown flag (see --help)"));
  }
  if (eq != absl::string_view::npos) {
    flag.value = std::string(arg.substr(eq + 1));
  } else if (i + 1 < argc) {
    flag.value = argv[++i];
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag.name, ": missing value"));
  }
  return flag;
}

// argv in order. --help, -h, --helpfull and --version end the scan where
// they stand.
absl::StatusOr<ScannedArguments> ScanArguments(int argc,
                                               const char* const* argv) {
  ScannedArguments scanned;
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "--helpfull") {
      scanned.action = ParsedCommandLine::Action::kHelp;
      return scanned;
    }
    if (arg == "--version") {
      scanned.action = ParsedCommandLine::Action::kVersion;
      return scanned;
    }
    absl::StatusOr<FlagArgument> flag = ScanFlagArgument(argc, argv, i);
    if (!flag.ok()) return flag.status();
    scanned.flags.push_back(*std::move(flag));
  }
  return scanned;
}

bool IsGiven(const ScannedArguments& scanned, absl::string_view name) {
  for (const FlagArgument& flag : scanned.flags) {
    if (flag.name == name) return true;
  }
  return false;
}

// The environment layer: UPPER_<FLAG> for every flag the command line does
// not give (those variables are not even read). Returns the flags it set, so
// that a validation error can name the variable the operator actually set.
absl::StatusOr<std::set<std::string>> ApplyEnvironment(
    const EnvLookup& env, const ScannedArguments& scanned) {
  std::set<std::string> from_env;
  for (absl::string_view name : kFlagNames) {
    if (IsGiven(scanned, name)) continue;
    const std::string var = EnvName(name);
    std::optional<std::string> value = env(var);
    if (!value) continue;
    if (LooksLikeServiceLink(*value)) {
      return absl::InvalidArgumentError(ServiceLinkError(var, *value, name));
    }
    if (absl::Status s =
            RejectEmptyFile(var, name, *value, "set but", "unset it");
        !s.ok()) {
      return s;
    }
    if (absl::Status s = SetFlagFromText(var, name, *value); !s.ok()) {
      return s;
    }
    from_env.insert(std::string(name));
  }
  return from_env;
}

// The flag layer, over the environment.
absl::Status ApplyArguments(const ScannedArguments& scanned) {
  for (const FlagArgument& flag : scanned.flags) {
    const std::string source = absl::StrCat("--", flag.name);
    if (absl::Status s = RejectEmptyFile(source, flag.name, flag.value, "given",
                                         "leave the flag out");
        !s.ok()) {
      return s;
    }
    if (absl::Status s = SetFlagFromText(source, flag.name, flag.value);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

LogFormat RequestedLogFormat(int argc, const char* const* argv,
                             const EnvLookup& env) {
  std::optional<std::string> value = env("UPPER_LOG_FORMAT");
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--")) absl::ConsumePrefix(&arg, "-");
    if (arg == "log_format" && i + 1 < argc) {
      value = argv[++i];
    } else if (absl::ConsumePrefix(&arg, "log_format=")) {
      value = std::string(arg);
    }
  }
  LogFormat format = LogFormat::kText;
  if (value) ParseLogFormat(*value, &format);
  return format;
}

EnvLookup ProcessEnvironment() {
  return [](absl::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

absl::StatusOr<ParsedCommandLine> ParseCommandLine(int argc,
                                                   const char* const* argv,
                                                   const EnvLookup& env) {
  ResetFlagsToDefaults();
  absl::StatusOr<ScannedArguments> scanned = ScanArguments(argc, argv);
  if (!scanned.ok()) return scanned.status();
  ParsedCommandLine parsed;
  parsed.action = scanned->action;
  if (parsed.action != ParsedCommandLine::Action::kRun) return parsed;
  absl::StatusOr<std::set<std::string>> from_env =
      ApplyEnvironment(env, *scanned);
  if (!from_env.ok()) return from_env.status();
  if (absl::Status s = ApplyArguments(*scanned); !s.ok()) return s;
  absl::StatusOr<Config> config = ConfigFromFlags();
  if (!config.ok()) return NameTheVariable(config.status(), *from_env);
  parsed.config = *std::move(config);
  parsed.config.from_env = *std::move(from_env);
  return parsed;
}

absl::Status NameTheVariable(const absl::Status& error, const Config& config) {
  return NameTheVariable(error, config.from_env);
}

std::string UsageText() {
  std::string out =
      "usage: upperd [--flag=value ...]\n"
      "Serves TCP on --data_port: every byte sent comes back upper-cased.\n"
      "Each flag may also be set as UPPER_<FLAG> in the environment; flags "
      "win.\n\n";
  for (absl::string_view name : kFlagNames) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    absl::StrAppend(&out, "  --", name, " (default ", flag->DefaultValue(),
                    ", env ", EnvName(name), ")\n      ", flag->Help(), "\n");
  }
  return out;
}

}  // namespace upper
