// upperd's configuration: every flag, its UPPER_* environment variable, and
// the validated Config they become. Nothing else in upperd reads flags.
//
// Precedence: a flag on the command line wins over its environment variable
// (UPPER_ + the flag name upper-cased: --data_port <- UPPER_DATA_PORT), which
// wins over the default. A flag's variable is not even read when the flag is
// on the command line, because a kubelet injects service links whose names
// collide with ours (a Service "upper-admin" gives
// UPPER_ADMIN_PORT=tcp://10.96.0.11:50051); such a value for a flag that is
// not given fails with a line that says so (service_link.h).
// Not thread-safe: parse once, at start-up.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/base/log.h"
#include "server/base/mode.h"

namespace upper {

struct Config {
  std::string bind = "0.0.0.0";
  uint16_t data_port = 9999;  // 0 = any free port (tests)
  Mode mode = Mode::kThread;
  uint32_t max_connections = 10000;
  absl::Duration idle_timeout = absl::Seconds(300);  // zero = off
  absl::Duration send_timeout = absl::Seconds(60);   // zero = off
  absl::Duration drain_timeout = absl::Seconds(30);
  // Work handed to the fork server and not acknowledged for this long means
  // it is hung: it is killed and replaced. Zero: never.
  absl::Duration fork_server_timeout = absl::Seconds(5);
  LogFormat log_format = LogFormat::kText;
  // Thread mode's thread cache (README "Thread cache"): spare threads kept
  // waiting for the next connection, at least min (never timed out), at most
  // max (0 = off), each beyond min for at most the timeout.
  uint32_t thread_spare_min = 0;
  uint32_t thread_spare_max = 0;  // off for now: README, "Thread cache"
  absl::Duration thread_spare_timeout = absl::Seconds(10);
  // Fork mode's pool of ready children (README "Fork pool"), kept by the
  // fork server: spare children at least min, at most max (0 = a fresh
  // child per connection), each beyond min idle for at most the timeout;
  // a child serves at most fork_child_max_connections (1 = one each).
  uint32_t fork_spare_min = 0;
  uint32_t fork_spare_max = 0;
  absl::Duration fork_spare_timeout = absl::Seconds(10);
  uint32_t fork_child_max_connections = 1;

  // Admin plane (gRPC). Loopback by default: it can close connections and
  // switch modes, so exposing it is a deliberate choice (the image does).
  std::string admin_bind = "127.0.0.1";
  uint16_t admin_port = 50051;   // 0 = any free port (tests)
  std::string admin_token_file;  // empty = no token required
  std::string admin_tls_cert;    // PEM; both or neither with the key
  std::string admin_tls_key;
  // Nice increment of every admin-plane (gRPC) thread over the data plane's:
  // an unauthenticated peer can make gRPC 1.51 burn CPU (HTTP/2 rapid
  // reset), and this keeps it from taking the data plane's share.
  int admin_nice = 10;

  // Prometheus /metrics. Read-only, so reachable by default.
  std::string metrics_bind = "0.0.0.0";
  uint16_t metrics_port = 9464;  // 0 = any free port (tests)

  // The flags whose value came from their UPPER_<FLAG> variable, so that an
  // error found later (reading --admin_token_file) names what was set.
  std::set<std::string> from_env;
};

// What the command line asks for.
struct ParsedCommandLine {
  enum class Action { kRun, kHelp, kVersion };
  Action action = Action::kRun;
  Config config;
};

// Looks up an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(absl::string_view)>;
EnvLookup ProcessEnvironment();

// Parses argv (argv[0] is the program) and the environment. Errors are
// InvalidArgument with a one-line message that names the flag or variable,
// e.g. "--mode: 'foo' is not a mode (expected fork or thread)".
// The log format asked for by --log_format (last one wins) or, without
// it, UPPER_LOG_FORMAT; text when neither names a format. Read before the
// full parse, so that a bad flag or variable is reported in the format the
// operator chose: a JSON log stays JSON on every line, the error included.
LogFormat RequestedLogFormat(int argc, const char* const* argv,
                             const EnvLookup& env);

absl::StatusOr<ParsedCommandLine> ParseCommandLine(int argc,
                                                   const char* const* argv,
                                                   const EnvLookup& env);

// `error` (a message "--<flag>: ...") with the flag replaced by its
// UPPER_<FLAG> variable when `config` took that flag from the environment.
absl::Status NameTheVariable(const absl::Status& error, const Config& config);

// The --help text: every flag with its default and help.
std::string UsageText();

}  // namespace upper
