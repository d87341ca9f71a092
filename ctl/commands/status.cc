// `upperctl status`: one instance as a key/value block; a fleet as a table
// with a row per instance and a TOTAL row (IDLE and SPAWNS: both modes'
// workers; JSON has each mode's, summed in `total.workers`).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ctl/admin_client.h"
#include "ctl/commands/commands.h"
#include "ctl/format/fleet.h"
#include "ctl/format/status_text.h"
#include "ctl/format/table.h"
#include "ctl/format/units.h"
#include "upper/ctl/v1/output.pb.h"

namespace upper::ctl {
namespace {

namespace admin = ::upper::admin::v1;
namespace out = ::upper::ctl::v1;

void AddStats(const admin::ModeStats& from, admin::ModeStats* to) {
  to->set_active_connections(to->active_connections() +
                             from.active_connections());
  to->set_accepted_total(to->accepted_total() + from.accepted_total());
  to->set_closed_total(to->closed_total() + from.closed_total());
  to->set_received_bytes_total(to->received_bytes_total() +
                               from.received_bytes_total());
  to->set_sent_bytes_total(to->sent_bytes_total() + from.sent_bytes_total());
}

out::FleetTotal Total(
    const std::vector<InstanceResult<admin::ServerStatus>>& results) {
  out::FleetTotal total;
  total.set_instances(static_cast<uint32_t>(results.size()));
  admin::ModeStats* fork = total.add_per_mode();
  fork->set_mode(admin::MODE_FORK);
  admin::ModeStats* thread = total.add_per_mode();
  thread->set_mode(admin::MODE_THREAD);
  admin::WorkerPool* fork_workers = total.add_workers();
  fork_workers->set_mode(admin::MODE_FORK);
  admin::WorkerPool* thread_workers = total.add_workers();
  thread_workers->set_mode(admin::MODE_THREAD);
  for (const auto& result : results) {
    if (!result.status.ok()) continue;
    const admin::ServerStatus& s = result.value;
    total.set_reachable_instances(total.reachable_instances() + 1);
    total.set_active_connections(total.active_connections() +
                                 s.active_connections());
    total.set_accepted_total(total.accepted_total() + s.accepted_total());
    total.set_rejected_total(total.rejected_total() + s.rejected_total());
    total.set_closed_total(total.closed_total() + s.closed_total());
    total.set_received_bytes_total(total.received_bytes_total() +
                                   s.received_bytes_total());
    total.set_sent_bytes_total(total.sent_bytes_total() + s.sent_bytes_total());
    for (const admin::ModeStats& stats : s.per_mode()) {
      if (stats.mode() == admin::MODE_FORK) AddStats(stats, fork);
      if (stats.mode() == admin::MODE_THREAD) AddStats(stats, thread);
    }
    for (const admin::WorkerPool& pool : s.workers()) {
      if (pool.mode() == admin::MODE_FORK) AddWorkers(pool, fork_workers);
      if (pool.mode() == admin::MODE_THREAD) AddWorkers(pool, thread_workers);
    }
  }
  return total;
}

// The mode all reachable instances share, "mixed", or "-" if none answered.
std::string CommonMode(
    const std::vector<InstanceResult<admin::ServerStatus>>& results) {
  std::string common;
  for (const auto& result : results) {
    if (!result.status.ok()) continue;
    const std::string mode = ModeText(result.value.mode());
    if (common.empty()) {
      common = mode;
    } else if (common != mode) {
      return "mixed";
    }
  }
  return common.empty() ? "-" : common;
}

std::vector<Column> FleetColumns() {
  return {{"MODE"},
          {"ACTIVE", Align::kRight},
          {"FORK", Align::kRight},
          {"THREAD", Align::kRight},
          {"ACCEPTED", Align::kRight},
          {"REJECTED", Align::kRight},
          {"CLOSED", Align::kRight},
          {"RECEIVED", Align::kRight},
          {"SENT", Align::kRight},
          {"IDLE", Align::kRight},
          {"SPAWNS", Align::kRight},
          {"UPTIME", Align::kRight},
          {"PID", Align::kRight},
          {"VERSION"}};
}

// The MODE cell: the mode, then what an operator must notice about the
// instance (",draining", ",admin-exposed": its admin port takes any caller).
std::string ModeCell(const admin::ServerStatus& s) {
  std::string cell = ModeText(s.mode());
  if (s.draining()) cell += ",draining";
  if (s.admin_security().exposed()) cell += ",admin-exposed";
  return cell;
}

// Idle workers and worker spawns, both modes together.
uint64_t IdleWorkers(
    const google::protobuf::RepeatedPtrField<admin::WorkerPool>& workers) {
  uint64_t n = 0;
  for (const admin::WorkerPool& pool : workers) n += pool.idle();
  return n;
}
uint64_t WorkerSpawns(
    const google::protobuf::RepeatedPtrField<admin::WorkerPool>& workers) {
  uint64_t n = 0;
  for (const admin::WorkerPool& pool : workers) n += pool.spawns_total();
  return n;
}

std::vector<std::string> Cells(const admin::ServerStatus& s) {
  return {ModeCell(s),
          absl::StrCat(s.active_connections()),
          absl::StrCat(ActiveIn(s, admin::MODE_FORK)),
          absl::StrCat(ActiveIn(s, admin::MODE_THREAD)),
          absl::StrCat(s.accepted_total()),
          absl::StrCat(s.rejected_total()),
          absl::StrCat(s.closed_total()),
          HumanBytes(s.received_bytes_total()),
          HumanBytes(s.sent_bytes_total()),
          absl::StrCat(IdleWorkers(s.workers())),
          absl::StrCat(WorkerSpawns(s.workers())),
          HumanDuration(ToDuration(s.uptime())),
          absl::StrCat(s.pid()),
          s.version()};
}

std::vector<std::string> TotalCells(const out::FleetTotal& total,
                                    const std::string& common_mode) {
  return {absl::StrCat("TOTAL (", total.reachable_instances(), "/",
                       total.instances(), " up)"),
          common_mode,
          absl::StrCat(total.active_connections()),
          absl::StrCat(total.per_mode(0).active_connections()),
          absl::StrCat(total.per_mode(1).active_connections()),
          absl::StrCat(total.accepted_total()),
          absl::StrCat(total.rejected_total()),
          absl::StrCat(total.closed_total()),
          HumanBytes(total.received_bytes_total()),
          HumanBytes(total.sent_bytes_total()),
          absl::StrCat(IdleWorkers(total.workers())),
          absl::StrCat(WorkerSpawns(total.workers())),
          "-",
          "-",
          "-"};
}

int PrintFleet(
    const CommandContext& context,
    const std::vector<InstanceResult<admin::ServerStatus>>& results) {
  const out::FleetTotal total = Total(results);
  FleetFormat<out::FleetStatus, admin::ServerStatus> format;
  format.columns = FleetColumns();
  format.rows = [](const admin::ServerStatus& s) {
    return FleetRows{Cells(s)};
  };
  format.fill = [](const admin::ServerStatus& s,
                   out::InstanceStatus* instance) {
    *instance->mutable_status() = s;
  };
  format.last_row = [&] { return TotalCells(total, CommonMode(results)); };
  format.fill_fleet = [&](out::FleetStatus* fleet) {
    *fleet->mutable_total() = total;
  };
  return PrintFleet(context, results, format);
}

}  // namespace

int RunStatus(const CommandContext& context) {
  int exit_code = kExitOk;
  if (!context.RequireNoArguments(&exit_code)) return exit_code;
  const std::vector<InstanceResult<admin::ServerStatus>> results =
      QueryAll<admin::ServerStatus>(
          context.targets, context.options,
          [](AdminClient& client, admin::ServerStatus* status) {
            return client.GetStatus(status);
          });
  if (context.targets.fleet) return PrintFleet(context, results);
  const auto& result = results.front();
  if (!result.status.ok())
    return context.CallFailed(result.address, result.status);
  if (context.json()) return context.PrintJson(result.value);
  context.out << StatusBlock(result.address, result.value);
  return kExitOk;
}

}  // namespace upper::ctl
