#include "server/unique_fd.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace upper {

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

absl::Status ErrnoStatus(absl::string_view call, int err) {
  return absl::ErrnoToStatus(err, absl::StrCat(call));
}

}  // namespace upper
