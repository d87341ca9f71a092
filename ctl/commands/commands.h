// upperctl's commands: one function per command, each in its own file,
// and the table that names them (command_table.cc).
#pragma once

#include <vector>

#include "absl/strings/string_view.h"
#include "ctl/command.h"

namespace upper::ctl {

int RunStatus(const CommandContext& context);       // status.cc
int RunConnections(const CommandContext& context);  // connections.cc
int RunMode(const CommandContext& context);         // mode.cc
int RunClose(const CommandContext& context);        // close.cc
int RunWatch(const CommandContext& context);        // watch.cc
int RunHealth(const CommandContext& context);       // health.cc
int RunVersion(const CommandContext& context);      // version.cc

// Every command, in --help order.
const std::vector<Command>& CommandTable();
// The command named or aliased `name`; nullptr if none.
const Command* FindCommand(absl::string_view name);

}  // namespace upper::ctl
