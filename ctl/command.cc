#include "ctl/command.h"

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "ctl/errors.h"
#include "ctl/format/json.h"
#include "google/protobuf/message.h"
#include "upper/ctl/v1/output.pb.h"

namespace upper::ctl {

int CommandContext::UsageError(absl::string_view problem) const {
  err << "upperctl: " << OneLine(problem) << "; usage: upperctl "
      << command.usage << '\n';
  return kExitUsage;
}

int CommandContext::CallFailed(absl::string_view address,
                               const grpc::Status& status) const {
  err << "upperctl: " << OneLine(ErrorLine(address, status)) << '\n';
  if (json()) {
    // Scripts parsing stdout get the error as an object too (CallError).
    upper::ctl::v1::CallError error;
    error.set_address(std::string(address));
    *error.mutable_error() = ToInstanceError(status);
    // One line, as watch's stream has one object per line.
    if (absl::StatusOr<std::string> text = ToJson(error, JsonStyle::kOneLine);
        text.ok()) {
      out << *text << '\n';
    }
  }
  return ExitCodeFor(status);
}

int CommandContext::PrintJson(const google::protobuf::Message& message) const {
  absl::StatusOr<std::string> json = ToJson(message);
  if (!json.ok()) {
    err << "upperctl: " << json.status().message() << '\n';
    return kExitServerError;
  }
  out << *json << '\n';
  return kExitOk;
}

bool CommandContext::RequireSingleTarget(int* exit_code) const {
  if (targets.list.size() == 1 && !targets.fleet) return true;
  *exit_code = UsageError(
      absl::StrCat(command.name, " works on one instance; --addr names ",
                   targets.list.size() == 1 ? "a fleet" : "several"));
  return false;
}

bool CommandContext::RequireNoArguments(int* exit_code) const {
  if (args.empty()) return true;
  *exit_code = UsageError(
      absl::StrCat(command.name, " takes no arguments, got \"", args[0], "\""));
  return false;
}

}  // namespace upper::ctl
