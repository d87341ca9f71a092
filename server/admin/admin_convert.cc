#include "server/admin/admin_convert.h"

#include <string>
#include <utility>

#include "common/host_port.h"
#include "google/protobuf/util/time_util.h"
#include "server/data/worker_exits.h"

namespace upper {
namespace {

using google::protobuf::util::TimeUtil;

constexpr Mode kReportedModes[] = {Mode::kFork, Mode::kThread};

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  *out = TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  *out = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

}  // namespace

admin::v1::Mode ToProtoMode(Mode mode) {
  switch (mode) {
    case Mode::kFork:
      return admin::v1::MODE_FORK;
    case Mode::kThread:
      return admin::v1::MODE_THREAD;
    case Mode::kUnspecified:
      break;
  }
  return admin::v1::MODE_UNSPECIFIED;
}

std::optional<Mode> FromProtoMode(int value) {
  switch (value) {
    case admin::v1::MODE_FORK:
      return Mode::kFork;
    case admin::v1::MODE_THREAD:
      return Mode::kThread;
    default:
      return std::nullopt;
  }
}

namespace {

// The fields of `s` that come from the process, not the table.
void SetFacts(const ServerFacts& facts, admin::v1::ServerStatus& s) {
  SetTimestamp(facts.started_at, s.mutable_started_at());
  SetDuration(std::max(facts.now - facts.started_at, absl::ZeroDuration()),
              s.mutable_uptime());
  s.set_pid(facts.pid);
  s.set_version(facts.version);
  s.set_revision(facts.revision);
  s.set_data_address(facts.data_address);
  s.set_max_connections(facts.max_connections);
  SetDuration(facts.idle_timeout, s.mutable_idle_timeout());
  s.set_draining(facts.draining);
  *s.mutable_limits() = ToProtoLimits(facts.limits);
  admin::v1::AdminSecurity* security = s.mutable_admin_security();
  security->set_bind(facts.admin.bind);
  security->set_loopback(facts.admin.loopback);
  security->set_token_required(facts.admin.token_required);
  security->set_tls(facts.admin.tls);
  security->set_exposed(facts.admin.exposed());
  for (std::string& warning : AdminWarnings(facts.admin)) {
    s.add_warnings(std::move(warning));
  }
}

}  // namespace

admin::v1::ServerStatus ToServerStatus(const TableTotals& t,
                                       const ServerFacts& facts) {
  admin::v1::ServerStatus s;
  s.set_mode(ToProtoMode(t.current_mode));
  s.set_active_connections(t.ActiveTotal());
  uint64_t accepted = 0, closed = 0, received = 0, sent = 0;
  for (Mode mode : kReportedModes) {
    const auto m = static_cast<int>(mode);
    admin::v1::ModeStats* per = s.add_per_mode();
    per->set_mode(ToProtoMode(mode));
    per->set_active_connections(t.active[m]);
    per->set_accepted_total(t.accepted_total[m]);
    uint64_t mode_closed = 0;
    for (uint64_t n : t.closed_total[m]) mode_closed += n;
    per->set_closed_total(mode_closed);
    per->set_received_bytes_total(t.bytes_in_total[m]);
    per->set_sent_bytes_total(t.bytes_out_total[m]);
    accepted += t.accepted_total[m];
    closed += mode_closed;
    received += t.bytes_in_total[m];
    sent += t.bytes_out_total[m];
  }
  s.set_accepted_total(accepted);
  s.set_closed_total(closed);
  s.set_received_bytes_total(received);
  s.set_sent_bytes_total(sent);

  uint64_t rejected = 0;
  for (int r = 0; r < kRejectReasonCount; ++r) {
    rejected += t.rejected_total[r];
    (*s.mutable_rejected_by_reason())[std::string(
        RejectReasonName(static_cast<RejectReason>(r)))] = t.rejected_total[r];
  }
  s.set_rejected_total(rejected);
  // kNone (0) is never a final reason; every other one is reported.
  for (int r = 1; r < kCloseReasonCount; ++r) {
    uint64_t n = 0;
    for (int m = 0; m < kModeCount; ++m) n += t.closed_total[m][r];
    (*s.mutable_closed_by_reason())[std::string(
        CloseReasonName(static_cast<CloseReason>(r)))] = n;
  }
  s.set_mode_switches_total(t.mode_switches_total);
  s.set_worker_crashes_total(t.worker_crashes_total);

  SetFacts(facts, s);
  *s.add_workers() =
      ToWorkerPool(facts.fork_workers, t.active[static_cast<int>(Mode::kFork)]);
  *s.add_workers() = ToWorkerPool(facts.thread_workers);
  return s;
}

namespace {

// The fields every mode's workers share; `exits` from ExitsByReason.
template <typename Stats, typename Exits>
admin::v1::WorkerPool WorkerPoolOf(Mode mode, const Stats& stats, uint64_t busy,
                                   const Exits& exits) {
  admin::v1::WorkerPool pool;
  pool.set_mode(ToProtoMode(mode));
  pool.set_busy(busy);
  pool.set_idle(stats.idle);
  pool.set_spawns_total(stats.spawns_total);
  pool.set_handoffs_total(stats.handoffs_total);
  for (const WorkerExitCount& exit : exits) {
    (*pool.mutable_exits_by_reason())[exit.reason] = exit.count;
  }
  return pool;
}

}  // namespace

admin::v1::WorkerPool ToWorkerPool(const ThreadCacheStats& stats) {
  return WorkerPoolOf(Mode::kThread, stats, stats.busy, ExitsByReason(stats));
}

admin::v1::WorkerPool ToWorkerPool(const ForkPoolStats& stats, uint64_t busy) {
  return WorkerPoolOf(Mode::kFork, stats, busy, ExitsByReason(stats));
}

admin::v1::ResourceLimits ToProtoLimits(const ResourceLimits& limits) {
  admin::v1::ResourceLimits l;
  l.set_open_files_limit(limits.open_files);
  l.set_open_files_hard_limit(limits.open_files_hard);
  l.set_max_processes(limits.max_processes);
  l.set_pids_limit(limits.pids_limit);
  l.set_memory_limit_bytes(limits.memory_limit_bytes);
  return l;
}

admin::v1::Connection ToConnection(const ConnectionInfo& info,
                                   uint64_t now_coarse_mono_ns) {
  admin::v1::Connection c;
  c.set_id(info.id);
  PeerAddress peer = SplitPeer(info.peer);
  c.set_peer_address(std::move(peer.address));
  c.set_peer_port(peer.port);
  c.set_mode(ToProtoMode(info.mode));
  c.set_worker_pid(info.pid);
  c.set_worker_tid(info.tid);
  *c.mutable_started_at() = TimeUtil::NanosecondsToTimestamp(
      static_cast<int64_t>(info.started_unix_ns));
  c.set_received_bytes(info.bytes_in);
  c.set_sent_bytes(info.bytes_out);
  // Activity is stamped with the coarse clock, which may trail by a tick.
  const uint64_t idle_ns = now_coarse_mono_ns > info.last_active_mono_ns
                               ? now_coarse_mono_ns - info.last_active_mono_ns
                               : 0;
  *c.mutable_idle() =
      TimeUtil::NanosecondsToDuration(static_cast<int64_t>(idle_ns));
  return c;
}

PeerAddress SplitPeer(absl::string_view peer) {
  const HostPortParts parts = SplitHostPort(peer);
  if (!parts.ok() || !parts.port.has_value()) return {"unknown", 0};
  return {std::string(parts.host), *parts.port};
}

}  // namespace upper
