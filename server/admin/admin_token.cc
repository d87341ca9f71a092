#include "server/admin/admin_token.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/bounded_file.h"
#include "common/token_rule.h"
#include "server/admin/flag_file.h"

namespace upper {
absl::StatusOr<std::string> ReadAdminToken(const std::string& path) {
  absl::StatusOr<std::string> content =
      ReadFlagFile("admin_token_file", path, kMaxTokenFileSize);
  if (!content.ok()) return content.status();
  // The rule upperctl applies to what it sends (common/token_rule.h): a
  // token upperd accepts is one a client can present byte for byte.
  absl::StatusOr<std::string> token = NormalizeToken(*content);
  if (!token.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--admin_token_file: ", path, ": ", token.status().message()));
  }
  return token;
}

bool TokensEqualConstantTime(absl::string_view expected,
                             absl::string_view presented) {
  if (expected.empty()) return false;
  // One pass over `presented`, comparing against `expected` cycled, with no
  // branch on the data: a length mismatch only sets a bit in `diff`.
  volatile unsigned char diff = expected.size() == presented.size() ? 0 : 1;
  for (size_t i = 0; i < presented.size(); ++i) {
    diff = diff | static_cast<unsigned char>(expected[i % expected.size()] ^
                                             presented[i]);
  }
  return diff == 0;
}

bool BearerTokenMatches(absl::string_view expected,
                        absl::string_view authorization) {
  constexpr absl::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(authorization.substr(0, kScheme.size()),
                              kScheme)) {
    return false;
  }
  return TokensEqualConstantTime(expected,
                                 authorization.substr(kScheme.size()));
}

}  // namespace upper
