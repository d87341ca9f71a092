#include "common/build_info.h"

namespace upper {

absl::string_view Version() { return UPPER_VERSION; }
absl::string_view Revision() { return UPPER_REVISION; }

}  // namespace upper
