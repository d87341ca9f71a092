// Whether the admin endpoint is exposed: bound beyond loopback without a
// token, so that any peer that reaches the port can switch modes and close
// connections. upperd still starts (the image binds 0.0.0.0 so that the
// port is reachable from outside the container at all, and compose and
// `docker run` publish it on the host's loopback only); it says so instead:
// one warning line at start and a warning in every GetStatus, which
// `upperctl status` prints.
//
// Pure functions except LogAdminExposure (which writes one log line);
// thread-safe.
#pragma once

#include <string>
#include <vector>

#include "server/base/config.h"

namespace upper {

struct AdminExposure {
  std::string bind;  // --admin_bind as given
  bool loopback = false;
  bool token_required = false;
  bool tls = false;

  // Reachable beyond this machine and no token asked for.
  bool exposed() const { return !loopback && !token_required; }
};

AdminExposure AssessAdminExposure(const Config& config);

// The sentences GetStatus lists in ServerStatus.warnings: one when the admin
// endpoint is exposed, none otherwise.
std::vector<std::string> AdminWarnings(const AdminExposure& exposure);

// When exposed, logs
//   warning admin_exposed flag=--admin_bind addr=0.0.0.0:50051 auth=none
//   tls=off fix="..."
// (`address` is the bound address); nothing otherwise.
void LogAdminExposure(const AdminExposure& exposure,
                      const std::string& address);

}  // namespace upper
