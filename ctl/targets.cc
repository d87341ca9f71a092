#include "ctl/targets.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace upper::ctl {
namespace {

constexpr absl::string_view kDnsScheme = "dns:///";

struct HostPort {
  std::string host;
  uint16_t port = kDefaultAdminPort;
};

absl::StatusOr<HostPort> SplitHostPort(absl::string_view entry) {
  HostPort result;
  absl::string_view port_text;
  bool has_port = false;
  if (absl::StartsWith(entry, "[")) {  // [v6] or [v6]:port
    const size_t close = entry.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--addr: missing ']' in \"", entry, "\""));
    }
    result.host = std::string(entry.substr(1, close - 1));
    absl::string_view rest = entry.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        return absl::InvalidArgumentError(
            absl::StrCat("--addr: expected ':' after ']' in \"", entry, "\""));
      }
      port_text = rest.substr(1);
      has_port = true;
    }
  } else if (std::count(entry.begin(), entry.end(), ':') == 1) {
    const size_t colon = entry.find(':');
    result.host = std::string(entry.substr(0, colon));
    port_text = entry.substr(colon + 1);
    has_port = true;
  } else {
    result.host = std::string(entry);  // a name, or a bare IPv6 address
  }
  if (result.host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--addr: no host in \"", entry, "\""));
  }
  if (has_port) {
    uint32_t port = 0;
    if (!absl::SimpleAtoi(port_text, &port) || port == 0 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("--addr: bad port in \"", entry, "\""));
    }
    result.port = static_cast<uint16_t>(port);
  }
  return result;
}

std::string Join(const std::string& host, uint16_t port) {
  return host.find(':') != std::string::npos
             ? absl::StrCat("[", host, "]:", port)
             : absl::StrCat(host, ":", port);
}

bool IsIpLiteral(const std::string& host) {
  in6_addr any;
  return inet_pton(AF_INET, host.c_str(), &any) == 1 ||
         inet_pton(AF_INET6, host.c_str(), &any) == 1;
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
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = nullptr;
    if (ai->ai_family == AF_INET) {
      raw = &reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr;
    } else if (ai->ai_family == AF_INET6) {
      raw = &reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr;
    } else {
      continue;
    }
    if (inet_ntop(ai->ai_family, raw, text, sizeof(text)) != nullptr) {
      addresses.emplace_back(text);
    }
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
        SplitHostPort(dns ? entry.substr(kDnsScheme.size()) : entry);
    if (!host_port.ok()) return host_port.status();
    const std::string joined = Join(host_port->host, host_port->port);
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
      targets.list.push_back(One(Join(ip, host_port->port)));
    }
  }
  return targets;
}

}  // namespace upper::ctl
