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

// Reads the token from `path` (a regular file of at most 64 KiB) under the
// shared rule of common/token_rule.h: surrounding whitespace trimmed (so
// `echo secret > file` and a CRLF editor both work), then 1..4096 b64token
// characters. Anything else is an InvalidArgument error whose message starts
// "--admin_token_file: <path>: " and never repeats the token.
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
