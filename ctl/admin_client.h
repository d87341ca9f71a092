// AdminClient: one admin endpoint (one upperd) as upperctl talks to it, and
// QueryAll, which asks every target of a fleet at once.
//
// Every call but the health check carries --token as "authorization:
// Bearer <token>" metadata; every call has --timeout as its deadline, and fails
// fast (no wait-for-ready) when the endpoint is down. TLS when --tls/--tls_ca.
//
// An AdminClient is thread-safe (as gRPC stubs are); QueryAll runs its
// function on up to kMaxParallelQueries threads and returns when all ended.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "ctl/options.h"
#include "ctl/targets.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "upper/admin/v1/admin.grpc.pb.h"

namespace upper::ctl {

class AdminClient {
 public:
  AdminClient(const Target& target, const Options& options);

  const std::string& address() const { return target_.address; }

  // Sets the token metadata and, when `deadline`, now + --timeout.
  void Prepare(grpc::ClientContext& context, bool deadline = true) const;

  grpc::Status GetStatus(upper::admin::v1::ServerStatus* status);
  // Every connection of `mode`: follows next_page_token from page to page
  // (`page_size` each, 0 = the server's default), each call with its own
  // --timeout deadline; `out` holds them all, in id order, and no token.
  // Fails with the failing page's status, or INTERNAL if the server's
  // pages do not advance (ids not ascending, the same token again, many
  // empty pages in a row).
  grpc::Status ListConnections(upper::admin::v1::Mode mode, int32_t page_size,
                               upper::admin::v1::ListConnectionsResponse* out);
  grpc::Status SetMode(upper::admin::v1::Mode mode,
                       upper::admin::v1::SetModeResponse* out);
  grpc::Status CloseConnection(uint64_t id,
                               upper::admin::v1::CloseConnectionResponse* out);
  // grpc.health.v1 Check of the whole server; `*serving` as in
  // health_check.h.
  grpc::Status CheckHealth(std::string* serving);
  // Starts WatchStatus with `context` (prepared by the caller, usually with
  // no deadline: the stream lasts until cancelled).
  std::unique_ptr<grpc::ClientReader<upper::admin::v1::ServerStatus>>
  WatchStatus(grpc::ClientContext* context, absl::Duration interval);

 private:
  using Stub = upper::admin::v1::AdminService::Stub;
  template <typename Request, typename Response>
  using UnaryMethod = grpc::Status (Stub::*)(grpc::ClientContext*,
                                             const Request&, Response*);

  // A dns:/// name that did not resolve fails every call with UNAVAILABLE.
  grpc::Status Unresolved() const;
  // One unary call with a Prepare()d context (admin_client.cc only).
  template <typename Request, typename Response>
  grpc::Status Call(UnaryMethod<Request, Response> method,
                    const Request& request, Response* response);

  Target target_;
  std::string token_;
  absl::Duration timeout_;
  std::shared_ptr<grpc::Channel> channel_;  // null when unresolved
  std::unique_ptr<Stub> stub_;
};

// One instance's answer in a fleet query.
template <typename T>
struct InstanceResult {
  std::string address;
  grpc::Status status;
  T value;
};

inline constexpr size_t kMaxParallelQueries = 32;

// Runs `call` against every target concurrently (each bounded by --timeout)
// and returns the results in target order.
template <typename T>
std::vector<InstanceResult<T>> QueryAll(
    const Targets& targets, const Options& options,
    const std::function<grpc::Status(AdminClient&, T*)>& call) {
  std::vector<InstanceResult<T>> results(targets.list.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < targets.list.size(); i = next++) {
      AdminClient client(targets.list[i], options);
      results[i].address = client.address();
      results[i].status = call(client, &results[i].value);
    }
  };
  const size_t threads = std::min(targets.list.size(), kMaxParallelQueries);
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();  // this thread takes a share too
  for (std::thread& thread : pool) thread.join();
  return results;
}

}  // namespace upper::ctl
