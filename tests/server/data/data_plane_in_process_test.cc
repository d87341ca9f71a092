// The DataPlane event loop in-process: SetMode() is a plain, thread-safe
// function, and switching modes never disturbs a live connection. The fork
// server is the real upperd binary in its helper role.
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/data/data_plane.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper {
namespace {

using testing::Connect;
using testing::Eventually;
using testing::ExpectedUpper;
using testing::RandomPayload;
using testing::ReadUntilEof;

// Streams `payload` in `chunks` pieces with a pause between them, so the
// connection stays live across several mode switches; returns the reply.
absl::StatusOr<std::string> SlowExchange(uint16_t port,
                                         const std::string& payload, int chunks,
                                         absl::Duration pause) {
  absl::StatusOr<UniqueFd> fd = Connect(port);
  if (!fd.ok()) return fd.status();
  const int raw = fd->get();
  auto reply = std::async(std::launch::async, [raw] {
    return ReadUntilEof(raw, absl::Now() + absl::Seconds(60));
  });
  const size_t chunk = payload.size() / chunks + 1;
  for (size_t offset = 0; offset < payload.size(); offset += chunk) {
    const size_t n = std::min(chunk, payload.size() - offset);
    size_t sent = 0;
    while (sent < n) {
      const ssize_t r =
          send(raw, payload.data() + offset + sent, n - sent, MSG_NOSIGNAL);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        shutdown(raw, SHUT_RDWR);
        reply.wait();
        return absl::ErrnoToStatus(errno, "send");
      }
      sent += static_cast<size_t>(r);
    }
    absl::SleepFor(pause);
  }
  shutdown(raw, SHUT_WR);
  return reply.get();
}

TEST(DataPlane, ModeSwitchesNeverDisturbLiveConnections) {
  Config config;
  config.bind = "127.0.0.1";
  config.data_port = 0;
  config.mode = Mode::kThread;
  config.drain_timeout = absl::Seconds(10);
  absl::StatusOr<std::unique_ptr<DataPlane>> created =
      DataPlane::Create(config, testing::UpperdPath());
  ASSERT_TRUE(created.ok()) << created.status();
  DataPlane& server = **created;
  std::future<int> run =
      std::async(std::launch::async, [&server] { return server.Run(); });
  // Whatever happens below, drain and join the event loop.
  absl::Cleanup stop = [&run] {
    kill(getpid(), SIGTERM);
    EXPECT_EQ(run.get(), 0);
  };

  constexpr int kClients = 32;
  std::atomic<bool> switching{true};
  int switches = 0;
  std::thread switcher([&] {
    Mode next = Mode::kFork;
    while (switching.load()) {
      EXPECT_NE(server.SetMode(next), next);
      ++switches;
      next = next == Mode::kFork ? Mode::kThread : Mode::kFork;
      absl::SleepFor(absl::Milliseconds(50));
    }
  });

  std::vector<std::string> payloads;
  uint64_t sent = 0;
  for (int i = 0; i < kClients; ++i) {
    payloads.push_back(RandomPayload(64 * 1024 + i, i));
    sent += payloads.back().size();
  }
  std::vector<std::future<absl::StatusOr<std::string>>> replies;
  for (int i = 0; i < kClients; ++i) {
    // Staggered starts so connections begin in both modes; each lives
    // across several switches.
    absl::SleepFor(absl::Milliseconds(15));
    replies.push_back(std::async(std::launch::async, [&, i] {
      return SlowExchange(server.data_port(), payloads[i], 8,
                          absl::Milliseconds(40));
    }));
  }
  for (int i = 0; i < kClients; ++i) {
    absl::StatusOr<std::string> reply = replies[i].get();
    ASSERT_TRUE(reply.ok()) << "client " << i << ": " << reply.status();
    EXPECT_TRUE(*reply == ExpectedUpper(payloads[i])) << "client " << i;
  }
  switching = false;
  switcher.join();

  ASSERT_TRUE(
      Eventually([&] { return server.table().ReadTotals().ActiveTotal() == 0; },
                 absl::Seconds(5)));
  const TableTotals totals = server.table().ReadTotals();
  const auto fork = static_cast<int>(Mode::kFork);
  const auto thread = static_cast<int>(Mode::kThread);
  EXPECT_GT(totals.accepted_total[fork], 0u);
  EXPECT_GT(totals.accepted_total[thread], 0u);
  EXPECT_EQ(totals.accepted_total[fork] + totals.accepted_total[thread],
            static_cast<uint64_t>(kClients));
  EXPECT_EQ(totals.bytes_in_total[fork] + totals.bytes_in_total[thread], sent);
  EXPECT_EQ(totals.bytes_out_total[fork] + totals.bytes_out_total[thread],
            sent);
  EXPECT_EQ(totals.mode_switches_total, static_cast<uint64_t>(switches));
  EXPECT_EQ(
      totals.closed_total[fork][static_cast<int>(CloseReason::kClient)] +
          totals.closed_total[thread][static_cast<int>(CloseReason::kClient)],
      static_cast<uint64_t>(kClients));
}

}  // namespace
}  // namespace upper
