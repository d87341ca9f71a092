// ThreadWorkers in process: the destructor is bounded (it shuts live
// connections down instead of waiting for their clients), and ShutdownAll()
// reaches every registered connection whatever the table says.
#include "server/data/thread_workers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace upper {
namespace {

std::shared_ptr<ConnectionTable> MakeTable(uint32_t capacity) {
  absl::StatusOr<std::unique_ptr<ConnectionTable>> table =
      ConnectionTable::Create(capacity);
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? std::shared_ptr<ConnectionTable>(*std::move(table))
                    : nullptr;
}

// A thread-mode slot served over a socketpair; returns the client's end.
UniqueFd StartServed(ConnectionTable& table, ThreadWorkers& workers) {
  sockaddr_in peer = {};
  peer.sin_family = AF_INET;
  peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const std::optional<uint32_t> slot = table.Allocate(
      Mode::kThread, reinterpret_cast<const sockaddr*>(&peer), sizeof(peer));
  EXPECT_TRUE(slot.has_value());
  int pair[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd client(pair[1]);
  EXPECT_TRUE(workers.Start(UniqueFd(pair[0]), *slot).ok());
  return client;
}

// Sends one byte and reads its echo: the worker is serving.
std::string EchoOf(int fd, char c) {
  EXPECT_EQ(send(fd, &c, 1, MSG_NOSIGNAL), 1);
  char got = 0;
  return recv(fd, &got, 1, 0) == 1 ? std::string(1, got) : "";
}

TEST(ThreadWorkers, DestructorShutsLiveConnectionsDownAndReturnsInBound) {
  std::shared_ptr<ConnectionTable> table = MakeTable(4);
  ASSERT_NE(table, nullptr);
  auto workers = std::make_unique<ThreadWorkers>(table);
  UniqueFd a = StartServed(*table, *workers);
  UniqueFd b = StartServed(*table, *workers);
  ASSERT_EQ(EchoOf(a.get(), 'a'), "A");
  ASSERT_EQ(EchoOf(b.get(), 'b'), "B");
  ASSERT_EQ(workers->live(), 2u);

  // The clients hold their connections open: only the destructor ends them.
  const absl::Time start = absl::Now();
  workers.reset();
  EXPECT_LT(absl::Now() - start, ThreadWorkers::kStopWait);
  char byte;
  EXPECT_EQ(recv(a.get(), &byte, 1, 0), 0);  // EOF: shut down, then closed
  EXPECT_EQ(recv(b.get(), &byte, 1, 0), 0);
  EXPECT_EQ(table->ReadTotals().ActiveTotal(), 0u);
}

TEST(ThreadWorkers, ShutdownAllEndsEveryRegisteredConnection) {
  std::shared_ptr<ConnectionTable> table = MakeTable(4);
  ASSERT_NE(table, nullptr);
  ThreadWorkers workers(table);
  UniqueFd a = StartServed(*table, workers);
  UniqueFd b = StartServed(*table, workers);
  ASSERT_EQ(EchoOf(a.get(), 'x'), "X");
  ASSERT_EQ(EchoOf(b.get(), 'y'), "Y");
  EXPECT_EQ(workers.ShutdownAll(), 2u);
  EXPECT_TRUE(workers.WaitIdle(absl::Seconds(5)));
  EXPECT_EQ(table->ReadTotals().ActiveTotal(), 0u);
  EXPECT_EQ(workers.ShutdownAll(), 0u);  // nothing registered any more
}

TEST(ThreadWorkers, WorkersCoOwnTheTableSoItOutlivesItsOtherOwners) {
  std::shared_ptr<ConnectionTable> table = MakeTable(4);
  ASSERT_NE(table, nullptr);
  std::weak_ptr<ConnectionTable> watch = table;
  auto workers = std::make_unique<ThreadWorkers>(table);
  UniqueFd a = StartServed(*table, *workers);
  ASSERT_EQ(EchoOf(a.get(), 'q'), "Q");
  table.reset();  // the worker (and `workers`) still hold it
  EXPECT_FALSE(watch.expired());
  ASSERT_EQ(EchoOf(a.get(), 'r'), "R");
  workers.reset();
  // The worker drops its share on its way out, just after it stops counting
  // as live (which is what the destructor waits for).
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!watch.expired() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_TRUE(watch.expired());
}

// Sends `payload`, half-closes, reads to EOF.
std::string RoundTrip(int fd, const std::string& payload) {
  EXPECT_EQ(send(fd, payload.data(), payload.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(payload.size()));
  shutdown(fd, SHUT_WR);
  std::string got;
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

// The hand-off races the spare's timeout: a 1 ms timeout and a pause of
// 0..2 ms between connections, so that some connections find a spare, some
// find none, and some reach a spare that is timing out just then. Every
// connection must be served exactly once: its own reply, and accepted =
// closed = rounds = spawns + hand-offs.
TEST(ThreadWorkers, HandOffRacingTheSpareTimeoutLosesAndDoublesNothing) {
  constexpr int kRounds = 3000;
  std::shared_ptr<ConnectionTable> table = MakeTable(64);
  ASSERT_NE(table, nullptr);
  ThreadWorkers workers(
      table,
      {.min_spare = 0, .max_spare = 1, .spare_timeout = absl::Milliseconds(1)});
  std::mt19937 rng(16);
  std::uniform_int_distribution<int> pause_us(0, 2000);
  for (int i = 0; i < kRounds; ++i) {
    UniqueFd client = StartServed(*table, workers);
    const std::string payload = absl::StrCat("round-", i, "-abc");
    ASSERT_EQ(RoundTrip(client.get(), payload),
              absl::StrCat("ROUND-", i, "-ABC"));
    client.Reset();
    absl::SleepFor(absl::Microseconds(pause_us(rng)));
  }
  ASSERT_TRUE(workers.WaitIdle(absl::Seconds(5)));
  const ThreadCacheStats stats = workers.stats();
  EXPECT_EQ(stats.spawns_total + stats.handoffs_total, uint64_t{kRounds});
  EXPECT_GT(stats.handoffs_total, 0u);
  EXPECT_GT(stats.exits_idle_timeout, 0u);  // the race was run
  const TableTotals t = table->ReadTotals();
  uint64_t closed = 0;
  for (uint64_t n : t.closed_total[static_cast<int>(Mode::kThread)]) {
    closed += n;
  }
  EXPECT_EQ(t.accepted_total[static_cast<int>(Mode::kThread)],
            uint64_t{kRounds});
  EXPECT_EQ(closed, uint64_t{kRounds});
  EXPECT_EQ(t.ActiveTotal(), 0u);
  EXPECT_LE(workers.idle(), 1u);
}

TEST(ThreadWorkers, SparesBeyondTheMinimumTimeOutAndTheMinimumStays) {
  std::shared_ptr<ConnectionTable> table = MakeTable(8);
  ASSERT_NE(table, nullptr);
  ThreadWorkers workers(table, {.min_spare = 1,
                                .max_spare = 3,
                                .spare_timeout = absl::Milliseconds(50)});
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(StartServed(*table, workers));
  for (UniqueFd& c : clients) ASSERT_EQ(EchoOf(c.get(), 'k'), "K");
  clients.clear();  // EOF: all five end; at most three stay as spares
  ASSERT_TRUE(workers.WaitIdle(absl::Seconds(5)));
  EXPECT_LE(workers.idle(), 3u);
  EXPECT_TRUE(WaitFor([&] { return workers.idle() == 1; }, absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(workers.idle(), 1u);  // the minimum never times out
  const ThreadCacheStats stats = workers.stats();
  EXPECT_EQ(stats.spawns_total, 5u);
  EXPECT_GE(stats.exits_cache_full, 2u);
  EXPECT_EQ(stats.exits_cache_full + stats.exits_idle_timeout, 4u);
  // The next connection reuses the spare.
  UniqueFd again = StartServed(*table, workers);
  EXPECT_EQ(EchoOf(again.get(), 'z'), "Z");
  EXPECT_EQ(workers.stats().spawns_total, 5u);
  EXPECT_EQ(workers.idle(), 0u);
}

TEST(ThreadWorkers, StopSparesEndsIdleSparesAtOnceAndKeepsNoNewOnes) {
  std::shared_ptr<ConnectionTable> table = MakeTable(4);
  ASSERT_NE(table, nullptr);
  ThreadWorkers workers(
      table, {.min_spare = 2, .max_spare = 2, .spare_timeout = absl::Hours(1)});
  UniqueFd a = StartServed(*table, workers);
  UniqueFd b = StartServed(*table, workers);
  UniqueFd c = StartServed(*table, workers);
  ASSERT_EQ(EchoOf(a.get(), 'a'), "A");
  ASSERT_EQ(EchoOf(b.get(), 'b'), "B");
  ASSERT_EQ(EchoOf(c.get(), 'c'), "C");
  a.Reset();
  b.Reset();
  ASSERT_TRUE(WaitFor([&] { return workers.idle() == 2; }, absl::Seconds(5)));
  workers.StopSpares();
  EXPECT_TRUE(WaitFor([&] { return workers.idle() == 0; }, absl::Seconds(1)));
  EXPECT_EQ(workers.stats().exits_shutdown, 2u);
  c.Reset();  // a busy worker ends and exits instead of waiting
  ASSERT_TRUE(workers.WaitIdle(absl::Seconds(5)));
  EXPECT_TRUE(WaitFor([&] { return workers.stats().exits_shutdown == 3; },
                      absl::Seconds(1)));
  EXPECT_EQ(workers.idle(), 0u);
}

}  // namespace
}  // namespace upper
