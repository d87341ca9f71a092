// Process-wide signal set-up for upperd.
//
// SIGTERM, SIGINT and SIGCHLD are blocked in every thread and read from a
// signalfd by the event loop, so no handler ever interrupts a syscall and
// SIGCHLD cannot break accept(). SIGPIPE is ignored (sockets also use
// MSG_NOSIGNAL). Call before any thread exists: threads inherit the mask.
#pragma once

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace upper {

absl::StatusOr<UniqueFd> TakeOverSignals();

}  // namespace upper
