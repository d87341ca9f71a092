// `upperctl version`: this binary's version and git revision (the
// server's are in `upperctl status`).
#include "absl/strings/str_cat.h"
#include "common/build_info.h"
#include "ctl/commands/commands.h"
#include "upper/ctl/v1/output.pb.h"

namespace upper::ctl {

int RunVersion(const CommandContext& context) {
  if (!context.args.empty()) {
    return context.UsageError(absl::StrCat("version takes no arguments, got \"",
                                           context.args[0], "\""));
  }
  upper::ctl::v1::VersionInfo info;
  info.set_version(std::string(upper::Version()));
  info.set_revision(std::string(upper::Revision()));
  if (context.json()) return context.PrintJson(info);
  context.out << "upperctl " << info.version() << " (" << info.revision()
              << ")\n";
  return kExitOk;
}

}  // namespace upper::ctl
