#include "ctl/options.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
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
#include "common/errno_status.h"

// Empty strings mean "not given", so the environment fallbacks can apply.
ABSL_FLAG(std::string, addr, "",
          "admin address(es): host:port, several comma-separated, or "
          "dns:///name:port for every address of a name (default "
          "$UPPERCTL_ADDR, else localhost:50051)");
ABSL_FLAG(std::string, token, "",
          "admin token, sent as 'authorization: Bearer <token>' (default "
          "$UPPER_ADMIN_TOKEN)");
ABSL_FLAG(std::string, token_file, "",
          "file holding the admin token (surrounding whitespace ignored)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(5),
          "deadline of each call to each instance, e.g. 500ms, 5s");
ABSL_FLAG(std::string, output, "", "output format: table (default) or json");
ABSL_FLAG(std::string, o, "", "short for --output");
ABSL_FLAG(bool, tls, false, "connect with TLS (implied by --tls_ca)");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM file of root certificates for TLS (default: system roots)");
ABSL_FLAG(std::string, mode, "",
          "connections: only those served in this mode (fork or thread)");
ABSL_FLAG(int32_t, page_size, 0,
          "connections: connections per call, each page with its own "
          "--timeout (0: the server's default, 1000; at most 10000)");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(1),
          "watch: time between updates (at least 100ms)");
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

// The file --token_file names, without surrounding whitespace; not empty.
absl::StatusOr<std::string> LoadTokenFile(const std::string& path,
                                          const ReadFile& read_file) {
  absl::StatusOr<std::string> text = read_file(path);
  if (!text.ok()) {
    return Usage(absl::StrCat("--token_file: ", text.status().message()));
  }
  std::string token(absl::StripAsciiWhitespace(*text));
  if (token.empty()) {
    return Usage(absl::StrCat("--token_file: ", path, " is empty"));
  }
  return token;
}

// --token or --token_file (not both), else $UPPER_ADMIN_TOKEN.
absl::Status ReadToken(const Getenv& getenv, const ReadFile& read_file,
                       Options* options) {
  const std::string token = absl::GetFlag(FLAGS_token);
  const std::string token_file = absl::GetFlag(FLAGS_token_file);
  if (!token.empty() && !token_file.empty()) {
    return Usage("give --token or --token_file, not both");
  }
  if (!token.empty()) {
    options->token = token;
  } else if (!token_file.empty()) {
    absl::StatusOr<std::string> loaded = LoadTokenFile(token_file, read_file);
    if (!loaded.ok()) return loaded.status();
    options->token = *std::move(loaded);
  } else if (std::optional<std::string> env = getenv(kTokenEnv); env) {
    options->token = std::string(absl::StripAsciiWhitespace(*env));
  }
  return absl::OkStatus();
}

absl::Status ReadTimeout(Options* options) {
  options->timeout = absl::GetFlag(FLAGS_timeout);
  if (options->timeout <= absl::ZeroDuration()) {
    return Usage("--timeout must be positive");
  }
  return absl::OkStatus();
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
  absl::StatusOr<std::string> pem = read_file(tls_ca);
  if (!pem.ok()) {
    return Usage(absl::StrCat("--tls_ca: ", pem.status().message()));
  }
  options->tls_ca_pem = *std::move(pem);
  return absl::OkStatus();
}

// connections' --mode and --page_size.
absl::Status ReadModeFilter(Options* options) {
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "fork") {
    options->mode_filter = upper::admin::v1::MODE_FORK;
  } else if (mode == "thread") {
    options->mode_filter = upper::admin::v1::MODE_THREAD;
  } else if (!mode.empty()) {
    return Usage(
        absl::StrCat("--mode must be fork or thread, not \"", mode, "\""));
  }
  options->page_size = absl::GetFlag(FLAGS_page_size);
  if (options->page_size < 0) return Usage("--page_size must not be negative");
  return absl::OkStatus();
}

// watch's --interval and --count.
absl::Status ReadWatchFlags(Options* options) {
  options->interval = absl::GetFlag(FLAGS_interval);
  if (options->interval < absl::Milliseconds(100)) {
    return Usage("--interval must be at least 100ms");
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

absl::StatusOr<std::string> RealReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return ErrnoStatus(absl::StrCat("cannot read ", path), errno);
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return ErrnoStatus(absl::StrCat("cannot read ", path), errno);
  }
  return text.str();
}

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
    if (flags_ended || arg.size() < 2 || arg[0] != '-') {
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
