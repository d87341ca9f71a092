#include "server/base/log.h"

#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/base/log_rate_limit.h"

namespace upper {
namespace {

TEST(Log, TextLineHasEventAndFields) {
  const std::string line =
      FormatLogLine(LogFormat::kText, LogLevel::kInfo, "listening",
                    {{"addr", "127.0.0.1:9999"}, {"note", "two words"}});
  EXPECT_NE(line.find(" info listening addr=127.0.0.1:9999 "),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("note=\"two words\""), std::string::npos) << line;
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
}

TEST(Log, JsonLineEscapes) {
  const std::string line = FormatLogLine(LogFormat::kJson, LogLevel::kError,
                                         "oops", {{"why", "a\"b\\c\nd"}});
  EXPECT_NE(line.find("\"level\":\"error\",\"event\":\"oops\","
                      "\"why\":\"a\\\"b\\\\c\\nd\"}"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.rfind("{\"ts\":\"", 0), 0u);
}

// Bytes a peer chose reach the log (gRPC logs header values it cannot
// parse): invalid UTF-8 becomes U+FFFD, valid UTF-8 stays, control bytes
// are escaped, so a JSON line stays valid JSON.
TEST(Log, JsonLineReplacesInvalidUtf8AndEscapesControlBytes) {
  const std::string line = FormatLogLine(
      LogFormat::kJson, LogLevel::kError, "grpc",
      {{"message", "a\xff\xfe b \xc3\xa9 \xe2\x82 \xed\xa0\x80 \x1b[2J \x7f"}});
  EXPECT_NE(line.find("\"message\":\"a\\ufffd\\ufffd b \xc3\xa9 \\ufffd\\ufffd "
                      "\\ufffd\\ufffd\\ufffd \\u001b[2J \\u007f\""),
            std::string::npos)
      << line;
}

TEST(Log, TextValuesWithControlOrNonAsciiBytesAreQuotedAndEscaped) {
  const std::string line =
      FormatLogLine(LogFormat::kText, LogLevel::kWarning, "grpc",
                    {{"message", "x\ry"},
                     {"peer", "caf\xc3\xa9"},
                     {"plain", "ipv4:127.0.0.1:5"}});
  EXPECT_NE(line.find("message=\"x\\u000dy\""), std::string::npos) << line;
  EXPECT_NE(line.find("peer=\"caf\xc3\xa9\""), std::string::npos) << line;
  EXPECT_NE(line.find("plain=ipv4:127.0.0.1:5"), std::string::npos) << line;
  EXPECT_EQ(line.find('\r'), std::string::npos);
}

TEST(LogRateLimit, AdmitsTheBudgetThenCountsTheRestIntoTheNextLine) {
  LogRateLimit limit(2, absl::Milliseconds(200));
  uint64_t suppressed = 99;
  EXPECT_TRUE(limit.Admit(suppressed));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_TRUE(limit.Admit(suppressed));
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limit.Admit(suppressed));
  absl::SleepFor(absl::Milliseconds(250));
  EXPECT_TRUE(limit.Admit(suppressed));
  EXPECT_EQ(suppressed, 5u);
  EXPECT_TRUE(limit.Admit(suppressed));
  EXPECT_EQ(suppressed, 0u);
}

}  // namespace
}  // namespace upper
