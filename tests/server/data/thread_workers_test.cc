// ThreadWorkers in process: the destructor is bounded (it shuts live
// connections down instead of waiting for their clients), and ShutdownAll()
// reaches every registered connection whatever the table says.
#include "server/data/thread_workers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>

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

}  // namespace
}  // namespace upper
