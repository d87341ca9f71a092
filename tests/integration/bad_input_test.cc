// Bad input against a real upperd, in both modes: every byte value, NUL and
// 0x80-0xFF through the data port; a client that sends nothing (closed by
// --idle_timeout); a slowloris (a byte a second: it holds one slot, never
// more, until it goes quiet for the idle timeout); and bad flags and UPPER_*
// values (exit 2 and one line naming the flag or variable).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/final_totals.h"
#include "tests/support/mode_test_base.h"
#include "tests/support/stop_cleanly.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

bool Echoes(int fd, char c) {
  if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) return false;
  const std::string want = ExpectedUpper(std::string(1, c));
  return ReadExactly(fd, 1, absl::Now() + absl::Seconds(5)).value_or("") ==
         want;
}

class BadInputTest : public ModeTest {};

TEST_P(BadInputTest, EveryByteValueComesBackWithOnlyAsciiLettersChanged) {
  auto upperd = StartUpperd();
  ASSERT_NE(upperd, nullptr);
  std::string all_values;
  for (int round = 0; round < 1024; ++round) {
    for (int b = 0; b < 256; ++b) all_values.push_back(static_cast<char>(b));
  }
  std::string high;
  for (int i = 0; i < 65536; ++i)
    high.push_back(static_cast<char>(0x80 + i % 128));
  const std::string payloads[] = {
      all_values,
      std::string(65536, '\0'),
      high,
      std::string("a\0b\0c", 5) + "\xff\xfe\x80 z{`@[" + std::string(1, '\0'),
      // UTF-8 text: only the ASCII letters change.
      "gr\xc3\xbc\xc3\x9f dich, \xe2\x82\xac \xf0\x9f\x98\x80 ok",
  };
  uint64_t sent = 0;
  for (const std::string& payload : payloads) {
    absl::StatusOr<std::string> reply = Exchange(
        upperd->data_port(), payload, 4096, payload.size(), absl::Seconds(30));
    ASSERT_TRUE(reply.ok()) << reply.status();
    ASSERT_EQ(reply->size(), payload.size());
    EXPECT_TRUE(*reply == ExpectedUpper(payload));
    sent += payload.size();
  }
  // Byte by byte, spelled out: only 'a'..'z' move, by 0x20.
  absl::StatusOr<std::string> reply = Exchange(
      upperd->data_port(), all_values.substr(0, 256), 1, 7, absl::Seconds(10));
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_EQ(reply->size(), 256u);
  for (int b = 0; b < 256; ++b) {
    const int want = (b >= 'a' && b <= 'z') ? b - 0x20 : b;
    EXPECT_EQ(static_cast<unsigned char>((*reply)[b]), want) << "byte " << b;
  }
  StopCleanly(*upperd);
  EXPECT_EQ(FinalTotal(*upperd, "bytes_out"), sent + 256);
}

TEST_P(BadInputTest, ClientThatSendsNothingIsClosedByTheIdleTimeout) {
  auto upperd = StartUpperd({"--idle_timeout=500ms"});
  ASSERT_NE(upperd, nullptr);
  absl::StatusOr<UniqueFd> silent = Connect(upperd->data_port());
  ASSERT_TRUE(silent.ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> rest =
      ReadUntilEof(silent->get(), start + absl::Seconds(10));
  const absl::Duration lived = absl::Now() - start;
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_TRUE(rest->empty());
  EXPECT_GE(lived, absl::Milliseconds(450));  // not before the timeout
  StopCleanly(*upperd);
  EXPECT_EQ(FinalTotal(*upperd, "active"), 0u);
  EXPECT_EQ(FinalTotal(*upperd, "closed"), 1u);
}

TEST_P(BadInputTest, SlowlorisHoldsOneSlotOnlyAndOnlyUntilItGoesQuiet) {
  constexpr absl::Duration kIdle = absl::Milliseconds(2500);
  auto upperd = StartUpperd(
      {"--max_connections=2",
       absl::StrCat("--idle_timeout=", absl::FormatDuration(kIdle))});
  ASSERT_NE(upperd, nullptr);
  absl::StatusOr<UniqueFd> loris = Connect(upperd->data_port());
  ASSERT_TRUE(loris.ok());
  ASSERT_TRUE(Echoes(loris->get(), 's'));

  // A byte a second, never reading, for 4 s: far longer than the idle
  // timeout, yet each byte is progress, so it lives on.
  std::atomic<bool> loris_ok{true};
  std::thread slowloris([&] {
    for (int i = 0; i < 4 && loris_ok; ++i) {
      absl::SleepFor(absl::Seconds(1));
      if (send(loris->get(), "l", 1, MSG_NOSIGNAL) != 1) loris_ok = false;
    }
  });
  // Meanwhile the other slot serves everybody else, one after another...
  int served = 0;
  const absl::Time until = absl::Now() + absl::Seconds(4);
  while (absl::Now() < until) {
    absl::StatusOr<std::string> reply =
        Exchange(upperd->data_port(), "next", 2, served, absl::Seconds(5));
    ASSERT_TRUE(reply.ok()) << reply.status();
    ASSERT_EQ(*reply, "NEXT") << "after " << served << " clients";
    ++served;
    absl::SleepFor(absl::Milliseconds(100));
  }
  // ...and exactly one slot is taken: a second concurrent client fits, a
  // third is refused.
  absl::StatusOr<UniqueFd> second = Connect(upperd->data_port());
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(Echoes(second->get(), 'b'));
  absl::StatusOr<UniqueFd> third = Connect(upperd->data_port());
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(Echoes(third->get(), 'c'));
  second->Reset();
  third->Reset();
  slowloris.join();
  ASSERT_TRUE(loris_ok);
  const absl::Time quiet_since = absl::Now();

  // Quiet now: closed after the idle timeout (its echoes, then EOF).
  absl::StatusOr<std::string> rest =
      ReadUntilEof(loris->get(), quiet_since + kIdle + absl::Seconds(5));
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "LLLL");
  EXPECT_GE(absl::Now() - quiet_since, kIdle - absl::Milliseconds(1100));
  // Both slots free again.
  std::vector<UniqueFd> both;
  // (A fork child's slot is freed when it is reaped, a moment after its
  // client saw EOF: a connection that comes too early is refused; retry.)
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(Eventually(
        [&] {
          absl::StatusOr<UniqueFd> fd = Connect(upperd->data_port());
          if (!fd.ok() || !Echoes(fd->get(), 'f')) return false;
          both.push_back(*std::move(fd));
          return true;
        },
        absl::Seconds(2)));
  }
  both.clear();
  loris->Reset();
  std::printf("beside a slowloris, %d clients were served one after another\n",
              served);
  StopCleanly(*upperd);
  EXPECT_GE(FinalTotal(*upperd, "rejected_limit").value_or(0), 1u);
}

// Security posture: the data port speaks no protocol but upper-casing. Bytes
// that would mean something to the admin (gRPC over HTTP/2) or metrics
// (HTTP/1.1) endpoints just come back upper-cased, and nothing else does.
TEST_P(BadInputTest, AdminAndHttpRequestsOnTheDataPortAreJustUpperCased) {
  auto upperd = StartUpperd();
  ASSERT_NE(upperd, nullptr);
  // HTTP/2 connection preface, an empty SETTINGS frame, then a HEADERS-like
  // frame naming the admin method in clear text.
  const std::string http2 =
      std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") +
      std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9) +
      "/upper.admin.v1.AdminService/GetStatus "
      "/upper.admin.v1.AdminService/SetMode mode=MODE_FORK "
      "/grpc.health.v1.Health/Check";
  const std::string requests[] = {
      "GetStatus\n",
      "CloseConnection id=1\n",
      http2,
      "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
      "POST /upper.admin.v1.AdminService/SetMode HTTP/1.1\r\n"
      "content-type: application/grpc\r\nte: trailers\r\n\r\n",
  };
  for (const std::string& request : requests) {
    absl::StatusOr<std::string> reply = Exchange(
        upperd->data_port(), request, request.size(), 1, absl::Seconds(10));
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(*reply, ExpectedUpper(request));
  }
  StopCleanly(*upperd);
}

INSTANTIATE_TEST_SUITE_P(BothModes, BadInputTest,
                         ::testing::Values("thread", "fork"),
                         [](const auto& info) { return info.param; });

// One bad setting and the name its error line must carry.
struct BadSetting {
  std::string flag;   // without "--"
  std::string value;  // bad
};

const std::vector<BadSetting>& BadSettings() {
  static const std::vector<BadSetting> settings = {
      {"bind", ""},
      {"bind", "not-an-address"},
      {"data_port", "65536"},
      {"data_port", "-1"},
      {"data_port", "http"},
      {"mode", "spoon"},
      {"mode", ""},
      {"max_connections", "0"},
      {"max_connections", "many"},
      {"max_connections", "1000001"},
      {"idle_timeout", "-1s"},
      {"idle_timeout", "soon"},
      {"idle_timeout", "1000h"},
      {"idle_timeout", "500us"},  // was shown as 0 ms and meant "never"
      {"idle_timeout", "inf"},
      {"send_timeout", "-1s"},
      {"send_timeout", "soon"},
      {"send_timeout", "1000h"},
      {"send_timeout", "500us"},
      {"send_timeout", "inf"},
      {"drain_timeout", "500us"},
      {"drain_timeout", "2h"},
      {"drain_timeout", "inf"},
      {"data_port", "0x2710"},  // absl's int parser read it as 10000
      {"data_port", "+80"},
      {"data_port", " 80"},
      {"admin_port", "0x10"},
      {"metrics_port", "9464 "},
      {"admin_bind", "localhost"},
      {"admin_bind", "upperd.example"},
      {"drain_timeout", "-5s"},
      {"drain_timeout", "5 parsecs"},
      {"log_format", "xml"},
      {"admin_bind", ""},
      {"admin_port", "70000"},
      {"admin_port", "x"},
      {"admin_tls_cert", "/tmp/cert.pem"},  // without --admin_tls_key
      {"admin_tls_key", "/tmp/key.pem"},    // without --admin_tls_cert
      // Empty would silently mean "no token" / "no TLS".
      {"admin_token_file", ""},
      {"admin_tls_cert", ""},
      {"admin_tls_key", ""},
      {"metrics_bind", ""},
      {"metrics_port", "-2"},
      {"metrics_port", "1e3"},
      {"thread_spare_max", "-1"},
      {"thread_spare_max", "10001"},
      {"thread_spare_max", "many"},
      {"thread_spare_min", "-1"},
      {"thread_spare_min", "1"},  // above the default --thread_spare_max (0)
      {"thread_spare_min", "1.5"},
      {"thread_spare_timeout", "0s"},  // --thread_spare_max=0 says "off"
      {"thread_spare_timeout", "500us"},
      {"thread_spare_timeout", "2h"},
      {"thread_spare_timeout", "inf"},
      {"thread_spare_timeout", "soon"},
      {"fork_spare_max", "-1"},
      {"fork_spare_max", "10001"},
      {"fork_spare_max", "many"},
      {"fork_spare_min", "-1"},
      {"fork_spare_min", "1"},  // above the default --fork_spare_max (0)
      {"fork_spare_min", "1.5"},
      {"fork_spare_timeout", "0s"},  // --fork_spare_max=0 says "off"
      {"fork_spare_timeout", "500us"},
      {"fork_spare_timeout", "2h"},
      {"fork_spare_timeout", "inf"},
      {"fork_spare_timeout", "soon"},
      {"fork_child_max_connections", "0"},
      {"fork_child_max_connections", "-1"},
      {"fork_child_max_connections", "1000000001"},
      {"fork_child_max_connections", "many"},
  };
  return settings;
}

// Runs upperd expecting a start-up failure; returns its exit code and log.
std::pair<int, std::string> RunExpectingFailure(UpperdOptions options) {
  options.wait_until_listening = false;
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start(std::move(options));
  if (!upperd.ok()) return {-1000, upperd.status().ToString()};
  absl::StatusOr<int> code = (*upperd)->WaitExit(absl::Seconds(10));
  if (!code.ok()) return {-1000, code.status().ToString()};
  return {*code, (*upperd)->Log()};
}

// The name of the flag a failing setting must be reported under: a TLS
// cert without a key is reported as the missing key, and vice versa.
std::string ReportedFlag(const BadSetting& s) {
  if (s.flag == "admin_tls_cert" && !s.value.empty()) return "--admin_tls_key";
  if (s.flag == "admin_tls_key" && !s.value.empty()) return "--admin_tls_cert";
  return "--" + s.flag;
}

TEST(BadConfig, EveryBadFlagExitsTwoWithOneLineNamingTheFlag) {
  for (const BadSetting& s : BadSettings()) {
    const std::string arg = absl::StrCat("--", s.flag, "=", s.value);
    const auto [code, log] = RunExpectingFailure({.args = {arg}});
    EXPECT_EQ(code, 2) << arg << ": " << log;
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1)
        << arg << ": " << log;
    EXPECT_TRUE(absl::StartsWith(log, "upperd: " + ReportedFlag(s) + ":"))
        << arg << ": " << log;
  }
}

TEST(BadConfig, MalformedCommandLinesExitTwoWithOneLine) {
  const std::vector<std::vector<std::string>> lines = {
      {"--no_such_flag=1"}, {"--mode"}, {"positional"}, {"-"}, {"--"}};
  for (const std::vector<std::string>& args : lines) {
    const auto [code, log] = RunExpectingFailure({.args = args});
    EXPECT_EQ(code, 2) << args[0] << ": " << log;
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
    EXPECT_TRUE(absl::StartsWith(log, "upperd: ")) << log;
  }
}

TEST(BadConfig, EveryBadEnvironmentValueExitsTwoWithOneLineNamingIt) {
  for (const BadSetting& s : BadSettings()) {
    const std::string var = "UPPER_" + absl::AsciiStrToUpper(s.flag);
    // Without the harness's own --bind/--*_port flags, which would win.
    const auto [code, log] = RunExpectingFailure(
        {.env = {{var, s.value}}, .default_endpoint_flags = false});
    EXPECT_EQ(code, 2) << var << "=" << s.value << ": " << log;
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
    // Reported under the variable the operator set; only a TLS file set
    // without its partner names the partner flag that is missing.
    const std::string named =
        ReportedFlag(s) == "--" + s.flag ? var : ReportedFlag(s);
    EXPECT_TRUE(absl::StartsWith(log, "upperd: " + named + ":"))
        << var << "=" << s.value << ": " << log;
  }
}

// A port nothing listens on now (bound to 0, read back, closed), so that
// "nothing listens there after the failure" can be checked on a known port.
uint16_t UnusedPort() {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return 0;
  }
  return ntohs(addr.sin_port);
}

// The files of the file-based rows, made once per test in a private
// directory: bad token files and TLS pairs made with the openssl CLI.
class BadFilesTest : public ::testing::Test {
 public:
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

 protected:
  void SetUp() override {
    absl::StatusOr<std::string> dir = MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    ASSERT_EQ(mkfifo(Path("fifo").c_str(), 0600), 0);
    ASSERT_EQ(mkdir(Path("dir").c_str(), 0700), 0);
    ASSERT_TRUE(WriteFile(Path("big"), std::string(64 * 1024 + 1, 'x')).ok());
    ASSERT_TRUE(WriteFile(Path("inner_newline"), "se\ncret\n").ok());
    ASSERT_TRUE(WriteFile(Path("nul"), std::string("se\0cret", 7)).ok());
    ASSERT_TRUE(WriteFile(Path("non_ascii"), "s\xc3\xa9").ok());
    ASSERT_TRUE(WriteFile(Path("long"), std::string(4097, 'x')).ok());
    ASSERT_TRUE(WriteFile(Path("garbage.pem"), "not a certificate\n").ok());
    for (const char* name : {"a", "b"}) {
      ASSERT_TRUE(
          RunShell(absl::StrCat("openssl req -x509 -newkey rsa:2048 -nodes "
                                "-days 1 -subj /CN=upperd.test -keyout '",
                                Path(name), ".key' -out '", Path(name),
                                ".pem' 2>/dev/null"))
              .ok());
    }
    ASSERT_TRUE(RunShell(absl::StrCat("openssl pkey -in '", Path("a"),
                                      ".key' -aes256 -passout pass:x -out '",
                                      Path("encrypted.key"), "' 2>/dev/null"))
                    .ok());
  }
  std::string dir_;
};

// One file-based row: the flags (after the fixed ports) and the name its
// error line must start with.
struct BadFileRow {
  std::vector<std::string> args;
  std::string named;
};

std::vector<BadFileRow> BadFileRows(const BadFilesTest& t) {
  const auto token = [&](const std::string& file) {
    return BadFileRow{{"--admin_token_file=" + file}, "--admin_token_file"};
  };
  const auto tls = [&](const std::string& cert, const std::string& key,
                       const std::string& named) {
    return BadFileRow{
        {"--admin_tls_cert=" + t.Path(cert), "--admin_tls_key=" + t.Path(key)},
        named};
  };
  return {token(t.Path("fifo")),
          token("/dev/zero"),
          token(t.Path("dir")),
          token(t.Path("big")),
          token(t.Path("inner_newline")),
          token(t.Path("nul")),
          token(t.Path("non_ascii")),
          token(t.Path("long")),
          token(t.Path("missing")),
          tls("a.pem", "b.key", "--admin_tls_key"),
          tls("garbage.pem", "a.key", "--admin_tls_cert"),
          tls("a.pem", "encrypted.key", "--admin_tls_key"),
          tls("a.pem", "garbage.pem", "--admin_tls_key"),
          tls("fifo", "a.key", "--admin_tls_cert"),
          tls("a.pem", "fifo", "--admin_tls_key")};
}

// Runs a row on fixed free ports; checks exit 2 within 5 s (a FIFO must not
// hang it), one line starting "upperd: <named>:", and no port left open.
void ExpectRefusedAtStartup(std::vector<std::string> args,
                            std::map<std::string, std::string> env,
                            const std::string& named) {
  const uint16_t ports[] = {UnusedPort(), UnusedPort(), UnusedPort()};
  for (const std::string& flag :
       {std::string("--bind=127.0.0.1"), std::string("--admin_bind=127.0.0.1"),
        std::string("--metrics_bind=127.0.0.1"),
        absl::StrCat("--data_port=", ports[0]),
        absl::StrCat("--admin_port=", ports[1]),
        absl::StrCat("--metrics_port=", ports[2])}) {
    args.push_back(flag);
  }
  const absl::Time start = absl::Now();
  const auto [code, log] = RunExpectingFailure(
      {.args = args, .env = env, .default_endpoint_flags = false});
  const std::string what = absl::StrJoin(args, " ") + ": " + log;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << what;
  EXPECT_EQ(code, 2) << what;
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << what;
  EXPECT_TRUE(absl::StartsWith(log, "upperd: " + named + ":")) << what;
  for (uint16_t port : ports) {
    EXPECT_FALSE(Connect(port).ok()) << port << " listens: " << what;
  }
}

TEST_F(BadFilesTest, EveryBadFileExitsTwoAtOnceWithOneLineAndNoPortOpen) {
  for (const BadFileRow& row : BadFileRows(*this)) {
    ExpectRefusedAtStartup(row.args, {}, row.named);
  }
}

TEST_F(BadFilesTest, ABadFileFromTheEnvironmentIsNamedByItsVariable) {
  for (const char* file : {"fifo", "inner_newline", "dir"}) {
    ExpectRefusedAtStartup({}, {{"UPPER_ADMIN_TOKEN_FILE", Path(file)}},
                           "UPPER_ADMIN_TOKEN_FILE");
  }
}

TEST_F(BadFilesTest, ACrlfTerminatedTokenFileMatchesTheTrimmedToken) {
  ASSERT_TRUE(WriteFile(Path("crlf"), "  s3cret-token\r\n").ok());
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start({.args = {"--admin_token_file=" + Path("crlf")}});
  ASSERT_TRUE(upperd.ok()) << upperd.status();
  absl::StatusOr<uint16_t> port = (*upperd)->Port("admin");
  ASSERT_TRUE(port.ok()) << port.status();
  auto stub = admin::v1::AdminService::NewStub(AdminChannel(*port));
  EXPECT_TRUE(GetStatus(*stub, "s3cret-token").ok());
  EXPECT_FALSE(GetStatus(*stub, "wrong-token").ok());
}

}  // namespace
}  // namespace upper::testing
