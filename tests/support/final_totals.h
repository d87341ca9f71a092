// FinalTotal: one figure from upperd's last log line,
//   stopped accepted=.. closed=.. rejected=.. active=.. bytes_in=..
//   bytes_out=.. worker_crashes=.. rejected_<reason>=..
// which upperd prints from the shared connection table as it exits. Until
// the admin and metrics planes exist, it is the tests' window on the table.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {

// nullopt if upperd has not logged the line (yet) or the key is missing.
inline std::optional<uint64_t> FinalTotal(const UpperdProcess& upperd,
                                          const std::string& key) {
  const std::optional<std::string> text = upperd.Field("stopped", key);
  uint64_t value = 0;
  if (!text || !absl::SimpleAtoi(*text, &value)) return std::nullopt;
  return value;
}

}  // namespace upper::testing
