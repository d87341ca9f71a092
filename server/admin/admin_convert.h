// Mapping from upperd's own types (the connection table's TableTotals and
// ConnectionInfo, Mode) to the upper.admin.v1 messages, in one place, so the
// admin service only reads and the mapping is unit-tested on its own.
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/admin/admin_exposure.h"
#include "server/base/mode.h"
#include "server/base/resource_limits.h"
#include "server/data/connection_table.h"
#include "server/data/worker_stats.h"
#include "upper/admin/v1/admin.pb.h"

namespace upper {

// What a ServerStatus holds besides the table's figures.
struct ServerFacts {
  absl::Time started_at;
  absl::Time now;
  int32_t pid = 0;
  std::string version;
  std::string revision;
  std::string data_address;
  uint32_t max_connections = 0;
  absl::Duration idle_timeout;
  bool draining = false;
  ResourceLimits limits;
  AdminExposure admin;  // admin_security, and warnings when exposed
  // ServerControl::thread_workers() and fork_workers(), for `workers`.
  ThreadCacheStats thread_workers;
  ForkPoolStats fork_workers;
};

admin::v1::Mode ToProtoMode(Mode mode);
// The upperd Mode for a proto enum value: MODE_FORK or MODE_THREAD; nullopt
// for MODE_UNSPECIFIED and for values this build does not know.
std::optional<Mode> FromProtoMode(int value);

// Every figure of `totals`, plus `facts`. Per-mode entries come in the order
// fork, thread; the by-reason maps hold every reason, zeros included, so
// clients see a stable set of keys. `workers` comes from facts' worker stats,
// fork's busy from the table's active fork connections, as /metrics has it.
admin::v1::ServerStatus ToServerStatus(const TableTotals& totals,
                                       const ServerFacts& facts);

// One mode's WorkerPool. Fork's busy count is passed apart: ToServerStatus
// takes it from the table, as /metrics does.
admin::v1::WorkerPool ToWorkerPool(const ThreadCacheStats& stats);
admin::v1::WorkerPool ToWorkerPool(const ForkPoolStats& stats, uint64_t busy);

// The limits as the proto carries them (0 = unlimited or unknown, as in
// ResourceLimits).
admin::v1::ResourceLimits ToProtoLimits(const ResourceLimits& limits);

// One live connection. `now_coarse_mono_ns` is CLOCK_MONOTONIC_COARSE now,
// the clock workers stamp activity with, for the idle time.
admin::v1::Connection ToConnection(const ConnectionInfo& info,
                                   uint64_t now_coarse_mono_ns);

// Splits a peer as the table formats it ("1.2.3.4:5", "[::1]:5") into
// address and port; {"unknown", 0} when it is not one.
struct PeerAddress {
  std::string address;
  uint32_t port = 0;
};
PeerAddress SplitPeer(absl::string_view peer);

}  // namespace upper
