// ErrnoStatus and RetryOnEintr: the one way a failed syscall becomes an
// absl::Status, and the one EINTR retry loop.
#pragma once

#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace upper {

// An error status naming the failed call and errno's text, e.g.
// "accept4: Too many open files". The code follows absl::ErrnoToStatus
// (EINVAL -> InvalidArgument, EMFILE -> ResourceExhausted...).
absl::Status ErrnoStatus(absl::string_view call, int err);

// Retries a syscall-like expression while it fails with EINTR.
template <typename F>
auto RetryOnEintr(F&& f) {
  for (;;) {
    auto r = f();
    if (r != -1 || errno != EINTR) return r;
  }
}

}  // namespace upper
