#include "ctl/app.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ctl/command.h"
#include "ctl/commands/commands.h"
#include "ctl/errors.h"
#include "ctl/exit_codes.h"
#include "ctl/options.h"
#include "ctl/targets.h"

namespace upper::ctl {
namespace {

constexpr char kGeneralUsage[] =
    "usage: upperctl [flags] <command> [args] (commands: status, "
    "connections, mode, close, watch, health, version; upperctl --help)";

int UsageError(std::ostream& err, absl::string_view problem) {
  err << "upperctl: " << OneLine(problem) << "; " << kGeneralUsage << '\n';
  return kExitUsage;
}

}  // namespace

std::string HelpText() {
  std::string help =
      "upperctl: see and steer running upperd servers through their admin "
      "port.\n\nusage: upperctl [flags] <command> [args]   (flags may also "
      "follow the command)\n\ncommands:\n";
  for (const Command& command : CommandTable()) {
    std::string name(command.usage);
    for (absl::string_view alias : command.aliases) {
      absl::StrAppend(&name, "  (alias ", alias, ")");
    }
    absl::StrAppendFormat(&help, "  %s\n      %s\n", name, command.summary);
  }
  absl::StrAppend(
      &help, "\nflags:\n", FlagsHelp(),
      "\nexit status: 0 ok, 1 server error (or not SERVING), 2 bad usage, "
      "3 unreachable, 4 token needed; on a fleet, `mode fork|thread` is 0 "
      "only if every instance switched.\nSee docs/upperctl.md.\n");
  return help;
}

int RunUpperctl(const std::vector<std::string>& argv, std::ostream& out,
                std::ostream& err, bool stdout_is_tty) {
  absl::StatusOr<Invocation> invocation = ParseInvocation(argv);
  if (!invocation.ok()) return UsageError(err, invocation.status().message());
  if (invocation->help || invocation->command == "help") {
    out << HelpText();
    return kExitOk;
  }
  if (invocation->command.empty()) return UsageError(err, "no command given");
  const Command* command = FindCommand(invocation->command);
  if (command == nullptr) {
    return UsageError(
        err, absl::StrCat("unknown command \"", invocation->command, "\""));
  }
  Targets targets;
  if (command->needs_server) {
    absl::StatusOr<Targets> parsed = ParseTargets(invocation->options.addr);
    if (!parsed.ok()) return UsageError(err, parsed.status().message());
    targets = *std::move(parsed);
  }
  const CommandContext context{.command = *command,
                               .options = invocation->options,
                               .args = invocation->args,
                               .targets = targets,
                               .out = out,
                               .err = err,
                               .stdout_is_tty = stdout_is_tty};
  const int code = command->run(context);
  out.flush();
  return code;
}

}  // namespace upper::ctl
