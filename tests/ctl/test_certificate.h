// A throwaway self-signed certificate (CN=upperctl-test, EC P-256, valid
// until 2126; its key was not kept) for tests that need --tls_ca to hold a
// PEM certificate OpenSSL accepts. No test makes a TLS connection with it.
#pragma once

namespace upper::testing {

inline constexpr char kTestCaPem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBhjCCAS2gAwIBAgIUG19SbKFv4b5BKoxMm/WsHm67zzAwCgYIKoZIzj0EAwIw\n"
    "GDEWMBQGA1UEAwwNdXBwZXJjdGwtdGVzdDAgFw0yNjEyMDIyMTIwMDRaGA8yMTI2\n"
    "MTEwODIxMjAwNFowGDEWMBQGA1UEAwwNdXBwZXJjdGwtdGVzdDBZMBMGByqGSM49\n"
    "AgEGCCqGSM49AwEHA0IABC6bSW1yT/bT2BjRvJBdSQ6YNx6JtYYj2ifjwZ6n4u2m\n"
    "3/elLLRvDRQLfiu4xT/21a+MFoqVENzyWPG5hWOezDOjUzBRMB0GA1UdDgQWBBQ7\n"
    "wD7YBg9Jj3RNIvr3MVgo/O9BZjAfBgNVHSMEGDAWgBQ7wD7YBg9Jj3RNIvr3MVgo\n"
    "/O9BZjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCICzbFyfQqSHo\n"
    "USTSqQ39XZUsOd/DytkJRBjpgfCFfgHrAiBSqUULBStWnBY2X9Rmn7kOAWpclxSg\n"
    "MIpIxZpSWcZwGQ==\n"
    "-----END CERTIFICATE-----\n";

}  // namespace upper::testing
