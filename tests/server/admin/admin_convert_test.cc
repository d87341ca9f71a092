#include "server/admin/admin_convert.h"

#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace upper {
namespace {

using google::protobuf::util::TimeUtil;

TEST(AdminConvert, ModesMapBothWaysAndOthersAreRejected) {
  EXPECT_EQ(ToProtoMode(Mode::kFork), admin::v1::MODE_FORK);
  EXPECT_EQ(ToProtoMode(Mode::kThread), admin::v1::MODE_THREAD);
  EXPECT_EQ(ToProtoMode(Mode::kUnspecified), admin::v1::MODE_UNSPECIFIED);
  EXPECT_EQ(FromProtoMode(admin::v1::MODE_FORK), Mode::kFork);
  EXPECT_EQ(FromProtoMode(admin::v1::MODE_THREAD), Mode::kThread);
  EXPECT_EQ(FromProtoMode(admin::v1::MODE_UNSPECIFIED), std::nullopt);
  EXPECT_EQ(FromProtoMode(3), std::nullopt);
  EXPECT_EQ(FromProtoMode(-1), std::nullopt);
}

TableTotals SampleTotals() {
  TableTotals t;
  t.current_mode = Mode::kFork;
  const int fork = static_cast<int>(Mode::kFork);
  const int thread = static_cast<int>(Mode::kThread);
  t.active[fork] = 2;
  t.active[thread] = 3;
  t.accepted_total[fork] = 10;
  t.accepted_total[thread] = 20;
  t.closed_total[fork][static_cast<int>(CloseReason::kClient)] = 7;
  t.closed_total[fork][static_cast<int>(CloseReason::kKilled)] = 1;
  t.closed_total[thread][static_cast<int>(CloseReason::kClient)] = 15;
  t.closed_total[thread][static_cast<int>(CloseReason::kIdleTimeout)] = 2;
  t.rejected_total[static_cast<int>(RejectReason::kLimit)] = 4;
  t.rejected_total[static_cast<int>(RejectReason::kDraining)] = 1;
  t.rejected_total[static_cast<int>(RejectReason::kForkQueueFull)] = 3;
  t.bytes_in_total[fork] = 100;
  t.bytes_out_total[fork] = 99;
  t.bytes_in_total[thread] = 1000;
  t.bytes_out_total[thread] = 1000;
  t.mode_switches_total = 3;
  t.worker_crashes_total = 1;
  return t;
}

ServerFacts SampleFacts() {
  ServerFacts f;
  f.started_at = absl::FromUnixSeconds(1700000000);
  f.now = f.started_at + absl::Seconds(192) + absl::Milliseconds(5);
  f.pid = 4242;
  f.version = "0.1.0";
  f.revision = "abcdef";
  f.data_address = "0.0.0.0:9999";
  f.max_connections = 10000;
  f.idle_timeout = absl::Seconds(300);
  f.draining = true;
  return f;
}

// workers: fork then thread; thread's figures from its stats, fork's from
// its pool's with busy from the table's active fork connections (as
// /metrics); every reason of each mode is a key, zeros included.
TEST(AdminConvert, WorkersComeFromTheStatsAndForkBusyFromTheTable) {
  ServerFacts f = SampleFacts();
  f.thread_workers = {.busy = 3,
                      .idle = 4,
                      .spawns_total = 9,
                      .handoffs_total = 11,
                      .exits_idle_timeout = 2,
                      .exits_cache_full = 1};
  f.fork_workers = {.busy = 99,
                    .idle = 5,
                    .spawns_total = 12,
                    .handoffs_total = 6,
                    .exits_shutdown = 1,
                    .exits_pool_full = 2,
                    .exits_max_connections = 3};
  const admin::v1::ServerStatus s = ToServerStatus(SampleTotals(), f);
  ASSERT_EQ(s.workers_size(), 2);
  const admin::v1::WorkerPool& fork = s.workers(0);
  EXPECT_EQ(fork.mode(), admin::v1::MODE_FORK);
  EXPECT_EQ(fork.busy(), 2u);  // SampleTotals' active fork connections
  EXPECT_EQ(fork.idle(), 5u);
  EXPECT_EQ(fork.spawns_total(), 12u);
  EXPECT_EQ(fork.handoffs_total(), 6u);
  EXPECT_EQ(fork.exits_by_reason_size(), 4);
  EXPECT_EQ(fork.exits_by_reason().at("idle_timeout"), 0u);
  EXPECT_EQ(fork.exits_by_reason().at("shutdown"), 1u);
  EXPECT_EQ(fork.exits_by_reason().at("pool_full"), 2u);
  EXPECT_EQ(fork.exits_by_reason().at("max_connections"), 3u);
  const admin::v1::WorkerPool& thread = s.workers(1);
  EXPECT_EQ(thread.mode(), admin::v1::MODE_THREAD);
  EXPECT_EQ(thread.busy(), 3u);
  EXPECT_EQ(thread.idle(), 4u);
  EXPECT_EQ(thread.spawns_total(), 9u);
  EXPECT_EQ(thread.handoffs_total(), 11u);
  EXPECT_EQ(thread.exits_by_reason_size(), 3);
  EXPECT_EQ(thread.exits_by_reason().at("idle_timeout"), 2u);
  EXPECT_EQ(thread.exits_by_reason().at("shutdown"), 0u);
  EXPECT_EQ(thread.exits_by_reason().at("cache_full"), 1u);
}

TEST(AdminConvert, WorkersAreZeroWhenTheServerSaysNothing) {
  const admin::v1::ServerStatus s =
      ToServerStatus(TableTotals(), ServerFacts());
  ASSERT_EQ(s.workers_size(), 2);
  for (const admin::v1::WorkerPool& pool : s.workers()) {
    EXPECT_EQ(pool.busy() + pool.idle() + pool.spawns_total(), 0u);
    for (const auto& [reason, n] : pool.exits_by_reason()) {
      EXPECT_EQ(n, 0u) << reason;
    }
  }
}

TEST(AdminConvert, StatusSumsModesAndKeepsPerModeFigures) {
  const admin::v1::ServerStatus s =
      ToServerStatus(SampleTotals(), SampleFacts());
  EXPECT_EQ(s.mode(), admin::v1::MODE_FORK);
  EXPECT_EQ(s.active_connections(), 5u);
  EXPECT_EQ(s.accepted_total(), 30u);
  EXPECT_EQ(s.closed_total(), 25u);
  EXPECT_EQ(s.rejected_total(), 8u);
  EXPECT_EQ(s.received_bytes_total(), 1100u);
  EXPECT_EQ(s.sent_bytes_total(), 1099u);
  EXPECT_EQ(s.mode_switches_total(), 3u);
  EXPECT_EQ(s.worker_crashes_total(), 1u);
  ASSERT_EQ(s.per_mode_size(), 2);
  EXPECT_EQ(s.per_mode(0).mode(), admin::v1::MODE_FORK);
  EXPECT_EQ(s.per_mode(0).active_connections(), 2u);
  EXPECT_EQ(s.per_mode(0).accepted_total(), 10u);
  EXPECT_EQ(s.per_mode(0).closed_total(), 8u);
  EXPECT_EQ(s.per_mode(0).received_bytes_total(), 100u);
  EXPECT_EQ(s.per_mode(0).sent_bytes_total(), 99u);
  EXPECT_EQ(s.per_mode(1).mode(), admin::v1::MODE_THREAD);
  EXPECT_EQ(s.per_mode(1).active_connections(), 3u);
  EXPECT_EQ(s.per_mode(1).closed_total(), 17u);
}

TEST(AdminConvert, StatusReportsEveryReasonByNameZerosIncluded) {
  const admin::v1::ServerStatus s =
      ToServerStatus(SampleTotals(), SampleFacts());
  ASSERT_EQ(s.closed_by_reason_size(), 6);
  EXPECT_EQ(s.closed_by_reason().at("client"), 22u);
  EXPECT_EQ(s.closed_by_reason().at("killed"), 1u);
  EXPECT_EQ(s.closed_by_reason().at("idle_timeout"), 2u);
  EXPECT_EQ(s.closed_by_reason().at("error"), 0u);
  EXPECT_EQ(s.closed_by_reason().at("drain"), 0u);
  EXPECT_EQ(s.closed_by_reason().at("send_timeout"), 0u);
  ASSERT_EQ(s.rejected_by_reason_size(), 6);
  EXPECT_EQ(s.rejected_by_reason().at("fork_queue_full"), 3u);
  EXPECT_EQ(s.rejected_by_reason().at("limit"), 4u);
  EXPECT_EQ(s.rejected_by_reason().at("draining"), 1u);
  EXPECT_EQ(s.rejected_by_reason().at("fork_failed"), 0u);
  EXPECT_EQ(s.rejected_by_reason().at("thread_failed"), 0u);
  EXPECT_EQ(s.rejected_by_reason().at("fd_exhausted"), 0u);
}

TEST(AdminConvert, StatusCarriesTheServerFacts) {
  const admin::v1::ServerStatus s =
      ToServerStatus(SampleTotals(), SampleFacts());
  EXPECT_EQ(TimeUtil::TimestampToSeconds(s.started_at()), 1700000000);
  EXPECT_EQ(TimeUtil::DurationToMilliseconds(s.uptime()), 192005);
  EXPECT_EQ(s.pid(), 4242);
  EXPECT_EQ(s.version(), "0.1.0");
  EXPECT_EQ(s.revision(), "abcdef");
  EXPECT_EQ(s.data_address(), "0.0.0.0:9999");
  EXPECT_EQ(s.max_connections(), 10000u);
  EXPECT_EQ(TimeUtil::DurationToSeconds(s.idle_timeout()), 300);
  EXPECT_TRUE(s.draining());
}

TEST(AdminConvert, StatusCarriesTheResourceLimits) {
  ServerFacts f = SampleFacts();
  f.limits = {.open_files = 524288,
              .open_files_hard = 1048576,
              .max_processes = 0,
              .pids_limit = 4096,
              .memory_limit_bytes = 536870912};
  const admin::v1::ServerStatus s = ToServerStatus(SampleTotals(), f);
  ASSERT_TRUE(s.has_limits());
  EXPECT_EQ(s.limits().open_files_limit(), 524288u);
  EXPECT_EQ(s.limits().open_files_hard_limit(), 1048576u);
  EXPECT_EQ(s.limits().max_processes(), 0u);
  EXPECT_EQ(s.limits().pids_limit(), 4096u);
  EXPECT_EQ(s.limits().memory_limit_bytes(), 536870912u);
}

TEST(AdminConvert, StatusCarriesTheAdminSecurityAndItsWarning) {
  ServerFacts f = SampleFacts();
  f.admin = {.bind = "0.0.0.0",
             .loopback = false,
             .token_required = false,
             .tls = true};
  admin::v1::ServerStatus s = ToServerStatus(SampleTotals(), f);
  ASSERT_TRUE(s.has_admin_security());
  EXPECT_EQ(s.admin_security().bind(), "0.0.0.0");
  EXPECT_FALSE(s.admin_security().loopback());
  EXPECT_FALSE(s.admin_security().token_required());
  EXPECT_TRUE(s.admin_security().tls());
  EXPECT_TRUE(s.admin_security().exposed());
  ASSERT_EQ(s.warnings_size(), 1);
  EXPECT_EQ(s.warnings(0), AdminWarnings(f.admin)[0]);

  f.admin.token_required = true;
  s = ToServerStatus(SampleTotals(), f);
  EXPECT_TRUE(s.admin_security().token_required());
  EXPECT_FALSE(s.admin_security().exposed());
  EXPECT_EQ(s.warnings_size(), 0);
}

TEST(AdminConvert, UptimeIsNeverNegative) {
  ServerFacts f = SampleFacts();
  f.now = f.started_at - absl::Seconds(1);  // a clock step backwards
  EXPECT_EQ(TimeUtil::DurationToNanoseconds(
                ToServerStatus(TableTotals(), f).uptime()),
            0);
}

TEST(AdminConvert, ConnectionCarriesEveryField) {
  ConnectionInfo info;
  info.id = 77;
  info.mode = Mode::kThread;
  info.pid = 100;
  info.tid = 101;
  info.peer = "127.0.0.1:40000";
  info.started_unix_ns = 1700000000123456789;
  info.last_active_mono_ns = 5'000'000'000;
  info.bytes_in = 12;
  info.bytes_out = 11;
  const admin::v1::Connection c = ToConnection(info, 7'500'000'000);
  EXPECT_EQ(c.id(), 77u);
  EXPECT_EQ(c.mode(), admin::v1::MODE_THREAD);
  EXPECT_EQ(c.worker_pid(), 100);
  EXPECT_EQ(c.worker_tid(), 101);
  EXPECT_EQ(c.peer_address(), "127.0.0.1");
  EXPECT_EQ(c.peer_port(), 40000u);
  EXPECT_EQ(TimeUtil::TimestampToNanoseconds(c.started_at()),
            1700000000123456789);
  EXPECT_EQ(c.received_bytes(), 12u);
  EXPECT_EQ(c.sent_bytes(), 11u);
  EXPECT_EQ(TimeUtil::DurationToMilliseconds(c.idle()), 2500);
}

TEST(AdminConvert, IdleIsZeroWhenTheCoarseClockTrails) {
  ConnectionInfo info;
  info.peer = "127.0.0.1:1";
  info.last_active_mono_ns = 5'000'000'000;
  EXPECT_EQ(
      TimeUtil::DurationToNanoseconds(ToConnection(info, 4'999'000'000).idle()),
      0);
}

TEST(AdminConvert, SplitsIpv4AndBracketedIpv6Peers) {
  PeerAddress v4 = SplitPeer("10.1.2.3:65535");
  EXPECT_EQ(v4.address, "10.1.2.3");
  EXPECT_EQ(v4.port, 65535u);
  PeerAddress v6 = SplitPeer("[::1]:8080");
  EXPECT_EQ(v6.address, "::1");
  EXPECT_EQ(v6.port, 8080u);
  PeerAddress mapped = SplitPeer("[::ffff:10.0.0.1]:1");
  EXPECT_EQ(mapped.address, "::ffff:10.0.0.1");
  EXPECT_EQ(mapped.port, 1u);
}

TEST(AdminConvert, MalformedPeersAreUnknown) {
  for (const char* peer : {"unknown", "", ":80", "1.2.3.4:", "1.2.3.4:x",
                           "1.2.3.4:70000", "[::1:80"}) {
    const PeerAddress p = SplitPeer(peer);
    EXPECT_EQ(p.address, "unknown") << peer;
    EXPECT_EQ(p.port, 0u) << peer;
  }
}

}  // namespace
}  // namespace upper
