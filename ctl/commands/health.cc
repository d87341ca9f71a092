// `upperctl health`: the standard grpc.health.v1 status of the server.
// Exit 0 only if every instance is SERVING; 1 if one is not (or, in a
// fleet, did not answer while others did); 3 if none could be reached.
#include <string>
#include <vector>

#include "ctl/admin_client.h"
#include "ctl/commands/commands.h"
#include "ctl/format/fleet.h"
#include "upper/ctl/v1/output.pb.h"

namespace upper::ctl {
namespace {

namespace out = ::upper::ctl::v1;

constexpr char kServing[] = "SERVING";

// One instance: its status as a line or JSON; exit 0 only if SERVING.
int PrintOne(const CommandContext& context,
             const InstanceResult<std::string>& result) {
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

// A fleet: the fleet's exit status (errors.h) when that is not 0; else 0
// only if every instance answered SERVING.
int PrintFleet(const CommandContext& context,
               const std::vector<InstanceResult<std::string>>& results) {
  FleetFormat<out::FleetHealth, std::string> format;
  format.columns = {{"STATUS"}};
  format.rows = [](const std::string& serving) { return FleetRows{{serving}}; };
  format.fill = [](const std::string& serving, out::InstanceHealth* instance) {
    instance->set_status(serving);
  };
  if (const int printed = PrintFleet(context, results, format);
      printed != kExitOk) {
    return printed;
  }
  for (const auto& result : results) {
    if (!result.status.ok() || result.value != kServing) {
      return kExitServerError;
    }
  }
  return kExitOk;
}

}  // namespace

int RunHealth(const CommandContext& context) {
  int exit_code = kExitOk;
  if (!context.RequireNoArguments(&exit_code)) return exit_code;
  const std::vector<InstanceResult<std::string>> results =
      QueryAll<std::string>(context.targets, context.options,
                            [](AdminClient& client, std::string* serving) {
                              return client.CheckHealth(serving);
                            });
  if (context.targets.fleet) return PrintFleet(context, results);
  return PrintOne(context, results.front());
}

}  // namespace upper::ctl
