#include "common/host_port.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace upper {
namespace {

TEST(JoinHostPort, BracketsIpv6Only) {
  EXPECT_EQ(JoinHostPort("127.0.0.1", 9999), "127.0.0.1:9999");
  EXPECT_EQ(JoinHostPort("::1", 50051), "[::1]:50051");
  EXPECT_EQ(JoinHostPort("localhost", 1), "localhost:1");
  EXPECT_EQ(JoinHostPort("0.0.0.0", 0), "0.0.0.0:0");
}

TEST(StripBrackets, DropsOnePairAroundANonEmptyHost) {
  EXPECT_EQ(StripBrackets("[::1]"), "::1");
  EXPECT_EQ(StripBrackets("::1"), "::1");
  EXPECT_EQ(StripBrackets("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(StripBrackets("[]"), "[]");
  EXPECT_EQ(StripBrackets("[::1"), "[::1");
  EXPECT_EQ(StripBrackets("::1]"), "::1]");
  EXPECT_EQ(StripBrackets("[[::1]]"), "[::1]");
  EXPECT_EQ(StripBrackets(""), "");
}

// A successful split, for one-line expectations.
struct Split {
  std::string host;
  std::optional<uint16_t> port;
  bool bracketed;
  bool operator==(const Split&) const = default;
};
Split Ok(absl::string_view text) {
  const HostPortParts parts = SplitHostPort(text);
  EXPECT_TRUE(parts.ok()) << text;
  return {std::string(parts.host), parts.port, parts.bracketed};
}
HostPortError ErrorOf(absl::string_view text) {
  return SplitHostPort(text).error;
}

TEST(SplitHostPort, Ipv4AndNames) {
  EXPECT_EQ(Ok("10.0.0.7:50051"), (Split{"10.0.0.7", 50051, false}));
  EXPECT_EQ(Ok("localhost:1"), (Split{"localhost", 1, false}));
  EXPECT_EQ(Ok("h:65535"), (Split{"h", 65535, false}));
  EXPECT_EQ(Ok("upper-admin.ns.svc"),
            (Split{"upper-admin.ns.svc", std::nullopt, false}));
  EXPECT_EQ(Ok("10.0.0.7"), (Split{"10.0.0.7", std::nullopt, false}));
}

TEST(SplitHostPort, BracketedIpv6) {
  EXPECT_EQ(Ok("[::1]:80"), (Split{"::1", 80, true}));
  EXPECT_EQ(Ok("[::ffff:10.0.0.1]:1"), (Split{"::ffff:10.0.0.1", 1, true}));
  EXPECT_EQ(Ok("[::1]"), (Split{"::1", std::nullopt, true}));
  EXPECT_EQ(Ok("[name]:7"), (Split{"name", 7, true}));
}

TEST(SplitHostPort, SeveralColonsWithoutBracketsAreABareIpv6Host) {
  EXPECT_EQ(Ok("::1"), (Split{"::1", std::nullopt, false}));
  EXPECT_EQ(Ok("::1:80"), (Split{"::1:80", std::nullopt, false}));
  EXPECT_EQ(Ok("a:b:c"), (Split{"a:b:c", std::nullopt, false}));
  EXPECT_EQ(Ok("fe80::1%eth0"), (Split{"fe80::1%eth0", std::nullopt, false}));
}

TEST(SplitHostPort, MissingCloseBracket) {
  for (const char* text : {"[", "[::1", "[::1:80", "[10.0.0.1:80"}) {
    EXPECT_EQ(ErrorOf(text), HostPortError::kMissingBracket) << text;
  }
}

TEST(SplitHostPort, JunkAfterCloseBracket) {
  for (const char* text : {"[::1]80", "[::1]x", "[::1] :80", "[::1]]:80"}) {
    EXPECT_EQ(ErrorOf(text), HostPortError::kJunkAfterBracket) << text;
  }
}

TEST(SplitHostPort, EmptyHost) {
  for (const char* text : {"", ":", ":80", "[]", "[]:80", ":x"}) {
    EXPECT_EQ(ErrorOf(text), HostPortError::kEmptyHost) << text;
  }
}

TEST(SplitHostPort, BadPorts) {
  for (const char* text :
       {"h:", "h:0", "h:00", "h:65536", "h:99999999999999999999", "h:http",
        "h:+1", "h:-1", "h: 1", "h:1 ", "h:0x50", "h:1e3", "[::1]:", "[::1]:0",
        "[::1]:65536", "[::1]:+1", "[::1]::80"}) {
    EXPECT_EQ(ErrorOf(text), HostPortError::kBadPort) << text;
  }
}

TEST(SplitHostPort, LeadingZerosAreStillDecimal) {
  EXPECT_EQ(Ok("h:080"), (Split{"h", 80, false}));
}

TEST(SplitHostPort, FailureCarriesNoParts) {
  const HostPortParts parts = SplitHostPort("host:0");
  EXPECT_FALSE(parts.ok());
  EXPECT_TRUE(parts.host.empty());
  EXPECT_FALSE(parts.port.has_value());
}

TEST(HostPortErrorText, PicksTheCallersWording) {
  constexpr HostPortErrorTexts kTexts = {.missing_bracket = "a",
                                         .junk_after_bracket = "b",
                                         .empty_host = "c",
                                         .bad_port = "d"};
  EXPECT_EQ(HostPortErrorText(HostPortError::kNone, kTexts), "");
  EXPECT_EQ(HostPortErrorText(SplitHostPort("[::1").error, kTexts), "a");
  EXPECT_EQ(HostPortErrorText(SplitHostPort("[::1]x").error, kTexts), "b");
  EXPECT_EQ(HostPortErrorText(SplitHostPort(":1").error, kTexts), "c");
  EXPECT_EQ(HostPortErrorText(SplitHostPort("h:0").error, kTexts), "d");
}

TEST(IpLiteral, NumericAddressesOnly) {
  EXPECT_EQ(IpLiteralFamily("10.0.0.7"), AF_INET);
  EXPECT_EQ(IpLiteralFamily("0.0.0.0"), AF_INET);
  EXPECT_EQ(IpLiteralFamily("::1"), AF_INET6);
  EXPECT_EQ(IpLiteralFamily("::ffff:10.0.0.1"), AF_INET6);
  for (const char* host : {"[::1]", "localhost", "", "10.0.0", "::1:80:x"}) {
    EXPECT_EQ(IpLiteralFamily(host), AF_UNSPEC) << host;
    EXPECT_FALSE(IsIpLiteral(host)) << host;
  }
  EXPECT_TRUE(IsIpLiteral("::"));
  EXPECT_TRUE(IsIpLiteral(StripBrackets("[::1]")));
}

TEST(IsLoopbackHost, LoopbackAddressesAndLocalhostOnly) {
  for (const char* host :
       {"127.0.0.1", "127.0.0.53", "127.255.255.254", "127.1.2.3", "::1",
        "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "localhost",
        "LocalHost", "localhost."}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
}

TEST(IsLoopbackHost, WildcardsOtherAddressesAndNamesAreExposed) {
  for (const char* host :
       {"0.0.0.0", "::", "[::]", "10.0.0.7", "192.168.1.1", "128.0.0.1",
        "126.255.255.255", "::2", "::ffff:10.0.0.1", "fe80::1", "example.com",
        "localhost.localdomain", "my-localhost", "localhost..", "127.1", "",
        "[]"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

sockaddr_in Ipv4(const char* ip, uint16_t port) {
  sockaddr_in in = {};
  in.sin_family = AF_INET;
  in.sin_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET, ip, &in.sin_addr), 1);
  return in;
}

sockaddr_in6 Ipv6(const char* ip, uint16_t port, uint32_t scope = 0) {
  sockaddr_in6 in6 = {};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(port);
  in6.sin6_scope_id = scope;
  EXPECT_EQ(inet_pton(AF_INET6, ip, &in6.sin6_addr), 1);
  return in6;
}

const sockaddr* Generic(const void* address) {
  return static_cast<const sockaddr*>(address);
}

TEST(FormatSocketAddress, NumericWithIpv6Bracketed) {
  const sockaddr_in v4 = Ipv4("127.0.0.1", 40000);
  EXPECT_EQ(FormatSocketAddress(Generic(&v4)), "127.0.0.1:40000");
  const sockaddr_in6 v6 = Ipv6("::1", 9999);
  EXPECT_EQ(FormatSocketAddress(Generic(&v6)), "[::1]:9999");
  const sockaddr_in6 any = Ipv6("::", 0);
  EXPECT_EQ(FormatSocketAddress(Generic(&any)), "[::]:0");
  const sockaddr_in6 mapped = Ipv6("::ffff:10.0.0.1", 1);
  EXPECT_EQ(FormatSocketAddress(Generic(&mapped)), "[::ffff:10.0.0.1]:1");
  sockaddr_storage other = {};
  other.ss_family = AF_UNIX;
  EXPECT_EQ(FormatSocketAddress(Generic(&other)), "unknown");
  EXPECT_EQ(SocketAddressHost(Generic(&other)), "");
}

TEST(SocketAddressHost, NoBracketsAndTheScopeLikeGetnameinfo) {
  const sockaddr_in v4 = Ipv4("10.0.0.7", 1);
  EXPECT_EQ(SocketAddressHost(Generic(&v4)), "10.0.0.7");
  const sockaddr_in6 v6 = Ipv6("fd00::5", 1);
  EXPECT_EQ(SocketAddressHost(Generic(&v6)), "fd00::5");
  // A global address keeps its scope as a number.
  const sockaddr_in6 global = Ipv6("fd00::5", 1, 4242);
  EXPECT_EQ(SocketAddressHost(Generic(&global)), "fd00::5%4242");
  EXPECT_EQ(SocketAddressIp(Generic(&global)), "fd00::5");
  // A link-local one names the interface: 1, loopback, exists everywhere.
  const sockaddr_in6 link_local = Ipv6("fe80::1", 80, 1);
  char name[IF_NAMESIZE] = {};
  ASSERT_NE(if_indextoname(1, name), nullptr);
  EXPECT_EQ(FormatSocketAddress(Generic(&link_local)),
            std::string("[fe80::1%") + name + "]:80");
}

TEST(FormatIp, InAddrAndIn6Addr) {
  const sockaddr_in v4 = Ipv4("192.0.2.1", 1);
  EXPECT_EQ(FormatIp(AF_INET, &v4.sin_addr), "192.0.2.1");
  const sockaddr_in6 v6 = Ipv6("2001:db8::1", 1);
  EXPECT_EQ(FormatIp(AF_INET6, &v6.sin6_addr), "2001:db8::1");
  EXPECT_EQ(FormatIp(AF_UNIX, &v6.sin6_addr), "");
}

}  // namespace
}  // namespace upper
