// `upperctl connections` (alias conns): every live connection, optionally
// of one mode, gathered page by page (--page_size); with a fleet, an
// INSTANCE column first and an error row per instance that did not answer.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/host_port.h"
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

std::vector<Column> ConnectionColumns() {
  return {{"ID", Align::kRight},
          {"PEER"},
          {"MODE"},
          {"PID", Align::kRight},
          {"TID", Align::kRight},
          {"AGE", Align::kRight},
          {"RECEIVED", Align::kRight},
          {"SENT", Align::kRight},
          {"IDLE", Align::kRight}};
}

int PrintFleet(
    const CommandContext& context,
    const std::vector<InstanceResult<admin::ListConnectionsResponse>>&
        results) {
  const absl::Time now = absl::Now();
  FleetFormat<out::FleetConnections, admin::ListConnectionsResponse> format;
  format.columns = ConnectionColumns();
  format.rows = [now](const admin::ListConnectionsResponse& list) {
    FleetRows rows;
    for (const admin::Connection& c : list.connections()) {
      rows.push_back(Cells(now, c));
    }
    return rows;
  };
  format.fill = [](const admin::ListConnectionsResponse& list,
                   out::InstanceConnections* instance) {
    *instance->mutable_connections() = list.connections();
  };
  return PrintFleet(context, results, format);
}

}  // namespace

int RunConnections(const CommandContext& context) {
  int exit_code = kExitOk;
  if (!context.RequireNoArguments(&exit_code)) return exit_code;
  const admin::Mode mode = context.options.mode_filter;
  const int32_t page_size = context.options.page_size;
  const std::vector<InstanceResult<admin::ListConnectionsResponse>> results =
      QueryAll<admin::ListConnectionsResponse>(
          context.targets, context.options,
          [mode, page_size](AdminClient& client,
                            admin::ListConnectionsResponse* list) {
            return client.ListConnections(mode, page_size, list);
          });
  if (context.targets.fleet) return PrintFleet(context, results);
  const auto& result = results.front();
  if (!result.status.ok()) {
    return context.CallFailed(result.address, result.status);
  }
  if (context.json()) return context.PrintJson(result.value);
  const absl::Time now = absl::Now();
  Table table(ConnectionColumns());
  for (const admin::Connection& c : result.value.connections()) {
    table.AddRow(Cells(now, c));
  }
  context.out << table.Render();
  return kExitOk;
}

}  // namespace upper::ctl
