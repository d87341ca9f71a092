// The service-link variables a kubelet injects into every container of a
// namespace, one set per Service (pkg/kubelet/envvars FromServices), as Docker
// links did:
//   <SVC>_SERVICE_HOST=<ip>         <SVC>_SERVICE_PORT=<first port>
//   <SVC>_SERVICE_PORT_<NAME>=<port>   (each named port)
//   <SVC>_PORT=tcp://<ip>:<first port>
//   <SVC>_PORT_<port>_TCP=tcp://<ip>:<port>  and _PROTO, _PORT, _ADDR
// where <SVC> is the Service's name upper-cased with '-' turned into '_'.
// The kubelet skips Services without a cluster IP (headless ones); this
// helper emits what it is given, so a test can cover a Service whether or
// not it is headless.
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace upper::testing {

struct KubeServicePort {
  std::string name;  // e.g. "admin"
  uint16_t port = 0;
};

struct KubeService {
  std::string name;        // e.g. "upper-admin"
  std::string cluster_ip;  // e.g. "10.96.0.11"
  std::vector<KubeServicePort> ports;
};

// Every variable the kubelet injects for `services`.
std::map<std::string, std::string> KubeletServiceLinkEnv(
    const std::vector<KubeService>& services);

// The Services of upper's Helm chart (release "upper"): "upper" (data),
// "upper-admin" (admin, metrics) and "upper-headless" (admin, metrics), on
// the chart's default ports 9999, 50051 and 9464.
std::vector<KubeService> ChartServices();

}  // namespace upper::testing
