#include "server/base/service_link.h"

#include "gtest/gtest.h"

namespace upper {
namespace {

TEST(ServiceLink, RecognisesTheKubeletsSchemes) {
  EXPECT_TRUE(LooksLikeServiceLink("tcp://10.96.0.11:50051"));
  EXPECT_TRUE(LooksLikeServiceLink("udp://10.96.0.11:53"));
  EXPECT_TRUE(LooksLikeServiceLink("sctp://10.96.0.11:9"));
  EXPECT_TRUE(LooksLikeServiceLink("TCP://[fd00::1]:50051"));
}

TEST(ServiceLink, LeavesOrdinaryValuesAlone) {
  EXPECT_FALSE(LooksLikeServiceLink("50051"));
  EXPECT_FALSE(LooksLikeServiceLink(""));
  EXPECT_FALSE(LooksLikeServiceLink("tcp://"));  // nothing after the scheme
  EXPECT_FALSE(LooksLikeServiceLink("http://example.com"));
  EXPECT_FALSE(LooksLikeServiceLink("/run/tcp://token"));
}

TEST(ServiceLink, ErrorNamesTheVariableTheServiceAndTheWayOut) {
  EXPECT_EQ(ServiceLinkError("UPPER_ADMIN_PORT", "tcp://10.96.0.11:50051",
                             "admin_port"),
            "UPPER_ADMIN_PORT=tcp://10.96.0.11:50051 looks like a Kubernetes "
            "service link (a Service named \"upper-admin\" in this "
            "namespace), not a port: set enableServiceLinks: false in the pod "
            "spec or pass --admin_port");
  EXPECT_EQ(ServiceLinkError("UPPER_METRICS_PORT", "tcp://10.0.0.1:9464",
                             "metrics_port"),
            "UPPER_METRICS_PORT=tcp://10.0.0.1:9464 looks like a Kubernetes "
            "service link (a Service named \"upper-metrics\" in this "
            "namespace), not a port: set enableServiceLinks: false in the pod "
            "spec or pass --metrics_port");
}

TEST(ServiceLink, NoServiceNamedWhenTheVariableIsNotAServicesPort) {
  EXPECT_EQ(ServiceLinkError("UPPER_BIND", "tcp://10.0.0.1:1", "bind"),
            "UPPER_BIND=tcp://10.0.0.1:1 looks like a Kubernetes service "
            "link, not a value: set enableServiceLinks: false in the pod spec "
            "or pass --bind");
}

}  // namespace
}  // namespace upper
