#include "server/admin/flag_file.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/bounded_file.h"

namespace upper {

absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag,
                                         const std::string& path,
                                         size_t max_size) {
  // The shared reader: non-blocking open (a FIFO fails at once instead of
  // hanging start-up), regular files only, at most `max_size` bytes.
  absl::StatusOr<std::string> content = ReadBoundedRegularFile(path, max_size);
  if (!content.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": ", content.status().message()));
  }
  return content;
}

}  // namespace upper
