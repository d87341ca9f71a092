// upper-bench: load for an upper-casing TCP server, with every byte checked.
//
//   upper-bench pingpong --addr=127.0.0.1:9999 --connections=16 --size=64
//   upper-bench stream   --connections=1 --size=65536 --seconds=3
//   upper-bench churn    --connections=8 --size=64
//   upper-bench hold     --connections=10000 --server_pid=1234
//
// Prints one JSON object on stdout (for scripts) and one human line on
// stderr. Exit status: 0 all bytes checked and no error, 1 an error or a
// byte mismatch, 2 usage error. Flags accept '-' or '_' (--mode-label).
#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

#include "bench/upper_bench.h"

namespace upper::bench {
namespace {

constexpr char kUsage[] =
    "usage: upper-bench pingpong|stream|churn|hold [--addr=host:port]\n"
    "  [--connections=N] [--size=BYTES] [--seconds=S] [--threads=N]\n"
    "  [--mode_label=TEXT] [--server_pid=PID] [--timeout=S] [--settle=S]\n"
    "  [--ramp_parallel=N]\n";

int Usage(const std::string& why) {
  std::cerr << "upper-bench: " << why << "\n" << kUsage;
  return 2;
}

// Applies one --name=value; false with *why on error.
bool ApplyFlag(const std::string& arg, Options& o, std::string* why) {
  FlagArg flag;
  if (!SplitFlag(arg, &flag, why)) return false;
  const std::string& name = flag.name;
  if (name == "addr") {
    o.addr = flag.value;
    return true;
  }
  if (name == "mode_label") {
    o.mode_label = flag.value;
    return true;
  }
  if (!flag.number) {
    *why = NotANumber(flag);
    return false;
  }
  const double v = *flag.number;
  if (name == "connections" && v >= 1 && v <= 100000) {
    o.connections = static_cast<int>(v);
  } else if (name == "size" && v >= 1 && v <= kPeriod) {
    o.size = static_cast<std::size_t>(v);
  } else if (name == "seconds" && v <= 3600) {
    o.seconds = v;
  } else if (name == "threads" && v >= 1 && v <= 64) {
    o.threads = static_cast<int>(v);
  } else if (name == "server_pid") {
    o.server_pid = static_cast<int>(v);
  } else if (name == "timeout" && v > 0 && v <= 600) {
    o.timeout = v;
  } else if (name == "settle" && v <= 600) {
    o.settle = v;
  } else if (name == "ramp_parallel" && v >= 1 && v <= 10000) {
    o.ramp_parallel = static_cast<int>(v);
  } else {
    *why = "unknown flag or value out of range: " + arg;
    return false;
  }
  return true;
}

// Room for many connections: the soft fd limit up to the hard one.
void RaiseFdLimit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
}

int Main(int argc, char** argv) {
  if (argc < 2) return Usage("no scenario");
  Options o;
  o.scenario = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string why;
    if (!ApplyFlag(argv[i], o, &why)) return Usage(why);
  }
  if (o.threads > o.connections) o.threads = o.connections;
  Endpoint endpoint;
  if (!ParseEndpoint(o.addr, &endpoint)) {
    return Usage("--addr: expected host:port, got '" + o.addr + "'");
  }
  RaiseFdLimit();
  Pattern::Get();  // built before any clock starts

  Errors errors;
  Report report;
  if (o.scenario == "pingpong") {
    report = RunPingpong(o, endpoint, errors);
  } else if (o.scenario == "stream") {
    report = RunStream(o, endpoint, errors);
  } else if (o.scenario == "churn") {
    report = RunChurn(o, endpoint, errors);
  } else if (o.scenario == "hold") {
    report = RunHold(o, endpoint, errors);
  } else {
    return Usage("unknown scenario '" + o.scenario + "'");
  }
  const bool ok = errors.errors() == 0 && errors.mismatches() == 0;

  std::ostringstream json;
  json << "{\"scenario\":" << JsonString(o.scenario)
       << ",\"label\":" << JsonString(o.mode_label)
       << ",\"addr\":" << JsonString(o.addr)
       << ",\"connections\":" << o.connections << ",\"size\":" << o.size
       << ",\"seconds\":" << Number(o.seconds) << ",\"threads\":" << o.threads
       << ",\"ok\":" << (ok ? "true" : "false")
       << ",\"errors\":" << errors.errors()
       << ",\"mismatches\":" << errors.mismatches();
  std::ostringstream human;
  human << "upper-bench " << o.scenario << " " << o.mode_label
        << " conns=" << o.connections << " size=" << o.size << ":";
  for (const auto& [key, value] : report.values) {
    json << ",\"" << key << "\":" << Number(value);
    human << " " << key << "=" << Number(value);
  }
  if (!ok) {
    json << ",\"first_error\":" << JsonString(errors.first());
    human << " FAILED errors=" << errors.errors()
          << " mismatches=" << errors.mismatches() << " (" << errors.first()
          << ")";
  }
  json << "}";
  std::cout << json.str() << std::endl;
  std::cerr << human.str() << std::endl;
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace upper::bench

int main(int argc, char** argv) { return upper::bench::Main(argc, argv); }
