#include "server/admin/admin_token.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace upper {
namespace {

// A file in the test's temporary directory, removed at the end.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    const char* dir = std::getenv("TEST_TMPDIR");
    path_ = std::string(dir != nullptr ? dir : "/tmp") + "/upper_token_" +
            std::to_string(getpid()) + "_" + std::to_string(counter_++);
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

TEST(AdminToken, ReadsTheTokenWithoutTrailingNewlines) {
  TempFile file("s3cret-token\r\n\n");
  absl::StatusOr<std::string> token = ReadAdminToken(file.path());
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "s3cret-token");
}

TEST(AdminToken, TrimsSurroundingWhitespaceLikeUpperctl) {
  TempFile file(" \tab-c.d_e~f+g/h==\r\n");
  EXPECT_EQ(ReadAdminToken(file.path()).value_or(""), "ab-c.d_e~f+g/h==");
}

TEST(AdminToken, RefusesTokensNoClientCanSendWithoutRepeatingThem) {
  for (const std::string& content :
       {std::string("se cret"), std::string("se\ncret\n"),
        std::string("se\0cret", 7),
        std::string("s\xc3\xa9"
                    "cret"),
        std::string(4097, 'x')}) {
    TempFile file(content);
    absl::StatusOr<std::string> token = ReadAdminToken(file.path());
    ASSERT_FALSE(token.ok());
    EXPECT_EQ(token.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(token.status().message(),
                                 "--admin_token_file: " + file.path() + ": "))
        << token.status();
    EXPECT_EQ(token.status().message().find("cret"), std::string::npos)
        << token.status();
  }
}

TEST(AdminToken, RefusesAFifoAtOnce) {
  const std::string path = TempFile("").path() + "_fifo";
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  absl::StatusOr<std::string> token = ReadAdminToken(path);
  std::remove(path.c_str());
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AdminToken, EmptyFileIsAnErrorNamingTheFlag) {
  for (const char* content : {"", "\n", "\r\n"}) {
    TempFile file(content);
    absl::StatusOr<std::string> token = ReadAdminToken(file.path());
    ASSERT_FALSE(token.ok());
    EXPECT_EQ(token.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(token.status().message().find("--admin_token_file"),
              std::string::npos)
        << token.status();
  }
}

TEST(AdminToken, MissingFileIsAnErrorNamingTheFlagAndThePath) {
  absl::StatusOr<std::string> token = ReadAdminToken("/nonexistent/token");
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(token.status().message(),
            "--admin_token_file: /nonexistent/token: No such file or "
            "directory");
}

TEST(AdminToken, EqualTokensMatch) {
  EXPECT_TRUE(TokensEqualConstantTime("abc", "abc"));
  EXPECT_TRUE(
      TokensEqualConstantTime(std::string(1000, 'x'), std::string(1000, 'x')));
}

TEST(AdminToken, AnyDifferenceFails) {
  EXPECT_FALSE(TokensEqualConstantTime("abc", "abd"));
  EXPECT_FALSE(TokensEqualConstantTime("abc", "xbc"));
  EXPECT_FALSE(TokensEqualConstantTime("abc", "ab"));
  EXPECT_FALSE(TokensEqualConstantTime("abc", "abcabc"));  // cycled prefix
  EXPECT_FALSE(TokensEqualConstantTime("abc", "abca"));
  EXPECT_FALSE(TokensEqualConstantTime("abc", ""));
  EXPECT_FALSE(TokensEqualConstantTime("", ""));  // no token never matches
  // Bytes that differ only in one bit, anywhere.
  std::string a(64, 'k');
  for (size_t i = 0; i < a.size(); ++i) {
    std::string b = a;
    b[i] ^= 1;
    EXPECT_FALSE(TokensEqualConstantTime(a, b)) << i;
  }
}

TEST(AdminToken, BearerHeaderNeedsTheSchemeAndTheExactToken) {
  EXPECT_TRUE(BearerTokenMatches("tok", "Bearer tok"));
  EXPECT_TRUE(BearerTokenMatches("tok", "bearer tok"));
  EXPECT_TRUE(BearerTokenMatches("tok", "BEARER tok"));
  EXPECT_FALSE(BearerTokenMatches("tok", "tok"));
  EXPECT_FALSE(BearerTokenMatches("tok", "Bearer"));
  EXPECT_FALSE(BearerTokenMatches("tok", "Bearer "));
  EXPECT_FALSE(BearerTokenMatches("tok", "Bearer tok "));
  EXPECT_FALSE(BearerTokenMatches("tok", "Bearer  tok"));
  EXPECT_FALSE(BearerTokenMatches("tok", "Basic tok"));
  EXPECT_FALSE(BearerTokenMatches("tok", "Bearer tok2"));
}

}  // namespace
}  // namespace upper
