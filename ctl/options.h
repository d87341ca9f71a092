// upperctl's command line: global flags (before or after the command), the
// command and its arguments, turned into a validated Options struct.
//
// The ABSL_FLAGs live in options.cc and nothing else reads them. Parsing is
// upperctl's own loop over abseil's flag registry rather than
// absl::ParseCommandLine, because that one exits with status 1 on a bad flag
// and upperctl promises 2 (exit_codes.h). Flags are process-wide: each parse
// resets them to their defaults first; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "upper/admin/v1/admin.pb.h"

namespace upper::ctl {

inline constexpr char kDefaultAddress[] = "localhost:50051";
inline constexpr char kAddressEnv[] = "UPPERCTL_ADDR";
inline constexpr char kTokenEnv[] = "UPPER_ADMIN_TOKEN";

enum class OutputFormat { kTable, kJson };

struct Options {
  // Global.
  std::string addr = kDefaultAddress;  // --addr, else $UPPERCTL_ADDR
  std::string token;                   // empty: send no authorization
  absl::Duration timeout = absl::Seconds(5);
  OutputFormat output = OutputFormat::kTable;
  bool tls = false;
  std::string tls_ca_pem;  // contents of --tls_ca; empty: system roots
  // Per command.
  upper::admin::v1::Mode mode_filter = upper::admin::v1::MODE_UNSPECIFIED;
  int32_t page_size = 0;  // connections; 0 = the server's default
  absl::Duration interval = absl::Seconds(1);  // watch
  int64_t count = 0;                           // watch; 0 = until Ctrl-C
};

struct Invocation {
  Options options;
  bool help = false;    // --help / -h: `options` then stay the defaults
  std::string command;  // empty when none was given
  std::vector<std::string> args;  // after the command
};

// Reads an environment variable; nullopt when unset. Injected for tests.
using Getenv = std::function<std::optional<std::string>(const char* name)>;
// Reads a whole file of at most `max_size` bytes; errors "<path>: <why>".
// Injected for tests.
using ReadFile = std::function<absl::StatusOr<std::string>(
    const std::string& path, size_t max_size)>;

std::optional<std::string> RealGetenv(const char* name);
// common/bounded_file.h's ReadBoundedRegularFile: non-blocking open, a
// regular file only, at most `max_size` bytes (so /dev/zero, a FIFO or a
// huge file cannot hang or grow upperctl).
absl::StatusOr<std::string> RealReadFile(const std::string& path,
                                         size_t max_size);

// Bounds of --timeout and --interval: a deadline under a millisecond can
// never be met, and "inf" or a day would leave a script hanging on a dead
// peer.
inline constexpr absl::Duration kMinTimeout = absl::Milliseconds(1);
inline constexpr absl::Duration kMaxTimeout = absl::Hours(1);
inline constexpr absl::Duration kMinInterval = absl::Milliseconds(100);
inline constexpr absl::Duration kMaxInterval = absl::Hours(1);

// Parses argv[1..]. Flags may come anywhere ("--flag=value", "--flag value",
// "-o json", "--tls", "--notls"); "--" ends the flags; a dash followed by a
// digit ("-1") is a positional argument, not a flag. The first positional
// word is the command. The token (--token, --token_file, else
// $UPPER_ADMIN_TOKEN) passes common/token_rule.h; --tls_ca must hold PEM
// certificates. InvalidArgument names the problem and its flag, file or
// variable in one line.
absl::StatusOr<Invocation> ParseInvocation(
    const std::vector<std::string>& argv, const Getenv& getenv = RealGetenv,
    const ReadFile& read_file = RealReadFile);

// "--addr  where ..." lines for --help: the flags and their help text.
std::string FlagsHelp();

}  // namespace upper::ctl
