// upper-client: sends standard input to upperd's data port and writes the
// upper-cased reply to standard output.
//
//   echo hello | upper-client --addr=localhost:9999   # prints HELLO
//
// The address comes from --addr, else from $UPPER_CLIENT_ADDR, else the
// default. Exit status: 0 success, 1 I/O error, 2 usage error, 3 cannot
// connect.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/upper_client.h"
#include "common/unique_fd.h"

// Unset (nullopt) tells "not given" apart from any value, for the fallbacks;
// abseil also reads an empty "--addr=" as unset.
ABSL_FLAG(std::optional<std::string>, addr, std::nullopt,
          "upperd data port as host:port or [v6]:port; when not given, "
          "$UPPER_CLIENT_ADDR if set, else localhost:9999");

namespace upper::client {
namespace {

constexpr int kExitIoError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitConnect = 3;
constexpr char kAddrEnv[] = "UPPER_CLIENT_ADDR";
constexpr char kUsage[] =
    "usage: upper-client [--addr=host:port] < input > output";

int Fail(int exit_code, absl::string_view message) {
  std::cerr << "upper-client: " << message << '\n';
  return exit_code;
}

// The address to use and where it came from, for messages.
struct AddressSource {
  std::string value;
  std::string origin;
};

// --addr wins, then a non-empty $UPPER_CLIENT_ADDR, then the default.
AddressSource ChooseAddress() {
  if (std::optional<std::string> flag = absl::GetFlag(FLAGS_addr)) {
    return {.value = *std::move(flag), .origin = "--addr"};
  }
  const char* env = std::getenv(kAddrEnv);
  if (env != nullptr && env[0] != '\0') {
    return {.value = env, .origin = kAddrEnv};
  }
  return {.value = std::string(kDefaultAddress), .origin = "--addr"};
}

// For --help: abseil lists the flags of files named after the program, and
// the dash in "upper-client" defeats that.
bool IsThisFile(absl::string_view path) {
  return absl::EndsWith(path, "client/main.cc");
}

int Run(int argc, char** argv) {
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_helpshort_flags = &IsThisFile;
  usage_config.contains_help_flags = &IsThisFile;
  absl::SetFlagsUsageConfig(usage_config);
  absl::SetProgramUsageMessage(
      absl::StrCat("Sends standard input to upperd's data port and writes the "
                   "upper-cased reply to standard output.\n",
                   kUsage));
  const std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() > 1) {
    return Fail(kExitUsage,
                absl::StrCat("unexpected argument \"",
                             absl::CHexEscape(args[1]), "\"; ", kUsage));
  }

  const AddressSource source = ChooseAddress();
  const absl::StatusOr<HostPort> address = ParseAddress(source.value);
  if (!address.ok()) {
    return Fail(kExitUsage,
                absl::StrCat(source.origin, ": ", address.status().message()));
  }
  const absl::StatusOr<UniqueFd> sock = ConnectTo(*address);
  if (!sock.ok()) return Fail(kExitConnect, sock.status().message());

  const absl::Status copied =
      CopyDuplex(STDIN_FILENO, sock->get(), STDOUT_FILENO);
  if (!copied.ok()) return Fail(kExitIoError, copied.message());
  return EXIT_SUCCESS;
}

}  // namespace
}  // namespace upper::client

int main(int argc, char** argv) { return upper::client::Run(argc, argv); }
