// --tls_ca's file checked before gRPC sees it: gRPC takes any bytes as
// pem_root_certs and only fails later, per call, with "empty address list"
// (exit 3, as if the server were down). upperctl instead parses the PEM with
// OpenSSL once, at start-up, so a wrong file is a usage error naming the
// flag (exit 2).
//
// Pure function (OpenSSL's per-thread error queue is cleared); thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace upper::ctl {

// OK if `pem` holds at least one PEM X.509 certificate and nothing that
// fails to parse as one; else InvalidArgument saying what is wrong (without
// a flag name, which the caller adds).
absl::Status ValidateCaPem(const std::string& pem);

}  // namespace upper::ctl
