#include "ctl/options.h"

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/bounded_file.h"
#include "common/token_rule.h"
#include "ctl/mode_name.h"
#include "ctl/tls_ca.h"

// Empty strings mean "not given", so the environment fallbacks can apply.
ABSL_FLAG(std::string, addr, "",
          "admin address(es): host:port, several comma-separated, or "
          "dns:///name:port for every address of a name (default "
          "$UPPERCTL_ADDR, else localhost:50051)");
ABSL_FLAG(std::string, token, "",
          "admin token, sent as 'authorization: Bearer <token>' (default "
          "$UPPER_ADMIN_TOKEN)");
ABSL_FLAG(std::string, token_file, "",
          "file holding the admin token (surrounding whitespace ignored; a "
          "regular file of at most 64 KiB)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(5),
          "deadline of each call to each instance, e.g. 500ms, 5s (1ms to "
          "1h)");
ABSL_FLAG(std::string, output, "", "output format: table (default) or json");
ABSL_FLAG(std::string, o, "", "short for --output");
ABSL_FLAG(bool, tls, false, "connect with TLS (implied by --tls_ca)");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM file of root certificates for TLS, at most 1 MiB (default: "
          "system roots)");
ABSL_FLAG(std::string, mode, "",
          "connections: only those served in this mode (fork or thread, any "
          "case)");
ABSL_FLAG(int32_t, page_size, 0,
          "connections: connections per call, each page with its own "
          "--timeout (0: the server's default, 1000; at most 10000)");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(1),
          "watch: time between updates (100ms to 1h)");
ABSL_FLAG(int64_t, count, 0, "watch: stop after this many updates (0: never)");

namespace upper::ctl {
namespace {

// Every flag upperctl accepts; libraries linked in may register others,
// which upperctl does not offer.
const std::vector<std::string>& FlagNames() {
  static const auto* names = new std::vector<std::string>{
      "addr", "token",  "token_file", "timeout",   "output",   "o",
      "tls",  "tls_ca", "mode",       "page_size", "interval", "count"};
  return *names;
}

bool IsOurFlag(absl::string_view name) {
  for (const std::string& known : FlagNames()) {
    if (known == name) return true;
  }
  return false;
}

absl::Status Usage(absl::string_view problem) {
  return absl::InvalidArgumentError(problem);
}

// Applies "--name[=value]" (value taken from the next argument when needed).
absl::Status ApplyFlag(absl::string_view arg,
                       const std::vector<std::string>& argv, size_t& index) {
  absl::string_view body = arg;
  body.remove_prefix(absl::StartsWith(body, "--") ? 2 : 1);
  std::optional<std::string> value;
  if (const size_t eq = body.find('='); eq != absl::string_view::npos) {
    value = std::string(body.substr(eq + 1));
    body = body.substr(0, eq);
  }
  std::string name(body);
  absl::CommandLineFlag* flag =
      IsOurFlag(name) ? absl::FindCommandLineFlag(name) : nullptr;
  if (flag == nullptr && absl::StartsWith(name, "no") && !value) {
    // --notls: a bool flag's negation.
    absl::CommandLineFlag* negated =
        IsOurFlag(name.substr(2)) ? absl::FindCommandLineFlag(name.substr(2))
                                  : nullptr;
    if (negated != nullptr && negated->IsOfType<bool>()) {
      flag = negated;
      name = name.substr(2);
      value = "false";
    }
  }
  if (flag == nullptr) return Usage(absl::StrCat("unknown flag ", arg));
  if (!value) {
    if (flag->IsOfType<bool>()) {
      value = "true";
    } else if (index + 1 < argv.size()) {
      value = argv[++index];
    } else {
      return Usage(absl::StrCat("flag --", name, " needs a value"));
    }
  }
  std::string error;
  if (!flag->ParseFrom(*value, &error)) {
    return Usage(absl::StrCat("--", name, "=", *value, ": ", error));
  }
  return absl::OkStatus();
}

absl::StatusOr<OutputFormat> ParseOutput(const std::string& text) {
  if (text.empty() || text == "table") return OutputFormat::kTable;
  if (text == "json") return OutputFormat::kJson;
  return Usage(
      absl::StrCat("-o/--output must be table or json, not \"", text, "\""));
}

// --addr, else $UPPERCTL_ADDR if set and not empty, else the default.
void ReadAddress(const Getenv& getenv, Options* options) {
  if (std::string addr = absl::GetFlag(FLAGS_addr); !addr.empty()) {
    options->addr = addr;
  } else if (std::optional<std::string> env = getenv(kAddressEnv);
             env && !env->empty()) {
    options->addr = *env;
  }
}

// `raw` through the one token rule (common/token_rule.h), so that gRPC is
// never handed a header value it aborts on; errors start with `source`.
absl::StatusOr<std::string> CheckToken(absl::string_view source,
                                       absl::string_view raw) {
  absl::StatusOr<std::string> token = NormalizeToken(raw);
  if (!token.ok()) {
    return Usage(absl::StrCat(source, ": ", token.status().message()));
  }
  return token;
}

// The token in the file --token_file names (bounded_file.h's rules).
absl::StatusOr<std::string> LoadTokenFile(const std::string& path,
                                          const ReadFile& read_file) {
  absl::StatusOr<std::string> text = read_file(path, kMaxTokenFileSize);
  if (!text.ok()) {
    return Usage(absl::StrCat("--token_file: ", text.status().message()));
  }
  return CheckToken(absl::StrCat("--token_file: ", path), *text);
}

// --token or --token_file (not both), else $UPPER_ADMIN_TOKEN when set and
// not empty (an empty variable is as good as unset, like $UPPERCTL_ADDR).
absl::Status ReadToken(const Getenv& getenv, const ReadFile& read_file,
                       Options* options) {
  const std::string token = absl::GetFlag(FLAGS_token);
  const std::string token_file = absl::GetFlag(FLAGS_token_file);
  if (!token.empty() && !token_file.empty()) {
    return Usage("give --token or --token_file, not both");
  }
  absl::StatusOr<std::string> checked = std::string();
  if (!token.empty()) {
    checked = CheckToken("--token", token);
  } else if (!token_file.empty()) {
    checked = LoadTokenFile(token_file, read_file);
  } else if (std::optional<std::string> env = getenv(kTokenEnv);
             env && !env->empty()) {
    checked = CheckToken(absl::StrCat("$", kTokenEnv), *env);
  }
  if (!checked.ok()) return checked.status();
  options->token = *std::move(checked);
  return absl::OkStatus();
}

// "<flag> must be between <min> and <max>" unless `value` is in range.
absl::Status CheckRange(absl::string_view flag, absl::Duration value,
                        absl::Duration min, absl::Duration max) {
  if (value >= min && value <= max) return absl::OkStatus();
  return Usage(absl::StrCat(
      flag, " must be between ", absl::FormatDuration(min), " and ",
      absl::FormatDuration(max), ", not ", absl::FormatDuration(value)));
}

absl::Status ReadTimeout(Options* options) {
  options->timeout = absl::GetFlag(FLAGS_timeout);
  return CheckRange("--timeout", options->timeout, kMinTimeout, kMaxTimeout);
}

// -o or --output; both may be given if they agree.
absl::Status ReadOutput(Options* options) {
  const std::string output = absl::GetFlag(FLAGS_output);
  const std::string o = absl::GetFlag(FLAGS_o);
  if (!output.empty() && !o.empty() && output != o) {
    return Usage("-o and --output disagree");
  }
  absl::StatusOr<OutputFormat> format = ParseOutput(o.empty() ? output : o);
  if (!format.ok()) return format.status();
  options->output = *format;
  return absl::OkStatus();
}

// --tls, implied by --tls_ca, whose file is read here.
absl::Status ReadTls(const ReadFile& read_file, Options* options) {
  const std::string tls_ca = absl::GetFlag(FLAGS_tls_ca);
  options->tls = absl::GetFlag(FLAGS_tls) || !tls_ca.empty();
  if (tls_ca.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> pem = read_file(tls_ca, kMaxPemFileSize);
  if (!pem.ok()) {
    return Usage(absl::StrCat("--tls_ca: ", pem.status().message()));
  }
  // gRPC would take garbage and fail every call as "empty address list".
  if (absl::Status valid = ValidateCaPem(*pem); !valid.ok()) {
    return Usage(absl::StrCat("--tls_ca: ", tls_ca, ": ", valid.message()));
  }
  options->tls_ca_pem = *std::move(pem);
  return absl::OkStatus();
}

// connections' --mode and --page_size.
absl::Status ReadModeFilter(Options* options) {
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (!mode.empty()) {
    std::optional<upper::admin::v1::Mode> parsed = ModeFromName(mode);
    if (!parsed) {
      return Usage(
          absl::StrCat("--mode must be fork or thread, not \"", mode, "\""));
    }
    options->mode_filter = *parsed;
  }
  options->page_size = absl::GetFlag(FLAGS_page_size);
  if (options->page_size < 0) return Usage("--page_size must not be negative");
  return absl::OkStatus();
}

// watch's --interval and --count.
absl::Status ReadWatchFlags(Options* options) {
  options->interval = absl::GetFlag(FLAGS_interval);
  if (absl::Status s = CheckRange("--interval", options->interval, kMinInterval,
                                  kMaxInterval);
      !s.ok()) {
    return s;
  }
  options->count = absl::GetFlag(FLAGS_count);
  if (options->count < 0) return Usage("--count must not be negative");
  return absl::OkStatus();
}

// Builds the validated Options from the parsed flags and the environment.
// The checks run in this order, so the first problem is the one reported.
absl::StatusOr<Options> BuildOptions(const Getenv& getenv,
                                     const ReadFile& read_file) {
  Options options;
  ReadAddress(getenv, &options);
  absl::Status status = ReadToken(getenv, read_file, &options);
  if (status.ok()) status = ReadTimeout(&options);
  if (status.ok()) status = ReadOutput(&options);
  if (status.ok()) status = ReadTls(read_file, &options);
  if (status.ok()) status = ReadModeFilter(&options);
  if (status.ok()) status = ReadWatchFlags(&options);
  if (!status.ok()) return status;
  return options;
}

}  // namespace

std::optional<std::string> RealGetenv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

absl::StatusOr<std::string> RealReadFile(const std::string& path,
                                         size_t max_size) {
  return ReadBoundedRegularFile(path, max_size);
}

namespace {

// "-1" or "-5": a negative number, which is an argument (for close to
// refuse with its own message), not an unknown flag.
bool IsPositional(const std::string& arg) {
  return arg.size() < 2 || arg[0] != '-' || absl::ascii_isdigit(arg[1]);
}

}  // namespace

absl::StatusOr<Invocation> ParseInvocation(const std::vector<std::string>& argv,
                                           const Getenv& getenv,
                                           const ReadFile& read_file) {
  // Each parse starts from the defaults, so a second parse in one process
  // (tests) sees nothing of the first.
  for (const std::string& name : FlagNames()) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::string ignored;
    if (flag != nullptr) flag->ParseFrom(flag->DefaultValue(), &ignored);
  }
  Invocation invocation;
  std::vector<std::string> positional;
  bool flags_ended = false;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (flags_ended || IsPositional(arg)) {
      positional.push_back(arg);
    } else if (arg == "--") {
      flags_ended = true;
    } else if (arg == "-h" || arg == "--help" || arg == "-help") {
      invocation.help = true;
    } else if (absl::Status applied = ApplyFlag(arg, argv, i); !applied.ok()) {
      return applied;
    }
  }
  if (!positional.empty()) {
    invocation.command = positional.front();
    invocation.args.assign(positional.begin() + 1, positional.end());
  }
  // --help reads no file and checks no token: it must work even where the
  // environment holds a bad one.
  if (invocation.help) return invocation;
  absl::StatusOr<Options> options = BuildOptions(getenv, read_file);
  if (!options.ok()) return options.status();
  invocation.options = *std::move(options);
  return invocation;
}

std::string FlagsHelp() {
  std::string help;
  for (const std::string& name : FlagNames()) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    absl::StrAppendFormat(&help, "  %-*s %s\n", 13,
                          absl::StrCat(name.size() == 1 ? "-" : "--", name),
                          flag->Help());
  }
  return help;
}

}  // namespace upper::ctl
