#include "ctl/format/fleet.h"

#include <vector>

#include "ctl/errors.h"

namespace upper::ctl {

int FinishFleetJson(const CommandContext& context,
                    const google::protobuf::Message& fleet,
                    const std::vector<grpc::Status>& statuses) {
  if (const int printed = context.PrintJson(fleet); printed != kExitOk) {
    return printed;
  }
  return FleetExitCode(statuses);
}

int FinishFleetTable(const CommandContext& context, const Table& table,
                     const std::vector<grpc::Status>& statuses) {
  context.out << table.Render();
  return FleetExitCode(statuses);
}

}  // namespace upper::ctl
