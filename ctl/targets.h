// Targets: what --addr names, as a list of admin endpoints to query.
//
//   "host:port"              one instance; a name whose addresses are
//                            several non-loopback ones (a Kubernetes
//                            headless service) becomes one target per
//                            address; "localhost" (127.0.0.1 and ::1)
//                            stays one target, gRPC picks the address.
//   "dns:///name:port"       always one target per address of the name.
//   "a:1,b:2"                each entry as above, in order.
//   "[::1]:50051", "10.0.0.7:50051", no port: 50051.
//   "unix:/path", "ipv4:..." other gRPC target schemes pass through as one.
//
// The fleet view (a row per instance, a total) is on when the list names
// more than one entry or uses dns:///, even if that yields one address, so
// a script gets the same JSON shape whatever the replica count.
//
// Resolution uses getaddrinfo (blocking) through an injectable Resolver;
// thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace upper::ctl {

inline constexpr uint16_t kDefaultAdminPort = 50051;

struct Target {
  // Shown to the user and in JSON: "10.0.0.7:50051", "[::1]:50051", or the
  // entry as given when it stays one target.
  std::string address;
  // What the gRPC channel is created for.
  std::string channel_target;
  // Set when a dns:/// name did not resolve: the instance is unreachable.
  absl::Status resolve_error;
};

struct Targets {
  std::vector<Target> list;
  bool fleet = false;
};

// Numeric addresses ("10.0.0.7", "::1") of `host`, or an error naming it.
using Resolver =
    std::function<absl::StatusOr<std::vector<std::string>>(const std::string&)>;
absl::StatusOr<std::vector<std::string>> ResolveWithGetaddrinfo(
    const std::string& host);

// Parses and expands --addr. InvalidArgument for a malformed entry (empty,
// bad port).
absl::StatusOr<Targets> ParseTargets(
    absl::string_view addr, const Resolver& resolve = ResolveWithGetaddrinfo);

}  // namespace upper::ctl
