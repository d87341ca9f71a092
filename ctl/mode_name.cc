#include "ctl/mode_name.h"

#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

namespace upper::ctl {

std::optional<upper::admin::v1::Mode> ModeFromName(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "fork" || lower == "mode_fork") {
    return upper::admin::v1::MODE_FORK;
  }
  if (lower == "thread" || lower == "mode_thread") {
    return upper::admin::v1::MODE_THREAD;
  }
  return std::nullopt;
}

}  // namespace upper::ctl
