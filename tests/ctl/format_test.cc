// upperctl's output module: human units, table alignment, JSON shape.
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "ctl/format/json.h"
#include "ctl/format/status_text.h"
#include "ctl/format/table.h"
#include "ctl/format/units.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "upper/ctl/v1/output.pb.h"

namespace upper {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::upper::ctl::Align;
using ::upper::ctl::HumanBytes;
using ::upper::ctl::HumanDuration;
using ::upper::ctl::JsonStyle;
using ::upper::ctl::Table;
using ::upper::ctl::ToJson;

TEST(HumanBytes, BytesBelowOneKiBAreExact) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1), "1 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
}

TEST(HumanBytes, LargerSizesUseBinaryUnitsWithOneDecimal) {
  EXPECT_EQ(HumanBytes(1024), "1.0 KiB");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(3 << 20), "3.0 MiB");
  EXPECT_EQ(HumanBytes(uint64_t{5} << 30), "5.0 GiB");
  EXPECT_EQ(HumanBytes(uint64_t{2} << 40), "2.0 TiB");
}

TEST(HumanBytes, RoundingUpMovesToTheNextUnit) {
  EXPECT_EQ(HumanBytes((1 << 20) - 1), "1.0 MiB");  // not "1024.0 KiB"
  EXPECT_EQ(HumanBytes(1023 * 1024), "1023.0 KiB");
}

TEST(HumanDuration, UsesTheTwoLargestUnits) {
  EXPECT_EQ(HumanDuration(absl::ZeroDuration()), "0s");
  EXPECT_EQ(HumanDuration(absl::Milliseconds(450)), "450ms");
  EXPECT_EQ(HumanDuration(absl::Seconds(12)), "12s");
  EXPECT_EQ(HumanDuration(absl::Seconds(192)), "3m12s");
  EXPECT_EQ(HumanDuration(absl::Hours(2) + absl::Minutes(5) + absl::Seconds(9)),
            "2h5m");
  EXPECT_EQ(HumanDuration(absl::Hours(76)), "3d4h");
}

TEST(HumanDuration, TruncatesAndHandlesOddValues) {
  EXPECT_EQ(HumanDuration(absl::Milliseconds(59999)), "59s");
  EXPECT_EQ(HumanDuration(absl::Seconds(60)), "1m0s");
  EXPECT_EQ(HumanDuration(absl::Seconds(-5)), "-5s");
  EXPECT_EQ(HumanDuration(absl::InfiniteDuration()), "inf");
}

TEST(Table, PadsColumnsToTheWidestCellAndAlignsNumbersRight) {
  Table table({{"ID", Align::kRight}, {"PEER"}, {"SENT", Align::kRight}});
  table.AddRow({"7", "127.0.0.1:40112", "1.5 KiB"});
  table.AddRow({"1234", "::1", "0 B"});
  EXPECT_EQ(table.Render(),
            "  ID  PEER                SENT\n"
            "   7  127.0.0.1:40112  1.5 KiB\n"
            "1234  ::1                  0 B\n");
}

TEST(Table, NoLineEndsInBlanks) {
  Table table({{"A"}, {"B"}});
  table.AddRow({"long value", ""});
  table.AddRow({"x"});
  for (absl::string_view line :
       absl::StrSplit(table.Render(), '\n', absl::SkipEmpty())) {
    EXPECT_NE(line.back(), ' ') << "'" << line << "'";
  }
}

TEST(Table, NoteSpansTheOtherColumnsWithoutWideningThem) {
  Table table({{"INSTANCE"}, {"MODE"}, {"ACTIVE", Align::kRight}});
  table.AddRow({"10.0.0.1:50051", "fork", "3"});
  table.AddNote("10.0.0.2:50051", "unreachable: Connection refused");
  EXPECT_EQ(table.Render(),
            "INSTANCE        MODE  ACTIVE\n"
            "10.0.0.1:50051  fork       3\n"
            "10.0.0.2:50051  unreachable: Connection refused\n");
}

TEST(Table, CountsUtf8CharactersNotBytes) {
  Table table({{"K"}, {"V"}}, /*show_header=*/false);
  table.AddRow({"µs", "1"});
  table.AddRow({"ab", "2"});
  EXPECT_EQ(table.Render(), "µs  1\nab  2\n");
}

TEST(Json, UsesProtoFieldNamesAndPrintsZeros) {
  upper::admin::v1::ServerStatus status;
  status.set_mode(upper::admin::v1::MODE_FORK);
  status.set_accepted_total(12);
  absl::StatusOr<std::string> json = ToJson(status);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"mode\": \"MODE_FORK\""));
  EXPECT_THAT(*json, HasSubstr("\"accepted_total\": \"12\""));  // 64-bit
  EXPECT_THAT(*json, HasSubstr("\"rejected_total\": \"0\""));   // zero kept
  EXPECT_THAT(*json, HasSubstr("\"draining\": false"));
  EXPECT_THAT(*json, Not(HasSubstr("acceptedTotal")));
  EXPECT_NE(json->back(), '\n');
}

TEST(Json, OneLineStyleHasNoNewline) {
  upper::admin::v1::ServerStatus status;
  status.set_pid(7);
  absl::StatusOr<std::string> json = ToJson(status, JsonStyle::kOneLine);
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->find('\n'), std::string::npos);
  EXPECT_THAT(*json, HasSubstr("\"pid\":7"));
}

TEST(Json, FleetShapeRoundTrips) {
  upper::ctl::v1::FleetStatus fleet;
  auto* up = fleet.add_instances();
  up->set_address("10.0.0.1:50051");
  up->mutable_status()->set_active_connections(3);
  auto* down = fleet.add_instances();
  down->set_address("10.0.0.2:50051");
  down->mutable_error()->set_code("UNAVAILABLE");
  fleet.mutable_total()->set_instances(2);
  absl::StatusOr<std::string> json = ToJson(fleet);
  ASSERT_TRUE(json.ok());
  upper::ctl::v1::FleetStatus parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*json, &parsed).ok());
  EXPECT_TRUE(
      google::protobuf::util::MessageDifferencer::Equals(parsed, fleet));
  EXPECT_FALSE(parsed.instances(1).has_status());
}

TEST(StatusText, LineCarriesEveryFigureWithoutSpacesInValues) {
  upper::admin::v1::ServerStatus status;
  status.set_mode(upper::admin::v1::MODE_THREAD);
  status.set_active_connections(2);
  status.set_sent_bytes_total(1536);
  status.mutable_uptime()->set_seconds(192);
  const std::string line = ctl::StatusLine(absl::FromUnixSeconds(0), status);
  EXPECT_EQ(line,
            "1970-01-01T00:00:00Z mode=thread active=2 fork=0 thread=0 "
            "accepted=0 rejected=0 closed=0 received=0B sent=1.5KiB "
            "uptime=3m12s");
}

TEST(StatusText, BlockShowsAdminAccessAndEndsWithEveryWarning) {
  upper::admin::v1::ServerStatus status;
  upper::admin::v1::AdminSecurity* security = status.mutable_admin_security();
  security->set_bind("0.0.0.0");
  security->set_exposed(true);
  status.add_warnings("admin endpoint exposed: fix it");
  status.add_warnings("second");
  const std::string block = ctl::StatusBlock("localhost:50051", status);
  EXPECT_THAT(block, HasSubstr("admin access     0.0.0.0: EXPOSED (no token), "
                               "TLS off\n"));
  const std::string tail =
      "WARNING: admin endpoint exposed: fix it\nWARNING: second\n";
  ASSERT_GE(block.size(), tail.size());
  EXPECT_EQ(block.substr(block.size() - tail.size()), tail);
}

TEST(StatusText, BlockDescribesAGuardedAdminEndpointWithoutWarning) {
  upper::admin::v1::ServerStatus status;
  upper::admin::v1::AdminSecurity* security = status.mutable_admin_security();
  security->set_bind("127.0.0.1");
  security->set_loopback(true);
  std::string block = ctl::StatusBlock("localhost:50051", status);
  EXPECT_THAT(block, HasSubstr("127.0.0.1: loopback, no token, TLS off\n"));
  EXPECT_THAT(block, Not(HasSubstr("WARNING")));
  security->set_bind("::");
  security->set_loopback(false);
  security->set_token_required(true);
  security->set_tls(true);
  block = ctl::StatusBlock("localhost:50051", status);
  EXPECT_THAT(block, HasSubstr("::: token, TLS on\n"));
}

TEST(StatusText, WorkersTextListsEveryFigureAndOnlyNonZeroExits) {
  upper::admin::v1::WorkerPool pool;
  pool.set_busy(2);
  pool.set_idle(4);
  pool.set_spawns_total(6);
  pool.set_handoffs_total(64);
  (*pool.mutable_exits_by_reason())["shutdown"] = 0;
  (*pool.mutable_exits_by_reason())["idle_timeout"] = 2;
  (*pool.mutable_exits_by_reason())["cache_full"] = 1;
  EXPECT_EQ(ctl::WorkersText(pool),
            "busy 2, idle 4, spawns 6, hand-offs 64, exits 3 (cache_full 1, "
            "idle_timeout 2)");
  EXPECT_EQ(ctl::WorkersText(upper::admin::v1::WorkerPool()),
            "busy 0, idle 0, spawns 0, hand-offs 0, exits 0");
}

TEST(StatusText, AddWorkersSumsEveryFigureAndEveryReason) {
  upper::admin::v1::WorkerPool a;
  a.set_busy(1);
  a.set_idle(2);
  a.set_spawns_total(3);
  a.set_handoffs_total(4);
  (*a.mutable_exits_by_reason())["pool_full"] = 5;
  upper::admin::v1::WorkerPool total;
  total.set_mode(upper::admin::v1::MODE_FORK);
  ctl::AddWorkers(a, &total);
  (*a.mutable_exits_by_reason())["shutdown"] = 1;
  ctl::AddWorkers(a, &total);
  EXPECT_EQ(total.mode(), upper::admin::v1::MODE_FORK);
  EXPECT_EQ(total.busy(), 2u);
  EXPECT_EQ(total.idle(), 4u);
  EXPECT_EQ(total.spawns_total(), 6u);
  EXPECT_EQ(total.handoffs_total(), 8u);
  EXPECT_EQ(total.exits_by_reason().at("pool_full"), 10u);
  EXPECT_EQ(total.exits_by_reason().at("shutdown"), 1u);
}

TEST(StatusText, BlockHasAWorkersRowPerMode) {
  upper::admin::v1::ServerStatus status;
  upper::admin::v1::WorkerPool* fork = status.add_workers();
  fork->set_mode(upper::admin::v1::MODE_FORK);
  fork->set_idle(3);
  upper::admin::v1::WorkerPool* thread = status.add_workers();
  thread->set_mode(upper::admin::v1::MODE_THREAD);
  thread->set_spawns_total(7);
  const std::string block = ctl::StatusBlock("localhost:50051", status);
  EXPECT_THAT(block, HasSubstr("fork workers     busy 0, idle 3, spawns 0, "
                               "hand-offs 0, exits 0\n"));
  EXPECT_THAT(block, HasSubstr("thread workers   busy 0, idle 0, spawns 7, "
                               "hand-offs 0, exits 0\n"));
  EXPECT_EQ(ctl::WorkersIn(status, upper::admin::v1::MODE_THREAD), thread);
  EXPECT_EQ(ctl::WorkersIn(upper::admin::v1::ServerStatus(),
                           upper::admin::v1::MODE_FORK),
            nullptr);
}

TEST(StatusText, BlockOfAnOlderServerHasNoAdminAccessRow) {
  const std::string block =
      ctl::StatusBlock("localhost:50051", upper::admin::v1::ServerStatus());
  EXPECT_THAT(block, Not(HasSubstr("admin access")));
  EXPECT_THAT(block, Not(HasSubstr("WARNING")));
  EXPECT_THAT(block, Not(HasSubstr("workers")));
}

}  // namespace
}  // namespace upper
