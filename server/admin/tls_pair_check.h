// Checking the admin port's TLS certificate and key with OpenSSL before gRPC
// sees them. gRPC 1.51 only finds a bad pair when the port is added, and
// then logs raw lines and fails as "cannot listen" (exit 1); this check
// makes it one line naming the flag, exit 2, before any port is bound.
//
// Thread-safe (no shared state).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace upper {

// OK when `cert_pem` holds at least one PEM X509 certificate, `key_pem` a
// PEM private key that needs no passphrase (an encrypted key is refused:
// upperd cannot ask for one), and the key is the first certificate's.
// Errors are InvalidArgument "--admin_tls_cert: <cert_path>: ..." or
// "--admin_tls_key: <key_path>: ...".
absl::Status CheckTlsKeyPair(absl::string_view cert_pem,
                             absl::string_view key_pem,
                             const std::string& cert_path,
                             const std::string& key_path);

}  // namespace upper
