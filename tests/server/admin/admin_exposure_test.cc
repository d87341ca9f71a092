#include "server/admin/admin_exposure.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace upper {
namespace {

using ::testing::HasSubstr;

Config AdminConfig(const std::string& bind, const std::string& token_file = "",
                   const std::string& tls_cert = "") {
  Config config;
  config.admin_bind = bind;
  config.admin_token_file = token_file;
  config.admin_tls_cert = tls_cert;
  config.admin_tls_key = tls_cert.empty() ? "" : "key.pem";
  return config;
}

TEST(AdminExposure, NonLoopbackWithoutATokenIsExposed) {
  for (const char* bind :
       {"0.0.0.0", "::", "[::]", "10.0.0.7", "upper.example"}) {
    const AdminExposure exposure = AssessAdminExposure(AdminConfig(bind));
    EXPECT_EQ(exposure.bind, bind);
    EXPECT_FALSE(exposure.loopback) << bind;
    EXPECT_FALSE(exposure.token_required) << bind;
    EXPECT_TRUE(exposure.exposed()) << bind;
  }
}

TEST(AdminExposure, TlsAloneDoesNotGuardIt) {
  // TLS encrypts; without a token anyone may still call.
  const AdminExposure exposure =
      AssessAdminExposure(AdminConfig("0.0.0.0", "", "cert.pem"));
  EXPECT_TRUE(exposure.tls);
  EXPECT_TRUE(exposure.exposed());
}

TEST(AdminExposure, ATokenOrALoopbackBindIsNotExposed) {
  EXPECT_FALSE(
      AssessAdminExposure(AdminConfig("0.0.0.0", "/run/token")).exposed());
  for (const char* bind :
       {"127.0.0.1", "127.0.1.1", "::1", "[::1]", "localhost"}) {
    const AdminExposure exposure = AssessAdminExposure(AdminConfig(bind));
    EXPECT_TRUE(exposure.loopback) << bind;
    EXPECT_FALSE(exposure.exposed()) << bind;
  }
}

TEST(AdminExposure, OneWarningNamingTheFlagAndTheFixWhenExposed) {
  EXPECT_TRUE(
      AdminWarnings(AssessAdminExposure(AdminConfig("127.0.0.1"))).empty());
  EXPECT_TRUE(
      AdminWarnings(AssessAdminExposure(AdminConfig("::", "/run/token")))
          .empty());
  const std::vector<std::string> warnings =
      AdminWarnings(AssessAdminExposure(AdminConfig("::")));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("--admin_bind=:: is not loopback"));
  EXPECT_THAT(warnings[0], HasSubstr("--admin_token_file"));
  EXPECT_THAT(warnings[0], HasSubstr("--admin_bind=127.0.0.1"));
}

}  // namespace
}  // namespace upper
