#include "server/base/log.h"

#include <string>

#include "gtest/gtest.h"

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

}  // namespace
}  // namespace upper
