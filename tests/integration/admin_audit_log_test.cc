// The admin plane's audit trail and log format (issue 12), against a real
// upperd:
//  - with --log_format=json, every stderr line parses as a JSON object, gRPC's
//  own lines included
//    (provoked by an admin port in use: gRPC logs the bind failure) and the
//    start-up failure line;
//  - (text log) SetMode and CloseConnection log the caller's address and how it
//    authenticated;
//  - calls refused for a missing or wrong token are logged at most once a
//    second (the line says how many were not) and every one is counted in
//    upper_admin_requests_total{code="UNAUTHENTICATED"}.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/unique_fd.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/stop_cleanly.h"
#include "tests/support/subprocess.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"
#include "upper/admin/v1/admin.grpc.pb.h"

namespace upper::testing {
namespace {

using admin::v1::AdminService;
using google::protobuf::Struct;

constexpr char kToken[] = "audit-test-token-0123456789";

// Every non-empty line of `log`, parsed; a test failure for any that is
// not a JSON object.
std::vector<Struct> ParseJsonLines(const std::string& log) {
  std::vector<Struct> lines;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    Struct parsed;
    const auto status =
        google::protobuf::util::JsonStringToMessage(std::string(line), &parsed);
    EXPECT_TRUE(status.ok()) << "not JSON: " << line;
    if (status.ok()) lines.push_back(std::move(parsed));
  }
  return lines;
}

std::string FieldOf(const Struct& line, const std::string& key) {
  const auto it = line.fields().find(key);
  return it == line.fields().end() ? "" : it->second.string_value();
}

std::vector<Struct> EventsNamed(const std::vector<Struct>& lines,
                                const std::string& event) {
  std::vector<Struct> found;
  for (const Struct& line : lines) {
    if (FieldOf(line, "event") == event) found.push_back(line);
  }
  return found;
}

grpc::StatusCode GetStatusCode(AdminService::Stub& stub,
                               std::unique_ptr<grpc::ClientContext> context) {
  admin::v1::ServerStatus status;
  return stub.GetStatus(context.get(), admin::v1::GetStatusRequest(), &status)
      .error_code();
}

// A listening socket on 127.0.0.1 and its port: a port in use.
UniqueFd ListenOnLoopback(uint16_t& port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (!fd || bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      listen(fd.get(), 1) != 0 ||
      getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return UniqueFd();
  }
  port = ntohs(addr.sin_port);
  return fd;
}

// The key=value fields of the text log lines of `event` ("<ts> <level>
// <event> k=v ..."; the values here hold no spaces), with "level" added.
using TextEvent = std::map<std::string, std::string>;
std::vector<TextEvent> TextEvents(const std::string& log,
                                  const std::string& event) {
  std::vector<TextEvent> found;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    std::vector<std::string> words = absl::StrSplit(line, ' ');
    if (words.size() < 3 || words[2] != event) continue;
    TextEvent fields = {{"level", words[1]}};
    for (size_t i = 3; i < words.size(); ++i) {
      std::pair<std::string, std::string> kv =
          absl::StrSplit(words[i], absl::MaxSplits('=', 1));
      fields[kv.first] = kv.second;
    }
    found.push_back(std::move(fields));
  }
  return found;
}

std::string Get(const TextEvent& event, const std::string& key) {
  const auto it = event.find(key);
  return it == event.end() ? "" : it->second;
}

TEST(AdminLogFormat, JsonLogParsesLineByLineGrpcLinesIncluded) {
  // Hold a port, so that upperd's admin bind fails inside gRPC.
  uint16_t port = 0;
  const UniqueFd taken = ListenOnLoopback(port);
  ASSERT_TRUE(taken);
  absl::StatusOr<ProcessResult> run = RunProcess(
      {UpperdPath(), "--bind=127.0.0.1", "--data_port=0", "--metrics_port=0",
       "--log_format=json", absl::StrCat("--admin_port=", port)},
      {}, absl::Seconds(30));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 1) << run->err;
  const std::vector<Struct> lines = ParseJsonLines(run->err);
  const std::vector<Struct> grpc = EventsNamed(lines, "grpc");
  ASSERT_FALSE(grpc.empty()) << run->err;
  EXPECT_EQ(FieldOf(grpc[0], "level"), "error");
  EXPECT_TRUE(absl::StrContains(FieldOf(grpc[0], "source"), ".cc:"))
      << run->err;
  const std::vector<Struct> failed = EventsNamed(lines, "startup_failed");
  ASSERT_EQ(failed.size(), 1u) << run->err;
  EXPECT_TRUE(absl::StrContains(FieldOf(failed[0], "message"), "--admin_port"))
      << run->err;
}

// A peer without a token sends 5,000 calls of the open Health/Check whose
// grpc-timeout header gRPC cannot parse (8,000 bytes ending in 0xff 0xfe),
// each reset at once. gRPC logs every one, value included, at its default
// verbosity: before the bound that was ~8 KB of stderr a call and lines that
// were not UTF-8, so not JSON. Now: every line parses, each message is cut
// at 512 bytes, at most 20 such lines a second, and the dropped ones are
// counted in the next line.
TEST(AdminLogFormat, PeerCannotFloodTheLogThroughGrpc) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd = UpperdProcess::Start(
      {.args = {"--log_format=json"}, .wait_until_listening = false});
  ASSERT_TRUE(upperd.ok()) << upperd.status();
  ASSERT_TRUE(
      (*upperd)->WaitForLog("\"service\":\"data\"", absl::Seconds(10)).ok())
      << (*upperd)->Log();
  std::optional<uint16_t> admin;
  for (const Struct& line : ParseJsonLines((*upperd)->Log())) {
    const std::string addr = FieldOf(line, "addr");
    uint32_t port = 0;
    if (FieldOf(line, "service") == "admin" &&
        absl::SimpleAtoi(addr.substr(addr.rfind(':') + 1), &port)) {
      admin = static_cast<uint16_t>(port);
    }
  }
  ASSERT_TRUE(admin.has_value()) << (*upperd)->Log();
  const size_t log_before = (*upperd)->Log().size();
  absl::StatusOr<ProcessResult> attack = RunProcess(
      {"/bin/bash", "-c",
       absl::StrCat("ulimit -v 1000000 && exec '", UPPER_PYTHON3, "' '",
                    H2_ATTACK_PATH, "' rapid_reset --port=", *admin,
                    " --path=/grpc.health.v1.Health/Check --count=5000"
                    " --seconds=20 --bad_header=8000")},
      {}, absl::Seconds(60));
  ASSERT_TRUE(attack.ok()) << attack.status();
  EXPECT_EQ(attack->exit_code, 0) << attack->err;
  absl::SleepFor(absl::Milliseconds(1500));  // let a last line through
  ASSERT_TRUE((*upperd)->running());
  const std::string log = (*upperd)->Log();
  std::printf("attack: %s  upperd stderr grew by %zu bytes\n",
              attack->out.c_str(), log.size() - log_before);
  const std::vector<Struct> grpc = EventsNamed(ParseJsonLines(log), "grpc");
  ASSERT_FALSE(grpc.empty()) << log.substr(0, 4096);
  for (const Struct& line : grpc) {
    EXPECT_LE(FieldOf(line, "message").size(), 512u + 32u);
  }
  // 5,000 messages of 8 KB were 40 MB; 20 lines a second of 0.6 KB for the
  // attack's few seconds are a few hundred KB at most.
  EXPECT_LT(log.size() - log_before, 1u << 20);
  StopCleanly(**upperd);
}

class AdminAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> dir = MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    ASSERT_TRUE(WriteFile(dir_ + "/token", kToken).ok());
    absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
        UpperdProcess::Start({.args = {"--mode=thread", "--admin_token_file=" +
                                                            dir_ + "/token"}});
    ASSERT_TRUE(upperd.ok()) << upperd.status();
    upperd_ = *std::move(upperd);
    absl::StatusOr<uint16_t> admin = upperd_->Port("admin");
    ASSERT_TRUE(admin.ok()) << admin.status();
    stub_ = AdminService::NewStub(AdminChannel(*admin));
  }
  void TearDown() override {
    if (upperd_ != nullptr && upperd_->running()) StopCleanly(*upperd_);
    if (!dir_.empty())
      RunShell(absl::StrCat("rm -rf '", dir_, "'")).IgnoreError();
  }

  // The log's lines of `event`, once at least `count` are there.
  std::vector<TextEvent> WaitForEvents(const std::string& event, size_t count) {
    std::vector<TextEvent> found;
    Eventually(
        [&] {
          found = TextEvents(upperd_->Log(), event);
          return found.size() >= count;
        },
        absl::Seconds(10));
    return found;
  }

  std::string dir_;
  std::unique_ptr<UpperdProcess> upperd_;
  std::unique_ptr<AdminService::Stub> stub_;
};

TEST_F(AdminAuditTest, SteeringCallsLogTheCallerAndItsAuthentication) {
  admin::v1::SetModeRequest request;
  request.set_mode(admin::v1::MODE_FORK);
  admin::v1::SetModeResponse response;
  ASSERT_TRUE(stub_->SetMode(Context(kToken).get(), request, &response).ok());
  const std::vector<TextEvent> set = WaitForEvents("mode_set_by_admin", 1);
  ASSERT_EQ(set.size(), 1u) << upperd_->Log();
  EXPECT_EQ(Get(set[0], "mode"), "fork");
  EXPECT_EQ(Get(set[0], "previous"), "thread");
  EXPECT_TRUE(absl::StrContains(Get(set[0], "caller"), "127.0.0.1:"))
      << Get(set[0], "caller");
  EXPECT_EQ(Get(set[0], "auth"), "token");

  absl::StatusOr<UniqueFd> data = Connect(upperd_->data_port());
  ASSERT_TRUE(data.ok()) << data.status();
  absl::StatusOr<std::vector<admin::v1::Connection>> live;
  ASSERT_TRUE(Eventually(
      [&] {
        live = ListConnections(*stub_, kToken);
        return live.ok() && live->size() == 1;
      },
      absl::Seconds(10)));
  admin::v1::CloseConnectionRequest close;
  close.set_id((*live)[0].id());
  admin::v1::CloseConnectionResponse closed;
  ASSERT_TRUE(
      stub_->CloseConnection(Context(kToken).get(), close, &closed).ok());
  const std::vector<TextEvent> killed =
      WaitForEvents("connection_closed_by_admin", 1);
  ASSERT_EQ(killed.size(), 1u) << upperd_->Log();
  EXPECT_TRUE(absl::StrContains(Get(killed[0], "caller"), "127.0.0.1:"));
  EXPECT_EQ(Get(killed[0], "auth"), "token");
}

TEST_F(AdminAuditTest, RefusedCallsAreLoggedRateLimitedAndEveryOneCounted) {
  constexpr int kRefused = 50;
  for (int i = 0; i < kRefused; ++i) {
    EXPECT_EQ(GetStatusCode(*stub_, Context(i % 2 == 0 ? "" : "wrong")),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  // Within a second or so of each other: one line, two at most.
  const std::vector<TextEvent> lines = WaitForEvents("admin_auth_failed", 1);
  ASSERT_GE(lines.size(), 1u) << upperd_->Log();
  EXPECT_LE(lines.size(), 2u) << upperd_->Log();
  EXPECT_EQ(Get(lines[0], "level"), "warning");
  EXPECT_EQ(Get(lines[0], "reason"), "no_token");
  EXPECT_EQ(Get(lines[0], "method"), "/upper.admin.v1.AdminService/GetStatus");
  // The next refusal after the interval is logged, with the count of the
  // ones that were not.
  absl::SleepFor(absl::Milliseconds(1100));
  EXPECT_EQ(GetStatusCode(*stub_, Context("wrong")),
            grpc::StatusCode::UNAUTHENTICATED);
  const std::vector<TextEvent> more =
      WaitForEvents("admin_auth_failed", lines.size() + 1);
  ASSERT_EQ(more.size(), lines.size() + 1) << upperd_->Log();
  EXPECT_EQ(Get(more.back(), "reason"), "wrong_token");
  uint64_t suppressed = 0;
  for (const TextEvent& line : more) {
    uint64_t n = 0;
    EXPECT_TRUE(absl::SimpleAtoi(Get(line, "suppressed"), &n));
    suppressed += n;
  }
  EXPECT_EQ(suppressed + more.size(), static_cast<uint64_t>(kRefused + 1));

  absl::StatusOr<uint16_t> metrics = upperd_->Port("metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  absl::StatusOr<Scrape> scrape = Scrape::Get(*metrics);
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  EXPECT_EQ(scrape->Value("upper_admin_requests_total{code=\"UNAUTHENTICATED\","
                          "method=\"upper.admin.v1.AdminService/GetStatus\"}"),
            kRefused + 1);
}

}  // namespace
}  // namespace upper::testing
