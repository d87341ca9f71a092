// Reading a small file named by a flag (a token, a certificate, a key) at
// start-up, with errors that name the flag, e.g.
// "--admin_tls_key: /etc/upper/key.pem: No such file or directory".
//
// The file is read with ReadBoundedRegularFile (common/bounded_file.h): a
// FIFO, a device or a directory is refused at once, never read or waited on.
//
// Thread-safe (no shared state).
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/bounded_file.h"

namespace upper {

// The whole content of `path` (at most `max_size` bytes), given by --`flag`.
// Errors are InvalidArgument "--<flag>: <path>: <why>": unreadable, not a
// regular file, too big, or empty.
absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag,
                                         const std::string& path,
                                         size_t max_size = kMaxPemFileSize);

}  // namespace upper
