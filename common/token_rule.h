// The one rule for the admin bearer token, shared by upperd (which reads it
// from --admin_token_file) and upperctl (--token, --token_file,
// $UPPER_ADMIN_TOKEN), so that a value one side accepts is a value the other
// side sends and matches byte for byte.
//
// The rule: surrounding ASCII whitespace (space, TAB, CR, LF, VT, FF) is
// trimmed; what is left must be 1..kMaxTokenLength characters of RFC 6750's
// b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// Every such token is a valid HTTP/2 header value, so gRPC never refuses to
// send it (an inner CR or a non-ASCII byte made gRPC abort the client).
//
// Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace upper {

inline constexpr size_t kMaxTokenLength = 4096;

// `raw` without its surrounding ASCII whitespace.
absl::string_view TrimTokenWhitespace(absl::string_view raw);

// The token `raw` holds, trimmed and checked. On a bad token: an
// InvalidArgument error whose message says what is wrong and where (e.g.
// "token: character 12 is a control character (not in RFC 6750's b64token
// set)") but never repeats the token. The caller prefixes the flag, file or
// variable it came from.
absl::StatusOr<std::string> NormalizeToken(absl::string_view raw);

}  // namespace upper
