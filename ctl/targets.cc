#include "ctl/targets.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/host_port.h"

namespace upper::ctl {
namespace {

constexpr absl::string_view kDnsScheme = "dns:///";

struct HostPort {
  std::string host;
  uint16_t port = kDefaultAdminPort;
};

constexpr HostPortErrorTexts kEntryErrors = {
    .missing_bracket = "missing ']'",
    .junk_after_bracket = "expected ':' after ']'",
    .empty_host = "no host",
    .bad_port = "bad port",
};

// "[v6]", "[v6]:port", "host:port", or a name or bare IPv6 address alone.
absl::StatusOr<HostPort> ParseEntry(absl::string_view entry) {
  const HostPortParts parts = SplitHostPort(entry);
  if (!parts.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--addr: ", HostPortErrorText(parts.error, kEntryErrors),
                     " in \"", entry, "\""));
  }
  return HostPort{.host = std::string(parts.host),
                  .port = parts.port.value_or(kDefaultAdminPort)};
}

bool IsLoopback(const std::string& ip) {
  return absl::StartsWith(ip, "127.") || ip == "::1";
}

Target One(const std::string& address) {
  return {.address = address, .channel_target = address, .resolve_error = {}};
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ResolveWithGetaddrinfo(
    const std::string& host) {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int err = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (err != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", host, ": ", gai_strerror(err)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(found,
                                                           &freeaddrinfo);
  std::vector<std::string> addresses;
  for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    // The bare address, without an IPv6 scope: each resolved address is
    // one target, whichever interface it was seen on.
    std::string ip = SocketAddressIp(ai->ai_addr);
    if (!ip.empty()) addresses.push_back(std::move(ip));
  }
  if (addresses.empty()) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", host, ": no IPv4 or IPv6 address"));
  }
  return addresses;
}

absl::StatusOr<Targets> ParseTargets(absl::string_view addr,
                                     const Resolver& resolve) {
  Targets targets;
  const std::vector<absl::string_view> entries =
      absl::StrSplit(addr, ',', absl::SkipWhitespace());
  if (entries.empty()) return absl::InvalidArgumentError("--addr is empty");
  targets.fleet = entries.size() > 1;
  for (absl::string_view raw : entries) {
    const absl::string_view entry = absl::StripAsciiWhitespace(raw);
    const bool dns = absl::StartsWith(entry, kDnsScheme);
    if (!dns && absl::StrContains(entry, ":/")) {  // unix:/, ipv4:, ...
      targets.list.push_back(One(std::string(entry)));
      continue;
    }
    absl::StatusOr<HostPort> host_port =
        ParseEntry(dns ? entry.substr(kDnsScheme.size()) : entry);
    if (!host_port.ok()) return host_port.status();
    const std::string joined = JoinHostPort(host_port->host, host_port->port);
    if (!dns && IsIpLiteral(host_port->host)) {
      targets.list.push_back(One(joined));
      continue;
    }
    absl::StatusOr<std::vector<std::string>> addresses =
        resolve(host_port->host);
    if (!dns) {
      // A plain name stays one target unless it names several machines.
      const bool several_hosts =
          addresses.ok() && addresses->size() > 1 &&
          !std::all_of(addresses->begin(), addresses->end(), IsLoopback);
      if (!several_hosts) {
        targets.list.push_back(One(joined));  // gRPC resolves it again
        continue;
      }
    }
    targets.fleet = true;
    if (!addresses.ok()) {
      targets.list.push_back({.address = std::string(entry),
                              .channel_target = std::string(entry),
                              .resolve_error = addresses.status()});
      continue;
    }
    std::vector<std::string> sorted = *addresses;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    for (const std::string& ip : sorted) {
      targets.list.push_back(One(JoinHostPort(ip, host_port->port)));
    }
  }
  return targets;
}

}  // namespace upper::ctl
