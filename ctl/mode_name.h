// A mode as the user types it, for `mode fork` and `connections --mode`:
// "fork" or "thread", or the enum's own name ("MODE_FORK"), in any case
// ("FORK", "Thread"). Shared so both places accept the same spellings.
//
// Pure function; thread-safe.
#pragma once

#include <optional>

#include "absl/strings/string_view.h"
#include "upper/admin/v1/admin.pb.h"

namespace upper::ctl {

// MODE_FORK or MODE_THREAD; nullopt for any other text.
std::optional<upper::admin::v1::Mode> ModeFromName(absl::string_view name);

}  // namespace upper::ctl
