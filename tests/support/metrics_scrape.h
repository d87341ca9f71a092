// Test-side Prometheus scraping: a tiny HTTP/1.0 GET over a loopback socket
// and a parser for the text exposition format, so integration tests can read
// upperd's /metrics exactly as Prometheus does, without an HTTP library.
// Every call is bounded by a timeout. Thread-compatible (no shared state).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace upper::testing {

// GET http://127.0.0.1:`port``path`; the body of a 200 response, else an
// error naming the status line.
absl::StatusOr<std::string> HttpGet(uint16_t port, const std::string& path,
                                    absl::Duration timeout);
// The same from `ip` (an IPv4 or IPv6 literal, e.g. "::1").
absl::StatusOr<std::string> HttpGet(const std::string& ip, uint16_t port,
                                    const std::string& path,
                                    absl::Duration timeout);

// Samples of a text exposition, keyed by the series exactly as written
// (`name{label="value",...}` or `name`). Comments and blank lines are
// skipped; a malformed sample line is an error.
absl::StatusOr<std::map<std::string, double>> ParseExposition(
    const std::string& text);

// A scrape of /metrics on `port`, parsed.
class Scrape {
 public:
  Scrape() = default;  // empty: every Value() is -1
  static absl::StatusOr<Scrape> Get(uint16_t port,
                                    absl::Duration timeout = absl::Seconds(10));

  const std::string& text() const { return text_; }
  bool Has(const std::string& series) const;
  // The sample's value, or -1 if the series is missing (counters and gauges
  // here are never negative, so a missing series fails an equality check).
  double Value(const std::string& series) const;

 private:
  Scrape(std::string text, std::map<std::string, double> samples)
      : text_(std::move(text)), samples_(std::move(samples)) {}
  std::string text_;
  std::map<std::string, double> samples_;
};

}  // namespace upper::testing
