// host:port text: the one format ("[v6]:port") and parser of every program,
// and the numeric text of socket addresses.
//
// Callers word their own messages (each names its own flag), so the parser
// reports *which* rule a text broke, not a message. All functions are
// thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/attributes.h"
#include "absl/strings/string_view.h"

struct sockaddr;

namespace upper {

// "host:port", with an IPv6 literal (any host containing ':') in brackets.
std::string JoinHostPort(absl::string_view host, uint32_t port);

// "[::1]" -> "::1": drops one pair of enclosing brackets around a non-empty
// host; any other text (including "[]") is returned as is.
absl::string_view StripBrackets(
    absl::string_view host ABSL_ATTRIBUTE_LIFETIME_BOUND);

// The first rule SplitHostPort found broken, in the order checked.
enum class HostPortError {
  kNone,
  kMissingBracket,    // "[::1", "[::1:80": '[' without ']'
  kJunkAfterBracket,  // "[::1]80": after ']' neither the end nor ':'
  kEmptyHost,         // "", ":80", "[]", "[]:80"
  kBadPort,           // after ':' not decimal 1..65535: "", "0", "65536",
                      // "+1", " 1", "0x50"
};

struct HostPortParts {
  HostPortError error = HostPortError::kNone;
  // Without brackets; a view into the parsed text. Set when error is kNone.
  absl::string_view host;
  // Absent when the text names no port ("name", "[v6]", "::1").
  std::optional<uint16_t> port;
  // The host was written "[host]".
  bool bracketed = false;

  bool ok() const { return error == HostPortError::kNone; }
};

// One caller's wording of each HostPortError, for HostPortErrorText.
struct HostPortErrorTexts {
  absl::string_view missing_bracket;
  absl::string_view junk_after_bracket;
  absl::string_view empty_host;
  absl::string_view bad_port;
};
// The text `texts` gives `error`; "" for kNone.
absl::string_view HostPortErrorText(HostPortError error,
                                    const HostPortErrorTexts& texts);

// Splits "host:port", "[v6]:port", "host", "[v6]". A text with several ':'
// outside brackets ("::1", "::1:80") is a bare IPv6 host without a port: the
// port of an IPv6 address is only ever read after brackets. The port is
// plain decimal: no sign, no spaces, no leading "0x".
HostPortParts SplitHostPort(
    absl::string_view text ABSL_ATTRIBUTE_LIFETIME_BOUND);

// AF_INET or AF_INET6 when `host` is a numeric address of that family
// ("10.0.0.7", "::1"; no brackets), else AF_UNSPEC.
int IpLiteralFamily(absl::string_view host);
bool IsIpLiteral(absl::string_view host);

// True when a listener bound to `host` is reachable from this machine only:
// an IPv4 address in 127.0.0.0/8, the IPv6 loopback ::1 (also as the
// IPv4-mapped ::ffff:127.x.y.z), or the name "localhost" (any case, one
// trailing dot allowed). Brackets are ignored ("[::1]"). Everything else is
// exposed: the wildcards 0.0.0.0 and ::, every other address, and every
// other host name (what a name resolves to can change; upperd does not look
// it up to decide).
bool IsLoopbackHost(absl::string_view host);

// Numeric text of an in_addr (AF_INET) or in6_addr (AF_INET6) at `address`:
// "10.0.0.7", "::1"; "" for another family.
std::string FormatIp(int family, const void* address);

// Numeric address of an AF_INET or AF_INET6 socket address, without
// brackets or scope: "10.0.0.7", "fe80::1". "" for another family.
std::string SocketAddressIp(const sockaddr* address);

// Numeric host of an AF_INET or AF_INET6 socket address, without brackets;
// an IPv6 scope is appended as getnameinfo(NI_NUMERICHOST) does
// ("fe80::1%eth0"). "" for another family.
std::string SocketAddressHost(const sockaddr* address);

// "10.0.0.7:5", "[::1]:5" of an AF_INET or AF_INET6 socket address;
// "unknown" for another family.
std::string FormatSocketAddress(const sockaddr* address);

}  // namespace upper
