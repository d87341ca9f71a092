// Human units for upperctl's tables: byte counts in B/KiB/MiB/GiB/TiB and
// durations as "450ms", "12s", "3m12s", "2h5m", "3d4h".
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace upper::ctl {

// "0 B", "512 B", "1.5 KiB", "12.0 MiB", "3.2 GiB": binary units, one
// decimal above bytes, never "1024.0" of a unit (that becomes the next one).
std::string HumanBytes(uint64_t bytes);

// The two largest units, truncated: "0s", "450ms" (under a second),
// "12s", "3m12s", "2h5m", "3d4h". Negative durations get a leading "-";
// an infinite one is "inf".
std::string HumanDuration(absl::Duration duration);

}  // namespace upper::ctl
