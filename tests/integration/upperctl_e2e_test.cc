// upperctl against real upperd processes, end to end: real connections in
// both modes seen by `status` and `connections`, a live mode switch, close,
// health, watch, token auth, and the fleet view over two upperds.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/subprocess.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"
#include "upper/admin/v1/admin.pb.h"
#include "upper/ctl/v1/output.pb.h"

#ifndef UPPERCTL_PATH
#error "UPPERCTL_PATH must be the path of the upperctl binary"
#endif

namespace upper::testing {
namespace {

namespace admin = ::upper::admin::v1;
namespace out = ::upper::ctl::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kNoAdminPort[] = "upperd logged no admin port";

ProcessResult Upperctl(std::vector<std::string> args,
                       std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), UPPERCTL_PATH);
  absl::StatusOr<ProcessResult> result =
      RunProcess(args, env, absl::Seconds(30));
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : ProcessResult{};
}

template <typename Message>
Message ParseJson(const std::string& json) {
  Message message;
  const auto status =
      google::protobuf::util::JsonStringToMessage(json, &message);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return message;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// The admin port from upperd's "listening service=admin" line.
std::optional<uint16_t> AdminPort(UpperdProcess& upperd) {
  absl::StatusOr<uint16_t> port = upperd.Port("admin");
  if (!port.ok()) {
    ADD_FAILURE() << port.status() << "\n" << upperd.Log();
    return std::nullopt;
  }
  return *port;
}

std::string AddrFlag(uint16_t port) {
  return absl::StrCat("--addr=127.0.0.1:", port);
}

uint16_t LocalPort(int fd) {
  sockaddr_in addr = {};
  socklen_t length = sizeof(addr);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length), 0);
  return ntohs(addr.sin_port);
}

// A connection that has moved `payload` both ways and stays open.
UniqueFd OpenTalkedConnection(uint16_t data_port, const std::string& payload) {
  absl::StatusOr<UniqueFd> fd = Connect(data_port);
  EXPECT_TRUE(fd.ok()) << fd.status();
  if (!fd.ok()) return UniqueFd();
  EXPECT_EQ(send(fd->get(), payload.data(), payload.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(payload.size()));
  EXPECT_TRUE(
      ReadExactly(fd->get(), payload.size(), absl::Now() + absl::Seconds(10))
          .ok());
  return *std::move(fd);
}

std::unique_ptr<UpperdProcess> StartUpperd(std::vector<std::string> args) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start({.args = std::move(args)});
  EXPECT_TRUE(upperd.ok()) << upperd.status();
  return upperd.ok() ? *std::move(upperd) : nullptr;
}

class UpperctlE2eTest : public ::testing::TestWithParam<std::string> {};

TEST_P(UpperctlE2eTest, StatusAndConnectionsShowTheRealClients) {
  auto upperd = StartUpperd({absl::StrCat("--mode=", GetParam())});
  ASSERT_NE(upperd, nullptr);
  const std::optional<uint16_t> admin_port = AdminPort(*upperd);
  if (!admin_port) FAIL() << kNoAdminPort;
  const admin::Mode mode =
      GetParam() == "fork" ? admin::MODE_FORK : admin::MODE_THREAD;

  std::vector<UniqueFd> clients;
  std::vector<uint16_t> client_ports;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(OpenTalkedConnection(upperd->data_port(), "hello"));
    client_ports.push_back(LocalPort(clients.back().get()));
  }
  ProcessResult run = Upperctl({"status", "-o", "json", AddrFlag(*admin_port)});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto status = ParseJson<admin::ServerStatus>(run.out);
  EXPECT_EQ(status.mode(), mode);
  EXPECT_EQ(status.active_connections(), 3u);
  EXPECT_EQ(status.pid(), upperd->pid());
  EXPECT_EQ(status.received_bytes_total(), 15u);

  run = Upperctl({"conns", "-o", "json", AddrFlag(*admin_port)});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto list = ParseJson<admin::ListConnectionsResponse>(run.out);
  ASSERT_EQ(list.connections_size(), 3);
  for (int i = 0; i < 3; ++i) {
    const admin::Connection& c = list.connections(i);
    EXPECT_EQ(c.peer_address(), "127.0.0.1");
    EXPECT_EQ(c.peer_port(), client_ports[i]);  // ordered by id = by age
    EXPECT_EQ(c.mode(), mode);
    EXPECT_EQ(c.received_bytes(), 5u);
    EXPECT_EQ(c.sent_bytes(), 5u);
    if (mode == admin::MODE_FORK) {
      EXPECT_NE(c.worker_pid(), upperd->pid());
    }
  }
  run = Upperctl({"conns", AddrFlag(*admin_port)});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(Lines(run.out).size(), 4u) << run.out;  // header + 3
}

TEST_P(UpperctlE2eTest, ModeSwitchAppliesToNewConnections) {
  auto upperd = StartUpperd({absl::StrCat("--mode=", GetParam())});
  ASSERT_NE(upperd, nullptr);
  const std::optional<uint16_t> admin_port = AdminPort(*upperd);
  if (!admin_port) FAIL() << kNoAdminPort;
  const std::string other = GetParam() == "fork" ? "thread" : "fork";

  UniqueFd before = OpenTalkedConnection(upperd->data_port(), "a");
  ProcessResult run = Upperctl({"mode", other, AddrFlag(*admin_port)});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, absl::StrCat(GetParam(), " -> ", other, "\n"));
  UniqueFd after = OpenTalkedConnection(upperd->data_port(), "b");

  run =
      Upperctl({"conns", "--mode", other, "-o", "json", AddrFlag(*admin_port)});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto list = ParseJson<admin::ListConnectionsResponse>(run.out);
  ASSERT_EQ(list.connections_size(), 1);
  EXPECT_EQ(list.connections(0).peer_port(), LocalPort(after.get()));

  run = Upperctl({"mode", "sideways", AddrFlag(*admin_port)});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, StartsWith("upperctl: INVALID_ARGUMENT: "));
}

TEST_P(UpperctlE2eTest, CloseEndsThatClientOnly) {
  auto upperd = StartUpperd({absl::StrCat("--mode=", GetParam())});
  ASSERT_NE(upperd, nullptr);
  const std::optional<uint16_t> admin_port = AdminPort(*upperd);
  if (!admin_port) FAIL() << kNoAdminPort;
  UniqueFd keep = OpenTalkedConnection(upperd->data_port(), "keep");
  UniqueFd victim = OpenTalkedConnection(upperd->data_port(), "victim");
  auto list = ParseJson<admin::ListConnectionsResponse>(
      Upperctl({"conns", "-o", "json", AddrFlag(*admin_port)}).out);
  ASSERT_EQ(list.connections_size(), 2);
  const uint64_t id = list.connections(1).id();

  ProcessResult run =
      Upperctl({"close", absl::StrCat(id), AddrFlag(*admin_port)});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, StartsWith(absl::StrCat("closed connection ", id)));
  absl::StatusOr<std::string> rest =
      ReadUntilEof(victim.get(), absl::Now() + absl::Seconds(10));
  EXPECT_TRUE(!rest.ok() || rest->empty());
  EXPECT_TRUE(Eventually(
      [&] {
        return ParseJson<admin::ServerStatus>(
                   Upperctl({"status", "-o", "json", AddrFlag(*admin_port)})
                       .out)
                   .active_connections() == 1;
      },
      absl::Seconds(5)));
  run = Upperctl({"close", absl::StrCat(id), AddrFlag(*admin_port)});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, StartsWith("upperctl: NOT_FOUND: "));
}

TEST_P(UpperctlE2eTest, HealthAndWatch) {
  auto upperd = StartUpperd({absl::StrCat("--mode=", GetParam())});
  ASSERT_NE(upperd, nullptr);
  const std::optional<uint16_t> admin_port = AdminPort(*upperd);
  if (!admin_port) FAIL() << kNoAdminPort;
  ProcessResult run = Upperctl({"health", AddrFlag(*admin_port)});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "SERVING\n");
  run = Upperctl(
      {"watch", "--count=2", "--interval=100ms", AddrFlag(*admin_port)});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(Lines(run.out).size(), 2u) << run.out;
  EXPECT_THAT(Lines(run.out)[0], HasSubstr(absl::StrCat(" mode=", GetParam())));
}

TEST_P(UpperctlE2eTest, StoppedServerIsUnreachable) {
  auto upperd = StartUpperd({absl::StrCat("--mode=", GetParam())});
  ASSERT_NE(upperd, nullptr);
  const std::optional<uint16_t> admin_port = AdminPort(*upperd);
  if (!admin_port) FAIL() << kNoAdminPort;
  upperd->Signal(SIGTERM);
  ASSERT_TRUE(upperd->WaitExit(absl::Seconds(20)).ok());
  ProcessResult run = Upperctl({"status", AddrFlag(*admin_port)});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_THAT(run.err, StartsWith("upperctl: cannot reach 127.0.0.1:"));
}

INSTANTIATE_TEST_SUITE_P(Modes, UpperctlE2eTest,
                         ::testing::Values("thread", "fork"));

TEST(UpperctlE2eAuth, TokenIsRequiredWhenConfiguredButNotForHealth) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/upperctl_e2e_token_", getpid());
  FILE* file = fopen(path.c_str(), "w");
  ASSERT_NE(file, nullptr);
  fputs("e2e-s3cret\n", file);
  fclose(file);
  auto upperd = StartUpperd({absl::StrCat("--admin_token_file=", path)});
  ASSERT_NE(upperd, nullptr);
  const std::optional<uint16_t> admin_port = AdminPort(*upperd);
  if (!admin_port) {
    unlink(path.c_str());
    FAIL() << kNoAdminPort;
  }
  ProcessResult run = Upperctl({"status", AddrFlag(*admin_port)});
  EXPECT_EQ(run.exit_code, 4) << run.err;
  EXPECT_THAT(run.err, HasSubstr("needs a token"));
  run = Upperctl({"status", AddrFlag(*admin_port), "--token=wrong"});
  EXPECT_EQ(run.exit_code, 4) << run.err;
  run = Upperctl({"status", AddrFlag(*admin_port), "--token_file", path});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  run = Upperctl({"status", AddrFlag(*admin_port)},
                 {{"UPPER_ADMIN_TOKEN", "e2e-s3cret"}});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  run = Upperctl({"health", AddrFlag(*admin_port)});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  unlink(path.c_str());
}

TEST(UpperctlE2eFleet, TwoUpperdsGetARowEachAndATotal) {
  auto first = StartUpperd({"--mode=thread"});
  auto second = StartUpperd({"--mode=fork"});
  ASSERT_TRUE(first && second);
  const std::optional<uint16_t> port1 = AdminPort(*first);
  const std::optional<uint16_t> port2 = AdminPort(*second);
  if (!port1 || !port2) FAIL() << kNoAdminPort;
  std::vector<UniqueFd> clients;
  clients.push_back(OpenTalkedConnection(first->data_port(), "one"));
  clients.push_back(OpenTalkedConnection(second->data_port(), "two"));
  clients.push_back(OpenTalkedConnection(second->data_port(), "three"));
  const std::string a = absl::StrCat("127.0.0.1:", *port1);
  const std::string b = absl::StrCat("127.0.0.1:", *port2);
  const std::string both = absl::StrCat("--addr=", a, ",", b);

  ProcessResult run = Upperctl({"status", both, "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto fleet = ParseJson<out::FleetStatus>(run.out);
  ASSERT_EQ(fleet.instances_size(), 2);
  EXPECT_EQ(fleet.instances(0).address(), a);
  EXPECT_EQ(fleet.instances(0).status().pid(), first->pid());
  EXPECT_EQ(fleet.instances(1).status().pid(), second->pid());
  EXPECT_EQ(fleet.total().active_connections(), 3u);
  EXPECT_EQ(fleet.total().received_bytes_total(), 11u);

  run = Upperctl({"status", both});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 4u) << run.out;
  EXPECT_THAT(lines[1], StartsWith(a));
  EXPECT_THAT(lines[2], StartsWith(b));
  EXPECT_THAT(lines[3], StartsWith("TOTAL (2/2 up)"));

  run = Upperctl({"conns", both, "-o", "json"});
  auto conns = ParseJson<out::FleetConnections>(run.out);
  ASSERT_EQ(conns.instances_size(), 2);
  EXPECT_EQ(conns.instances(0).connections_size(), 1);
  EXPECT_EQ(conns.instances(1).connections_size(), 2);

  // One of the two gone: its row says so, the other still answers.
  second->Signal(SIGTERM);
  clients.pop_back();
  clients.pop_back();
  ASSERT_TRUE(second->WaitExit(absl::Seconds(20)).ok());
  run = Upperctl({"status", both, "-o", "json"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  fleet = ParseJson<out::FleetStatus>(run.out);
  EXPECT_EQ(fleet.total().reachable_instances(), 1u);
  EXPECT_EQ(fleet.instances(1).error().code(), "UNAVAILABLE");
}

// A mode change that one instance missed is not a success (issue 13): the
// real upperd switches, the stopped one's row and a stderr line name it,
// and the exit status is the worst failure's (3, unreachable).
TEST(UpperctlE2eFleet, ModeChangeMissingAnInstanceFailsAndNamesIt) {
  auto live = StartUpperd({"--mode=thread"});
  auto stopped = StartUpperd({"--mode=thread"});
  ASSERT_TRUE(live && stopped);
  const std::optional<uint16_t> live_port = AdminPort(*live);
  const std::optional<uint16_t> stopped_port = AdminPort(*stopped);
  if (!live_port || !stopped_port) FAIL() << kNoAdminPort;
  stopped->Signal(SIGTERM);
  ASSERT_TRUE(stopped->WaitExit(absl::Seconds(20)).ok());
  const std::string up = absl::StrCat("127.0.0.1:", *live_port);
  const std::string down = absl::StrCat("127.0.0.1:", *stopped_port);
  const std::string fleet = absl::StrCat("--addr=", up, ",", down);

  ProcessResult run = Upperctl({"mode", "FORK", fleet});
  EXPECT_EQ(run.exit_code, 3) << run.out << run.err;
  std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 3u) << run.out;
  EXPECT_THAT(lines[1], StartsWith(up));
  EXPECT_THAT(lines[1], HasSubstr("thread -> fork"));
  EXPECT_THAT(lines[2], StartsWith(down));
  EXPECT_THAT(lines[2], HasSubstr("unreachable"));
  EXPECT_THAT(Lines(run.err),
              ElementsAre(absl::StrCat(
                  "upperctl: mode failed on 1 of 2 instances: ", down)));

  run = Upperctl({"mode", "thread", fleet, "-o", "json"});
  EXPECT_EQ(run.exit_code, 3) << run.out << run.err;
  auto modes = ParseJson<out::FleetMode>(run.out);
  ASSERT_EQ(modes.instances_size(), 2);
  EXPECT_EQ(modes.instances(0).previous_mode(), admin::MODE_FORK);
  EXPECT_EQ(modes.instances(0).mode(), admin::MODE_THREAD);
  EXPECT_EQ(modes.instances(1).address(), down);
  EXPECT_EQ(modes.instances(1).error().code(), "UNAVAILABLE");
}

// Against a real upperd with a token: a token no header can carry exits 2
// with one line for status and for health (it aborted upperctl, 134), and
// `close -1` is a usage error, not an unknown flag.
TEST(UpperctlE2eBadInput, UnsendableTokenAndNegativeIdAreUsageErrors) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/upperctl_e2e_bad_", getpid());
  FILE* file = fopen(path.c_str(), "w");
  ASSERT_NE(file, nullptr);
  fputs("e2e-s3cret\r\n", file);  // CRLF: trimmed on both sides
  fclose(file);
  auto upperd = StartUpperd({absl::StrCat("--admin_token_file=", path)});
  unlink(path.c_str());
  ASSERT_NE(upperd, nullptr);
  const std::optional<uint16_t> admin_port = AdminPort(*upperd);
  if (!admin_port) FAIL() << kNoAdminPort;
  const std::string addr = AddrFlag(*admin_port);
  for (const char* command : {"status", "health"}) {
    for (const char* token :
         {"e2e-s3cret\rx", "e2e\ts3cret", "e2e\x01", "e2e-s3cr\xc3\xa9t"}) {
      ProcessResult run = Upperctl({command, addr, "--token", token});
      EXPECT_EQ(run.exit_code, 2) << command << ": " << run.err;
      EXPECT_THAT(Lines(run.err),
                  ElementsAre(StartsWith("upperctl: --token: token: ")));
    }
  }
  ProcessResult run = Upperctl({"close", "-1", addr, "--token=e2e-s3cret"});
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_THAT(run.err, HasSubstr("must be a positive integer, not \"-1\""));
  run = Upperctl({"status", addr, "-o", "json"});  // no token: a CallError
  EXPECT_EQ(run.exit_code, 4) << run.err;
  EXPECT_EQ(ParseJson<out::CallError>(run.out).error().code(),
            "UNAUTHENTICATED");
}

}  // namespace
}  // namespace upper::testing
