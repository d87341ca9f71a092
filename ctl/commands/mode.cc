// `upperctl mode` shows the mode new connections get; `upperctl mode
// fork|thread` sets it and prints "previous -> new". Any other name is sent
// as MODE_UNSPECIFIED (a number as that enum value), so upperd is the one
// judge of valid modes and its INVALID_ARGUMENT is shown as is.
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ctl/admin_client.h"
#include "ctl/commands/commands.h"
#include "ctl/errors.h"
#include "ctl/format/status_text.h"
#include "ctl/format/table.h"
#include "upper/ctl/v1/output.pb.h"

namespace upper::ctl {
namespace {

namespace admin = ::upper::admin::v1;
namespace out = ::upper::ctl::v1;

admin::Mode ModeFromName(const std::string& name) {
  if (name == "fork" || name == "MODE_FORK") return admin::MODE_FORK;
  if (name == "thread" || name == "MODE_THREAD") return admin::MODE_THREAD;
  int number = 0;
  if (absl::SimpleAtoi(name, &number)) return static_cast<admin::Mode>(number);
  return admin::MODE_UNSPECIFIED;
}

std::string Change(const admin::SetModeResponse& response) {
  return absl::StrCat(ModeText(response.previous_mode()), " -> ",
                      ModeText(response.mode()));
}

}  // namespace

int RunMode(const CommandContext& context) {
  if (context.args.size() > 1) {
    return context.UsageError(absl::StrCat(
        "mode takes at most one argument, got ", context.args.size()));
  }
  const bool set = context.args.size() == 1;
  const admin::Mode wanted =
      set ? ModeFromName(context.args[0]) : admin::MODE_UNSPECIFIED;
  // Showing is a GetStatus, answered as a SetModeResponse with previous ==
  // new, so both forms share one JSON shape.
  const std::vector<InstanceResult<admin::SetModeResponse>> results =
      QueryAll<admin::SetModeResponse>(
          context.targets, context.options,
          [set, wanted](AdminClient& client, admin::SetModeResponse* response) {
            if (set) return client.SetMode(wanted, response);
            admin::ServerStatus status;
            grpc::Status called = client.GetStatus(&status);
            response->set_previous_mode(status.mode());
            response->set_mode(status.mode());
            return called;
          });

  if (!context.targets.fleet) {
    const auto& result = results.front();
    if (!result.status.ok()) {
      return context.CallFailed(result.address, result.status);
    }
    if (context.json()) return context.PrintJson(result.value);
    context.out << (set ? Change(result.value) : ModeText(result.value.mode()))
                << '\n';
    return kExitOk;
  }

  std::vector<grpc::Status> statuses;
  for (const auto& result : results) statuses.push_back(result.status);
  if (context.json()) {
    out::FleetMode fleet;
    for (const auto& result : results) {
      out::InstanceMode* instance = fleet.add_instances();
      instance->set_address(result.address);
      if (result.status.ok()) {
        instance->set_previous_mode(result.value.previous_mode());
        instance->set_mode(result.value.mode());
      } else {
        *instance->mutable_error() = ToInstanceError(result.status);
      }
    }
    if (const int printed = context.PrintJson(fleet); printed != kExitOk) {
      return printed;
    }
    return FleetExitCode(statuses);
  }
  Table table({{"INSTANCE"}, {"MODE"}});
  for (const auto& result : results) {
    if (result.status.ok()) {
      table.AddRow({result.address, set ? Change(result.value)
                                        : ModeText(result.value.mode())});
    } else {
      table.AddNote(result.address, ErrorText(result.status));
    }
  }
  context.out << table.Render();
  return FleetExitCode(statuses);
}

}  // namespace upper::ctl
