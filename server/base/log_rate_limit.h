// LogRateLimit: at most `lines` log lines per `interval` for one kind of
// event that a peer can trigger at will (failed authentications, gRPC's
// complaints about a peer's bad headers); the rest are counted, and the next
// line that gets through says how many were dropped, so nothing is lost
// silently and stderr cannot be flooded.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace upper {

class LogRateLimit {
 public:
  LogRateLimit(int lines, absl::Duration interval)
      : lines_(lines), interval_(interval) {}

  // True when a line may be written now; then `suppressed` is the number
  // dropped since the last line that was.
  bool Admit(uint64_t& suppressed) {
    std::lock_guard lock(mu_);
    const absl::Time now = absl::Now();
    if (now >= window_end_) {
      window_end_ = now + interval_;
      written_ = 0;
    }
    if (written_ >= lines_) {
      ++suppressed_;
      return false;
    }
    ++written_;
    suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }

 private:
  const int lines_;
  const absl::Duration interval_;
  std::mutex mu_;
  absl::Time window_end_ = absl::InfinitePast();  // under mu_
  int written_ = 0;                               // under mu_
  uint64_t suppressed_ = 0;                       // under mu_
};

}  // namespace upper
