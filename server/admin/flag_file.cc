#include "server/admin/flag_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/unique_fd.h"

namespace upper {
namespace {

absl::Status FlagFileError(absl::string_view flag, const std::string& path,
                           absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, ": ", path, ": ", why));
}

}  // namespace

absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag,
                                         const std::string& path,
                                         size_t max_size) {
  UniqueFd fd(
      RetryOnEintr([&] { return open(path.c_str(), O_RDONLY | O_CLOEXEC); }));
  if (!fd) return FlagFileError(flag, path, std::strerror(errno));
  std::string content;
  char buffer[4096];
  for (;;) {
    const ssize_t n =
        RetryOnEintr([&] { return read(fd.get(), buffer, sizeof(buffer)); });
    if (n < 0) return FlagFileError(flag, path, std::strerror(errno));
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
    if (content.size() > max_size) {
      return FlagFileError(flag, path,
                           absl::StrCat("larger than ", max_size, " bytes"));
    }
  }
  if (content.empty()) return FlagFileError(flag, path, "empty");
  return content;
}

}  // namespace upper
