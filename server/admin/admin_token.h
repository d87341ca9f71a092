// The admin bearer token: reading it from --admin_token_file, and checking a
// call's `authorization` metadata against it without leaking, through timing,
// how much of a guess was right.
//
// Pure functions, thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace upper {

// Reads the token from `path`: the file's content without trailing newlines
// (CR/LF), as `echo secret > file` writes it. An unreadable or empty file is
// an InvalidArgument error whose message names --admin_token_file.
absl::StatusOr<std::string> ReadAdminToken(const std::string& path);

// True when `presented` equals `expected`. The time taken depends only on
// the length of `presented` (which the caller chose), never on where the two
// first differ nor on the length of `expected`. `expected` must not be empty.
bool TokensEqualConstantTime(absl::string_view expected,
                             absl::string_view presented);

// True when `authorization` is "Bearer <token>" (scheme case-insensitive, as
// RFC 6750 allows) and <token> equals `expected`, compared in constant time.
bool BearerTokenMatches(absl::string_view expected,
                        absl::string_view authorization);

}  // namespace upper
