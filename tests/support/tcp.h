// Test-side TCP and /proc helpers: connect to a loopback port, exchange a
// payload with random segmentation while reading concurrently, and inspect
// a server's processes and descriptors. Every blocking call is bounded by a
// deadline so a broken server fails a test instead of hanging it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"

namespace upper::testing {

// A blocking TCP connection to 127.0.0.1:`port`.
absl::StatusOr<UniqueFd> Connect(uint16_t port);
// A blocking TCP connection to `ip`:`port`, `ip` an IPv4 or IPv6 literal
// ("::1").
absl::StatusOr<UniqueFd> Connect(const std::string& ip, uint16_t port);

// `size` random bytes (all 256 values) from `seed`.
std::string RandomPayload(size_t size, uint64_t seed);
// What upperd must send back for `data`.
std::string ExpectedUpper(const std::string& data);

// Sends all of `data` in segments of random size (1..max_segment, from
// `rng`); half-closes (SHUT_WR) at the end when `half_close`.
absl::Status SendSegmented(int fd, const std::string& data, size_t max_segment,
                           std::mt19937_64& rng, bool half_close);
// Reads until EOF or `deadline`; fails on a read error or the deadline.
absl::StatusOr<std::string> ReadUntilEof(int fd, absl::Time deadline);
// Reads exactly `size` bytes or fails at EOF, an error or the deadline.
absl::StatusOr<std::string> ReadExactly(int fd, size_t size,
                                        absl::Time deadline);

// Sends `data` (random segments) while a second thread reads the reply;
// half-closes after the last byte and returns everything read until EOF.
absl::StatusOr<std::string> Exchange(uint16_t port, const std::string& data,
                                     size_t max_segment, uint64_t seed,
                                     absl::Duration timeout);

// Sends from `fd` (made non-blocking) without ever reading, until nothing
// more goes out for `stall` or `limit` bytes went; returns what was sent.
// Everything sent is the repeated lower-case alphabet.
uint64_t SendUntilStalled(int fd, absl::Duration stall, uint64_t limit);

// Open descriptors of `pid` (entries of /proc/pid/fd).
int CountFds(pid_t pid);
// Every live descendant of `pid`, and those of them that are zombies.
std::vector<pid_t> Descendants(pid_t pid);
std::vector<pid_t> ZombieDescendants(pid_t pid);
// Polls `predicate` every 10 ms until it holds or `timeout` passes.
template <typename F>
bool Eventually(F predicate, absl::Duration timeout);

}  // namespace upper::testing

#include "absl/time/clock.h"

template <typename F>
bool upper::testing::Eventually(F predicate, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (predicate()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
}
