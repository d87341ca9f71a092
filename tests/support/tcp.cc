#include "tests/support/tcp.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <future>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errno_status.h"
#include "tests/support/proc.h"

namespace upper::testing {
namespace {

// Waits until `fd` is ready for `events` or the deadline passes.
absl::Status WaitReady(int fd, short events, absl::Time deadline) {
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("socket not ready in time");
    }
    pollfd p = {fd, events, 0};
    const int r =
        poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (r > 0) return absl::OkStatus();
    if (r < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "poll");
  }
}

// Parent pid and state letter from /proc/<pid>/stat.
bool ReadStat(pid_t pid, pid_t* ppid, char* state) {
  const std::optional<ProcStat> stat = ReadProcStat(pid);
  if (!stat) return false;
  *ppid = stat->ppid;
  *state = stat->state;
  return true;
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return pids;
  while (dirent* e = readdir(dir)) {
    int pid = 0;
    if (absl::SimpleAtoi(e->d_name, &pid)) pids.push_back(pid);
  }
  closedir(dir);
  return pids;
}

std::vector<pid_t> DescendantsWhere(pid_t root, bool zombies_only) {
  std::vector<std::pair<pid_t, std::pair<pid_t, char>>> table;
  for (pid_t pid : AllPids()) {
    pid_t ppid;
    char state;
    if (ReadStat(pid, &ppid, &state)) table.push_back({pid, {ppid, state}});
  }
  std::vector<pid_t> family = {root}, out;
  for (size_t i = 0; i < family.size(); ++i) {
    for (const auto& [pid, info] : table) {
      if (info.first != family[i]) continue;
      family.push_back(pid);
      if (!zombies_only || info.second == 'Z') out.push_back(pid);
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<UniqueFd> Connect(uint16_t port) {
  return Connect("127.0.0.1", port);
}

absl::StatusOr<UniqueFd> Connect(const std::string& ip, uint16_t port) {
  sockaddr_storage storage = {};
  socklen_t len = 0;
  auto* in = reinterpret_cast<sockaddr_in*>(&storage);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, ip.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    len = sizeof(*in);
  } else if (inet_pton(AF_INET6, ip.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    len = sizeof(*in6);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("not an IP: ", ip));
  }
  UniqueFd fd(socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return absl::ErrnoToStatus(errno, "socket");
  if (RetryOnEintr([&] {
        return connect(fd.get(), reinterpret_cast<sockaddr*>(&storage), len);
      }) != 0) {
    return absl::ErrnoToStatus(errno,
                               absl::StrCat("connect to ", ip, " port ", port));
  }
  return fd;
}

std::string RandomPayload(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

std::string ExpectedUpper(const std::string& data) {
  std::string out = data;
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

absl::Status SendSegmented(int fd, const std::string& data, size_t max_segment,
                           std::mt19937_64& rng, bool half_close) {
  size_t offset = 0;
  while (offset < data.size()) {
    const size_t segment =
        std::min(data.size() - offset, 1 + rng() % max_segment);
    const ssize_t n = send(fd, data.data() + offset, segment, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, "send");
    offset += static_cast<size_t>(n);
  }
  if (half_close && shutdown(fd, SHUT_WR) != 0) {
    return absl::ErrnoToStatus(errno, "shutdown");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadUntilEof(int fd, absl::Time deadline) {
  std::string out;
  char buffer[65536];
  for (;;) {
    if (absl::Status s = WaitReady(fd, POLLIN, deadline); !s.ok()) {
      return absl::DeadlineExceededError(
          absl::StrCat("no EOF in time after ", out.size(), " bytes"));
    }
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::ErrnoToStatus(
          errno, absl::StrCat("recv after ", out.size(), " bytes"));
    }
    if (n == 0) return out;
    out.append(buffer, static_cast<size_t>(n));
  }
}

absl::StatusOr<std::string> ReadExactly(int fd, size_t size,
                                        absl::Time deadline) {
  std::string out;
  char buffer[65536];
  while (out.size() < size) {
    if (absl::Status s = WaitReady(fd, POLLIN, deadline); !s.ok()) return s;
    const ssize_t n =
        recv(fd, buffer, std::min(sizeof(buffer), size - out.size()), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, "recv");
    if (n == 0) {
      return absl::DataLossError(
          absl::StrCat("EOF after ", out.size(), " of ", size, " bytes"));
    }
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

absl::StatusOr<std::string> Exchange(uint16_t port, const std::string& data,
                                     size_t max_segment, uint64_t seed,
                                     absl::Duration timeout) {
  absl::StatusOr<UniqueFd> fd = Connect(port);
  if (!fd.ok()) return fd.status();
  const absl::Time deadline = absl::Now() + timeout;
  const int raw = fd->get();
  auto reply = std::async(std::launch::async, [raw, deadline] {
    return ReadUntilEof(raw, deadline);
  });
  std::mt19937_64 rng(seed);
  const absl::Status sent =
      SendSegmented(raw, data, max_segment, rng, /*half_close=*/true);
  // If sending failed, unblock the reader so the error is reported promptly.
  if (!sent.ok()) shutdown(raw, SHUT_RDWR);
  absl::StatusOr<std::string> received = reply.get();
  if (!sent.ok()) return sent;
  return received;
}

int CountFds(pid_t pid) {
  int count = 0;
  DIR* dir = opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  if (dir == nullptr) return -1;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++count;
  }
  closedir(dir);
  // Listing our own fds shows the DIR's descriptor too.
  return pid == getpid() ? count - 1 : count;
}

uint64_t SendUntilStalled(int fd, absl::Duration stall, uint64_t limit) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::string chunk(1 << 16, '\0');
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = 'a' + i % 26;
  uint64_t sent = 0;
  absl::Time last_progress = absl::Now();
  while (sent < limit && absl::Now() - last_progress < stall) {
    // Keep the alphabet's phase across partial sends.
    const size_t phase = sent % 26;
    const ssize_t n =
        send(fd, chunk.data() + phase, chunk.size() - 26, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<uint64_t>(n);
      last_progress = absl::Now();
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) break;
    pollfd p = {fd, POLLOUT, 0};
    poll(&p, 1, 50);
  }
  return sent;
}

std::vector<pid_t> Descendants(pid_t pid) {
  return DescendantsWhere(pid, /*zombies_only=*/false);
}

std::vector<pid_t> ZombieDescendants(pid_t pid) {
  return DescendantsWhere(pid, /*zombies_only=*/true);
}

}  // namespace upper::testing
