// Test-side helpers for talking to upperd's admin port with the generated
// gRPC stubs: channels (plain or TLS), contexts with a deadline and an
// optional token, health checks and reflection, plus the little /proc and
// socket facts the admin tests compare against (parent pid, a socket's local
// port). Every call is bounded by a deadline.
//
// Thread-safe: stubs and channels may be shared across threads.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "upper/admin/v1/admin.grpc.pb.h"

namespace upper::testing {

// A plaintext channel to 127.0.0.1:`port`.
std::shared_ptr<grpc::Channel> AdminChannel(uint16_t port);
// A TLS channel to 127.0.0.1:`port` trusting `root_pem`, expecting the
// server's certificate to name `server_name`.
std::shared_ptr<grpc::Channel> AdminTlsChannel(uint16_t port,
                                               const std::string& root_pem,
                                               const std::string& server_name);

// A context with a deadline of `timeout` and, if `token` is not empty, the
// `authorization: Bearer <token>` metadata.
std::unique_ptr<grpc::ClientContext> Context(
    const std::string& token = "", absl::Duration timeout = absl::Seconds(10));

// GetStatus; fails the status on any error (message includes the code).
absl::StatusOr<admin::v1::ServerStatus> GetStatus(
    admin::v1::AdminService::Stub& stub, const std::string& token = "");
// ListConnections, every page (following next_page_token).
absl::StatusOr<std::vector<admin::v1::Connection>> ListConnections(
    admin::v1::AdminService::Stub& stub, const std::string& token = "");

// CloseConnection of `id` (no token): the gRPC code only.
grpc::StatusCode CloseConnectionCode(admin::v1::AdminService::Stub& stub,
                                     uint64_t id);

// The id of the one live connection, or 0 (none, several, or an error).
uint64_t OnlyLiveConnectionId(admin::v1::AdminService::Stub& stub);

// grpc.health.v1.Health/Check for `service`: the serving status, or the RPC
// error.
absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus>
CheckHealth(grpc::Channel& channel, const std::string& service);

// Service names upperd's reflection lists (as grpcurl list does); `token`
// is sent as the bearer token unless empty.
absl::StatusOr<std::vector<std::string>> ReflectionListServices(
    grpc::Channel& channel, const std::string& token = "");
// Names of the files reflection returns for `symbol` (the defining file
// first, then its dependencies).
absl::StatusOr<std::vector<std::string>> ReflectionFilesForSymbol(
    grpc::Channel& channel, const std::string& symbol);

// The parent of `pid` (from /proc/pid/stat), or -1.
pid_t ParentPid(pid_t pid);

// The per_mode entry of `mode` in a status (a test failure if absent).
const admin::v1::ModeStats& PerMode(const admin::v1::ServerStatus& status,
                                    admin::v1::Mode mode);

// Polls GetStatus until `predicate` holds or `timeout` passes (workers and
// the reaper update the table a moment after a client sees its last byte);
// returns the last status read.
template <typename F>
admin::v1::ServerStatus StatusWhen(admin::v1::AdminService::Stub& stub,
                                   F predicate,
                                   absl::Duration timeout = absl::Seconds(10)) {
  admin::v1::ServerStatus last;
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    absl::StatusOr<admin::v1::ServerStatus> s = GetStatus(stub);
    if (s.ok()) {
      last = *std::move(s);
      if (predicate(last)) return last;
    }
    if (absl::Now() >= deadline) return last;
    absl::SleepFor(absl::Milliseconds(10));
  }
}
// Whether `tid` is a thread of process `pid`.
bool IsThreadOf(pid_t pid, pid_t tid);
// The local port of a connected socket (the peer port upperd sees).
uint16_t LocalPort(int fd);

// Runs `command` with /bin/sh; fails on a non-zero exit.
absl::Status RunShell(const std::string& command);
// A new private directory under the test's temporary directory.
absl::StatusOr<std::string> MakeTempDir();
// Writes `content` to `path`.
absl::Status WriteFile(const std::string& path, const std::string& content);
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace upper::testing
