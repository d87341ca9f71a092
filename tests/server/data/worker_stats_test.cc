// ForkPoolSettings::MaxIdleChildren: the idle children the start-up check
// (and the Helm chart's budget, which mirrors it) counts as tasks and as
// fork-server sockets.
#include "server/data/worker_stats.h"

#include "gtest/gtest.h"

namespace upper {
namespace {

TEST(ForkPoolSettings, NoIdleChildrenWithoutAPool) {
  // A child per connection (the default), or no spares allowed.
  EXPECT_EQ(
      (ForkPoolSettings{.spare_min = 8, .spare_max = 64}.MaxIdleChildren(3000)),
      0u);
  EXPECT_EQ((ForkPoolSettings{.spare_max = 0, .child_max_connections = 1000}
                 .MaxIdleChildren(3000)),
            0u);
}

TEST(ForkPoolSettings, IdleChildrenAreAtMostTheMaximumAndTheConnections) {
  const ForkPoolSettings pool{
      .spare_min = 8, .spare_max = 64, .child_max_connections = 1000};
  EXPECT_EQ(pool.MaxIdleChildren(3000), 64u);
  // Beyond the minimum only children that served a connection come back.
  EXPECT_EQ(pool.MaxIdleChildren(20), 20u);
}

TEST(ForkPoolSettings, TheMinimumIsForkedAheadWhateverTheConnections) {
  const ForkPoolSettings pool{
      .spare_min = 1000, .spare_max = 1000, .child_max_connections = 2};
  EXPECT_EQ(pool.MaxIdleChildren(100), 1000u);
}

}  // namespace
}  // namespace upper
