#include "server/admin/tls_pair_check.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace upper {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* x509) const { X509_free(x509); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

std::unique_ptr<BIO, BioFree> MemoryBio(absl::string_view pem) {
  return std::unique_ptr<BIO, BioFree>(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// The passphrase callback: there is no one to ask, so an encrypted key
// fails to load instead of OpenSSL prompting on the terminal.
int RefusePassphrase(char*, int, int, void*) { return 0; }

absl::Status Bad(absl::string_view flag, const std::string& path,
                 absl::string_view why) {
  // OpenSSL queues its reasons per thread; drop them so that a later,
  // unrelated error (gRPC's TLS) does not report ours.
  ERR_clear_error();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, ": ", path, ": ", why));
}

// True when `pem` holds an encrypted PEM key (PKCS#8 or the legacy
// "Proc-Type: 4,ENCRYPTED" header), to say so rather than "not a key".
bool LooksEncrypted(absl::string_view pem) {
  return pem.find("ENCRYPTED") != absl::string_view::npos;
}

}  // namespace

absl::Status CheckTlsKeyPair(absl::string_view cert_pem,
                             absl::string_view key_pem,
                             const std::string& cert_path,
                             const std::string& key_path) {
  std::unique_ptr<BIO, BioFree> cert_bio = MemoryBio(cert_pem);
  std::unique_ptr<X509, X509Free> cert(
      cert_bio == nullptr ? nullptr
                          : PEM_read_bio_X509(cert_bio.get(), nullptr,
                                              RefusePassphrase, nullptr));
  if (cert == nullptr) {
    return Bad("admin_tls_cert", cert_path, "no PEM certificate in it");
  }
  std::unique_ptr<BIO, BioFree> key_bio = MemoryBio(key_pem);
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      key_bio == nullptr ? nullptr
                         : PEM_read_bio_PrivateKey(key_bio.get(), nullptr,
                                                   RefusePassphrase, nullptr));
  if (key == nullptr) {
    return Bad("admin_tls_key", key_path,
               LooksEncrypted(key_pem)
                   ? "the key is encrypted (upperd needs it without a "
                     "passphrase)"
                   : "no PEM private key in it");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return Bad("admin_tls_key", key_path,
               "does not match the certificate in --admin_tls_cert");
  }
  ERR_clear_error();
  return absl::OkStatus();
}

}  // namespace upper
