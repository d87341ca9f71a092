#include "server/admin/admin_files.h"

#include <utility>

#include "server/admin/admin_token.h"
#include "server/admin/flag_file.h"
#include "server/admin/tls_pair_check.h"

namespace upper {
namespace {

absl::StatusOr<AdminFiles> ReadAndCheck(const Config& config) {
  AdminFiles files;
  if (!config.admin_token_file.empty()) {
    absl::StatusOr<std::string> token = ReadAdminToken(config.admin_token_file);
    if (!token.ok()) return token.status();
    files.token = *std::move(token);
  }
  if (config.admin_tls_cert.empty()) return files;
  absl::StatusOr<std::string> cert =
      ReadFlagFile("admin_tls_cert", config.admin_tls_cert);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key =
      ReadFlagFile("admin_tls_key", config.admin_tls_key);
  if (!key.ok()) return key.status();
  if (absl::Status s = CheckTlsKeyPair(*cert, *key, config.admin_tls_cert,
                                       config.admin_tls_key);
      !s.ok()) {
    return s;
  }
  files.tls = TlsKeyPair{*std::move(key), *std::move(cert)};
  return files;
}

}  // namespace

absl::StatusOr<AdminFiles> LoadAdminFiles(const Config& config) {
  absl::StatusOr<AdminFiles> files = ReadAndCheck(config);
  if (!files.ok()) return NameTheVariable(files.status(), config);
  return files;
}

}  // namespace upper
