// The files the admin plane needs (the token, the TLS certificate and key),
// read and validated once, in main(), right after the command line is
// parsed: before any port is bound and before DataPlane::Create() blocks
// SIGTERM, so that a bad file (a FIFO, /dev/zero, a key that does not match
// its certificate) exits 2 at once with one line naming the flag, and a hung
// read can still be killed with SIGTERM. AdminServer::Start() takes the
// result and reads no file itself.
//
// Thread-safe (no shared state); called once, from the main thread.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "server/base/config.h"

namespace upper {

struct TlsKeyPair {
  std::string private_key_pem;
  std::string certificate_chain_pem;
};

struct AdminFiles {
  std::string token;              // empty: no token required
  std::optional<TlsKeyPair> tls;  // nullopt: plaintext
};

// Reads --admin_token_file, --admin_tls_cert and --admin_tls_key (those that
// are set) and checks them: the token under common/token_rule.h, the TLS
// pair with OpenSSL (tls_pair_check.h). Errors are InvalidArgument, one line
// starting "--<flag>: " or, when the flag came from the environment,
// "UPPER_<FLAG>: ".
absl::StatusOr<AdminFiles> LoadAdminFiles(const Config& config);

}  // namespace upper
