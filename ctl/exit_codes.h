// upperctl's exit statuses, one meaning each (docs/upperctl.md has the
// table). Scripts branch on them, so values never change meaning.
#pragma once

namespace upper::ctl {

enum ExitCode : int {
  kExitOk = 0,
  // The server answered with an error (INVALID_ARGUMENT, NOT_FOUND,
  // FAILED_PRECONDITION, ...), or `health` found an instance not SERVING.
  kExitServerError = 1,
  // Bad arguments: unknown command or flag, bad value, wrong argument count.
  kExitUsage = 2,
  // No answer: connection refused, DNS failure, deadline (--timeout).
  kExitUnreachable = 3,
  // UNAUTHENTICATED: the admin port wants a (different) token.
  kExitUnauthenticated = 4,
};

}  // namespace upper::ctl
