// `upperctl mode` shows the mode new connections get; `upperctl mode
// fork|thread` (any case) sets it and prints "previous -> new"; on a fleet
// it exits non-zero unless every instance switched. Any other name is sent
// as MODE_UNSPECIFIED (a number as that enum value), so upperd is the one
// judge of valid modes and its INVALID_ARGUMENT is shown as is.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ctl/admin_client.h"
#include "ctl/commands/commands.h"
#include "ctl/format/fleet.h"
#include "ctl/format/status_text.h"
#include "ctl/mode_name.h"
#include "upper/ctl/v1/output.pb.h"

namespace upper::ctl {
namespace {

namespace admin = ::upper::admin::v1;
namespace out = ::upper::ctl::v1;

admin::Mode WantedMode(const std::string& name) {
  if (std::optional<admin::Mode> mode = ModeFromName(name)) return *mode;
  int number = 0;
  if (absl::SimpleAtoi(name, &number)) return static_cast<admin::Mode>(number);
  return admin::MODE_UNSPECIFIED;
}

std::string Change(const admin::SetModeResponse& response) {
  return absl::StrCat(ModeText(response.previous_mode()), " -> ",
                      ModeText(response.mode()));
}

// Showing is a GetStatus, answered as a SetModeResponse with previous ==
// new, so both forms share one JSON shape.
std::vector<InstanceResult<admin::SetModeResponse>> QueryModes(
    const CommandContext& context, bool set, admin::Mode wanted) {
  return QueryAll<admin::SetModeResponse>(
      context.targets, context.options,
      [set, wanted](AdminClient& client, admin::SetModeResponse* response) {
        if (set) return client.SetMode(wanted, response);
        admin::ServerStatus status;
        grpc::Status called = client.GetStatus(&status);
        response->set_previous_mode(status.mode());
        response->set_mode(status.mode());
        return called;
      });
}

// "previous -> new" after a change, else the mode.
std::string ModeCell(bool set, const admin::SetModeResponse& response) {
  return set ? Change(response) : ModeText(response.mode());
}

int PrintFleet(
    const CommandContext& context,
    const std::vector<InstanceResult<admin::SetModeResponse>>& results,
    bool set) {
  FleetFormat<out::FleetMode, admin::SetModeResponse> format;
  format.columns = {{"MODE"}};
  format.rows = [set](const admin::SetModeResponse& response) {
    return FleetRows{{ModeCell(set, response)}};
  };
  format.fill = [](const admin::SetModeResponse& response,
                   out::InstanceMode* instance) {
    instance->set_previous_mode(response.previous_mode());
    instance->set_mode(response.mode());
  };
  format.write = set;
  return PrintFleet(context, results, format);
}

}  // namespace

int RunMode(const CommandContext& context) {
  if (context.args.size() > 1) {
    return context.UsageError(absl::StrCat(
        "mode takes at most one argument, got ", context.args.size()));
  }
  const bool set = context.args.size() == 1;
  const admin::Mode wanted =
      set ? WantedMode(context.args[0]) : admin::MODE_UNSPECIFIED;
  const std::vector<InstanceResult<admin::SetModeResponse>> results =
      QueryModes(context, set, wanted);
  if (context.targets.fleet) return PrintFleet(context, results, set);
  const auto& result = results.front();
  if (!result.status.ok()) {
    return context.CallFailed(result.address, result.status);
  }
  if (context.json()) return context.PrintJson(result.value);
  context.out << ModeCell(set, result.value) << '\n';
  return kExitOk;
}

}  // namespace upper::ctl
