// LoadDriver: many concurrent connections against upperd's data port from
// one poll loop, each streaming its own pseudo-random bytes (all 256
// values, derived from a per-connection key) with random segmentation and
// sizes, half-closing, and reconnecting, with every byte verified as it
// comes back. A byte from any other connection would not match its stream,
// so the driver also proves a connection never reads another's bytes.
//
// Thread-compatible: one driver is used by one thread; several drivers may
// run side by side (they share nothing).
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"

namespace upper::testing {

struct LoadFigures {
  uint64_t connections = 0;  // completed, every byte verified
  uint64_t bytes = 0;        // verified (each way)
  int peak_workers = 0;      // upperd threads or fork children seen at once
};

struct LoadOptions {
  uint16_t port = 0;
  int concurrency = 1000;  // connections open at once
  uint64_t seed = 1;
  // Each connection sends 1..max_stream_bytes (one in ten sends nothing)
  // before it half-closes: large for long streams, small for short
  // connect-send-close clients.
  uint64_t max_stream_bytes = 1 << 20;
  // Sampled once a second for LoadFigures::peak_workers; may be empty.
  std::function<int()> count_workers;
};

class LoadDriver {
 public:
  explicit LoadDriver(LoadOptions options);

  // Keeps `concurrency` connections open until `duration` passes, then lets
  // each finish what it sent (bounded by a further 90 s). Fails on the first
  // wrong or missing byte, a refused connection or an early EOF.
  absl::StatusOr<LoadFigures> Run(absl::Duration duration);

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

  static bool WantsToSend(const Conn& c);
  absl::Status Open();
  absl::Status MaybeHalfClose(Conn& c);
  // Handles one poll result; true once the connection is complete.
  absl::StatusOr<bool> Step(Conn& c, short revents);

  const LoadOptions options_;
  std::mt19937_64 rng_;
  std::vector<Conn> conns_;
  uint64_t next_key_ = 0;
  LoadFigures figures_;
  char in_[65536];
  char expected_[65536];
  char out_[kMaxSegment];
};

}  // namespace upper::testing
