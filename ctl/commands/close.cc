// `upperctl close ID`: ends one connection of one instance (IDs are per
// instance, so a fleet --addr is refused) and says what it was.
#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ctl/admin_client.h"
#include "ctl/commands/commands.h"
#include "ctl/format/status_text.h"
#include "ctl/format/units.h"

namespace upper::ctl {

int RunClose(const CommandContext& context) {
  if (context.args.size() != 1) {
    return context.UsageError(context.args.empty()
                                  ? "close needs a connection ID"
                                  : "close takes one connection ID");
  }
  // IDs start at 1; "-1" reaches here as an argument (options.h), and is
  // refused as what it is rather than as an unknown flag.
  uint64_t id = 0;
  if (!absl::SimpleAtoi(context.args[0], &id) || id == 0) {
    return context.UsageError(
        absl::StrCat("connection ID must be a positive integer, not \"",
                     context.args[0], "\""));
  }
  int exit_code = kExitOk;
  if (!context.RequireSingleTarget(&exit_code)) return exit_code;

  AdminClient client(context.targets.list.front(), context.options);
  upper::admin::v1::CloseConnectionResponse response;
  const grpc::Status status = client.CloseConnection(id, &response);
  if (!status.ok()) return context.CallFailed(client.address(), status);
  if (context.json()) return context.PrintJson(response);
  const upper::admin::v1::Connection& c = response.connection();
  context.out << "closed connection " << id << ": " << c.peer_address() << ":"
              << c.peer_port() << ", " << ModeText(c.mode()) << ", pid "
              << c.worker_pid() << ", received "
              << HumanBytes(c.received_bytes()) << ", sent "
              << HumanBytes(c.sent_bytes()) << '\n';
  return kExitOk;
}

}  // namespace upper::ctl
