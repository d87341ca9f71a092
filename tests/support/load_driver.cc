#include "tests/support/load_driver.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/tcp.h"

namespace upper::testing {

namespace {

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

// Bytes [offset, offset + size) of the stream with `key`: all 256 values,
// no pattern another stream shares.
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

}  // namespace

LoadDriver::LoadDriver(LoadOptions options)
    : options_(std::move(options)), rng_(options_.seed) {}

absl::StatusOr<LoadFigures> LoadDriver::Run(absl::Duration duration) {
  const absl::Time end = absl::Now() + duration;
  const absl::Time hard_end = end + absl::Seconds(90);
  for (int i = 0; i < options_.concurrency; ++i) {
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
    if (now >= next_sample && options_.count_workers) {
      figures_.peak_workers =
          std::max(figures_.peak_workers, options_.count_workers());
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

bool LoadDriver::WantsToSend(const Conn& c) {
  return !c.half_closed && c.sent < c.target && c.sent - c.received < kWindow;
}

absl::Status LoadDriver::Open() {
  absl::StatusOr<UniqueFd> fd = Connect(options_.port);
  if (!fd.ok()) return fd.status();
  fcntl(fd->get(), F_SETFL, fcntl(fd->get(), F_GETFL) | O_NONBLOCK);
  Conn c;
  c.fd = *std::move(fd);
  c.key = Mix(++next_key_ ^ rng_());
  // One in ten sends nothing at all; the rest up to max_stream_bytes.
  c.target = rng_() % 10 == 0 ? 0 : 1 + rng_() % options_.max_stream_bytes;
  if (absl::Status s = MaybeHalfClose(c); !s.ok()) return s;
  conns_.push_back(std::move(c));
  return absl::OkStatus();
}

absl::Status LoadDriver::MaybeHalfClose(Conn& c) {
  if (c.half_closed || c.sent < c.target) return absl::OkStatus();
  if (shutdown(c.fd.get(), SHUT_WR) != 0) {
    return absl::ErrnoToStatus(errno, "shutdown");
  }
  c.half_closed = true;
  return absl::OkStatus();
}

absl::StatusOr<bool> LoadDriver::Step(Conn& c, short revents) {
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
        return absl::DataLossError(
            absl::StrCat("EOF after ", c.received, " of ", c.target, " bytes"));
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

}  // namespace upper::testing
