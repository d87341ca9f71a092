// Load and soak, in both modes: 1,000 concurrent connections (by default)
// for UPPER_TEST_SOAK_SECONDS (CI: 60; default 10 for local runs), each
// streaming its own pseudo-random bytes with random segmentation and sizes,
// half-closing and reconnecting, with every byte verified as it comes back.
// Every connection's stream is derived from its own key, so a byte from any
// other connection would not match: this also proves a connection never reads
// another's bytes. Afterwards: zero active, zero zombies, fd and thread counts
// back to where they started, and RSS (without the preallocated shared table)
// within 10% of what it was after a warm-up round.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/final_totals.h"
#include "tests/support/proc.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

int EnvInt(const char* name, int fallback) {
  const char* text = std::getenv(name);
  int value = 0;
  return text != nullptr && absl::SimpleAtoi(text, &value) && value > 0
             ? value
             : fallback;
}

// Byte `offset` of the stream with `key`: all 256 values, no pattern another
// stream shares.
uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}
void FillStream(uint64_t key, uint64_t offset, char* out, size_t size) {
  for (size_t i = 0; i < size;) {
    const uint64_t pos = offset + i;
    const uint64_t word = Mix(key ^ Mix(pos >> 3));
    for (uint64_t b = pos & 7; b < 8 && i < size; ++b, ++i) {
      out[i] = static_cast<char>(word >> (8 * b));
    }
  }
}
char Upper(char c) { return (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c; }

struct LoadFigures {
  uint64_t connections = 0;  // completed, every byte verified
  uint64_t bytes = 0;        // verified (each way)
  int peak_workers = 0;      // upperd threads or fork children seen at once
};

// Keeps `concurrency` connections open against `port` until `duration`
// passes, then lets each finish. Fails on the first wrong or missing byte.
class LoadDriver {
 public:
  LoadDriver(uint16_t port, int concurrency, uint64_t seed,
             std::function<int()> count_workers)
      : port_(port),
        concurrency_(concurrency),
        rng_(seed),
        count_workers_(std::move(count_workers)) {}

  absl::StatusOr<LoadFigures> Run(absl::Duration duration) {
    const absl::Time end = absl::Now() + duration;
    const absl::Time hard_end = end + absl::Seconds(90);
    for (int i = 0; i < concurrency_; ++i) {
      if (absl::Status s = Open(); !s.ok()) return s;
    }
    absl::Time next_sample = absl::Now();
    bool stopping = false;
    std::vector<pollfd> fds;
    while (!conns_.empty()) {
      const absl::Time now = absl::Now();
      if (now >= hard_end) {
        return absl::DeadlineExceededError(
            absl::StrCat(conns_.size(), " connections did not finish"));
      }
      if (!stopping && now >= end) {
        stopping = true;  // no new streams; each ends with what it sent
        for (Conn& c : conns_) {
          c.target = c.sent;
          if (absl::Status s = MaybeHalfClose(c); !s.ok()) return s;
        }
      }
      if (now >= next_sample) {
        figures_.peak_workers =
            std::max(figures_.peak_workers, count_workers_());
        next_sample = now + absl::Seconds(1);
      }
      fds.resize(conns_.size());
      for (size_t i = 0; i < conns_.size(); ++i) {
        fds[i] = {
            conns_[i].fd.get(),
            static_cast<short>(POLLIN | (WantsToSend(conns_[i]) ? POLLOUT : 0)),
            0};
      }
      if (poll(fds.data(), fds.size(), 100) < 0 && errno != EINTR) {
        return absl::ErrnoToStatus(errno, "poll");
      }
      // Walk backwards: a finished connection is swapped with the last.
      for (size_t i = fds.size(); i-- > 0;) {
        if (fds[i].revents == 0) continue;
        absl::StatusOr<bool> done = Step(conns_[i], fds[i].revents);
        if (!done.ok()) return done.status();
        if (!*done) continue;
        std::swap(conns_[i], conns_.back());
        conns_.pop_back();
        if (!stopping) {
          if (absl::Status s = Open(); !s.ok()) return s;
        }
      }
    }
    return figures_;
  }

 private:
  static constexpr uint64_t kWindow = 256 << 10;  // unanswered bytes allowed
  static constexpr size_t kMaxSegment = 16384;

  struct Conn {
    UniqueFd fd;
    uint64_t key = 0;
    uint64_t target = 0;  // bytes to send before the half-close
    uint64_t sent = 0;
    uint64_t received = 0;
    bool half_closed = false;
  };

  static bool WantsToSend(const Conn& c) {
    return !c.half_closed && c.sent < c.target && c.sent - c.received < kWindow;
  }

  absl::Status Open() {
    absl::StatusOr<UniqueFd> fd = Connect(port_);
    if (!fd.ok()) return fd.status();
    fcntl(fd->get(), F_SETFL, fcntl(fd->get(), F_GETFL) | O_NONBLOCK);
    Conn c;
    c.fd = *std::move(fd);
    c.key = Mix(++next_key_ ^ rng_());
    // One in ten sends nothing at all; the rest up to 1 MiB.
    c.target = rng_() % 10 == 0 ? 0 : 1 + rng_() % (1 << 20);
    if (absl::Status s = MaybeHalfClose(c); !s.ok()) return s;
    conns_.push_back(std::move(c));
    return absl::OkStatus();
  }

  absl::Status MaybeHalfClose(Conn& c) {
    if (c.half_closed || c.sent < c.target) return absl::OkStatus();
    if (shutdown(c.fd.get(), SHUT_WR) != 0) {
      return absl::ErrnoToStatus(errno, "shutdown");
    }
    c.half_closed = true;
    return absl::OkStatus();
  }

  // Handles one poll result; true once the connection is complete.
  absl::StatusOr<bool> Step(Conn& c, short revents) {
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = recv(c.fd.get(), in_, sizeof(in_), 0);
      if (n > 0) {
        FillStream(c.key, c.received, expected_, static_cast<size_t>(n));
        for (ssize_t i = 0; i < n; ++i) {
          if (in_[i] != Upper(expected_[i])) {
            return absl::DataLossError(absl::StrCat(
                "connection ", c.key, ": wrong byte at offset ", c.received + i,
                " (", figures_.connections, " connections verified before)"));
          }
        }
        c.received += static_cast<uint64_t>(n);
        if (c.received > c.sent) {
          return absl::DataLossError("received more than was sent");
        }
      } else if (n == 0) {
        if (!c.half_closed || c.received != c.target) {
          return absl::DataLossError(absl::StrCat("EOF after ", c.received,
                                                  " of ", c.target, " bytes"));
        }
        ++figures_.connections;
        figures_.bytes += c.received;
        return true;
      } else if (errno != EAGAIN && errno != EINTR) {
        return absl::ErrnoToStatus(
            errno, absl::StrCat("recv after ", c.received, " bytes"));
      }
    }
    if ((revents & POLLOUT) && WantsToSend(c)) {
      const size_t size =
          std::min<uint64_t>({1 + rng_() % kMaxSegment, c.target - c.sent,
                              kWindow - (c.sent - c.received)});
      FillStream(c.key, c.sent, out_, size);
      const ssize_t n = send(c.fd.get(), out_, size, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<uint64_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return absl::ErrnoToStatus(errno, absl::StrCat("send after ", c.sent));
      }
      if (absl::Status s = MaybeHalfClose(c); !s.ok()) return s;
    }
    return false;
  }

  const uint16_t port_;
  const int concurrency_;
  std::mt19937_64 rng_;
  std::function<int()> count_workers_;
  std::vector<Conn> conns_;
  uint64_t next_key_ = 0;
  LoadFigures figures_;
  char in_[65536];
  char expected_[65536];
  char out_[kMaxSegment];
};

class SoakTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SoakTest, ThousandConnectionsStayExactAndLeaveNothingBehind) {
  const int concurrency = EnvInt("UPPER_TEST_SOAK_CONNECTIONS", 1000);
  const absl::Duration duration =
      absl::Seconds(EnvInt("UPPER_TEST_SOAK_SECONDS", 10));
  // Our sockets plus upperd's (it inherits the limit), with room to spare.
  ASSERT_TRUE(RaiseFdLimit(2 * concurrency + 1000).ok());
  absl::StatusOr<std::unique_ptr<UpperdProcess>> started =
      UpperdProcess::Start({.args = {absl::StrCat("--mode=", GetParam())}});
  ASSERT_TRUE(started.ok()) << started.status();
  UpperdProcess& upperd = **started;
  ASSERT_TRUE(upperd.WaitForLog("fork_server_started", absl::Seconds(5)).ok());
  std::vector<pid_t> family;
  ASSERT_TRUE(Eventually(
      [&] {
        family = Descendants(upperd.pid());
        return family.size() == 1;
      },
      absl::Seconds(5)));
  const int start_fds = CountFds(upperd.pid());
  const int start_threads = CountThreads(upperd.pid());
  auto idle = [&] {
    return CountFds(upperd.pid()) == start_fds &&
           CountThreads(upperd.pid()) == start_threads &&
           Descendants(upperd.pid()) == family;
  };
  auto workers = [&] {
    return GetParam() == "thread"
               ? CountThreads(upperd.pid()) - start_threads
               : static_cast<int>(Descendants(upperd.pid()).size()) - 1;
  };

  // Warm-up: the same load briefly, so that allocator arenas, thread stack
  // caches and the like reach their working size before RSS is measured.
  LoadDriver warmup(upperd.data_port(), concurrency, 1, workers);
  absl::StatusOr<LoadFigures> warm = warmup.Run(absl::Seconds(2));
  ASSERT_TRUE(warm.ok()) << warm.status();
  ASSERT_TRUE(Eventually(idle, absl::Seconds(10)));
  const std::optional<int64_t> rss_warm = PrivateRssKib(upperd.pid());
  const std::optional<int64_t> total_rss_warm = RssKib(upperd.pid());

  const absl::Time start = absl::Now();
  LoadDriver soak(upperd.data_port(), concurrency, 2, workers);
  absl::StatusOr<LoadFigures> load = soak.Run(duration);
  ASSERT_TRUE(load.ok()) << load.status();
  const absl::Duration took = absl::Now() - start;

  // Everything is given back.
  EXPECT_TRUE(Eventually(idle, absl::Seconds(10)))
      << CountFds(upperd.pid()) << " fds (start " << start_fds << "), "
      << CountThreads(upperd.pid()) << " threads (start " << start_threads
      << "), " << Descendants(upperd.pid()).size() << " descendants";
  EXPECT_TRUE(ZombieDescendants(upperd.pid()).empty());
  // RSS without the shared connection table, whose pages become resident as
  // slots are first used (the soak uses more of them than the warm-up); the
  // table itself is bounded by --max_connections (10,000 x 128 bytes).
  const std::optional<int64_t> rss_after = PrivateRssKib(upperd.pid());
  const std::optional<int64_t> total_rss_after = RssKib(upperd.pid());
  const std::optional<int64_t> shared_after = SharedRssKib(upperd.pid());
  ASSERT_TRUE(rss_warm && rss_after && total_rss_warm && total_rss_after &&
              shared_after);
  EXPECT_LE(*rss_after, *rss_warm * 11 / 10)
      << "RSS (private) grew from " << *rss_warm << " KiB to " << *rss_after
      << " KiB";
  EXPECT_LE(*shared_after, 10000 * 128 / 1024 + 64);

  upperd.Signal(SIGTERM);
  absl::StatusOr<int> code = upperd.WaitExit(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  const uint64_t connections = warm->connections + load->connections;
  const uint64_t bytes = warm->bytes + load->bytes;
  EXPECT_EQ(FinalTotal(upperd, "accepted"), connections) << upperd.Log();
  EXPECT_EQ(FinalTotal(upperd, "closed"), connections);
  EXPECT_EQ(FinalTotal(upperd, "rejected"), 0u);
  EXPECT_EQ(FinalTotal(upperd, "active"), 0u);
  EXPECT_EQ(FinalTotal(upperd, "bytes_in"), bytes);
  EXPECT_EQ(FinalTotal(upperd, "bytes_out"), bytes);
  EXPECT_EQ(FinalTotal(upperd, "worker_crashes"), 0u);

  std::printf(
      "soak %s: %d concurrent for %s: %llu connections, %llu bytes verified "
      "(%.0f MB/s each way), peak %d workers; RSS without the shared table "
      "%lld KiB after warm-up, %lld KiB after (total %lld -> %lld KiB); fds "
      "%d, threads %d before and after\n",
      GetParam().c_str(), concurrency, absl::FormatDuration(took).c_str(),
      static_cast<unsigned long long>(load->connections),
      static_cast<unsigned long long>(load->bytes),
      static_cast<double>(load->bytes) / absl::ToDoubleSeconds(took) / 1e6,
      load->peak_workers, static_cast<long long>(*rss_warm),
      static_cast<long long>(*rss_after),
      static_cast<long long>(*total_rss_warm),
      static_cast<long long>(*total_rss_after), start_fds, start_threads);
  RecordProperty("connections", std::to_string(load->connections));
  RecordProperty("bytes_verified", std::to_string(load->bytes));
  RecordProperty("peak_workers", std::to_string(load->peak_workers));
}

INSTANTIATE_TEST_SUITE_P(BothModes, SoakTest,
                         ::testing::Values("thread", "fork"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace upper::testing
