#include <vector>

#include "ctl/commands/commands.h"

namespace upper::ctl {

const std::vector<Command>& CommandTable() {
  static const auto* table = new std::vector<Command>{
      {"status",
       {},
       "status",
       "mode, connections, totals, bytes, uptime",
       &RunStatus},
      {"connections",
       {"conns"},
       "connections [--mode fork|thread] [--page_size N]",
       "every live connection: peer, mode, worker, bytes, idle time",
       &RunConnections},
      {"mode",
       {},
       "mode [fork|thread]",
       "show the mode new connections get, or set it (prints previous -> "
       "new)",
       &RunMode},
      {"close",
       {},
       "close ID",
       "end one connection (ID from connections)",
       &RunClose},
      {"watch",
       {},
       "watch [--interval 1s] [--count N]",
       "status, refreshed until Ctrl-C (one line per update when not on a "
       "terminal)",
       &RunWatch},
      {"health",
       {},
       "health",
       "grpc.health.v1 status; exit 0 if SERVING, else 1",
       &RunHealth},
      {"version",
       {},
       "version",
       "upperctl's version",
       &RunVersion,
       /*needs_server=*/false},
  };
  return *table;
}

const Command* FindCommand(absl::string_view name) {
  for (const Command& command : CommandTable()) {
    if (command.name == name) return &command;
    for (absl::string_view alias : command.aliases) {
      if (alias == name) return &command;
    }
  }
  return nullptr;
}

}  // namespace upper::ctl
