// Reading a small file named by a flag (a token, a certificate, a key) at
// start-up, with errors that name the flag, e.g.
// "--admin_tls_key: /etc/upper/key.pem: No such file or directory".
//
// Thread-safe (no shared state).
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace upper {

// The whole content of `path` (at most `max_size` bytes), given by --`flag`.
// Errors are InvalidArgument: unreadable, too big, or empty.
absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag,
                                         const std::string& path,
                                         size_t max_size = 1 << 20);

}  // namespace upper
