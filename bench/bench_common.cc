// Shared pieces of upper-bench: test data, histogram, errors, sockets, /proc.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "bench/upper_bench.h"

namespace upper::bench {

Pattern::Pattern() : plain_(2 * kPeriod), upper_(2 * kPeriod) {
  uint64_t x = 0x9E3779B97F4A7C15u;  // xorshift64: the same data every run
  for (std::size_t i = 0; i < kPeriod; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    // Half the bytes lower-case letters, the rest any value at all.
    const unsigned char c = (x & 1) ? static_cast<unsigned char>('a' + x % 26)
                                    : static_cast<unsigned char>(x >> 24);
    const unsigned char u = (c >= 'a' && c <= 'z') ? c - 32 : c;
    plain_[i] = plain_[i + kPeriod] = static_cast<char>(c);
    upper_[i] = upper_[i + kPeriod] = static_cast<char>(u);
  }
}

const Pattern& Pattern::Get() {
  static const Pattern* pattern = new Pattern();
  return *pattern;
}

std::size_t Histogram::Index(uint64_t ns) {
  if (ns < (1u << kSubBits)) return ns;
  const int msb = 63 - std::countl_zero(ns);
  const int shift = msb - kSubBits;
  return (static_cast<std::size_t>(shift + 1) << kSubBits) +
         ((ns >> shift) & ((1u << kSubBits) - 1));
}

uint64_t Histogram::Upper(std::size_t index) {
  if (index < (1u << kSubBits)) return index;
  const int shift = static_cast<int>(index >> kSubBits) - 1;
  const uint64_t sub = index & ((1u << kSubBits) - 1);
  return (((1u << kSubBits) + sub + 1) << shift) - 1;
}

void Histogram::Add(uint64_t ns) {
  ++buckets_[Index(ns)];
  ++count_;
}

void Histogram::Merge(const Histogram& other) {
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    buckets_[i] += other.buckets_[i];
  }
  count_ += other.count_;
}

double Histogram::PercentileUs(double p) const {
  if (count_ == 0) return 0;
  const auto rank = static_cast<uint64_t>(std::ceil(p * count_));
  uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank && buckets_[i] > 0) return Upper(i) / 1000.0;
  }
  return Upper(buckets_.size() - 1) / 1000.0;
}

void Errors::Keep(const std::string& what) {
  std::lock_guard lock(mu_);
  if (first_.empty()) first_ = what;
}
void Errors::Fail(const std::string& what) {
  ++errors_;
  Keep(what);
}
void Errors::Mismatch(const std::string& what) {
  ++mismatches_;
  Keep(what);
}
std::string Errors::first() const {
  std::lock_guard lock(mu_);
  return first_;
}

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u +
         static_cast<uint64_t>(ts.tv_nsec);
}

bool ParseEndpoint(const std::string& text, Endpoint* out) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = text.substr(0, colon);
  const int port = std::atoi(text.c_str() + colon + 1);
  if (port <= 0 || port > 65535) return false;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") host = "127.0.0.1";
  *out = Endpoint();
  auto* in = reinterpret_cast<sockaddr_in*>(&out->addr);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out->addr);
  if (inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof(sockaddr_in);
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

namespace {

// Binds fd to 127.0.0.(2 + n % 250), the port left to connect()
// (IP_BIND_ADDRESS_NO_PORT), when the endpoint is 127.0.0.1. Each source
// address has its own ephemeral ports towards the server, so the TIME_WAIT
// entries churn leaves (130,000 after a full run here; the client closes
// first) are spread over 250 times the ports: from one address connect()
// itself tops out near 14,400 conn/s on this box, for every server alike.
bool BindSpreadSource(int fd, const Endpoint& endpoint, uint32_t n) {
  if (endpoint.addr.ss_family != AF_INET) return true;
  const auto* to = reinterpret_cast<const sockaddr_in*>(&endpoint.addr);
  if (to->sin_addr.s_addr != htonl(INADDR_LOOPBACK)) return true;
  const int one = 1;
  // Unchecked: without it bind() picks a port itself, which still works,
  // only with less sharing of ports between source addresses.
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 + n % 250);
  return bind(fd, reinterpret_cast<const sockaddr*>(&from), sizeof(from)) == 0;
}

}  // namespace

int StartConnect(const Endpoint& endpoint, bool* pending, int* err,
                 std::optional<uint32_t> spread_source) {
  const int fd = socket(endpoint.addr.ss_family,
                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
  if (spread_source && !BindSpreadSource(fd, endpoint, *spread_source)) {
    *err = errno;
    close(fd);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  *pending = false;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&endpoint.addr),
              endpoint.len) != 0) {
    if (errno != EINPROGRESS) {
      *err = errno;
      close(fd);
      return -1;
    }
    *pending = true;
  }
  return fd;
}

int ConnectResult(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

int ConnectWithin(const Endpoint& endpoint, double timeout_s, int* err) {
  bool pending = false;
  const int fd = StartConnect(endpoint, &pending, err);
  if (fd < 0 || !pending) return fd;
  pollfd p = {fd, POLLOUT, 0};
  const int ready = poll(&p, 1, static_cast<int>(timeout_s * 1000));
  *err = ready == 0 ? ETIMEDOUT : ready < 0 ? errno : ConnectResult(fd);
  if (*err != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool CheckBytes(const char* got, std::size_t n, uint64_t offset,
                const char* what, Errors& errors) {
  const char* want = Pattern::Get().Upper(offset);
  if (std::memcmp(got, want, n) == 0) return true;
  std::size_t i = 0;
  while (i < n && got[i] == want[i]) ++i;
  std::ostringstream message;
  message << what << ": byte mismatch at stream offset " << offset + i
          << ": got 0x" << std::hex
          << static_cast<int>(static_cast<unsigned char>(got[i])) << ", want 0x"
          << static_cast<int>(static_cast<unsigned char>(want[i]));
  errors.Mismatch(message.str());
  return false;
}

void RunThreads(int n, const std::function<void(int)>& fn) {
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) threads.emplace_back(fn, i);
  for (std::thread& t : threads) t.join();
}

std::pair<int, int> Share(int connections, int threads, int t) {
  const int base = connections / threads;
  const int extra = connections % threads;
  const int begin = t * base + std::min(t, extra);
  return {begin, begin + base + (t < extra ? 1 : 0)};
}

namespace {

// The value in kB of a "Name:   123 kB" line of a /proc file, or -1.
double ProcKib(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, name.size(), name) == 0) {
      return std::atof(line.c_str() + name.size());
    }
  }
  return -1;
}

// pid -> parent pid for every process we can see.
std::map<int, int> ParentMap() {
  std::map<int, int> parents;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return parents;
  while (dirent* entry = readdir(dir)) {
    const int pid = std::atoi(entry->d_name);
    if (pid <= 0) continue;
    std::ifstream in("/proc/" + std::string(entry->d_name) + "/stat");
    std::string stat;
    std::getline(in, stat);
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const std::size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    std::string state;
    int ppid = 0;
    rest >> state >> ppid;
    parents[pid] = ppid;
  }
  closedir(dir);
  return parents;
}

}  // namespace

MemorySample SampleMemory(int pid) {
  MemorySample sample;
  if (pid <= 0) return sample;
  const std::string self = "/proc/" + std::to_string(pid);
  sample.server_rss_kib = ProcKib(self + "/status", "VmRSS:");
  const double own_pss = ProcKib(self + "/smaps_rollup", "Pss:");
  std::multimap<int, int> children;
  for (const auto& [child, parent] : ParentMap()) {
    children.emplace(parent, child);
  }
  std::vector<int> todo = {pid};
  for (std::size_t i = 0; i < todo.size() && i < 100000; ++i) {
    const auto [begin, end] = children.equal_range(todo[i]);
    for (auto it = begin; it != end; ++it) todo.push_back(it->second);
  }
  for (std::size_t i = 1; i < todo.size(); ++i) {
    const double pss =
        ProcKib("/proc/" + std::to_string(todo[i]) + "/smaps_rollup", "Pss:");
    if (pss < 0) continue;  // exited meanwhile
    ++sample.descendants;
    sample.descendants_pss_kib += pss;
  }
  sample.tree_pss_kib = own_pss + sample.descendants_pss_kib;
  return sample;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\u%04x", c);
      out += hex;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string Number(double v) {
  std::ostringstream out;
  out.precision(v == std::floor(v) && std::fabs(v) < 1e15 ? 15 : 6);
  out << v;
  return out.str();
}

bool SplitFlag(const std::string& arg, FlagArg* out, std::string* why) {
  const std::size_t eq = arg.find('=');
  if (arg.rfind("--", 0) != 0 || eq == std::string::npos) {
    *why = "expected --name=value, got '" + arg + "'";
    return false;
  }
  out->name = arg.substr(2, eq - 2);
  for (char& c : out->name) c = c == '-' ? '_' : c;
  out->value = arg.substr(eq + 1);
  char* end = nullptr;
  const double v = std::strtod(out->value.c_str(), &end);
  out->number.reset();
  if (!out->value.empty() && *end == '\0' && std::isfinite(v) && v >= 0) {
    out->number = v;
  }
  return true;
}

std::string NotANumber(const FlagArg& flag) {
  return "--" + flag.name + ": not a non-negative number: '" + flag.value + "'";
}

}  // namespace upper::bench
