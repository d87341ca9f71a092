// `upperctl version`: this binary's version and git revision (the
// server's are in `upperctl status`).
#include "common/build_info.h"
#include "ctl/commands/commands.h"
#include "upper/ctl/v1/output.pb.h"

namespace upper::ctl {

int RunVersion(const CommandContext& context) {
  int exit_code = kExitOk;
  if (!context.RequireNoArguments(&exit_code)) return exit_code;
  upper::ctl::v1::VersionInfo info;
  info.set_version(std::string(upper::Version()));
  info.set_revision(std::string(upper::Revision()));
  if (context.json()) return context.PrintJson(info);
  context.out << "upperctl " << info.version() << " (" << info.revision()
              << ")\n";
  return kExitOk;
}

}  // namespace upper::ctl
