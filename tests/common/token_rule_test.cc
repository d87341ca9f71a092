// The token rule both sides share: what is trimmed, what is refused, and
// that an error never repeats the token.
#include "common/token_rule.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace upper {
namespace {

TEST(TokenRule, SurroundingWhitespaceIsTrimmedTheSameWayForEverySource) {
  for (const char* raw : {"s3cret", "s3cret\n", "s3cret\r\n", " \ts3cret \t",
                          "\n\ns3cret\n\n", "\v\fs3cret\r"}) {
    absl::StatusOr<std::string> token = NormalizeToken(raw);
    ASSERT_TRUE(token.ok()) << token.status();
    EXPECT_EQ(*token, "s3cret");
  }
}

TEST(TokenRule, EveryB64TokenCharacterAndTrailingPaddingIsAccepted) {
  const std::string all =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";
  EXPECT_EQ(NormalizeToken(all).value_or(""), all);
  EXPECT_EQ(NormalizeToken("abc==").value_or(""), "abc==");
  EXPECT_EQ(
      NormalizeToken(std::string(kMaxTokenLength, 'a')).value_or("").size(),
      kMaxTokenLength);
}

TEST(TokenRule, AnythingElseIsRefusedWithoutRepeatingTheToken) {
  const std::string refused[] = {
      "",
      " \r\n\t",
      "in\nner",
      "in\rner",
      "tab\tinside",
      "sp ace",
      std::string("nul\0byte", 8),
      "ctl\x01",
      "del\x7f",
      "caf\xc3\xa9",
      "a=b",
      "===",
      "quote\"",
      "semi;colon",
      std::string(kMaxTokenLength + 1, 'a'),
  };
  for (const std::string& raw : refused) {
    absl::StatusOr<std::string> token = NormalizeToken(raw);
    ASSERT_FALSE(token.ok()) << raw;
    EXPECT_EQ(token.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(token.status().message(), "token: "))
        << token.status();
    EXPECT_EQ(token.status().message().find('\n'), absl::string_view::npos);
    if (raw.size() > 3) {
      EXPECT_FALSE(absl::StrContains(token.status().message(), raw))
          << token.status();
    }
  }
}

}  // namespace
}  // namespace upper
