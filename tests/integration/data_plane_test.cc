// The data plane against a real upperd, in both modes: exact bytes under
// concurrency and odd segmentation, big streams, half-close, no zombie or fd
// left after thousands of connections, limits, idle timeout, drain, and
// start-up errors. Totals are checked against upperd's own final log line,
// which it prints from the shared connection table.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/mode_test_base.h"
#include "tests/support/proc.h"
#include "tests/support/stop_cleanly.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

uint64_t FinalTotal(const UpperdProcess& upperd, const std::string& key) {
  uint64_t value = 0;
  const std::optional<std::string> text = upperd.Field("stopped", key);
  EXPECT_TRUE(text.has_value()) << "no " << key << " in:\n" << upperd.Log();
  if (text) {
    EXPECT_TRUE(absl::SimpleAtoi(*text, &value)) << *text;
  }
  return value;
}

// The server side of the loopback connection from `client_port` to
// `server_port` in /proc/net/tcp: its state (hex, e.g. "09" LAST_ACK) and
// inode (0 once no process owns it: an orphan), or nullopt if gone.
struct SocketRow {
  std::string state;
  uint64_t inode = 0;
};
std::optional<SocketRow> ServerSide(uint16_t server_port,
                                    uint16_t client_port) {
  const std::optional<std::string> table = ReadProcFile("/proc/net/tcp");
  if (!table) return std::nullopt;
  const std::string local = absl::StrFormat(":%04X", server_port);
  const std::string remote = absl::StrFormat(":%04X", client_port);
  for (absl::string_view line : absl::StrSplit(*table, '\n')) {
    const std::vector<absl::string_view> f =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() > 9 && absl::EndsWith(f[1], local) &&
        absl::EndsWith(f[2], remote)) {
      SocketRow row{std::string(f[3]), 0};
      if (absl::SimpleAtoi(f[9], &row.inode)) return row;
    }
  }
  return std::nullopt;
}

// A client with a one-page receive buffer: it sends up to `size` bytes
// without reading (what the server echoes waits in the server's send
// buffer), then half-closes; returns what it sent.
std::string SendWithoutReading(int fd, size_t size) {
  const std::string payload = RandomPayload(size, 77);
  size_t sent = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (sent < payload.size() && absl::Now() < deadline) {
    const ssize_t n = send(fd, payload.data() + sent, payload.size() - sent,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  EXPECT_EQ(shutdown(fd, SHUT_WR), 0);
  return payload.substr(0, sent);
}

class DataPlaneTest : public ModeTest {};

TEST_P(DataPlaneTest, ManyConcurrentClientsGetTheirOwnBytesUpperCased) {
  auto upperd = StartUpperd();
  ASSERT_NE(upperd, nullptr);
  constexpr int kClients = 32;
  std::vector<std::string> payloads;
  std::vector<std::future<absl::StatusOr<std::string>>> replies;
  uint64_t sent = 0;
  for (int i = 0; i < kClients; ++i) {
    // Sizes from 0 to ~400 KiB; segments from 1 byte to 16 KiB.
    payloads.push_back(RandomPayload(i * 12345 + (i % 3), 1000 + i));
    sent += payloads.back().size();
  }
  for (int i = 0; i < kClients; ++i) {
    replies.push_back(std::async(std::launch::async, [&, i] {
      return Exchange(upperd->data_port(), payloads[i], i % 2 ? 16384 : 1 + i,
                      i, absl::Seconds(60));
    }));
  }
  for (int i = 0; i < kClients; ++i) {
    absl::StatusOr<std::string> reply = replies[i].get();
    ASSERT_TRUE(reply.ok()) << "client " << i << ": " << reply.status();
    EXPECT_TRUE(*reply == ExpectedUpper(payloads[i])) << "client " << i;
  }
  StopCleanly(*upperd);
  EXPECT_EQ(FinalTotal(*upperd, "accepted"), kClients);
  EXPECT_EQ(FinalTotal(*upperd, "closed"), kClients);
  EXPECT_EQ(FinalTotal(*upperd, "active"), 0u);
  EXPECT_EQ(FinalTotal(*upperd, "bytes_in"), sent);
  EXPECT_EQ(FinalTotal(*upperd, "bytes_out"), sent);
}

TEST_P(DataPlaneTest, SixtyFourMiBStreamIsExact) {
  auto upperd = StartUpperd();
  ASSERT_NE(upperd, nullptr);
  const std::string payload = RandomPayload(64 << 20, 64);
  absl::StatusOr<std::string> reply =
      Exchange(upperd->data_port(), payload, 1 << 16, 7, absl::Seconds(120));
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_EQ(reply->size(), payload.size());
  EXPECT_TRUE(*reply == ExpectedUpper(payload));
  StopCleanly(*upperd);
  EXPECT_EQ(FinalTotal(*upperd, "bytes_out"), payload.size());
}

TEST_P(DataPlaneTest, HalfCloseGetsAllRemainingOutputThenEof) {
  auto upperd = StartUpperd();
  ASSERT_NE(upperd, nullptr);
  absl::StatusOr<UniqueFd> fd = Connect(upperd->data_port());
  ASSERT_TRUE(fd.ok()) << fd.status();
  // Small enough to sit in socket buffers: nothing is read until after the
  // half-close, so the server must finish its output after our EOF.
  const std::string payload = RandomPayload(32 << 10, 3) + "the end";
  std::mt19937_64 rng(3);
  ASSERT_TRUE(SendSegmented(fd->get(), payload, 1000, rng, true).ok());
  absl::SleepFor(absl::Milliseconds(200));
  absl::StatusOr<std::string> reply =
      ReadUntilEof(fd->get(), absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(*reply == ExpectedUpper(payload));
}

TEST_P(DataPlaneTest, TwoThousandShortConnectionsLeaveNoZombieAndNoFd) {
  auto upperd = StartUpperd();
  ASSERT_NE(upperd, nullptr);
  // The baseline: upperd and its fork server before any connection, once the
  // fork server has finished starting (it closes its table fd then).
  ASSERT_TRUE(upperd->WaitForLog("fork_server_started", absl::Seconds(5)).ok());
  ASSERT_TRUE(Eventually([&] { return Descendants(upperd->pid()).size() == 1; },
                         absl::Seconds(2)))
      << "expected only the fork server";
  const int upperd_fds = CountFds(upperd->pid());
  const std::vector<pid_t> helpers = Descendants(upperd->pid());
  const int helper_fds = CountFds(helpers[0]);

  for (int i = 0; i < 2000; ++i) {
    absl::StatusOr<std::string> reply =
        Exchange(upperd->data_port(), absl::StrCat("conn ", i), 64, i,
                 absl::Seconds(10));
    ASSERT_TRUE(reply.ok()) << i << ": " << reply.status();
    ASSERT_EQ(*reply, absl::StrCat("CONN ", i));
  }
  // Exited children are reaped at once (SIGCHLD through a signalfd): the
  // family shrinks back to the fork server within a second.
  EXPECT_TRUE(Eventually([&] { return Descendants(upperd->pid()) == helpers; },
                         absl::Seconds(1)))
      << Descendants(upperd->pid()).size() << " descendants left";
  EXPECT_TRUE(ZombieDescendants(upperd->pid()).empty());
  EXPECT_TRUE(Eventually([&] { return CountFds(upperd->pid()) == upperd_fds; },
                         absl::Seconds(2)))
      << CountFds(upperd->pid()) << " fds, was " << upperd_fds;
  EXPECT_EQ(CountFds(helpers[0]), helper_fds);
  StopCleanly(*upperd);
  EXPECT_EQ(FinalTotal(*upperd, "accepted"), 2000u);
  EXPECT_EQ(FinalTotal(*upperd, "active"), 0u);
}

TEST_P(DataPlaneTest, ConnectionPastMaxConnectionsIsClosedAndCounted) {
  auto upperd = StartUpperd({"--max_connections=2"});
  ASSERT_NE(upperd, nullptr);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::vector<UniqueFd> held;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(upperd->data_port());
    ASSERT_TRUE(fd.ok());
    ASSERT_EQ(send(fd->get(), "x", 1, MSG_NOSIGNAL), 1);
    ASSERT_EQ(ReadExactly(fd->get(), 1, deadline).value_or(""), "X");
    held.push_back(*std::move(fd));
  }
  absl::StatusOr<UniqueFd> third = Connect(upperd->data_port());
  ASSERT_TRUE(third.ok());
  // Accepted and closed at once: EOF (or a reset), never an echo.
  absl::StatusOr<std::string> refused = ReadUntilEof(third->get(), deadline);
  EXPECT_TRUE(!refused.ok() || refused->empty());

  held.pop_back();  // frees a slot
  EXPECT_TRUE(Eventually(
      [&] {
        return Exchange(upperd->data_port(), "again", 5, 1, absl::Seconds(5))
                   .value_or("") == "AGAIN";
      },
      absl::Seconds(5)));
  held.clear();
  StopCleanly(*upperd);
  EXPECT_GE(FinalTotal(*upperd, "rejected"), 1u);
}

TEST_P(DataPlaneTest, IdleConnectionIsClosedButATalkingOneIsNot) {
  auto upperd = StartUpperd({"--idle_timeout=1s"});
  ASSERT_NE(upperd, nullptr);
  absl::StatusOr<UniqueFd> idle = Connect(upperd->data_port());
  absl::StatusOr<UniqueFd> talker = Connect(upperd->data_port());
  ASSERT_TRUE(idle.ok() && talker.ok());
  const absl::Time start = absl::Now();
  for (int i = 0; i < 10; ++i) {  // 2.5 s of a byte every 250 ms
    ASSERT_EQ(send(talker->get(), "a", 1, MSG_NOSIGNAL), 1);
    ASSERT_EQ(ReadExactly(talker->get(), 1, absl::Now() + absl::Seconds(5))
                  .value_or(""),
              "A")
        << "talking connection was closed after " << absl::Now() - start;
    absl::SleepFor(absl::Milliseconds(250));
  }
  absl::StatusOr<std::string> rest =
      ReadUntilEof(idle->get(), start + absl::Seconds(10));
  EXPECT_TRUE(rest.ok() && rest->empty()) << rest.status();
}

TEST_P(DataPlaneTest, SigtermLetsClientsMidStreamFinishThenExitsZero) {
  auto upperd = StartUpperd({"--drain_timeout=20s"});
  ASSERT_NE(upperd, nullptr);
  constexpr int kClients = 8;
  std::vector<UniqueFd> fds;
  for (int i = 0; i < kClients; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(upperd->data_port());
    ASSERT_TRUE(fd.ok());
    fds.push_back(*std::move(fd));
  }
  const std::string first = RandomPayload(10000, 1);
  const std::string second = RandomPayload(20000, 2);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (UniqueFd& fd : fds) {  // mid-stream: some output already received
    ASSERT_EQ(send(fd.get(), first.data(), first.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(first.size()));
    ASSERT_EQ(ReadExactly(fd.get(), first.size(), deadline).value_or(""),
              ExpectedUpper(first));
  }
  upperd->Signal(SIGTERM);
  ASSERT_TRUE(upperd->WaitForLog(" draining ", absl::Seconds(5)).ok());
  // No new connections while draining.
  EXPECT_TRUE(Eventually([&] { return !Connect(upperd->data_port()).ok(); },
                         absl::Seconds(2)));
  std::vector<std::future<absl::StatusOr<std::string>>> rest;
  for (UniqueFd& fd : fds) {
    const int raw = fd.get();
    rest.push_back(std::async(std::launch::async, [&, raw] {
      std::mt19937_64 rng(raw);
      absl::Status s = SendSegmented(raw, second, 999, rng, true);
      if (!s.ok()) return absl::StatusOr<std::string>(s);
      return ReadUntilEof(raw, deadline);
    }));
  }
  for (auto& r : rest) {
    absl::StatusOr<std::string> reply = r.get();
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_TRUE(*reply == ExpectedUpper(second));
  }
  absl::StatusOr<int> code = upperd->WaitExit(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(FinalTotal(*upperd, "bytes_out"),
            kClients * (first.size() + second.size()));
}

TEST_P(DataPlaneTest, DrainTimeoutClosesTheRestAndExitsZero) {
  auto upperd = StartUpperd({"--drain_timeout=300ms"});
  ASSERT_NE(upperd, nullptr);
  absl::StatusOr<UniqueFd> stuck = Connect(upperd->data_port());
  ASSERT_TRUE(stuck.ok());
  ASSERT_EQ(send(stuck->get(), "q", 1, MSG_NOSIGNAL), 1);
  ASSERT_EQ(
      ReadExactly(stuck->get(), 1, absl::Now() + absl::Seconds(5)).value_or(""),
      "Q");
  const absl::Time start = absl::Now();
  upperd->Signal(SIGTERM);
  absl::StatusOr<std::string> rest =
      ReadUntilEof(stuck->get(), start + absl::Seconds(5));
  EXPECT_TRUE(!rest.ok() || rest->empty());
  absl::StatusOr<int> code = upperd->WaitExit(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_P(DataPlaneTest, SecondSignalEndsTheDrainAtOnce) {
  auto upperd = StartUpperd({"--drain_timeout=120s"});
  ASSERT_NE(upperd, nullptr);
  absl::StatusOr<UniqueFd> held = Connect(upperd->data_port());
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(send(held->get(), "z", 1, MSG_NOSIGNAL), 1);
  ASSERT_TRUE(ReadExactly(held->get(), 1, absl::Now() + absl::Seconds(5)).ok());
  upperd->Signal(SIGTERM);
  ASSERT_TRUE(upperd->WaitForLog(" draining ", absl::Seconds(5)).ok());
  const absl::Time start = absl::Now();
  upperd->Signal(SIGINT);
  absl::StatusOr<int> code = upperd->WaitExit(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

// The client's EOF arrives while the reply is still queued in upperd's
// send buffer (the client reads nothing yet). upperd passes the EOF on but
// keeps the socket until the peer has acknowledged the reply: a socket
// closed at once would be an orphan holding it, and under host-wide TCP
// memory pressure the kernel resets orphans, losing the reply's tail.
TEST_P(DataPlaneTest, OutputStillQueuedAfterTheEofIsNeverLeftToAnOrphan) {
  auto upperd = StartUpperd();
  ASSERT_NE(upperd, nullptr);
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(fd.valid());
  const int small = 4096;
  ASSERT_EQ(setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)),
            0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(upperd->data_port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
            0);
  sockaddr_in mine = {};
  socklen_t len = sizeof(mine);
  ASSERT_EQ(getsockname(fd.get(), reinterpret_cast<sockaddr*>(&mine), &len), 0);
  const uint16_t client_port = ntohs(mine.sin_port);
  const std::string sent = SendWithoutReading(fd.get(), 200 * 1024);
  ASSERT_GT(sent.size(), 64u * 1024);

  // upperd has the EOF and has sent its FIN (LAST_ACK: not acknowledged,
  // as the reply before it is not)...
  std::optional<SocketRow> row;
  ASSERT_TRUE(Eventually(
      [&] {
        row = ServerSide(upperd->data_port(), client_port);
        return row && row->state == "09";
      },
      absl::Seconds(10)))
      << (row ? row->state : "gone");
  // ...and the socket stays upperd's while the reply waits.
  for (int i = 0; i < 10; ++i) {
    row = ServerSide(upperd->data_port(), client_port);
    ASSERT_TRUE(row.has_value());
    EXPECT_NE(row->inode, 0u) << "upperd left the reply to an orphan socket";
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::StatusOr<std::string> reply =
      ReadUntilEof(fd.get(), absl::Now() + absl::Seconds(20));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(*reply == ExpectedUpper(sent));
  fd.Reset();
  StopCleanly(*upperd);
  EXPECT_EQ(FinalTotal(*upperd, "active"), 0u);
  EXPECT_EQ(FinalTotal(*upperd, "closed"), 1u);
}

INSTANTIATE_TEST_SUITE_P(BothModes, DataPlaneTest,
                         ::testing::Values("thread", "fork"),
                         [](const auto& info) { return info.param; });

TEST(UpperdStartup, BadFlagExitsTwoWithOneLineNamingTheFlag) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd = UpperdProcess::Start(
      {.args = {"--mode=spoon"}, .wait_until_listening = false});
  ASSERT_TRUE(upperd.ok());
  absl::StatusOr<int> code = (*upperd)->WaitExit(absl::Seconds(10));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 2);
  EXPECT_TRUE(
      Eventually([&] { return !(*upperd)->Log().empty(); }, absl::Seconds(2)));
  EXPECT_EQ(
      (*upperd)->Log(),
      "upperd: --mode: 'spoon' is not a mode (expected fork or thread)\n");
}

TEST(UpperdStartup, BadEnvironmentValueExitsTwoNamingTheVariable) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start({.env = {{"UPPER_MAX_CONNECTIONS", "many"}},
                            .wait_until_listening = false});
  ASSERT_TRUE(upperd.ok());
  absl::StatusOr<int> code = (*upperd)->WaitExit(absl::Seconds(10));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 2);
  EXPECT_TRUE(
      (*upperd)->WaitForLog("UPPER_MAX_CONNECTIONS", absl::Seconds(2)).ok())
      << (*upperd)->Log();
}

TEST(UpperdStartup, DataPortInUseExitsOneNamingTheAddress) {
  absl::StatusOr<std::unique_ptr<UpperdProcess>> first = UpperdProcess::Start();
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string port = absl::StrCat((*first)->data_port());
  absl::StatusOr<std::unique_ptr<UpperdProcess>> second = UpperdProcess::Start(
      {.args = {"--data_port=" + port}, .wait_until_listening = false});
  ASSERT_TRUE(second.ok());
  absl::StatusOr<int> code = (*second)->WaitExit(absl::Seconds(10));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 1);
  EXPECT_TRUE((*second)->WaitForLog("127.0.0.1:" + port, absl::Seconds(2)).ok())
      << (*second)->Log();
}

}  // namespace
}  // namespace upper::testing
