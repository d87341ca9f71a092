#include "server/base/service_link.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace upper {

bool LooksLikeServiceLink(absl::string_view value) {
  for (absl::string_view scheme : {"tcp://", "udp://", "sctp://"}) {
    if (absl::StartsWithIgnoreCase(value, scheme) &&
        value.size() > scheme.size()) {
      return true;
    }
  }
  return false;
}

std::string ServiceLinkError(absl::string_view var, absl::string_view value,
                             absl::string_view flag) {
  // The kubelet names <SERVICE>_PORT after the Service upper-cased with '-'
  // turned into '_'; undo that to name the Service the operator knows.
  std::string service;
  if (absl::string_view prefix = var; absl::ConsumeSuffix(&prefix, "_PORT")) {
    service = absl::StrCat(
        " (a Service named \"",
        absl::StrReplaceAll(absl::AsciiStrToLower(prefix), {{"_", "-"}}),
        "\" in this namespace)");
  }
  const bool is_port = absl::EndsWith(flag, "_port");
  return absl::StrCat(var, "=", value, " looks like a Kubernetes service link",
                      service, ", not a ", is_port ? "port" : "value",
                      ": set enableServiceLinks: false in the pod spec or "
                      "pass --",
                      flag);
}

}  // namespace upper
