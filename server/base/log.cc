#include "server/base/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace upper {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};

absl::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

void AppendJsonString(std::string& out, absl::string_view s) {
  out.push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out.push_back(kHex[(c >> 4) & 0xf]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

// Text values with spaces or quotes are quoted so a line stays parseable.
void AppendTextValue(std::string& out, absl::string_view s) {
  if (!s.empty() && s.find_first_of(" \"=\n") == absl::string_view::npos) {
    out.append(s.data(), s.size());
  } else {
    AppendJsonString(out, s);
  }
}

}  // namespace

LogField::LogField(absl::string_view k, int64_t v)
    : key(k), value(absl::StrCat(v)) {}
LogField::LogField(absl::string_view k, uint64_t v)
    : key(k), value(absl::StrCat(v)) {}

void SetLogFormat(LogFormat format) { g_format.store(format); }

bool ParseLogFormat(absl::string_view text, LogFormat* format) {
  if (text == "text") {
    *format = LogFormat::kText;
    return true;
  }
  if (text == "json") {
    *format = LogFormat::kJson;
    return true;
  }
  return false;
}

std::string FormatLogLine(LogFormat format, LogLevel level,
                          absl::string_view event,
                          std::initializer_list<LogField> fields) {
  const std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                          absl::UTCTimeZone());
  std::string line;
  if (format == LogFormat::kJson) {
    absl::StrAppend(&line, "{\"ts\":\"", ts, "\",\"level\":\"",
                    LevelName(level), "\",\"event\":");
    AppendJsonString(line, event);
    for (const LogField& f : fields) {
      line.push_back(',');
      AppendJsonString(line, f.key);
      line.push_back(':');
      AppendJsonString(line, f.value);
    }
    line += "}\n";
  } else {
    absl::StrAppend(&line, ts, " ", LevelName(level), " ", event);
    for (const LogField& f : fields) {
      absl::StrAppend(&line, " ", f.key, "=");
      AppendTextValue(line, f.value);
    }
    line.push_back('\n');
  }
  return line;
}

namespace {

// One write(2) where possible, so that lines from threads never interleave.
void WriteLine(const std::string& line) {
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t n = write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr is gone: nothing better to do
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

void LogEvent(LogLevel level, absl::string_view event,
              std::initializer_list<LogField> fields) {
  WriteLine(FormatLogLine(g_format.load(std::memory_order_relaxed), level,
                          event, fields));
}

void LogStartupFailure(absl::string_view message) {
  if (g_format.load() == LogFormat::kJson) {
    LogEvent(LogLevel::kError, "startup_failed", {{"message", message}});
    return;
  }
  WriteLine(absl::StrCat("upperd: ", message, "\n"));
}

}  // namespace upper
