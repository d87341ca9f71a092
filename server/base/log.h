// Structured event log: one line per event on stderr, as text
//   2026-11-25T11:03:21.123Z info listening service=data addr=0.0.0.0:9999
// or, with --log_format=json,
//   {"ts":"2026-11-25T11:03:21.123Z","level":"info","event":"listening",...}
//
// Thread-safe. Once StartLogWriter has run, a line is formatted and queued
// in a bounded buffer (log_buffer.h) that a writer thread drains to stderr:
// logging never waits on stderr's reader, a line that does not fit is
// dropped and counted (LogLinesDropped, and a `log_lines_dropped dropped=N`
// line before the next one that gets through), and what is queued is flushed
// at exit for up to 1 s. Before that, and in any process that did not start
// the writer, each line is one synchronous write(2).
// Not async-signal-safe: fork children never log.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace upper {

enum class LogFormat { kText, kJson };
enum class LogLevel { kInfo, kWarning, kError };

// Set once at start-up, before other threads exist.
void SetLogFormat(LogFormat format);
bool ParseLogFormat(absl::string_view text, LogFormat* format);

// One key=value pair of an event.
struct LogField {
  LogField(absl::string_view k, absl::string_view v) : key(k), value(v) {}
  LogField(absl::string_view k, const char* v) : key(k), value(v) {}
  LogField(absl::string_view k, const std::string& v) : key(k), value(v) {}
  LogField(absl::string_view k, int64_t v);
  LogField(absl::string_view k, uint64_t v);
  LogField(absl::string_view k, int v) : LogField(k, int64_t{v}) {}
  LogField(absl::string_view k, unsigned v) : LogField(k, uint64_t{v}) {}
  LogField(absl::string_view k, long long v)
      : LogField(k, static_cast<int64_t>(v)) {}
  LogField(absl::string_view k, unsigned long long v)
      : LogField(k, static_cast<uint64_t>(v)) {}

  std::string key;
  std::string value;
};

// Starts the writer thread of this process (upperd's main; not the fork
// server, which must stay single-threaded: fork_server.cc),
// and registers the flush at exit (atexit: a return from main). Call it
// early on the main thread, before other threads exist, so the writer
// inherits the main thread's priority. False when no thread could be
// started: lines then stay synchronous.
bool StartLogWriter();

// Waits up to `timeout` until the lines logged so far are written.
bool FlushLog(absl::Duration timeout);

// For a process that must stay single-threaded and never wait on stderr's
// reader (the fork server): from now on a line is written only if stderr
// takes it at once (never_wait_stderr.h), else dropped, counted, and
// reported in a `log_lines_dropped dropped=N process=<process>` line before
// the next line that gets through (`process` names whose drops they are:
// not upperd's, which upper_log_lines_dropped_total counts). Call once,
// early, before StartLogWriter would be; `process` must outlive the process
// (a literal).
void MakeLogNeverWait(const char* process);

// Lines dropped because the buffer was full or stderr would not take them
// at once (stderr's reader stuck).
uint64_t LogLinesDropped();

void LogEvent(LogLevel level, absl::string_view event,
              std::initializer_list<LogField> fields = {});

// A start-up failure, the one stderr line before upperd exits: in text
// format "upperd: <message>", in JSON an error event `startup_failed` whose
// "message" is <message> (so that every line of a JSON log parses).
void LogStartupFailure(absl::string_view message);

// Formats one line without writing it (for tests).
std::string FormatLogLine(LogFormat format, LogLevel level,
                          absl::string_view event,
                          std::initializer_list<LogField> fields);

}  // namespace upper
