// host:port text: the one format ("[v6]:port") and parser of every program.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace upper {

// "host:port", with an IPv6 literal (any host containing ':') in brackets.
std::string JoinHostPort(absl::string_view host, uint32_t port);

}  // namespace upper
