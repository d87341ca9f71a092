// upper-bench: a load generator for upperd's data port (and anything else
// that upper-cases a TCP stream), with a check of every byte it gets back.
//
// Each scenario drives --connections sockets from --threads client threads,
// each thread with its own level-triggered epoll loop, and returns a Report:
// the figures it measured plus how many errors and byte mismatches it saw.
// Every loop is bounded in time (--seconds plus --timeout) and in count.
//
// Thread-safety: Errors is thread-safe; Histogram and Report belong to one
// thread at a time (scenarios merge per-thread copies after joining).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace upper::bench {

struct Options {
  std::string scenario;
  std::string addr = "127.0.0.1:9999";
  int connections = 16;
  std::size_t size = 64;    // request (pingpong, churn, hold) or chunk size
  double seconds = 3;       // measurement time (hold: how long to hold)
  int threads = 1;          // client threads, each with its own epoll
  std::string mode_label;   // copied into the output, e.g. "upperd-thread"
  int server_pid = 0;       // hold: whose memory to measure
  double timeout = 10;      // bound on connect, drain and any one operation
  double settle = 1;        // hold: wait before measuring memory
  int ramp_parallel = 256;  // hold: connects in flight at once
};

// A parsed --addr.
struct Endpoint {
  sockaddr_storage addr = {};
  socklen_t len = 0;
};

// Deterministic test data: every byte value, lower-case letters over-
// represented. Plain(o) and Upper(o) point at kPeriod contiguous bytes of the
// infinite periodic stream starting at stream offset o.
inline constexpr std::size_t kPeriod = 131071;  // prime: chunks never align
class Pattern {
 public:
  static const Pattern& Get();
  const char* Plain(uint64_t offset) const {
    return plain_.data() + offset % kPeriod;
  }
  const char* Upper(uint64_t offset) const {
    return upper_.data() + offset % kPeriod;
  }

 private:
  Pattern();
  std::vector<char> plain_;
  std::vector<char> upper_;
};

// Log-linear latency histogram (about 3% resolution), in nanoseconds.
class Histogram {
 public:
  Histogram() : buckets_(64 << kSubBits, 0) {}
  void Add(uint64_t ns);
  void Merge(const Histogram& other);
  uint64_t count() const { return count_; }
  // The value below which a fraction p (0..1) of the samples fall, in us.
  double PercentileUs(double p) const;

 private:
  static constexpr int kSubBits = 5;
  static std::size_t Index(uint64_t ns);
  static uint64_t Upper(std::size_t index);
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
};

// Errors and byte mismatches seen by any thread; keeps the first message.
class Errors {
 public:
  void Fail(const std::string& what);
  void Mismatch(const std::string& what);
  uint64_t errors() const { return errors_.load(); }
  uint64_t mismatches() const { return mismatches_.load(); }
  std::string first() const;

 private:
  void Keep(const std::string& what);
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> mismatches_{0};
  mutable std::mutex mu_;
  std::string first_;
};

// The figures a scenario reports, in output order.
struct Report {
  void Add(std::string key, double value) {
    values.emplace_back(std::move(key), value);
  }
  std::vector<std::pair<std::string, double>> values;
};

// Monotonic clock in nanoseconds.
uint64_t NowNs();
inline uint64_t SecondsToNs(double s) { return static_cast<uint64_t>(s * 1e9); }

bool ParseEndpoint(const std::string& text, Endpoint* out);

// One "--name=value" argument of either load tool: `name` with '-' read as
// '_', and `number` set when `value` is a finite number >= 0.
struct FlagArg {
  std::string name;
  std::string value;
  std::optional<double> number;
};
// False with *why unless `arg` has the form --name=value.
bool SplitFlag(const std::string& arg, FlagArg* out, std::string* why);
// The message for a flag that needed a non-negative number.
std::string NotANumber(const FlagArg& flag);

// A non-blocking TCP socket with TCP_NODELAY whose connect() has started.
// Returns -1 (and sets *err) on failure; *pending tells EINPROGRESS.
int StartConnect(const Endpoint& endpoint, bool* pending, int* err,
                 std::optional<uint32_t> spread_source = std::nullopt);
// For a pending connect: 0 once connected, else the socket error.
int ConnectResult(int fd);
// Connects with a bound of `timeout_s`; a non-blocking fd or -1 (and *err).
int ConnectWithin(const Endpoint& endpoint, double timeout_s, int* err);

// Checks `got` against the upper-cased pattern at `offset`; on a mismatch
// records where and returns false.
bool CheckBytes(const char* got, std::size_t n, uint64_t offset,
                const char* what, Errors& errors);

// Runs fn(i) for i in [0, n) on n threads and joins them.
void RunThreads(int n, const std::function<void(int)>& fn);
// Which connections thread `t` of `threads` drives: [begin, end).
std::pair<int, int> Share(int connections, int threads, int t);

// The common driver of the epoll scenarios: one Worker(o, errors) per client
// thread, each running Run(endpoint, its share of o.connections, stop_ns).
// Returns the workers so the scenario can sum their figures.
template <typename Worker>
std::vector<Worker> RunWorkers(const Options& o, const Endpoint& e,
                               Errors& errors, uint64_t stop_ns) {
  std::vector<Worker> workers;
  workers.reserve(static_cast<std::size_t>(o.threads));
  for (int t = 0; t < o.threads; ++t) workers.emplace_back(o, errors);
  RunThreads(o.threads, [&](int t) {
    const auto [begin, end] = Share(o.connections, o.threads, t);
    workers[static_cast<std::size_t>(t)].Run(e, end - begin, stop_ns);
  });
  return workers;
}

// Memory of the server under test, from /proc.
struct MemorySample {
  double server_rss_kib = 0;       // VmRSS of the server process
  double tree_pss_kib = 0;         // Pss summed over it and its descendants
  int descendants = 0;             // processes below it
  double descendants_pss_kib = 0;  // Pss summed over the descendants only
};
MemorySample SampleMemory(int pid);

// JSON output: a string literal with escapes, and a number (integers exact).
std::string JsonString(const std::string& s);
std::string Number(double v);

Report RunPingpong(const Options& o, const Endpoint& e, Errors& errors);
Report RunStream(const Options& o, const Endpoint& e, Errors& errors);
Report RunChurn(const Options& o, const Endpoint& e, Errors& errors);
Report RunHold(const Options& o, const Endpoint& e, Errors& errors);

}  // namespace upper::bench
