// The fleet printer shared by status, connections, mode and health
// (ctl/format/fleet.h): rows, error notes, JSON entries and exit codes.
#include "ctl/format/fleet.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "ctl/admin_client.h"
#include "ctl/command.h"
#include "ctl/exit_codes.h"
#include "ctl/options.h"
#include "ctl/targets.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/support/status.h"
#include "gtest/gtest.h"
#include "upper/ctl/v1/output.pb.h"

namespace upper::ctl {
namespace {

using ::testing::HasSubstr;
namespace out = ::upper::ctl::v1;

using Results = std::vector<InstanceResult<std::string>>;

const grpc::Status kRefused(grpc::StatusCode::UNAVAILABLE,
                            "Connection refused");
const grpc::Status kNoToken(grpc::StatusCode::UNAUTHENTICATED, "no token");
const grpc::Status kBadMode(grpc::StatusCode::INVALID_ARGUMENT, "bad mode");

// A command context that writes into strings.
class FleetPrinterTest : public ::testing::Test {
 protected:
  template <typename Fleet>
  int Print(const Results& results,
            const FleetFormat<Fleet, std::string>& format,
            OutputFormat output = OutputFormat::kTable) {
    options_.output = output;
    const CommandContext context{command_, options_, args_,
                                 targets_, out_,     err_};
    return PrintFleet(context, results, format);
  }

  // One STATUS column; an answer "A,B" gives the rows A and B.
  static FleetFormat<out::FleetHealth, std::string> SplitFormat() {
    FleetFormat<out::FleetHealth, std::string> format;
    format.columns = {{"STATUS"}, {"N", Align::kRight}};
    format.rows = [](const std::string& value) {
      FleetRows rows;
      for (const std::string& part : std::vector<std::string>(
               absl::StrSplit(value, ',', absl::SkipEmpty()))) {
        rows.push_back({part, std::to_string(part.size())});
      }
      return rows;
    };
    format.fill = [](const std::string& value, out::InstanceHealth* instance) {
      instance->set_status(value);
    };
    return format;
  }

  const Command command_{"health", {}, "health", "", nullptr};
  Options options_;
  const std::vector<std::string> args_;
  const Targets targets_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(FleetPrinterTest, TableHasInstanceFirstAndANoteForEachError) {
  const Results results = {{"10.0.0.1:50051", grpc::Status::OK, "SERVING"},
                           {"10.0.0.2:50051", kRefused, ""},
                           {"10.0.0.3:50051", grpc::Status::OK, "A,LONGER"}};
  EXPECT_EQ(Print(results, SplitFormat()), kExitOk);
  EXPECT_EQ(out_.str(),
            "INSTANCE        STATUS   N\n"
            "10.0.0.1:50051  SERVING  7\n"
            "10.0.0.2:50051  unreachable: Connection refused\n"
            "10.0.0.3:50051  A        1\n"
            "10.0.0.3:50051  LONGER   6\n");
  EXPECT_EQ(err_.str(), "");
}

TEST_F(FleetPrinterTest, AnInstanceWithNoRowsShowsNothing) {
  const Results results = {{"10.0.0.1:50051", grpc::Status::OK, ""},
                           {"10.0.0.2:50051", grpc::Status::OK, "X"}};
  EXPECT_EQ(Print(results, SplitFormat()), kExitOk);
  EXPECT_EQ(out_.str(),
            "INSTANCE        STATUS  N\n"
            "10.0.0.2:50051  X       1\n");
}

TEST_F(FleetPrinterTest, LastRowComesAfterEveryInstance) {
  FleetFormat<out::FleetHealth, std::string> format = SplitFormat();
  format.last_row = [] {
    return std::vector<std::string>{"TOTAL (1/2 up)", "-", "9"};
  };
  const Results results = {{"10.0.0.1:50051", kRefused, ""},
                           {"10.0.0.2:50051", grpc::Status::OK, "X"}};
  EXPECT_EQ(Print(results, format), kExitOk);
  EXPECT_EQ(out_.str(),
            "INSTANCE        STATUS  N\n"
            "10.0.0.1:50051  unreachable: Connection refused\n"
            "10.0.0.2:50051  X       1\n"
            "TOTAL (1/2 up)  -       9\n");
}

TEST_F(FleetPrinterTest, JsonHasAnEntryPerInstanceInTargetOrder) {
  FleetFormat<out::FleetHealth, std::string> format = SplitFormat();
  format.rows = [](const std::string&) -> FleetRows {
    ADD_FAILURE() << "JSON output asked for table rows";
    return {};
  };
  const Results results = {{"10.0.0.1:50051", grpc::Status::OK, "SERVING"},
                           {"10.0.0.2:50051", kRefused, "ignored"}};
  EXPECT_EQ(Print(results, format, OutputFormat::kJson), kExitOk);
  out::FleetHealth fleet;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(out_.str(), &fleet).ok())
      << out_.str();
  ASSERT_EQ(fleet.instances_size(), 2);
  EXPECT_EQ(fleet.instances(0).address(), "10.0.0.1:50051");
  EXPECT_EQ(fleet.instances(0).status(), "SERVING");
  EXPECT_FALSE(fleet.instances(0).has_error());
  EXPECT_EQ(fleet.instances(1).address(), "10.0.0.2:50051");
  EXPECT_EQ(fleet.instances(1).status(), "");
  EXPECT_EQ(fleet.instances(1).error().code(), "UNAVAILABLE");
  EXPECT_EQ(fleet.instances(1).error().message(),
            "unreachable: Connection refused");
  EXPECT_EQ(out_.str().back(), '\n');
}

TEST_F(FleetPrinterTest, JsonGetsTheFleetWideFieldsAfterTheInstances) {
  FleetFormat<out::FleetStatus, std::string> format;
  format.fill = [](const std::string& version, out::InstanceStatus* instance) {
    instance->mutable_status()->set_version(version);
  };
  format.fill_fleet = [](out::FleetStatus* fleet) {
    fleet->mutable_total()->set_instances(
        static_cast<uint32_t>(fleet->instances_size()));
  };
  const Results results = {{"10.0.0.1:50051", grpc::Status::OK, "0.1.0"}};
  EXPECT_EQ(Print(results, format, OutputFormat::kJson), kExitOk);
  out::FleetStatus fleet;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(out_.str(), &fleet).ok());
  EXPECT_EQ(fleet.instances(0).status().version(), "0.1.0");
  EXPECT_EQ(fleet.total().instances(), 1u);
}

TEST_F(FleetPrinterTest, ExitCodeIsTheFleetsInEitherFormat) {
  struct Case {
    Results results;
    int exit_code;
  };
  const std::vector<Case> cases = {
      {{{"a:1", grpc::Status::OK, "X"}, {"b:1", kRefused, ""}}, kExitOk},
      {{{"a:1", kRefused, ""}, {"b:1", kRefused, ""}}, kExitUnreachable},
      {{{"a:1", kBadMode, ""}, {"b:1", kRefused, ""}}, kExitServerError},
      {{{"a:1", kBadMode, ""}, {"b:1", kNoToken, ""}}, kExitUnauthenticated},
  };
  for (const OutputFormat output :
       {OutputFormat::kTable, OutputFormat::kJson}) {
    for (const Case& c : cases) {
      EXPECT_EQ(Print(c.results, SplitFormat(), output), c.exit_code)
          << c.results[0].status.error_message();
    }
  }
  EXPECT_THAT(out_.str(), HasSubstr("UNAUTHENTICATED: no token"));
}

TEST_F(FleetPrinterTest, AWriteFailsUnlessEveryInstanceSucceeded) {
  FleetFormat<out::FleetHealth, std::string> format = SplitFormat();
  format.write = true;
  struct Case {
    Results results;
    int exit_code;
    std::string err;  // exactly, "" when all succeeded
  };
  const std::vector<Case> cases = {
      {{{"a:1", grpc::Status::OK, "X"}, {"b:1", grpc::Status::OK, "Y"}},
       kExitOk,
       ""},
      {{{"a:1", grpc::Status::OK, "X"}, {"b:1", kRefused, ""}},
       kExitUnreachable,
       "upperctl: health failed on 1 of 2 instances: b:1\n"},
      {{{"a:1", kBadMode, ""}, {"b:1", kRefused, ""}},
       kExitServerError,
       "upperctl: health failed on 2 of 2 instances: a:1, b:1\n"},
      {{{"a:1", kNoToken, ""}, {"b:1", grpc::Status::OK, "Y"}},
       kExitUnauthenticated,
       "upperctl: health failed on 1 of 2 instances: a:1\n"},
  };
  for (const OutputFormat output :
       {OutputFormat::kTable, OutputFormat::kJson}) {
    for (const Case& c : cases) {
      out_.str("");
      err_.str("");
      EXPECT_EQ(Print(c.results, format, output), c.exit_code) << c.err;
      EXPECT_EQ(err_.str(), c.err);
      // Each failed instance's row or entry says why.
      for (const auto& result : c.results) {
        if (!result.status.ok()) {
          EXPECT_THAT(out_.str(), HasSubstr(result.address));
          EXPECT_THAT(out_.str(), HasSubstr(result.status.error_message()));
        }
      }
    }
  }
}

}  // namespace
}  // namespace upper::ctl
