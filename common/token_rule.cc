#include "common/token_rule.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace upper {
namespace {

bool IsB64TokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

// What a byte outside the set is, in words: the error must not print the
// byte itself, which is part of a secret.
absl::string_view Describe(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x80) return "a non-ASCII byte";
  if (c == ' ' || c == '\t') return "whitespace";
  if (c == '\r' || c == '\n') return "a line break";
  if (u < 0x20 || u == 0x7f) return "a control character";
  if (c == '=') return "'=' before the end";
  return "punctuation";
}

}  // namespace

absl::string_view TrimTokenWhitespace(absl::string_view raw) {
  return absl::StripAsciiWhitespace(raw);
}

absl::StatusOr<std::string> NormalizeToken(absl::string_view raw) {
  const absl::string_view token = TrimTokenWhitespace(raw);
  if (token.empty()) {
    return absl::InvalidArgumentError("token: empty (or only whitespace)");
  }
  if (token.size() > kMaxTokenLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "token: ", token.size(), " characters, more than ", kMaxTokenLength));
  }
  // b64token allows '=' only as trailing padding, and not alone.
  size_t body = token.size();
  while (body > 0 && token[body - 1] == '=') --body;
  if (body == 0) {
    return absl::InvalidArgumentError("token: only '=' padding");
  }
  for (size_t i = 0; i < body; ++i) {
    if (IsB64TokenChar(token[i])) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        "token: character ", i + 1, " is ", Describe(token[i]),
        " (a token is letters, digits and - . _ ~ + /, then optional '=')"));
  }
  return std::string(token);
}

}  // namespace upper
