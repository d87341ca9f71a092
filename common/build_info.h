// The version and git revision baked in at build time.
#pragma once

#include "absl/strings/string_view.h"

namespace upper {

absl::string_view Version();
absl::string_view Revision();

}  // namespace upper
