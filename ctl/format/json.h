// JSON for `-o json`: protobuf's JSON mapping with upperctl's fixed options,
// so every command prints the same, documented shape (docs/upperctl.md):
// proto field names (snake_case), zero values included, enums by name.
//
// Thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace upper::ctl {

enum class JsonStyle {
  kPretty,   // indented, for a person or jq
  kOneLine,  // one object per line (watch's stream)
};

// The message as JSON, without a trailing newline.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message,
                                   JsonStyle style = JsonStyle::kPretty);

}  // namespace upper::ctl
