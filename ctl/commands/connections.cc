// `upperctl connections` (alias conns): every live connection, optionally
// of one mode; with a fleet, an INSTANCE column first and an error row per
// instance that did not answer.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/host_port.h"
#include "ctl/admin_client.h"
#include "ctl/commands/commands.h"
#include "ctl/errors.h"
#include "ctl/format/status_text.h"
#include "ctl/format/table.h"
#include "ctl/format/units.h"
#include "upper/ctl/v1/output.pb.h"

namespace upper::ctl {
namespace {

namespace admin = ::upper::admin::v1;
namespace out = ::upper::ctl::v1;

std::vector<std::string> Cells(absl::Time now, const admin::Connection& c) {
  return {absl::StrCat(c.id()),
          JoinHostPort(c.peer_address(), c.peer_port()),
          ModeText(c.mode()),
          absl::StrCat(c.worker_pid()),
          c.worker_tid() == 0 ? "-" : absl::StrCat(c.worker_tid()),
          HumanDuration(now - ToTime(c.started_at())),
          HumanBytes(c.received_bytes()),
          HumanBytes(c.sent_bytes()),
          HumanDuration(ToDuration(c.idle()))};
}

std::vector<Column> ConnectionColumns(bool with_instance) {
  std::vector<Column> columns;
  if (with_instance) columns.push_back({"INSTANCE"});
  for (Column column : std::vector<Column>{{"ID", Align::kRight},
                                           {"PEER"},
                                           {"MODE"},
                                           {"PID", Align::kRight},
                                           {"TID", Align::kRight},
                                           {"AGE", Align::kRight},
                                           {"RECEIVED", Align::kRight},
                                           {"SENT", Align::kRight},
                                           {"IDLE", Align::kRight}}) {
    columns.push_back(column);
  }
  return columns;
}

int PrintFleet(
    const CommandContext& context,
    const std::vector<InstanceResult<admin::ListConnectionsResponse>>&
        results) {
  std::vector<grpc::Status> statuses;
  for (const auto& result : results) statuses.push_back(result.status);
  if (context.json()) {
    out::FleetConnections fleet;
    for (const auto& result : results) {
      out::InstanceConnections* instance = fleet.add_instances();
      instance->set_address(result.address);
      if (result.status.ok()) {
        *instance->mutable_connections() = result.value.connections();
      } else {
        *instance->mutable_error() = ToInstanceError(result.status);
      }
    }
    if (const int printed = context.PrintJson(fleet); printed != kExitOk) {
      return printed;
    }
    return FleetExitCode(statuses);
  }
  const absl::Time now = absl::Now();
  Table table(ConnectionColumns(/*with_instance=*/true));
  for (const auto& result : results) {
    if (!result.status.ok()) {
      table.AddNote(result.address, ErrorText(result.status));
      continue;
    }
    for (const admin::Connection& c : result.value.connections()) {
      std::vector<std::string> cells = Cells(now, c);
      cells.insert(cells.begin(), result.address);
      table.AddRow(std::move(cells));
    }
  }
  context.out << table.Render();
  return FleetExitCode(statuses);
}

}  // namespace

int RunConnections(const CommandContext& context) {
  if (!context.args.empty()) {
    return context.UsageError(absl::StrCat(context.command.name,
                                           " takes no arguments, got \"",
                                           context.args[0], "\""));
  }
  const admin::Mode mode = context.options.mode_filter;
  const std::vector<InstanceResult<admin::ListConnectionsResponse>> results =
      QueryAll<admin::ListConnectionsResponse>(
          context.targets, context.options,
          [mode](AdminClient& client, admin::ListConnectionsResponse* list) {
            return client.ListConnections(mode, list);
          });
  if (context.targets.fleet) return PrintFleet(context, results);
  const auto& result = results.front();
  if (!result.status.ok()) {
    return context.CallFailed(result.address, result.status);
  }
  if (context.json()) return context.PrintJson(result.value);
  const absl::Time now = absl::Now();
  Table table(ConnectionColumns(/*with_instance=*/false));
  for (const admin::Connection& c : result.value.connections()) {
    table.AddRow(Cells(now, c));
  }
  context.out << table.Render();
  return kExitOk;
}

}  // namespace upper::ctl
