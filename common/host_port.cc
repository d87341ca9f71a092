#include "common/host_port.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace upper {

std::string JoinHostPort(absl::string_view host, uint32_t port) {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

}  // namespace upper
