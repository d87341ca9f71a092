#include "common/errno_status.h"

#include "absl/strings/str_cat.h"

namespace upper {

absl::Status ErrnoStatus(absl::string_view call, int err) {
  return absl::ErrnoToStatus(err, absl::StrCat(call));
}

}  // namespace upper
