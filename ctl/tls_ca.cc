#include "ctl/tls_ca.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"

namespace upper::ctl {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};

// OpenSSL's reason for the last failure, e.g. "bad base64 decode".
std::string LastOpenSslError() {
  const unsigned long code = ERR_peek_last_error();
  const char* reason = code == 0 ? nullptr : ERR_reason_error_string(code);
  return reason == nullptr ? "unreadable PEM" : reason;
}

}  // namespace

absl::Status ValidateCaPem(const std::string& pem) {
  ERR_clear_error();
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return absl::ResourceExhaustedError("out of memory");
  int certificates = 0;
  for (;;) {
    std::unique_ptr<X509, X509Free> cert(
        PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert != nullptr) {
      ++certificates;
      continue;
    }
    // The loop ends at the end of the input ("no start line" after at least
    // one certificate) or at a block that does not parse.
    const unsigned long code = ERR_peek_last_error();
    const bool at_end = ERR_GET_LIB(code) == ERR_LIB_PEM &&
                        ERR_GET_REASON(code) == PEM_R_NO_START_LINE;
    const std::string why = LastOpenSslError();
    ERR_clear_error();
    if (at_end && certificates > 0) return absl::OkStatus();
    if (at_end) {
      return absl::InvalidArgumentError(
          "no PEM certificate (-----BEGIN CERTIFICATE-----) in it");
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "certificate ", certificates + 1, " does not parse: ", why));
  }
}

}  // namespace upper::ctl
