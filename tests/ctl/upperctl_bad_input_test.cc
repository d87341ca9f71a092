// The real upperctl binary given what a careless operator gives it (issue
// 13): files that are devices, FIFOs, directories, huge or not PEM, and
// tokens no HTTP/2 header can carry. Each row asserts exit 2, exactly one
// stderr line naming the flag, file or variable, nothing on stdout, and no
// crash (gRPC used to abort upperctl with 134). Every run is bounded in
// time (a FIFO must not hang it) and in memory: upperctl runs under an
// address-space limit (RLIMIT_AS, 1 GiB, set by util-linux `prlimit` in the
// child right before it execs upperctl; posix_spawn cannot set limits), so
// an unbounded read would fail the row instead of eating the machine.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ctl/fake_admin_server.h"
#include "tests/ctl/test_certificate.h"
#include "tests/support/subprocess.h"

#ifndef UPPERCTL_PATH
#error "UPPERCTL_PATH must be the path of the upperctl binary"
#endif

namespace upper::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kPrlimit[] = "/usr/bin/prlimit";
constexpr uint64_t kAddressSpaceLimit = uint64_t{1} << 30;  // 1 GiB
// A bad input is refused before any network call: far under this.
constexpr absl::Duration kRunTimeout = absl::Seconds(10);
constexpr absl::Duration kPromptly = absl::Seconds(5);

// upperctl `args` under the address-space limit.
ProcessResult LimitedUpperctl(const std::vector<std::string>& args,
                              const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv = {
      kPrlimit, absl::StrCat("--as=", kAddressSpaceLimit), "--", UPPERCTL_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<ProcessResult> result = RunProcess(argv, env, kRunTimeout);
  EXPECT_TRUE(result.ok()) << result.status();  // timed out: it hung
  return result.ok() ? *result : ProcessResult{};
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

void WriteFile(const std::string& path, const std::string& content) {
  FILE* file = fopen(path.c_str(), "w");
  ASSERT_NE(file, nullptr) << path;
  ASSERT_EQ(fwrite(content.data(), 1, content.size(), file), content.size());
  ASSERT_EQ(fclose(file), 0);
}

// One row: the arguments (and environment), and what the one stderr line
// must start with after "upperctl: ".
struct Row {
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::string line_start;
};

void ExpectRefused(const Row& row) {
  const absl::Time start = absl::Now();
  const ProcessResult run = LimitedUpperctl(row.args, row.env);
  const std::string what = absl::StrJoin(row.args, " ");
  EXPECT_LT(absl::Now() - start, kPromptly) << what;
  EXPECT_EQ(run.exit_code, 2) << what << "\n" << run.err;
  ASSERT_EQ(Lines(run.err).size(), 1u) << what << "\n" << run.err;
  EXPECT_THAT(run.err, StartsWith(absl::StrCat("upperctl: ", row.line_start)))
      << what;
  EXPECT_EQ(run.out, "") << what;
}

class UpperctlBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/upperctl_bad_input_", getpid());
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0) << dir_;
    ASSERT_EQ(mkfifo(Path("fifo").c_str(), 0600), 0);
    WriteFile(Path("big"), std::string(10 << 20, 'a'));  // 10 MiB
    WriteFile(Path("garbage.pem"), "not a certificate\n");
    WriteFile(Path("crlf"), "s3\r\ncret\r\n");
    WriteFile(Path("nul"), std::string("s3\0cret\n", 8));
    WriteFile(Path("blank"), " \r\n\t\n");
    WriteFile(Path("ca.pem"), kTestCaPem);
  }
  void TearDown() override {
    for (const char* name :
         {"fifo", "big", "garbage.pem", "crlf", "nul", "blank", "ca.pem"}) {
      unlink(Path(name).c_str());
    }
    rmdir(dir_.c_str());
  }
  std::string Path(absl::string_view name) const {
    return absl::StrCat(dir_, "/", name);
  }

  std::string dir_;
};

TEST_F(UpperctlBadInputTest, HostileFilesAreRefusedInBoundedTimeAndMemory) {
  const std::vector<Row> rows = {
      {{"--token_file", "/dev/zero", "status"},
       {},
       "--token_file: /dev/zero: a character device"},
      {{"--tls_ca", "/dev/zero", "status"},
       {},
       "--tls_ca: /dev/zero: a character device"},
      {{"--token_file", Path("fifo"), "status"},
       {},
       absl::StrCat("--token_file: ", Path("fifo"), ": a FIFO")},
      {{"--tls_ca", Path("fifo"), "status"},
       {},
       absl::StrCat("--tls_ca: ", Path("fifo"), ": a FIFO")},
      {{"--token_file", Path("big"), "status"},
       {},
       absl::StrCat("--token_file: ", Path("big"), ": larger than 65536")},
      {{"--tls_ca", Path("big"), "status"},
       {},
       absl::StrCat("--tls_ca: ", Path("big"), ": larger than 1048576")},
      {{"--token_file", dir_, "status"},
       {},
       absl::StrCat("--token_file: ", dir_, ": a directory")},
      {{"--token_file", Path("missing"), "status"},
       {},
       absl::StrCat("--token_file: ", Path("missing"), ": No such file")},
      // A newline in the path cannot break the one line.
      {{"--token_file", Path("new\nline"), "status"},
       {},
       absl::StrCat("--token_file: ", Path("new\\x0aline"), ": No such")},
      {{"--tls_ca", Path("garbage.pem"), "status"},
       {},
       absl::StrCat("--tls_ca: ", Path("garbage.pem"), ": no PEM")},
      {{"--tls_ca", Path("garbage.pem"), "health"},
       {},
       absl::StrCat("--tls_ca: ", Path("garbage.pem"), ": no PEM")},
      {{"--token_file", Path("crlf"), "status"},
       {},
       absl::StrCat("--token_file: ", Path("crlf"), ": token: ")},
      {{"--token_file", Path("nul"), "health"},
       {},
       absl::StrCat("--token_file: ", Path("nul"), ": token: ")},
      {{"--token_file", Path("blank"), "status"},
       {},
       absl::StrCat("--token_file: ", Path("blank"), ": token: ")},
  };
  for (const Row& row : rows) ExpectRefused(row);
}

TEST_F(UpperctlBadInputTest, AGoodCaFileIsAccepted) {
  // Passes the checks; then no server answers (exit 3), not a usage error.
  const ProcessResult run = LimitedUpperctl(
      {"--tls_ca", Path("ca.pem"), "--addr=127.0.0.1:1", "status"}, {});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_THAT(run.err, StartsWith("upperctl: cannot reach 127.0.0.1:1"));
}

// Tokens gRPC refused to send (it aborted upperctl, exit 134, silent), from
// every source, for a command that sends the token and for health, which
// does not: all exit 2 before any call.
TEST_F(UpperctlBadInputTest, UnsendableTokensExit2FromEverySource) {
  FakeAdminServer server("s3cret");
  const std::string addr = absl::StrCat("--addr=", server.address());
  const std::vector<std::string> tokens = {"s3\rcret",
                                           "s3\tcret",
                                           "s3\ncret",
                                           "s3\x01"
                                           "cret",
                                           "s3\x7f"
                                           "cret",
                                           "s3\xc3\xa9"
                                           "cret",
                                           "s3 cret",
                                           std::string(4097, 'a')};
  for (const char* command : {"status", "health"}) {
    for (const std::string& token : tokens) {
      ExpectRefused(
          {{"--token", token, addr, command}, {}, "--token: token: "});
      ExpectRefused({{addr, command},
                     {{"UPPER_ADMIN_TOKEN", token}},
                     "$UPPER_ADMIN_TOKEN: token: "});
    }
  }
  EXPECT_TRUE(server.authorizations().empty());  // no call was made
}

TEST_F(UpperctlBadInputTest, SurroundingWhitespaceOfATokenIsTrimmed) {
  FakeAdminServer server("s3cret");
  const std::string addr = absl::StrCat("--addr=", server.address());
  WriteFile(Path("crlf"), "\ts3cret\r\n");
  ProcessResult run =
      LimitedUpperctl({"--token_file", Path("crlf"), addr, "mode"}, {});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  run = LimitedUpperctl({addr, "mode"}, {{"UPPER_ADMIN_TOKEN", " s3cret\r\n"}});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(server.authorizations().size(), 2u);
  for (const std::string& seen : server.authorizations()) {
    EXPECT_EQ(seen, "Bearer s3cret");
  }
}

}  // namespace
}  // namespace upper::testing
