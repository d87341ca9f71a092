// Service links: the Docker-link variables a kubelet injects into every
// container for every Service in its namespace (unless the pod spec says
// enableServiceLinks: false), e.g. for a Service named "upper-admin":
//   UPPER_ADMIN_SERVICE_HOST=10.96.0.11 UPPER_ADMIN_PORT=tcp://10.96.0.11:50051
// Their names can collide with upperd's UPPER_<FLAG> variables (that one is
// --admin_port's), so config.cc asks here whether a value is such a link
// before it tries to parse it, and can then say what happened instead of
// "not a number".
//
// Pure functions, thread-safe.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace upper {

// True when `value` has the form of a service link: "tcp://", "udp://" or
// "sctp://" followed by something (a kubelet writes proto://ip:port).
bool LooksLikeServiceLink(absl::string_view value);

// The one-line error for variable `var` (set to `value`, a service link) of
// flag `flag`, e.g.
//   UPPER_ADMIN_PORT=tcp://10.96.0.11:50051 looks like a Kubernetes service
//   link (a Service named "upper-admin" in this namespace), not a port: set
//   enableServiceLinks: false in the pod spec or pass --admin_port
// The Service is named only when `var` has the kubelet's <SERVICE>_PORT
// form.
std::string ServiceLinkError(absl::string_view var, absl::string_view value,
                             absl::string_view flag);

}  // namespace upper
