// What the in-process AdminServiceImpl tests share: the token, the Config,
// and how a call's `authorization` metadata is written.
#pragma once

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "server/base/config.h"

namespace upper::testing {

inline constexpr char kToken[] = "s3cret";
inline constexpr int kUnknownMode = 7;  // not a value of upper.admin.v1.Mode

inline Config TestConfig() {
  Config config;
  config.max_connections = 8;
  config.idle_timeout = absl::Seconds(42);
  return config;
}

// The `authorization` metadata a call carries; nullopt: none.
using Authorization = std::optional<std::string>;

inline bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace upper::testing
