// AdminServiceImpl: upper.admin.v1.AdminService, served by upperd on the
// admin port. Every figure comes from the shared connection table (the
// totals and a snapshot of the slots), so connections served by fork
// children are as visible as those served by threads. Steering goes through
// ServerControl (SetMode, CloseConnection), which is thread-safe.
//
// When a token is configured, every method first checks the call's
// `authorization: Bearer <token>` metadata (constant-time comparison) and
// answers UNAUTHENTICATED otherwise. This is the second line: the first is
// TokenAuthProcessor, which refuses such calls on their headers before they
// reach a thread (token_auth_processor.h).
//
// At most kMaxWatches WatchStatus streams run at once; a further one gets
// RESOURCE_EXHAUSTED. Each stream holds one of the sync server's threads for
// as long as it runs, so without a cap a client that opens watches in a loop
// would take threads and memory from every other admin call.
//
// Thread-safe: gRPC calls the methods from its own threads, concurrently.
// EndWatches() may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/admin/admin_exposure.h"
#include "server/base/config.h"
#include "server/data/server_control.h"
#include "upper/admin/v1/admin.grpc.pb.h"

namespace upper {

class AdminServiceImpl final : public admin::v1::AdminService::Service {
 public:
  // A handful of operators' `upperctl watch` at once. Each holds one of the
  // admin server's 32 threads (kMaxThreads in admin_server.cc) for as long
  // as it runs, so the cap leaves most of them to unary calls; below the
  // 16 streams a connection may open, so that one client past the cap is
  // refused rather than queued by its own channel.
  static constexpr int kMaxWatches = 8;

  // `token` empty: no authentication. `server` must outlive this service.
  AdminServiceImpl(ServerControl& server, const Config& config,
                   std::string token);

  grpc::Status GetStatus(grpc::ServerContext* context,
                         const admin::v1::GetStatusRequest* request,
                         admin::v1::ServerStatus* response) override;
  grpc::Status ListConnections(
      grpc::ServerContext* context,
      const admin::v1::ListConnectionsRequest* request,
      admin::v1::ListConnectionsResponse* response) override;
  grpc::Status SetMode(grpc::ServerContext* context,
                       const admin::v1::SetModeRequest* request,
                       admin::v1::SetModeResponse* response) override;
  grpc::Status CloseConnection(
      grpc::ServerContext* context,
      const admin::v1::CloseConnectionRequest* request,
      admin::v1::CloseConnectionResponse* response) override;
  grpc::Status WatchStatus(
      grpc::ServerContext* context,
      const admin::v1::WatchStatusRequest* request,
      grpc::ServerWriter<admin::v1::ServerStatus>* writer) override;

  // Ends every WatchStatus stream with OK after one last status (which says
  // draining), now and for streams opened later. Called when upperd drains.
  void EndWatches();

 private:
  // OK, or UNAUTHENTICATED when a token is configured and the call does not
  // carry it.
  grpc::Status Authorize(const grpc::ServerContext& context) const;
  // How a call that got past Authorize() was authenticated, for the audit
  // lines of steering calls: "token", or "none" when no token is set.
  absl::string_view AuthName() const;
  admin::v1::ServerStatus CurrentStatus() const;
  bool watches_ended() const;
  // WatchStatus's loop: writes a status every `interval` until the client
  // cancels or goes, or EndWatches(); counts statuses in `sent` and says why
  // it ended ("cancelled", "client_gone", "draining").
  absl::string_view StreamStatuses(
      grpc::ServerContext& context, absl::Duration interval,
      grpc::ServerWriter<admin::v1::ServerStatus>& writer, uint64_t& sent);

  ServerControl& server_;
  const uint32_t max_connections_;
  const absl::Duration idle_timeout_;
  const std::string token_;
  const AdminExposure exposure_;

  mutable std::mutex mu_;
  std::condition_variable watches_wakeup_;
  bool watches_ended_ = false;  // under mu_
  int active_watches_ = 0;      // under mu_
};

}  // namespace upper
