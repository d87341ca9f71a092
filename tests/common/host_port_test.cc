#include "common/host_port.h"

#include "gtest/gtest.h"

namespace upper {
namespace {

TEST(JoinHostPort, BracketsIpv6Only) {
  EXPECT_EQ(JoinHostPort("127.0.0.1", 9999), "127.0.0.1:9999");
  EXPECT_EQ(JoinHostPort("::1", 50051), "[::1]:50051");
  EXPECT_EQ(JoinHostPort("localhost", 1), "localhost:1");
}

}  // namespace
}  // namespace upper
