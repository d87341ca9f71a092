#include "ctl/format/units.h"

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace upper::ctl {

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB",
                                           "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  // Compare after rounding to one decimal, so 1048575 bytes reads "1.0 MiB"
  // rather than "1024.0 KiB".
  while (std::round(value * 10) / 10 >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

std::string HumanDuration(absl::Duration duration) {
  if (duration == absl::InfiniteDuration()) return "inf";
  if (duration == -absl::InfiniteDuration()) return "-inf";
  if (duration < absl::ZeroDuration()) {
    return absl::StrCat("-", HumanDuration(-duration));
  }
  if (duration < absl::Seconds(1)) {
    const int64_t ms = absl::ToInt64Milliseconds(duration);
    return ms == 0 && duration == absl::ZeroDuration() ? "0s"
                                                       : absl::StrCat(ms, "ms");
  }
  const int64_t total_seconds = absl::ToInt64Seconds(duration);
  const int64_t days = total_seconds / 86400;
  const int64_t hours = total_seconds / 3600 % 24;
  const int64_t minutes = total_seconds / 60 % 60;
  const int64_t seconds = total_seconds % 60;
  if (days > 0) return absl::StrCat(days, "d", hours, "h");
  if (hours > 0) return absl::StrCat(hours, "h", minutes, "m");
  if (minutes > 0) return absl::StrCat(minutes, "m", seconds, "s");
  return absl::StrCat(seconds, "s");
}

}  // namespace upper::ctl
