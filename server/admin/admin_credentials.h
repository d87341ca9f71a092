// AdminCredentials: the admin port's server credentials (plaintext or TLS)
// with the bearer-token check installed in gRPC's server auth filter.
//
// Why not grpc::InsecureServerCredentials() plus SetAuthMetadataProcessor():
// in gRPC 1.51 the C++ insecure credentials abort on that call
// (insecure_server_credentials.cc:43, "assertion failed: 0"), although the
// core credentials underneath support a processor. So this class builds the
// core credentials itself, insecure or SSL, attaches the processor to them,
// and adds the port with them: the same filter, the same hook, for both.
//
// The processor runs inline in the filter (no thread pool of its own): the
// check is a constant-time comparison that never blocks.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "grpcpp/security/server_credentials.h"
#include "server/admin/admin_files.h"
#include "server/admin/token_auth_processor.h"

namespace upper {

class AdminCredentials final : public grpc::ServerCredentials {
 public:
  // `tls` nullopt: plaintext. `auth` null: no token required.
  AdminCredentials(std::optional<TlsKeyPair> tls,
                   std::shared_ptr<TokenAuthProcessor> auth);

  // Not supported: the processor is given to the constructor. Does nothing.
  void SetAuthMetadataProcessor(
      const std::shared_ptr<grpc::AuthMetadataProcessor>&) override {}

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override;

  const std::optional<TlsKeyPair> tls_;
  const std::shared_ptr<TokenAuthProcessor> auth_;
};

}  // namespace upper
