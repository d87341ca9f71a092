// upperctl run as a process, the way an operator runs it, against
// FakeAdminServer (a real gRPC server on loopback with canned state; the
// real AdminService is tested in tests/integration/upperctl_e2e_test.cc):
// every command, exit statuses 0-4, table and JSON output parsed back, the
// token in the metadata, and the fleet view over two servers at once.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/ctl/fake_admin_server.h"
#include "tests/support/subprocess.h"
#include "upper/admin/v1/admin.pb.h"
#include "upper/ctl/v1/output.pb.h"

#ifndef UPPERCTL_PATH
#error "UPPERCTL_PATH must be the path of the upperctl binary"
#endif

namespace upper::testing {
namespace {

namespace admin = ::upper::admin::v1;
namespace out = ::upper::ctl::v1;
using ::google::protobuf::util::JsonStringToMessage;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::Duration kRunTimeout = absl::Seconds(30);

ProcessResult Upperctl(std::vector<std::string> args,
                       std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), UPPERCTL_PATH);
  absl::StatusOr<ProcessResult> result = RunProcess(args, env, kRunTimeout);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : ProcessResult{};
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// Splits a table line at runs of two or more blanks.
std::vector<std::string> Cells(absl::string_view line) {
  std::vector<std::string> cells;
  for (absl::string_view cell : absl::StrSplit(line, "  ", absl::SkipEmpty())) {
    cells.emplace_back(absl::StripAsciiWhitespace(cell));
  }
  return cells;
}

// The key/value block of `status`: key -> value.
std::map<std::string, std::string> KeyValues(const std::string& text) {
  std::map<std::string, std::string> values;
  for (const std::string& line : Lines(text)) {
    const size_t gap = line.find("  ");
    if (gap == std::string::npos) continue;
    values[line.substr(0, gap)] =
        std::string(absl::StripAsciiWhitespace(line.substr(gap)));
  }
  return values;
}

// A loopback port with nothing listening: bound, never listened on.
uint16_t ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(addr);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length), 0);
  // Kept bound, never listening, for the life of the test process: connects
  // are refused, and no upperd of a test running beside us can take the
  // port (closing it let one do so, and "down" answered).
  return ntohs(addr.sin_port);
}

template <typename Message>
Message ParseJson(const std::string& json) {
  Message message;
  const auto status = JsonStringToMessage(json, &message);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return message;
}

void ExpectOneErrorLine(const ProcessResult& run, absl::string_view start) {
  EXPECT_THAT(Lines(run.err), ElementsAre(StartsWith(std::string(start))))
      << run.err;
}

class UpperctlTest : public ::testing::Test {
 protected:
  std::string addr() const {
    return absl::StrCat("--addr=", server_.address());
  }
  FakeAdminServer server_;
};

TEST_F(UpperctlTest, VersionPrintsItsBuild) {
  ProcessResult run = Upperctl({"version"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, StartsWith("upperctl 0.1.0 ("));
  out::VersionInfo info =
      ParseJson<out::VersionInfo>(Upperctl({"version", "-o", "json"}).out);
  EXPECT_EQ(info.version(), "0.1.0");
  EXPECT_FALSE(info.revision().empty());
}

TEST_F(UpperctlTest, StatusTableShowsFiguresWithUnits) {
  ProcessResult run = Upperctl({"status", addr()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  std::map<std::string, std::string> values = KeyValues(run.out);
  EXPECT_EQ(values["instance"], server_.address());
  EXPECT_EQ(values["mode"], "thread");
  EXPECT_EQ(values["active"], "3 (fork 1, thread 2)");
  EXPECT_EQ(values["accepted"], "120");
  EXPECT_EQ(values["rejected"], "2 (limit 2)");
  EXPECT_EQ(values["closed"], "117 (client 110, idle_timeout 7)");
  EXPECT_EQ(values["received"], "1.5 KiB");
  EXPECT_EQ(values["sent"], "3.0 MiB");
  EXPECT_EQ(values["uptime"], "3m12s");
  EXPECT_EQ(values["idle timeout"], "5m0s");
  EXPECT_EQ(values["pid"], "4242");
  EXPECT_EQ(values["version"], "0.1.0 (abcdef123456)");
  EXPECT_EQ(values["open files limit"], "4096 (hard 524288)");
  EXPECT_EQ(values["max processes"], "unlimited");
  EXPECT_EQ(values["pids limit"], "300");
  EXPECT_EQ(values["memory limit"], "512.0 MiB");
  EXPECT_EQ(values["fork workers"],
            "busy 1, idle 2, spawns 10, hand-offs 5, exits 7 "
            "(max_connections 4, pool_full 3)");
  EXPECT_EQ(values["thread workers"],
            "busy 2, idle 4, spawns 6, hand-offs 64, exits 2 "
            "(idle_timeout 2)");
  // Values start in one column.
  std::set<size_t> value_columns;
  for (const std::string& line : Lines(run.out)) {
    value_columns.insert(line.find_first_not_of(' ', line.find("  ")));
  }
  EXPECT_EQ(value_columns.size(), 1u) << run.out;
}

TEST_F(UpperctlTest, StatusJsonIsTheServersMessage) {
  ProcessResult run = Upperctl({"-o", "json", "status", addr()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  admin::ServerStatus status = ParseJson<admin::ServerStatus>(run.out);
  EXPECT_TRUE(MessageDifferencer::Equals(status, server_.status()))
      << status.DebugString();
  EXPECT_THAT(run.out, HasSubstr("\"active_connections\": \"3\""));
  EXPECT_THAT(run.out, HasSubstr("\"open_files_limit\": \"4096\""));
  EXPECT_THAT(run.out, HasSubstr("\"max_processes\": \"0\""));  // unlimited
  EXPECT_THAT(run.out, HasSubstr("\"spawns_total\": \"10\""));
  EXPECT_THAT(run.out, HasSubstr("\"exits_by_reason\""));
}

TEST_F(UpperctlTest, ConnectionsTableHasARowPerConnection) {
  ProcessResult run = Upperctl({"connections", addr()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 3u) << run.out;
  EXPECT_THAT(Cells(lines[0]), ElementsAre("ID", "PEER", "MODE", "PID", "TID",
                                           "AGE", "RECEIVED", "SENT", "IDLE"));
  EXPECT_THAT(Cells(lines[1]),
              ElementsAre("7", "127.0.0.1:40112", "fork", "5001", "-",
                          StartsWith("2m"), "2.0 KiB", "2.0 KiB", "450ms"));
  EXPECT_THAT(Cells(lines[2]),
              ElementsAre("9", "[::1]:40200", "thread", "4242", "4250",
                          StartsWith("2h"), "5.0 MiB", "5.0 MiB", "12s"));
  // Aligned: the PEER column starts at the same offset on every line.
  EXPECT_EQ(lines[0].find("PEER"), lines[1].find("127.0.0.1"));
  EXPECT_EQ(lines[0].find("PEER"), lines[2].find("[::1]"));
}

TEST_F(UpperctlTest, ConnectionsFollowsEveryPageWithTheGivenPageSize) {
  std::vector<admin::Connection> many;
  for (uint64_t id = 1; id <= 5; ++id) {
    admin::Connection c = FakeAdminServer::CannedConnections().front();
    c.set_id(id);
    many.push_back(c);
  }
  server_.SetConnections(many);
  ProcessResult run =
      Upperctl({"connections", "--page_size=2", "-o", "json", addr()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto list = ParseJson<admin::ListConnectionsResponse>(run.out);
  ASSERT_EQ(list.connections_size(), 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(list.connections(i).id(), static_cast<uint64_t>(i + 1));
  }
  EXPECT_EQ(list.next_page_token(), "");
  const std::vector<admin::ListConnectionsRequest> calls =
      server_.list_requests();
  ASSERT_EQ(calls.size(), 3u);  // 2 + 2 + 1
  EXPECT_EQ(calls[0].page_token(), "");
  EXPECT_EQ(calls[1].page_token(), "2");
  EXPECT_EQ(calls[2].page_token(), "4");
  for (const auto& call : calls) EXPECT_EQ(call.page_size(), 2);

  // The table: a header and a row per connection.
  run = Upperctl({"conns", "--page_size=2", addr()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(Lines(run.out).size(), 6u) << run.out;
}

TEST_F(UpperctlTest, ConnsAliasFiltersByMode) {
  ProcessResult run = Upperctl({"conns", "--mode", "fork", addr()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 2u) << run.out;
  EXPECT_EQ(Cells(lines[1])[0], "7");

  run = Upperctl({"conns", "--mode=thread", "-o", "json", addr()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto list = ParseJson<admin::ListConnectionsResponse>(run.out);
  ASSERT_EQ(list.connections_size(), 1);
  EXPECT_EQ(list.connections(0).id(), 9u);
  EXPECT_EQ(list.connections(0).worker_tid(), 4250);
}

TEST_F(UpperctlTest, ModeShowsAndSetsPrintingPreviousToNew) {
  ProcessResult run = Upperctl({"mode", addr()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "thread\n");
  run = Upperctl({"mode", "fork", addr()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "thread -> fork\n");
  EXPECT_EQ(server_.status().mode(), admin::MODE_FORK);
  run = Upperctl({"mode", "thread", addr(), "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto change = ParseJson<admin::SetModeResponse>(run.out);
  EXPECT_EQ(change.previous_mode(), admin::MODE_FORK);
  EXPECT_EQ(change.mode(), admin::MODE_THREAD);
}

TEST_F(UpperctlTest, ModeNamesAreCaseInsensitive) {
  ProcessResult run = Upperctl({"mode", "FORK", addr()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "thread -> fork\n");
  run = Upperctl({"mode", "Thread", addr()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "fork -> thread\n");
  run = Upperctl({"conns", "--mode", "FORK", addr()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(Lines(run.out).size(), 2u) << run.out;  // header + id 7
}

TEST_F(UpperctlTest, JsonErrorOfOneInstanceIsACallErrorObject) {
  const std::string target = absl::StrCat("127.0.0.1:", ClosedPort());
  struct Row {
    std::vector<std::string> args;
    int exit_code;
    std::string address;
    std::string code;
  };
  const std::vector<Row> rows = {
      {{"status", "--addr", target}, 3, target, "UNAVAILABLE"},
      {{"health", "--addr", target}, 3, target, "UNAVAILABLE"},
      {{"close", "12345", addr()}, 1, server_.address(), "NOT_FOUND"},
      {{"mode", "process", addr()}, 1, server_.address(), "INVALID_ARGUMENT"},
  };
  for (const Row& row : rows) {
    std::vector<std::string> args = row.args;
    args.push_back("-o");
    args.push_back("json");
    ProcessResult run = Upperctl(args);
    EXPECT_EQ(run.exit_code, row.exit_code) << run.err;
    ExpectOneErrorLine(run, "upperctl: ");
    auto error = ParseJson<out::CallError>(run.out);
    EXPECT_EQ(error.address(), row.address);
    EXPECT_EQ(error.error().code(), row.code);
    EXPECT_FALSE(error.error().message().empty());
  }
}

TEST_F(UpperctlTest, WrongModeNameIsTheServersInvalidArgument) {
  ProcessResult run = Upperctl({"mode", "process", addr()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.out, "");
  ExpectOneErrorLine(run, "upperctl: INVALID_ARGUMENT: mode must be");
  EXPECT_EQ(server_.status().mode(), admin::MODE_THREAD);
}

TEST_F(UpperctlTest, CloseEndsTheConnectionAndSaysWhatItWas) {
  ProcessResult run = Upperctl({"close", "7", addr()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out,
            "closed connection 7: 127.0.0.1:40112, fork, pid 5001, received "
            "2.0 KiB, sent 2.0 KiB\n");
  ASSERT_EQ(server_.connections().size(), 1u);
  EXPECT_EQ(server_.connections()[0].id(), 9u);

  run = Upperctl({"close", "9", addr(), "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(
      ParseJson<admin::CloseConnectionResponse>(run.out).connection().id(), 9u);
}

TEST_F(UpperctlTest, CloseOfUnknownIdIsNotFoundExit1) {
  ProcessResult run = Upperctl({"close", "12345", addr()});
  EXPECT_EQ(run.exit_code, 1);
  ExpectOneErrorLine(run, "upperctl: NOT_FOUND: no connection with id 12345");
}

TEST_F(UpperctlTest, HealthIsZeroOnlyWhenServing) {
  ProcessResult run = Upperctl({"health", addr()});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "SERVING\n");
  server_.SetServing(false);
  run = Upperctl({"health", addr()});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_EQ(run.out, "NOT_SERVING\n");
  run = Upperctl({"health", addr(), "-o", "json"});
  EXPECT_EQ(ParseJson<out::Health>(run.out).status(), "NOT_SERVING");
}

TEST_F(UpperctlTest, WatchIntoAPipePrintsOneLinePerUpdate) {
  ProcessResult run =
      Upperctl({"watch", "--count=3", "--interval=100ms", addr()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 3u) << run.out;
  for (int i = 0; i < 3; ++i) {
    // The double counts updates in accepted_total: 120 + 1, 2, 3.
    EXPECT_THAT(
        lines[i],
        HasSubstr(absl::StrCat(
            " mode=thread active=3 fork=1 thread=2 accepted=", 121 + i, " ")));
    EXPECT_THAT(lines[i], HasSubstr("sent=3.0MiB uptime=3m12s"));
  }
  EXPECT_EQ(run.out.find("\033["), std::string::npos);  // no redraw codes
}

TEST_F(UpperctlTest, WatchJsonIsOneObjectPerLine) {
  ProcessResult run = Upperctl(
      {"watch", "--count", "2", "--interval", "100ms", "-o", "json", addr()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 2u) << run.out;
  EXPECT_EQ(ParseJson<admin::ServerStatus>(lines[1]).accepted_total(), 122u);
}

TEST_F(UpperctlTest, WatchEndsCleanlyOnCtrlC) {
  absl::StatusOr<std::unique_ptr<Subprocess>> watch =
      Subprocess::Start({UPPERCTL_PATH, "watch", "--interval=100ms", addr()});
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE((*watch)->WaitForStdout("accepted=122", absl::Seconds(20)))
      << (*watch)->Stdout() << (*watch)->Stderr();
  (*watch)->Signal(SIGINT);
  absl::StatusOr<ProcessResult> run = (*watch)->Wait(absl::Seconds(20));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 0) << run->err;
  EXPECT_EQ(run->err, "");
}

TEST_F(UpperctlTest, WatchEndsWhenTheServerEndsTheStream) {
  server_.EndWatchAfter(2);  // as upperd does when it drains
  ProcessResult run = Upperctl({"watch", "--interval=100ms", addr()});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(Lines(run.out).size(), 2u);
  ExpectOneErrorLine(run, "upperctl: ");
}

TEST_F(UpperctlTest, UnreachableServerIsOneLineExit3) {
  const std::string target = absl::StrCat("127.0.0.1:", ClosedPort());
  for (const char* command :
       {"status", "connections", "mode", "health", "watch"}) {
    ProcessResult run = Upperctl({command, "--addr", target});
    EXPECT_EQ(run.exit_code, 3) << command << ": " << run.err;
    ExpectOneErrorLine(run, absl::StrCat("upperctl: cannot reach ", target,
                                         ": Connection refused"));
    EXPECT_EQ(run.out, "");
  }
}

TEST_F(UpperctlTest, AddressFromTheEnvironment) {
  ProcessResult run =
      Upperctl({"mode"}, {{"UPPERCTL_ADDR", server_.address()}});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "thread\n");
}

TEST_F(UpperctlTest, UsageErrorsAreOneLineExit2) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "no command given"},
      {{"frobnicate"}, "unknown command \"frobnicate\""},
      {{"status", "--frob"}, "unknown flag --frob"},
      {{"status", "-o", "yaml"}, "table or json"},
      {{"status", "extra"}, "status takes no arguments"},
      {{"close"}, "close needs a connection ID"},
      {{"close", "seven"}, "connection ID must be a positive integer"},
      {{"close", "-1"}, "connection ID must be a positive integer, not \"-1\""},
      {{"close", "0"}, "connection ID must be a positive integer, not \"0\""},
      {{"close", "--", "-x"}, "must be a positive integer, not \"-x\""},
      {{"status", "--timeout=inf"}, "--timeout must be between 1ms and 1h"},
      {{"status", "--timeout=2h"}, "--timeout must be between 1ms and 1h"},
      {{"status", "--timeout=100us"}, "--timeout must be between 1ms and 1h"},
      {{"watch", "--interval=inf"}, "--interval must be between 100ms and 1h"},
      {{"conns", "--mode=FORKED"}, "--mode must be fork or thread"},
      {{"mode", "fork", "thread"}, "at most one argument"},
      {{"status", "--timeout=-1s"}, "--timeout must be between 1ms and 1h"},
      {{"status", "--addr=host:99999"}, "bad port"},
      {{"close", "7", "--addr=a:1,b:2"}, "close works on one instance"},
      {{"watch", "--addr=a:1,b:2"}, "watch works on one instance"},
  };
  for (const auto& [args, problem] : cases) {
    ProcessResult run = Upperctl(args);
    EXPECT_EQ(run.exit_code, 2) << problem << ": " << run.err;
    ASSERT_EQ(Lines(run.err).size(), 1u) << run.err;
    EXPECT_THAT(run.err, StartsWith("upperctl: "));
    EXPECT_THAT(run.err, HasSubstr(problem));
    EXPECT_THAT(run.err, HasSubstr("usage: upperctl"));
  }
}

TEST_F(UpperctlTest, HelpListsEveryCommandAndExitsZero) {
  ProcessResult run = Upperctl({"--help"});
  EXPECT_EQ(run.exit_code, 0);
  for (const char* word :
       {"status", "connections", "conns", "mode", "close", "watch", "health",
        "version", "--addr", "--token", "--timeout", "--tls_ca", "-o"}) {
    EXPECT_THAT(run.out, HasSubstr(word));
  }
}

class UpperctlTokenTest : public ::testing::Test {
 protected:
  std::string addr() const {
    return absl::StrCat("--addr=", server_.address());
  }
  FakeAdminServer server_{"s3cret"};
};

TEST_F(UpperctlTokenTest, WithoutTokenSaysOneIsNeededExit4) {
  ProcessResult run = Upperctl({"status", addr()});
  EXPECT_EQ(run.exit_code, 4);
  ExpectOneErrorLine(
      run, absl::StrCat("upperctl: ", server_.address(), " needs a token"));
  EXPECT_THAT(run.err,
              HasSubstr("--token, --token_file or $UPPER_ADMIN_TOKEN"));
  run = Upperctl({"status", addr(), "--token=wrong"});
  EXPECT_EQ(run.exit_code, 4);
  EXPECT_THAT(run.err, HasSubstr("wrong token"));
}

TEST_F(UpperctlTokenTest, TokenIsSentAsBearerMetadata) {
  ProcessResult run = Upperctl({"status", addr(), "--token", "s3cret"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(server_.authorizations().back(), "Bearer s3cret");
}

TEST_F(UpperctlTokenTest, TokenFromFileOrEnvironment) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/upperctl_token_", getpid());
  {
    FILE* file = fopen(path.c_str(), "w");
    ASSERT_NE(file, nullptr);
    fputs("s3cret\n", file);
    fclose(file);
  }
  ProcessResult run = Upperctl({"mode", addr(), "--token_file", path});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  unlink(path.c_str());
  run = Upperctl({"conns", addr()}, {{"UPPER_ADMIN_TOKEN", "s3cret"}});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(server_.authorizations().back(), "Bearer s3cret");
}

TEST_F(UpperctlTokenTest, HealthNeedsNoTokenAndIsSentNone) {
  ProcessResult run = Upperctl({"health", addr()});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  // Given one, upperctl still keeps it off the health check.
  run = Upperctl({"health", addr(), "--token", "s3cret"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  run = Upperctl({"health", addr()}, {{"UPPER_ADMIN_TOKEN", "s3cret"}});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(server_.health_authorizations(), ElementsAre("", "", ""));
  EXPECT_TRUE(server_.authorizations().empty());
}

class UpperctlFleetTest : public ::testing::Test {
 protected:
  UpperctlFleetTest() {
    admin::ServerStatus second = FakeAdminServer::CannedStatus(5353);
    second.set_mode(admin::MODE_FORK);
    second.set_active_connections(4);
    second.set_accepted_total(1000);
    second.set_sent_bytes_total(1 << 30);
    b_.SetStatus(second);
    b_.SetConnections({FakeAdminServer::CannedConnections()[0]});
  }
  std::string both() const {
    return absl::StrCat("--addr=", a_.address(), ",", b_.address());
  }
  FakeAdminServer a_;
  FakeAdminServer b_;
};

TEST_F(UpperctlFleetTest, StatusHasARowPerInstanceAndATotal) {
  ProcessResult run = Upperctl({"status", both()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 4u) << run.out;
  EXPECT_THAT(Cells(lines[0]),
              ElementsAre("INSTANCE", "MODE", "ACTIVE", "FORK", "THREAD",
                          "ACCEPTED", "REJECTED", "CLOSED", "RECEIVED", "SENT",
                          "IDLE", "SPAWNS", "UPTIME", "PID", "VERSION"));
  EXPECT_THAT(
      Cells(lines[1]),
      ElementsAre(a_.address(), "thread", "3", "1", "2", "120", "2", "117",
                  "1.5 KiB", "3.0 MiB", "6", "16", "3m12s", "4242", "0.1.0"));
  EXPECT_THAT(
      Cells(lines[2]),
      ElementsAre(b_.address(), "fork", "4", "1", "2", "1000", "2", "117",
                  "1.5 KiB", "1.0 GiB", "6", "16", "3m12s", "5353", "0.1.0"));
  EXPECT_THAT(
      Cells(lines[3]),
      ElementsAre("TOTAL (2/2 up)", "mixed", "7", "2", "4", "1120", "4", "234",
                  "3.0 KiB", "1.0 GiB", "12", "32", "-", "-", "-"));
}

TEST_F(UpperctlFleetTest, StatusMarksAnInstanceWhoseAdminPortIsExposed) {
  admin::ServerStatus exposed = FakeAdminServer::CannedStatus(5353);
  exposed.mutable_admin_security()->set_bind("0.0.0.0");
  exposed.mutable_admin_security()->set_exposed(true);
  exposed.add_warnings("admin endpoint exposed: ...");
  b_.SetStatus(exposed);
  ProcessResult run = Upperctl({"status", both()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 4u) << run.out;
  EXPECT_EQ(Cells(lines[1])[1], "thread");
  EXPECT_EQ(Cells(lines[2])[1], "thread,admin-exposed");
}

TEST_F(UpperctlFleetTest, StatusJsonHasEachInstanceAndTheTotal) {
  ProcessResult run = Upperctl({"status", both(), "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto fleet = ParseJson<out::FleetStatus>(run.out);
  ASSERT_EQ(fleet.instances_size(), 2);
  EXPECT_EQ(fleet.instances(0).address(), a_.address());
  EXPECT_EQ(fleet.instances(0).status().pid(), 4242);
  EXPECT_EQ(fleet.instances(1).status().pid(), 5353);
  EXPECT_FALSE(fleet.instances(1).has_error());
  EXPECT_EQ(fleet.total().instances(), 2u);
  EXPECT_EQ(fleet.total().reachable_instances(), 2u);
  EXPECT_EQ(fleet.total().active_connections(), 7u);
  EXPECT_EQ(fleet.total().accepted_total(), 1120u);
  ASSERT_EQ(fleet.total().per_mode_size(), 2);
  EXPECT_EQ(fleet.total().per_mode(0).mode(), admin::MODE_FORK);
  EXPECT_EQ(fleet.total().per_mode(0).active_connections(), 2u);
  ASSERT_EQ(fleet.total().workers_size(), 2);
  const admin::WorkerPool& fork = fleet.total().workers(0);
  EXPECT_EQ(fork.mode(), admin::MODE_FORK);
  EXPECT_EQ(fork.busy(), 2u);
  EXPECT_EQ(fork.idle(), 4u);
  EXPECT_EQ(fork.spawns_total(), 20u);
  EXPECT_EQ(fork.handoffs_total(), 10u);
  EXPECT_EQ(fork.exits_by_reason().at("pool_full"), 6u);
  const admin::WorkerPool& thread = fleet.total().workers(1);
  EXPECT_EQ(thread.mode(), admin::MODE_THREAD);
  EXPECT_EQ(thread.idle(), 8u);
  EXPECT_EQ(thread.exits_by_reason().at("idle_timeout"), 4u);
}

TEST_F(UpperctlFleetTest, ConnectionsCarryTheirInstance) {
  ProcessResult run = Upperctl({"conns", both()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 4u) << run.out;
  EXPECT_EQ(Cells(lines[0])[0], "INSTANCE");
  EXPECT_EQ(Cells(lines[1])[0], a_.address());
  EXPECT_EQ(Cells(lines[2])[0], a_.address());
  EXPECT_EQ(Cells(lines[3])[0], b_.address());
  run = Upperctl({"conns", both(), "-o", "json"});
  auto fleet = ParseJson<out::FleetConnections>(run.out);
  ASSERT_EQ(fleet.instances_size(), 2);
  EXPECT_EQ(fleet.instances(0).connections_size(), 2);
  EXPECT_EQ(fleet.instances(1).connections_size(), 1);
}

TEST_F(UpperctlFleetTest, ModeIsSetOnEveryInstance) {
  ProcessResult run = Upperctl({"mode", "thread", both()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 3u) << run.out;
  EXPECT_THAT(Cells(lines[1]), ElementsAre(a_.address(), "thread -> thread"));
  EXPECT_THAT(Cells(lines[2]), ElementsAre(b_.address(), "fork -> thread"));
  EXPECT_EQ(b_.status().mode(), admin::MODE_THREAD);
}

TEST_F(UpperctlFleetTest, AModeChangeThatMissesAnInstanceFailsAndNamesIt) {
  const std::string down = absl::StrCat("127.0.0.1:", ClosedPort());
  const std::string fleet = absl::StrCat("--addr=", a_.address(), ",", down);
  ProcessResult run = Upperctl({"mode", "fork", fleet});
  EXPECT_EQ(run.exit_code, 3) << run.out << run.err;  // the worst failure
  std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 3u) << run.out;
  EXPECT_THAT(Cells(lines[1]), ElementsAre(a_.address(), "thread -> fork"));
  EXPECT_THAT(Cells(lines[2]),
              ElementsAre(down, "unreachable: Connection refused"));
  EXPECT_EQ(run.err, absl::StrCat("upperctl: mode failed on 1 of 2 "
                                  "instances: ",
                                  down, "\n"));
  EXPECT_EQ(a_.status().mode(), admin::MODE_FORK);

  run = Upperctl({"mode", "thread", fleet, "-o", "json"});
  EXPECT_EQ(run.exit_code, 3) << run.out << run.err;
  auto modes = ParseJson<out::FleetMode>(run.out);
  ASSERT_EQ(modes.instances_size(), 2);
  EXPECT_EQ(modes.instances(0).mode(), admin::MODE_THREAD);
  EXPECT_FALSE(modes.instances(0).has_error());
  EXPECT_EQ(modes.instances(1).address(), down);
  EXPECT_EQ(modes.instances(1).error().code(), "UNAVAILABLE");
  ExpectOneErrorLine(run, "upperctl: mode failed on 1 of 2 instances: ");

  // A server's refusal is the worse failure: exit 1.
  run = Upperctl({"mode", "process", fleet});
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  // Only showing the mode is not a write: an unreachable one is its row.
  run = Upperctl({"mode", fleet});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_EQ(run.err, "");
}

TEST_F(UpperctlFleetTest, OneUnreachableInstanceShowsItsErrorInItsRow) {
  const std::string down = absl::StrCat("127.0.0.1:", ClosedPort());
  ProcessResult run =
      Upperctl({"status", absl::StrCat("--addr=", a_.address(), ",", down)});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 4u) << run.out;
  EXPECT_THAT(Cells(lines[2]),
              ElementsAre(down, "unreachable: Connection refused"));
  EXPECT_THAT(Cells(lines[3])[0], "TOTAL (1/2 up)");
  EXPECT_THAT(Cells(lines[3])[2], "3");

  run = Upperctl({"status", "-o", "json",
                  absl::StrCat("--addr=", a_.address(), ",", down)});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto fleet = ParseJson<out::FleetStatus>(run.out);
  ASSERT_EQ(fleet.instances_size(), 2);
  EXPECT_EQ(fleet.instances(1).error().code(), "UNAVAILABLE");
  EXPECT_FALSE(fleet.instances(1).has_status());
  EXPECT_EQ(fleet.total().reachable_instances(), 1u);
}

TEST_F(UpperctlFleetTest, AllUnreachableIsExit3) {
  const std::string down1 = absl::StrCat("127.0.0.1:", ClosedPort());
  const std::string down2 = absl::StrCat("127.0.0.1:", ClosedPort());
  ProcessResult run =
      Upperctl({"status", absl::StrCat("--addr=", down1, ",", down2)});
  EXPECT_EQ(run.exit_code, 3) << run.out;
}

TEST_F(UpperctlFleetTest, HealthIsZeroOnlyIfEveryInstanceServes) {
  ProcessResult run = Upperctl({"health", both()});
  EXPECT_EQ(run.exit_code, 0) << run.out;
  b_.SetServing(false);
  run = Upperctl({"health", both(), "-o", "json"});
  EXPECT_EQ(run.exit_code, 1);
  auto fleet = ParseJson<out::FleetHealth>(run.out);
  ASSERT_EQ(fleet.instances_size(), 2);
  EXPECT_EQ(fleet.instances(0).status(), "SERVING");
  EXPECT_EQ(fleet.instances(1).status(), "NOT_SERVING");
}

TEST_F(UpperctlFleetTest, InstancesAreQueriedConcurrently) {
  // Each server holds its GetStatus until both calls have arrived: only a
  // client that asks both at once gets two answers (--timeout leaves the
  // gate time to give up and answer ABORTED otherwise).
  auto gate = std::make_shared<StatusGate>(2);
  a_.SetStatusGate(gate);
  b_.SetStatusGate(gate);
  ProcessResult run =
      Upperctl({"status", both(), "--timeout=30s", "-o", "json"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  auto fleet = ParseJson<out::FleetStatus>(run.out);
  EXPECT_EQ(fleet.total().reachable_instances(), 2u) << run.out;
}

}  // namespace
}  // namespace upper::testing
