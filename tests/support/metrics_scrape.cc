#include "tests/support/metrics_scrape.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/host_port.h"
#include "tests/support/tcp.h"

namespace upper::testing {

absl::StatusOr<std::string> HttpGet(uint16_t port, const std::string& path,
                                    absl::Duration timeout) {
  return HttpGet("127.0.0.1", port, path, timeout);
}

absl::StatusOr<std::string> HttpGet(const std::string& ip, uint16_t port,
                                    const std::string& path,
                                    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<UniqueFd> fd = Connect(ip, port);
  if (!fd.ok()) return fd.status();
  // HTTP/1.0 and Connection: close: the body ends at EOF, never chunked.
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", JoinHostPort(ip, port),
                   "\r\nConnection: close\r\n\r\n");
  size_t written = 0;
  while (written < request.size()) {
    const ssize_t n = send(fd->get(), request.data() + written,
                           request.size() - written, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, "send HTTP request");
    written += static_cast<size_t>(n);
  }
  absl::StatusOr<std::string> response = ReadUntilEof(fd->get(), deadline);
  if (!response.ok()) return response.status();
  const size_t header_end = response->find("\r\n\r\n");
  if (header_end == std::string::npos) {
    return absl::DataLossError(
        absl::StrCat("no end of HTTP headers in: ", *response));
  }
  const std::string status_line = response->substr(0, response->find("\r\n"));
  if (!absl::StartsWith(status_line, "HTTP/1.") ||
      !absl::StrContains(status_line, " 200 ")) {
    return absl::UnavailableError(
        absl::StrCat("GET ", path, ": ", status_line));
  }
  return response->substr(header_end + 4);
}

absl::StatusOr<std::map<std::string, double>> ParseExposition(
    const std::string& text) {
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    // Label values here never hold spaces, so the value follows the last
    // space (prometheus-cpp writes no timestamps).
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) {
      return absl::DataLossError(absl::StrCat("bad sample line: ", line));
    }
    const std::string value_text(line.substr(space + 1));
    char* end = nullptr;
    const double value = std::strtod(value_text.c_str(), &end);
    if (end == value_text.c_str() || *end != '\0') {
      return absl::DataLossError(absl::StrCat("bad sample value: ", line));
    }
    samples[std::string(line.substr(0, space))] = value;
  }
  return samples;
}

absl::StatusOr<Scrape> Scrape::Get(uint16_t port, absl::Duration timeout) {
  absl::StatusOr<std::string> body = HttpGet(port, "/metrics", timeout);
  if (!body.ok()) return body.status();
  absl::StatusOr<std::map<std::string, double>> samples =
      ParseExposition(*body);
  if (!samples.ok()) return samples.status();
  return Scrape(*std::move(body), *std::move(samples));
}

bool Scrape::Has(const std::string& series) const {
  return samples_.count(series) > 0;
}

double Scrape::Value(const std::string& series) const {
  const auto it = samples_.find(series);
  return it == samples_.end() ? -1 : it->second;
}

}  // namespace upper::testing
