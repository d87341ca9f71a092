// How a failed call reads to the user and which exit status it gives, in
// one place (exit_codes.h; the table is in docs/upperctl.md).
//
//   UNAVAILABLE, DEADLINE_EXCEEDED -> "cannot reach <addr>: <reason>", 3
//   UNAUTHENTICATED                -> "<addr> needs a token ...", 4
//   anything else                  -> "<CODE>: <server's message>", 1
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "ctl/exit_codes.h"
#include "grpcpp/support/status.h"
#include "upper/ctl/v1/output.pb.h"

namespace upper::ctl {

// "INVALID_ARGUMENT" for grpc::StatusCode::INVALID_ARGUMENT.
std::string CodeName(grpc::StatusCode code);

bool IsUnreachable(const grpc::Status& status);
ExitCode ExitCodeFor(const grpc::Status& status);

// The one line printed (after "upperctl: ") when the call to `address`
// failed. For server errors the address is left out: "INVALID_ARGUMENT:
// mode must be ..." reads as the server wrote it.
std::string ErrorLine(absl::string_view address, const grpc::Status& status);
// The same without the address, for a fleet row that already shows it.
std::string ErrorText(const grpc::Status& status);
upper::ctl::v1::InstanceError ToInstanceError(const grpc::Status& status);

// `text` with every control byte (CR, LF, TAB, ESC, ...) written as \xNN,
// so that what the user typed (a path with a newline) or a server sent
// cannot break upperctl's one-line errors or drive the terminal.
std::string OneLine(absl::string_view text);

// The exit status of a fleet command from each instance's status:
// 4 if any instance said UNAUTHENTICATED, else 1 if any other server
// error, else 3 if every instance was unreachable, else 0 (some instances
// answered; the others show their error in their row).
ExitCode FleetExitCode(const std::vector<grpc::Status>& statuses);

// The exit status of a fleet write (`mode fork`), where every instance must
// have taken the change: 0 only if every instance succeeded; else the
// worst failure, by the same precedence as FleetExitCode: 4 if any
// instance said UNAUTHENTICATED, else 1 if any other server error, else 3
// (an instance was unreachable). A script that sees 0 knows every instance
// switched.
ExitCode FleetWriteExitCode(const std::vector<grpc::Status>& statuses);

}  // namespace upper::ctl
