// Reading a small file named by a flag or variable (a token, a PEM
// certificate or key) without trusting it: opened non-blocking, so that a
// FIFO or a device never hangs the reader; only a regular file is read; and
// at most a bound is read, so that /dev/zero or a huge file never grows the
// reader. upperd reads these at start-up, upperctl at every run.
//
// Thread-safe (no shared state).
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace upper {

inline constexpr size_t kMaxTokenFileSize = 64 * 1024;
inline constexpr size_t kMaxPemFileSize = 1024 * 1024;

// The whole content of the regular file `path`, at most `max_size` bytes.
// Errors are InvalidArgument, their message "<path>: <why>" (no such file,
// not a regular file, larger than N bytes, empty); the caller prefixes the
// flag or variable.
absl::StatusOr<std::string> ReadBoundedRegularFile(const std::string& path,
                                                   size_t max_size);

}  // namespace upper
