#include "ctl/format/fleet.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ctl/errors.h"

namespace upper::ctl {
namespace {

// The exit status of `outcome`; for a failed write, also one stderr line
// naming the instances whose row or entry says why.
int FleetExit(const CommandContext& context, const FleetOutcome& outcome) {
  if (!outcome.write) return FleetExitCode(outcome.statuses);
  if (!outcome.failed.empty()) {
    context.err << "upperctl: " << context.command.name << " failed on "
                << outcome.failed.size() << " of " << outcome.statuses.size()
                << " instances: " << absl::StrJoin(outcome.failed, ", ")
                << '\n';
  }
  return FleetWriteExitCode(outcome.statuses);
}

}  // namespace

int FinishFleetJson(const CommandContext& context,
                    const google::protobuf::Message& fleet,
                    const FleetOutcome& outcome) {
  if (const int printed = context.PrintJson(fleet); printed != kExitOk) {
    return printed;
  }
  return FleetExit(context, outcome);
}

int FinishFleetTable(const CommandContext& context, const Table& table,
                     const FleetOutcome& outcome) {
  context.out << table.Render();
  return FleetExit(context, outcome);
}

}  // namespace upper::ctl
