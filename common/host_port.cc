#include "common/host_port.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace upper {
namespace {

constexpr uint32_t kMaxPort = 65535;

// Plain decimal in 1..kMaxPort; saturates, so long digit strings are bad too.
std::optional<uint16_t> ParsePort(absl::string_view text) {
  if (text.empty()) return std::nullopt;
  uint32_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = std::min<uint32_t>(value * 10 + static_cast<uint32_t>(c - '0'),
                               kMaxPort + 1);
  }
  if (value < 1 || value > kMaxPort) return std::nullopt;
  return static_cast<uint16_t>(value);
}

HostPortParts Fail(HostPortError error) {
  HostPortParts parts;
  parts.error = error;
  return parts;
}

// How getnameinfo(NI_NUMERICHOST) writes a scope: the interface name for a
// link-local address, else the number.
std::string ScopeSuffix(const sockaddr_in6& in6) {
  if (in6.sin6_scope_id == 0) return "";
  char name[IF_NAMESIZE] = {};
  if ((IN6_IS_ADDR_LINKLOCAL(&in6.sin6_addr) ||
       IN6_IS_ADDR_MC_LINKLOCAL(&in6.sin6_addr)) &&
      if_indextoname(in6.sin6_scope_id, name) != nullptr) {
    return absl::StrCat("%", name);
  }
  return absl::StrCat("%", in6.sin6_scope_id);
}

}  // namespace

std::string JoinHostPort(absl::string_view host, uint32_t port) {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::string_view StripBrackets(absl::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

HostPortParts SplitHostPort(absl::string_view text) {
  HostPortParts parts;
  absl::string_view port_text;
  bool has_port = false;
  if (absl::StartsWith(text, "[")) {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) {
      return Fail(HostPortError::kMissingBracket);
    }
    parts.bracketed = true;
    parts.host = text.substr(1, close - 1);
    const absl::string_view rest = text.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') {
      return Fail(HostPortError::kJunkAfterBracket);
    }
    has_port = !rest.empty();
    if (has_port) port_text = rest.substr(1);
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    const size_t colon = text.find(':');
    parts.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    has_port = true;
  } else {
    parts.host = text;  // a name, or a bare IPv6 address
  }
  if (parts.host.empty()) return Fail(HostPortError::kEmptyHost);
  if (has_port) {
    parts.port = ParsePort(port_text);
    if (!parts.port.has_value()) return Fail(HostPortError::kBadPort);
  }
  return parts;
}

absl::string_view HostPortErrorText(HostPortError error,
                                    const HostPortErrorTexts& texts) {
  switch (error) {
    case HostPortError::kNone:
      break;
    case HostPortError::kMissingBracket:
      return texts.missing_bracket;
    case HostPortError::kJunkAfterBracket:
      return texts.junk_after_bracket;
    case HostPortError::kEmptyHost:
      return texts.empty_host;
    case HostPortError::kBadPort:
      return texts.bad_port;
  }
  return "";
}

int IpLiteralFamily(absl::string_view host) {
  const std::string text(host);
  in6_addr ignored;
  if (inet_pton(AF_INET, text.c_str(), &ignored) == 1) return AF_INET;
  if (inet_pton(AF_INET6, text.c_str(), &ignored) == 1) return AF_INET6;
  return AF_UNSPEC;
}

bool IsIpLiteral(absl::string_view host) {
  return IpLiteralFamily(host) != AF_UNSPEC;
}

bool IsLoopbackHost(absl::string_view host) {
  host = StripBrackets(host);
  absl::string_view name = host;
  absl::ConsumeSuffix(&name, ".");
  if (absl::EqualsIgnoreCase(name, "localhost")) return true;
  const std::string text(host);
  in_addr v4;
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

std::string FormatIp(int family, const void* address) {
  char text[INET6_ADDRSTRLEN] = {};
  if ((family != AF_INET && family != AF_INET6) ||
      inet_ntop(family, address, text, sizeof(text)) == nullptr) {
    return "";
  }
  return text;
}

std::string SocketAddressIp(const sockaddr* address) {
  if (address->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    return FormatIp(AF_INET, &in->sin_addr);
  }
  if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    return FormatIp(AF_INET6, &in6->sin6_addr);
  }
  return "";
}

std::string SocketAddressHost(const sockaddr* address) {
  std::string host = SocketAddressIp(address);
  if (address->sa_family == AF_INET6 && !host.empty()) {
    host += ScopeSuffix(*reinterpret_cast<const sockaddr_in6*>(address));
  }
  return host;
}

std::string FormatSocketAddress(const sockaddr* address) {
  const std::string host = SocketAddressHost(address);
  if (host.empty()) return "unknown";
  const uint16_t port_be =
      address->sa_family == AF_INET
          ? reinterpret_cast<const sockaddr_in*>(address)->sin_port
          : reinterpret_cast<const sockaddr_in6*>(address)->sin6_port;
  return JoinHostPort(host, ntohs(port_be));
}

}  // namespace upper
