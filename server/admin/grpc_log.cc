#include "server/admin/grpc_log.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/stubs/logging.h"
#include "grpc/support/log.h"
#include "server/base/log.h"
#include "server/base/log_rate_limit.h"

namespace upper {
namespace {

LogLevel LevelOf(gpr_log_severity severity) {
  switch (severity) {
    case GPR_LOG_SEVERITY_ERROR:
      return LogLevel::kError;
    case GPR_LOG_SEVERITY_INFO:
    case GPR_LOG_SEVERITY_DEBUG:
      return LogLevel::kInfo;
  }
  return LogLevel::kError;
}

// gRPC's file names are full build paths; the base name says enough.
absl::string_view BaseName(const char* file) {
  absl::string_view path = file != nullptr ? file : "";
  const size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

// gRPC logs, at its default verbosity, the header values of a peer's calls
// that it cannot parse, before any token is checked: bounded here, in
// length and in rate, so that no peer can flood stderr through it.
constexpr size_t kMaxMessageBytes = 512;
constexpr int kLinesPerSecond = 20;

LogRateLimit& Limit() {
  static LogRateLimit* limit =
      new LogRateLimit(kLinesPerSecond, absl::Seconds(1));  // never destroyed:
  return *limit;  // gRPC may log from its threads during exit
}

void LogLibraryLine(absl::string_view event, LogLevel level,
                    absl::string_view message, absl::string_view source) {
  uint64_t suppressed = 0;
  if (!Limit().Admit(suppressed)) return;
  std::string text(message.substr(0, kMaxMessageBytes));
  if (message.size() > kMaxMessageBytes) {
    absl::StrAppend(&text, "... (", message.size(), " bytes)");
  }
  LogEvent(level, event,
           {{"message", text}, {"source", source}, {"suppressed", suppressed}});
}

void LogGrpcLine(gpr_log_func_args* args) {
  LogLibraryLine("grpc", LevelOf(args->severity),
                 args->message != nullptr ? args->message : "",
                 absl::StrCat(BaseName(args->file), ":", args->line));
}

void LogProtobufLine(google::protobuf::LogLevel level, const char* file,
                     int line, const std::string& message) {
  LogLibraryLine("protobuf",
                 level >= google::protobuf::LOGLEVEL_ERROR ? LogLevel::kError
                 : level == google::protobuf::LOGLEVEL_WARNING
                     ? LogLevel::kWarning
                     : LogLevel::kInfo,
                 message, absl::StrCat(BaseName(file), ":", line));
}

}  // namespace

void RouteGrpcLogsToUpperLog() {
  gpr_set_log_function(LogGrpcLine);
  google::protobuf::SetLogHandler(LogProtobufLine);
}

}  // namespace upper
