#include "server/admin/grpc_log.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpc/support/log.h"
#include "server/base/log.h"

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

void LogGrpcLine(gpr_log_func_args* args) {
  LogEvent(LevelOf(args->severity), "grpc",
           {{"message", args->message != nullptr ? args->message : ""},
            {"source", absl::StrCat(BaseName(args->file), ":", args->line)}});
}

}  // namespace

void RouteGrpcLogsToUpperLog() { gpr_set_log_function(LogGrpcLine); }

}  // namespace upper
