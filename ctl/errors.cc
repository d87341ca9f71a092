#include "ctl/errors.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace upper::ctl {
namespace {

// gRPC says "failed to connect to all addresses; last error: UNKNOWN:
// ipv4:127.0.0.1:1: Failed to connect to remote host: Connection refused";
// the user needs the last part, the address is already in the line.
std::string UnreachableReason(const grpc::Status& status) {
  const std::string& message = status.error_message();
  if (absl::StartsWith(message, "failed to connect to all addresses")) {
    const size_t last = message.rfind(": ");
    if (last != std::string::npos) return message.substr(last + 2);
  }
  return message.empty() ? "unavailable" : message;
}

}  // namespace

std::string OneLine(absl::string_view text) {
  std::string line;
  line.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      absl::StrAppend(&line, "\\x", absl::Hex(byte, absl::kZeroPad2));
    } else {
      line.push_back(c);
    }
  }
  return line;
}

std::string CodeName(grpc::StatusCode code) {
  // grpc::StatusCode and absl::StatusCode share the canonical numbering.
  std::string name =
      absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? absl::StrCat("CODE_", static_cast<int>(code)) : name;
}

bool IsUnreachable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

ExitCode ExitCodeFor(const grpc::Status& status) {
  if (status.ok()) return kExitOk;
  if (IsUnreachable(status)) return kExitUnreachable;
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    return kExitUnauthenticated;
  }
  return kExitServerError;
}

std::string ErrorText(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return absl::StrCat("unreachable: ", UnreachableReason(status));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "unreachable: no answer within --timeout";
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::StrCat("UNAUTHENTICATED: ", status.error_message(),
                          "; a token is needed: use --token, --token_file or "
                          "$UPPER_ADMIN_TOKEN");
    default:
      return absl::StrCat(CodeName(status.error_code()), ": ",
                          status.error_message());
  }
}

std::string ErrorLine(absl::string_view address, const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return absl::StrCat("cannot reach ", address, ": ",
                          UnreachableReason(status));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::StrCat("cannot reach ", address,
                          ": no answer within --timeout");
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::StrCat(
          address, " needs a token (UNAUTHENTICATED: ", status.error_message(),
          "): use --token, --token_file or $UPPER_ADMIN_TOKEN");
    default:
      return ErrorText(status);
  }
}

upper::ctl::v1::InstanceError ToInstanceError(const grpc::Status& status) {
  upper::ctl::v1::InstanceError error;
  error.set_code(CodeName(status.error_code()));
  error.set_message(ErrorText(status));
  return error;
}

ExitCode FleetExitCode(const std::vector<grpc::Status>& statuses) {
  bool any_ok = false;
  bool any_server_error = false;
  for (const grpc::Status& status : statuses) {
    switch (ExitCodeFor(status)) {
      case kExitOk:
        any_ok = true;
        break;
      case kExitUnauthenticated:
        return kExitUnauthenticated;
      case kExitServerError:
        any_server_error = true;
        break;
      default:
        break;
    }
  }
  if (any_server_error) return kExitServerError;
  return any_ok || statuses.empty() ? kExitOk : kExitUnreachable;
}

ExitCode FleetWriteExitCode(const std::vector<grpc::Status>& statuses) {
  bool any_failed = false;
  for (const grpc::Status& status : statuses) any_failed |= !status.ok();
  if (!any_failed) return kExitOk;
  const ExitCode code = FleetExitCode(statuses);
  // FleetExitCode forgives unreachable instances when others answered; a
  // write does not.
  return code == kExitOk ? kExitUnreachable : code;
}

}  // namespace upper::ctl
