#include "server/admin/admin_credentials.h"

#include <utility>

#include "absl/strings/string_view.h"
#include "grpc/grpc.h"
#include "grpc/grpc_security.h"
#include "grpc/slice.h"

namespace upper {
namespace {

absl::string_view View(const grpc_slice& slice) {
  return absl::string_view(
      reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(slice)),
      GRPC_SLICE_LENGTH(slice));
}

// The first value of `key` among the call's headers; false if absent.
bool FindFirst(const grpc_metadata* md, size_t num_md, absl::string_view key,
               absl::string_view& value) {
  for (size_t i = 0; i < num_md; ++i) {
    if (View(md[i].key) == key) {
      value = View(md[i].value);
      return true;
    }
  }
  return false;
}

// What the auth context says of the peer: its TLS identity, if any (gRPC
// 1.51 keeps no address there).
std::string PeerIdentity(const grpc_auth_context* context) {
  if (context == nullptr) return "";
  grpc_auth_property_iterator it = grpc_auth_context_peer_identity(context);
  const grpc_auth_property* property = grpc_auth_property_iterator_next(&it);
  if (property == nullptr) return "";
  return std::string(property->value, property->value_length);
}

// gRPC's core processor hook: `state` is a heap-held shared_ptr to the
// processor, released by DestroyProcessor when the core credentials go.
void ProcessMetadata(void* state, grpc_auth_context* context,
                     const grpc_metadata* md, size_t num_md,
                     grpc_process_auth_metadata_done_cb done, void* user_data) {
  TokenAuthProcessor& auth =
      **static_cast<std::shared_ptr<TokenAuthProcessor>*>(state);
  absl::string_view path;
  FindFirst(md, num_md, ":path", path);
  absl::string_view authorization;
  const bool presented = FindFirst(md, num_md, "authorization", authorization);
  const grpc::Status status = auth.Check(
      path, presented ? &authorization : nullptr, PeerIdentity(context));
  done(user_data, nullptr, 0, nullptr, 0,
       static_cast<grpc_status_code>(status.error_code()),
       status.ok() ? nullptr : status.error_message().c_str());
}

void DestroyProcessor(void* state) {
  delete static_cast<std::shared_ptr<TokenAuthProcessor>*>(state);
}

grpc_server_credentials* CoreCredentials(const std::optional<TlsKeyPair>& tls) {
  if (!tls) return grpc_insecure_server_credentials_create();
  grpc_ssl_pem_key_cert_pair pair = {tls->private_key_pem.c_str(),
                                     tls->certificate_chain_pem.c_str()};
  return grpc_ssl_server_credentials_create_ex(
      nullptr, &pair, 1, GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE, nullptr);
}

}  // namespace

AdminCredentials::AdminCredentials(std::optional<TlsKeyPair> tls,
                                   std::shared_ptr<TokenAuthProcessor> auth)
    : tls_(std::move(tls)), auth_(std::move(auth)) {}

int AdminCredentials::AddPortToServer(const std::string& addr,
                                      grpc_server* server) {
  grpc_server_credentials* creds = CoreCredentials(tls_);
  if (creds == nullptr) return 0;
  if (auth_ != nullptr) {
    grpc_server_credentials_set_auth_metadata_processor(
        creds, {ProcessMetadata, DestroyProcessor,
                new std::shared_ptr<TokenAuthProcessor>(auth_)});
  }
  const int port = grpc_server_add_http2_port(server, addr.c_str(), creds);
  grpc_server_credentials_release(creds);
  return port;
}

}  // namespace upper
