#include "server/base/mode.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace upper {

absl::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kFork:
      return "fork";
    case Mode::kThread:
      return "thread";
    case Mode::kUnspecified:
      break;
  }
  return "unspecified";
}

absl::string_view CloseReasonName(CloseReason reason) {
  switch (reason) {
    case CloseReason::kClient:
      return "client";
    case CloseReason::kIdleTimeout:
      return "idle_timeout";
    case CloseReason::kKilled:
      return "killed";
    case CloseReason::kError:
      return "error";
    case CloseReason::kDrain:
      return "drain";
    case CloseReason::kSendTimeout:
      return "send_timeout";
    case CloseReason::kNone:
      break;
  }
  return "none";
}

absl::string_view RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kLimit:
      return "limit";
    case RejectReason::kForkFailed:
      return "fork_failed";
    case RejectReason::kThreadFailed:
      return "thread_failed";
    case RejectReason::kFdExhausted:
      return "fd_exhausted";
    case RejectReason::kDraining:
      return "draining";
    case RejectReason::kForkQueueFull:
      return "fork_queue_full";
  }
  return "unknown";
}

bool ParseMode(absl::string_view text, Mode* mode) {
  if (text == "fork") {
    *mode = Mode::kFork;
    return true;
  }
  if (text == "thread") {
    *mode = Mode::kThread;
    return true;
  }
  return false;
}

bool AbslParseFlag(absl::string_view text, Mode* mode, std::string* error) {
  if (ParseMode(text, mode)) return true;
  *error = absl::StrCat("'", text, "' is not a mode (expected fork or thread)");
  return false;
}

std::string AbslUnparseFlag(Mode mode) { return std::string(ModeName(mode)); }

}  // namespace upper
