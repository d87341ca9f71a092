// Worker modes and the reasons a connection ends or is refused.
//
// Plain enums with stable numeric values: they are stored in the shared
// connection table (read by other processes), so values never change meaning.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace upper {

// How a connection is served. Values match upper.admin.v1.Mode.
enum class Mode : uint32_t {
  kUnspecified = 0,
  kFork = 1,    // a child process per connection
  kThread = 2,  // a thread per connection
};
inline constexpr int kModeCount = 3;  // array size for per-mode counters

// Why a served connection ended.
enum class CloseReason : uint32_t {
  kNone = 0,
  kClient = 1,       // the client closed (EOF) and got all its output
  kIdleTimeout = 2,  // nothing received for --idle_timeout
  kKilled = 3,       // closed by an operator (admin CloseConnection)
  kError = 4,        // reset, I/O error, or the worker crashed
  kDrain = 5,        // closed at the end of the drain on shutdown
  kSendTimeout = 6,  // the peer accepted no byte for --send_timeout
};
inline constexpr int kCloseReasonCount = 7;

// Why an accepted connection was closed without being served.
enum class RejectReason : uint32_t {
  kLimit = 0,         // --max_connections reached
  kForkFailed = 1,    // fork failed or the fork server is down
  kThreadFailed = 2,  // pthread_create failed
  kFdExhausted = 3,   // accept hit EMFILE/ENFILE
  kDraining = 4,      // arrived while shutting down
  // The fork server took no hand-off and upperd's bounded queue of
  // hand-offs waiting for it (ForkWorkers::kQueueLimit) was full.
  kForkQueueFull = 5,
};
inline constexpr int kRejectReasonCount = 6;

// Lower-case names used in logs, flags and metric labels.
absl::string_view ModeName(Mode mode);
absl::string_view CloseReasonName(CloseReason reason);
absl::string_view RejectReasonName(RejectReason reason);

// Parses "fork" or "thread" (case-sensitive, as on the command line).
bool ParseMode(absl::string_view text, Mode* mode);

// Hooks for ABSL_FLAG(upper::Mode, ...).
bool AbslParseFlag(absl::string_view text, Mode* mode, std::string* error);
std::string AbslUnparseFlag(Mode mode);

}  // namespace upper
