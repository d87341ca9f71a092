#include "tests/support/kubelet_env.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace upper::testing {

std::map<std::string, std::string> KubeletServiceLinkEnv(
    const std::vector<KubeService>& services) {
  std::map<std::string, std::string> env;
  for (const KubeService& service : services) {
    if (service.ports.empty()) continue;
    const std::string svc =
        absl::StrReplaceAll(absl::AsciiStrToUpper(service.name), {{"-", "_"}});
    const std::string& ip = service.cluster_ip;
    const uint16_t first = service.ports.front().port;
    env[svc + "_SERVICE_HOST"] = ip;
    env[svc + "_SERVICE_PORT"] = absl::StrCat(first);
    env[svc + "_PORT"] = absl::StrCat("tcp://", ip, ":", first);
    for (const KubeServicePort& port : service.ports) {
      if (!port.name.empty()) {
        env[absl::StrCat(svc, "_SERVICE_PORT_",
                         absl::AsciiStrToUpper(port.name))] =
            absl::StrCat(port.port);
      }
      const std::string prefix = absl::StrCat(svc, "_PORT_", port.port, "_TCP");
      env[prefix] = absl::StrCat("tcp://", ip, ":", port.port);
      env[prefix + "_PROTO"] = "tcp";
      env[prefix + "_PORT"] = absl::StrCat(port.port);
      env[prefix + "_ADDR"] = ip;
    }
  }
  return env;
}

std::vector<KubeService> ChartServices() {
  return {
      {.name = "upper", .cluster_ip = "10.96.0.10", .ports = {{"data", 9999}}},
      {.name = "upper-admin",
       .cluster_ip = "10.96.0.11",
       .ports = {{"admin", 50051}, {"metrics", 9464}}},
      {.name = "upper-headless",
       .cluster_ip = "10.96.0.12",
       .ports = {{"admin", 50051}, {"metrics", 9464}}},
  };
}

}  // namespace upper::testing
