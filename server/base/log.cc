#include "server/base/log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/base/log_buffer.h"
#include "server/base/never_wait_stderr.h"

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

// The length of the valid UTF-8 sequence at the start of `s`, or 0 (RFC
// 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
size_t Utf8SequenceLength(absl::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  size_t length = 0;
  unsigned char low = 0x80, high = 0xbf;  // bounds of the second byte
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  }
  if (length == 0 || s.size() < length) return 0;
  if (byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xbf) return 0;
  }
  return length;
}

// A JSON string of `s`. Bytes a peer chose end up here (gRPC logs header
// values it cannot parse), so anything that is not valid UTF-8 becomes
// U+FFFD: every line stays valid JSON.
void AppendJsonString(std::string& out, absl::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t length = Utf8SequenceLength(s.substr(i));
      if (length == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.data() + i, length);
        i += length;
      }
      continue;
    }
    ++i;
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\u00";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

// A text value is written as is when it is plain printable ASCII without
// spaces, quotes or '='; anything else is quoted and escaped as in JSON, so
// that a line stays one parseable line and no byte a peer chose reaches a
// terminal raw.
void AppendTextValue(std::string& out, absl::string_view s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '"' && c != '=';
  });
  if (plain) {
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
// Used before StartLogWriter, in a process that did not start it (a fork
// child, a test), and by nobody on upperd's data plane once it runs.
void WriteLine(absl::string_view line) {
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

// The buffer and the process that started its writer. Never destroyed:
// threads may still log while the process exits (after FlushAtExit, their
// lines are dropped and counted).
std::atomic<LogBuffer*> g_buffer{nullptr};
std::atomic<pid_t> g_buffer_owner{0};
constexpr absl::Duration kExitFlushTimeout = absl::Seconds(1);

// The buffer, when this process started it. A fork child sees its parent's
// buffer, whose writer thread does not exist here and whose mutex may be
// held by a thread that does not exist either: it must not touch it.
LogBuffer* OwnBuffer() {
  LogBuffer* buffer = g_buffer.load(std::memory_order_acquire);
  if (buffer == nullptr) return nullptr;
  return g_buffer_owner.load(std::memory_order_relaxed) == getpid() ? buffer
                                                                    : nullptr;
}

std::string DropLine(uint64_t dropped) {
  return FormatLogLine(g_format.load(std::memory_order_relaxed),
                       LogLevel::kWarning, "log_lines_dropped",
                       {{"dropped", dropped}});
}

// The stderr of a process that called MakeLogNeverWait (set once, before
// its lines), its drops, and those not yet reported in a line that got
// through. That process logs from one thread (the fork server).
std::atomic<NeverWaitStderr*> g_never_wait{nullptr};
std::atomic<uint64_t> g_never_wait_dropped{0};
uint64_t g_never_wait_unreported = 0;

// Set with g_never_wait: the process named in its drop reports.
const char* g_never_wait_process = "";

void EmitNeverWait(NeverWaitStderr& out, absl::string_view line) {
  if (g_never_wait_unreported > 0) {
    const std::string report =
        FormatLogLine(g_format.load(std::memory_order_relaxed),
                      LogLevel::kWarning, "log_lines_dropped",
                      {{"dropped", g_never_wait_unreported},
                       {"process", g_never_wait_process}});
    if (!out.Write(report)) {
      ++g_never_wait_unreported;
      g_never_wait_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    g_never_wait_unreported = 0;
  }
  if (!out.Write(line)) {
    ++g_never_wait_unreported;
    g_never_wait_dropped.fetch_add(1, std::memory_order_relaxed);
  }
}

void FlushAtExit() {
  if (LogBuffer* buffer = OwnBuffer()) buffer->Stop(kExitFlushTimeout);
}

void Emit(absl::string_view line) {
  if (LogBuffer* buffer = OwnBuffer()) {
    buffer->Append(line);
  } else if (NeverWaitStderr* out =
                 g_never_wait.load(std::memory_order_acquire)) {
    EmitNeverWait(*out, line);
  } else {
    WriteLine(line);
  }
}

}  // namespace

bool StartLogWriter() {
  if (g_buffer.load() != nullptr) return true;
  LogBuffer* buffer = nullptr;
  try {
    buffer = new LogBuffer(STDERR_FILENO, LogBuffer::kDefaultCapacityBytes,
                           DropLine);
  } catch (const std::system_error&) {
    return false;  // no thread: lines stay synchronous
  }
  g_buffer_owner.store(getpid(), std::memory_order_relaxed);
  g_buffer.store(buffer, std::memory_order_release);
  std::atexit(FlushAtExit);
  return true;
}

bool FlushLog(absl::Duration timeout) {
  LogBuffer* buffer = OwnBuffer();
  return buffer == nullptr || buffer->Flush(timeout);
}

void MakeLogNeverWait(const char* process) {
  if (g_never_wait.load() != nullptr) return;
  g_never_wait_process = process;
  // Never destroyed, like the buffer: lines may be logged until _exit.
  g_never_wait.store(new NeverWaitStderr(NeverWaitStderr::Prepare()),
                     std::memory_order_release);
}

uint64_t LogLinesDropped() {
  const LogBuffer* buffer = g_buffer.load(std::memory_order_acquire);
  return (buffer == nullptr ? 0 : buffer->dropped_total()) +
         g_never_wait_dropped.load(std::memory_order_relaxed);
}

void LogEvent(LogLevel level, absl::string_view event,
              std::initializer_list<LogField> fields) {
  Emit(FormatLogLine(g_format.load(std::memory_order_relaxed), level, event,
                     fields));
}

void LogStartupFailure(absl::string_view message) {
  if (g_format.load() == LogFormat::kJson) {
    LogEvent(LogLevel::kError, "startup_failed", {{"message", message}});
    return;
  }
  Emit(absl::StrCat("upperd: ", message, "\n"));
}

}  // namespace upper
