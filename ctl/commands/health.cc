// `upperctl health`: the standard grpc.health.v1 status of the server.
// Exit 0 only if every instance is SERVING; 1 if one is not (or, in a
// fleet, did not answer while others did); 3 if none could be reached.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ctl/admin_client.h"
#include "ctl/commands/commands.h"
#include "ctl/errors.h"
#include "ctl/format/table.h"
#include "upper/ctl/v1/output.pb.h"

namespace upper::ctl {
namespace {

namespace out = ::upper::ctl::v1;

constexpr char kServing[] = "SERVING";

}  // namespace

int RunHealth(const CommandContext& context) {
  if (!context.args.empty()) {
    return context.UsageError(absl::StrCat("health takes no arguments, got \"",
                                           context.args[0], "\""));
  }
  const std::vector<InstanceResult<std::string>> results =
      QueryAll<std::string>(context.targets, context.options,
                            [](AdminClient& client, std::string* serving) {
                              return client.CheckHealth(serving);
                            });

  if (!context.targets.fleet) {
    const auto& result = results.front();
    if (!result.status.ok()) {
      return context.CallFailed(result.address, result.status);
    }
    if (context.json()) {
      out::Health health;
      health.set_status(result.value);
      if (const int printed = context.PrintJson(health); printed != kExitOk) {
        return printed;
      }
    } else {
      context.out << result.value << '\n';
    }
    return result.value == kServing ? kExitOk : kExitServerError;
  }

  std::vector<grpc::Status> statuses;
  bool all_serving = true;
  for (const auto& result : results) {
    statuses.push_back(result.status);
    all_serving = all_serving && result.status.ok() && result.value == kServing;
  }
  if (context.json()) {
    out::FleetHealth fleet;
    for (const auto& result : results) {
      out::InstanceHealth* instance = fleet.add_instances();
      instance->set_address(result.address);
      if (result.status.ok()) {
        instance->set_status(result.value);
      } else {
        *instance->mutable_error() = ToInstanceError(result.status);
      }
    }
    if (const int printed = context.PrintJson(fleet); printed != kExitOk) {
      return printed;
    }
  } else {
    Table table({{"INSTANCE"}, {"STATUS"}});
    for (const auto& result : results) {
      if (result.status.ok()) {
        table.AddRow({result.address, result.value});
      } else {
        table.AddNote(result.address, ErrorText(result.status));
      }
    }
    context.out << table.Render();
  }
  const ExitCode fleet_code = FleetExitCode(statuses);
  if (fleet_code != kExitOk) return fleet_code;
  return all_serving ? kExitOk : kExitServerError;
}

}  // namespace upper::ctl
