#include "server/admin/admin_exposure.h"

#include "absl/strings/str_cat.h"
#include "common/host_port.h"
#include "server/base/log.h"

namespace upper {
namespace {

constexpr char kFix[] =
    "set --admin_token_file (UPPER_ADMIN_TOKEN_FILE) to require a token, or "
    "bind --admin_bind=127.0.0.1; until then any peer that reaches the port "
    "can switch modes and close connections";

}  // namespace

AdminExposure AssessAdminExposure(const Config& config) {
  AdminExposure exposure;
  exposure.bind = config.admin_bind;
  exposure.loopback = IsLoopbackHost(config.admin_bind);
  exposure.token_required = !config.admin_token_file.empty();
  exposure.tls = !config.admin_tls_cert.empty();
  return exposure;
}

std::vector<std::string> AdminWarnings(const AdminExposure& exposure) {
  if (!exposure.exposed()) return {};
  return {absl::StrCat("admin endpoint exposed: --admin_bind=", exposure.bind,
                       " is not loopback and no token is required; ", kFix)};
}

void LogAdminExposure(const AdminExposure& exposure,
                      const std::string& address) {
  if (!exposure.exposed()) return;
  LogEvent(LogLevel::kWarning, "admin_exposed",
           {{"flag", "--admin_bind"},
            {"bind", exposure.bind},
            {"addr", address},
            {"auth", "none"},
            {"tls", exposure.tls ? "on" : "off"},
            {"fix", kFix}});
}

}  // namespace upper
