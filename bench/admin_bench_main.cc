// upper-admin-bench: admin-plane latency of a running upperd (see
// admin_bench.h).
//
//   upper-admin-bench status --admin=127.0.0.1:50051 --seconds=3
//   upper-admin-bench scrape,list --admin=127.0.0.1:50051
//       --metrics=127.0.0.1:9464 --wait_active=10000 --calls=100
//
// Prints one JSON object on stdout and one human line on stderr. Exit
// status: 0 every call succeeded, 1 a call failed or timed out, 2 usage.
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/admin_bench.h"

namespace upper::bench {
namespace {

constexpr char kUsage[] =
    "usage: upper-admin-bench status|list|scrape[,...] [--admin=host:port]\n"
    "  [--metrics=host:port] [--calls=N] [--seconds=S] [--timeout=S]\n"
    "  [--wait_active=N] [--label=TEXT]\n";

int Usage(const std::string& why) {
  std::cerr << "upper-admin-bench: " << why << "\n" << kUsage;
  return 2;
}

bool ApplyFlag(const std::string& arg, AdminOptions& o, std::string* why) {
  FlagArg flag;
  if (!SplitFlag(arg, &flag, why)) return false;
  const std::string& name = flag.name;
  if (name == "admin") {
    o.admin = flag.value;
    return true;
  }
  if (name == "metrics") {
    o.metrics = flag.value;
    return true;
  }
  if (name == "label") {
    o.label = flag.value;
    return true;
  }
  if (!flag.number) {
    *why = NotANumber(flag);
    return false;
  }
  const double v = *flag.number;
  if (name == "calls" && v >= 1 && v <= 1000000) {
    o.calls = static_cast<int>(v);
  } else if (name == "seconds" && v > 0 && v <= 3600) {
    o.seconds = v;
  } else if (name == "timeout" && v > 0 && v <= 600) {
    o.timeout = v;
  } else if (name == "wait_active" && v <= 1000000) {
    o.wait_active = static_cast<int>(v);
  } else {
    *why = "unknown flag or value out of range: " + arg;
    return false;
  }
  return true;
}

int Main(int argc, char** argv) {
  if (argc < 2) return Usage("no probe");
  AdminOptions o;
  o.probes = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string why;
    if (!ApplyFlag(argv[i], o, &why)) return Usage(why);
  }
  std::vector<std::string> probes;
  std::stringstream list(o.probes);
  for (std::string p; std::getline(list, p, ',');) {
    if (p != "status" && p != "list" && p != "scrape") {
      return Usage("unknown probe '" + p + "'");
    }
    probes.push_back(p);
  }
  const bool needs_admin = o.wait_active > 0 ||
                           o.probes.find("status") != std::string::npos ||
                           o.probes.find("list") != std::string::npos;
  if (needs_admin && o.admin.empty()) return Usage("--admin is required");
  Endpoint metrics;
  if (o.probes.find("scrape") != std::string::npos &&
      !ParseEndpoint(o.metrics, &metrics)) {
    return Usage("--metrics: expected host:port, got '" + o.metrics + "'");
  }

  Errors errors;
  Report report;
  std::unique_ptr<AdminStub> stub;
  if (needs_admin) stub = ConnectAdmin(o.admin, o.timeout, errors);
  if (stub && o.wait_active > 0) {
    report.Add("active_before",
               WaitActive(*stub, o.wait_active, o.timeout, errors));
  }
  for (const std::string& p : probes) {
    if (errors.errors() > 0) break;
    if (p == "status") ProbeStatus(o, *stub, errors, report);
    if (p == "list") ProbeList(o, *stub, errors, report);
    if (p == "scrape") ProbeScrape(o, metrics, errors, report);
  }
  if (stub && o.wait_active > 0 && errors.errors() == 0) {
    report.Add("active_after", ActiveNow(*stub, o.timeout, errors));
  }
  const bool ok = errors.errors() == 0;

  std::ostringstream json;
  json << "{\"probes\":" << JsonString(o.probes)
       << ",\"label\":" << JsonString(o.label)
       << ",\"ok\":" << (ok ? "true" : "false")
       << ",\"errors\":" << errors.errors();
  std::ostringstream human;
  human << "upper-admin-bench " << o.probes << " " << o.label << ":";
  for (const auto& [key, value] : report.values) {
    json << ",\"" << key << "\":" << Number(value);
    human << " " << key << "=" << Number(value);
  }
  if (!ok) {
    json << ",\"first_error\":" << JsonString(errors.first());
    human << " FAILED (" << errors.first() << ")";
  }
  json << "}";
  std::cout << json.str() << std::endl;
  std::cerr << human.str() << std::endl;
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace upper::bench

int main(int argc, char** argv) { return upper::bench::Main(argc, argv); }
