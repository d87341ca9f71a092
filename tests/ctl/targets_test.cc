// --addr parsing and the fleet rule: which entries become one target and
// which expand to one target per address.
#include "ctl/targets.h"

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace upper {
namespace {

using ::testing::ElementsAre;
using ::upper::ctl::ParseTargets;
using ::upper::ctl::Targets;

// Resolves from a fixed table; anything else fails like getaddrinfo.
absl::StatusOr<std::vector<std::string>> FakeResolve(const std::string& host) {
  static const auto* table =
      new std::map<std::string, std::vector<std::string>>{
          {"localhost", {"127.0.0.1", "::1"}},
          {"single", {"10.0.0.9"}},
          {"upper-admin.ns.svc",
           {"10.0.0.3", "10.0.0.1", "10.0.0.2", "10.0.0.1"}},
          {"dual", {"10.0.0.5", "fd00::5"}},
      };
  auto it = table->find(host);
  if (it == table->end()) {
    return absl::UnavailableError("cannot resolve " + host);
  }
  return it->second;
}

std::vector<std::string> Addresses(const Targets& targets) {
  std::vector<std::string> out;
  for (const auto& t : targets.list) out.push_back(t.address);
  return out;
}

TEST(Targets, OneHostIsOneTargetWithDefaultPort) {
  absl::StatusOr<Targets> t = ParseTargets("single", FakeResolve);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE(t->fleet);
  EXPECT_THAT(Addresses(*t), ElementsAre("single:50051"));
}

TEST(Targets, LocalhostStaysOneTargetDespiteTwoAddresses) {
  absl::StatusOr<Targets> t = ParseTargets("localhost:50051", FakeResolve);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->fleet);
  EXPECT_THAT(Addresses(*t), ElementsAre("localhost:50051"));
}

TEST(Targets, IpLiteralsAreOneTarget) {
  absl::StatusOr<Targets> t = ParseTargets("[::1]:7", FakeResolve);
  ASSERT_TRUE(t.ok());
  EXPECT_THAT(Addresses(*t), ElementsAre("[::1]:7"));
  t = ParseTargets("::1", FakeResolve);
  ASSERT_TRUE(t.ok());
  EXPECT_THAT(Addresses(*t), ElementsAre("[::1]:50051"));
  EXPECT_FALSE(t->fleet);
}

TEST(Targets, CommaListIsAFleetInOrder) {
  absl::StatusOr<Targets> t =
      ParseTargets("10.0.0.2:1, 10.0.0.1:2", FakeResolve);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->fleet);
  EXPECT_THAT(Addresses(*t), ElementsAre("10.0.0.2:1", "10.0.0.1:2"));
}

TEST(Targets, NameWithManyAddressesExpandsSortedAndDeduplicated) {
  absl::StatusOr<Targets> t =
      ParseTargets("upper-admin.ns.svc:50051", FakeResolve);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->fleet);
  EXPECT_THAT(Addresses(*t), ElementsAre("10.0.0.1:50051", "10.0.0.2:50051",
                                         "10.0.0.3:50051"));
  t = ParseTargets("dual:9", FakeResolve);
  ASSERT_TRUE(t.ok());
  EXPECT_THAT(Addresses(*t), ElementsAre("10.0.0.5:9", "[fd00::5]:9"));
}

TEST(Targets, DnsSchemeIsAlwaysAFleet) {
  absl::StatusOr<Targets> t = ParseTargets("dns:///single:7", FakeResolve);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->fleet);
  EXPECT_THAT(Addresses(*t), ElementsAre("10.0.0.9:7"));
}

TEST(Targets, UnresolvedDnsNameIsAnUnreachableInstance) {
  absl::StatusOr<Targets> t = ParseTargets("dns:///nowhere:7", FakeResolve);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->list.size(), 1u);
  EXPECT_EQ(t->list[0].resolve_error.code(), absl::StatusCode::kUnavailable);
}

TEST(Targets, UnresolvedPlainNameIsLeftToGrpc) {
  absl::StatusOr<Targets> t = ParseTargets("nowhere:7", FakeResolve);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->fleet);
  EXPECT_TRUE(t->list[0].resolve_error.ok());
}

TEST(Targets, OtherSchemesPassThrough) {
  absl::StatusOr<Targets> t = ParseTargets("unix:/run/upper.sock", FakeResolve);
  ASSERT_TRUE(t.ok());
  EXPECT_THAT(Addresses(*t), ElementsAre("unix:/run/upper.sock"));
}

TEST(Targets, MalformedEntriesAreInvalidArgument) {
  for (const char* bad : {"", " , ", "host:", "host:0", "host:70000",
                          "host:port", "[::1", "[::1]x", ":50051"}) {
    absl::StatusOr<Targets> t = ParseTargets(bad, FakeResolve);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// The same rule as upper-client's --addr and upperd's ports: plain decimal.
TEST(Targets, PortWithSignOrSpaceIsABadPort) {
  for (const char* bad : {"host:+50051", "host: 50051", "[::1]:+1", "h:0x50"}) {
    absl::StatusOr<Targets> t = ParseTargets(bad, FakeResolve);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(t.status().message()),
                ::testing::HasSubstr("--addr: bad port in"))
        << bad;
  }
}

}  // namespace
}  // namespace upper
