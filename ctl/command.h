// What every upperctl command gets and shares: the parsed invocation, the
// targets, the output streams, and small helpers for the usual endings
// (a usage error, a failed call, JSON).
//
// A command is a function from a CommandContext to an exit status
// (exit_codes.h); the table of commands is in commands/commands.h. Commands
// run on the main thread; those that query a fleet use QueryAll.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "ctl/exit_codes.h"
#include "ctl/options.h"
#include "ctl/targets.h"
#include "grpcpp/support/status.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace upper::ctl {

struct Command;

struct CommandContext {
  const Command& command;
  const Options& options;
  const std::vector<std::string>& args;  // after the command's name
  const Targets& targets;
  std::ostream& out;
  std::ostream& err;
  bool stdout_is_tty = false;

  bool json() const { return options.output == OutputFormat::kJson; }

  // "upperctl: <problem>; usage: upperctl <usage>", exit 2.
  int UsageError(absl::string_view problem) const;
  // "upperctl: <error line>" and its exit status (errors.h); with -o json
  // also a CallError object on stdout.
  int CallFailed(absl::string_view address, const grpc::Status& status) const;
  // Prints `message` as JSON; exit 0, or 1 if it cannot be printed.
  int PrintJson(const google::protobuf::Message& message) const;
  // Exit 2 unless there is exactly one target (close, watch).
  bool RequireSingleTarget(int* exit_code) const;
  // Exit 2 if the command, which takes none, was given arguments.
  bool RequireNoArguments(int* exit_code) const;
};

struct Command {
  absl::string_view name;
  std::vector<absl::string_view> aliases;
  absl::string_view usage;    // after "upperctl ", e.g. "close ID"
  absl::string_view summary;  // one line for --help
  int (*run)(const CommandContext& context);
  bool needs_server = true;  // false: --addr is not even parsed
};

}  // namespace upper::ctl
