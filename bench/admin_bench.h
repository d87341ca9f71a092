// upper-admin-bench: latency of upperd's admin plane (gRPC AdminService and
// the Prometheus /metrics endpoint) as an operator's tools see it, while
// upper-bench loads the data port from another process.
//
// Probes, each a loop of sequential calls bounded in count (--calls) and
// time (--seconds), each call bounded by --timeout:
//   status  GetStatus over one gRPC channel (what `upperctl status` does)
//   list    ListConnections of every mode (walks every slot of the table)
//   scrape  HTTP/1.1 GET /metrics on a fresh TCP connection, whole body read
//           (what Prometheus does every scrape interval)
//
// It is a separate program from upper-bench so the data-plane load tool,
// which every contender (minimal servers, socat) shares, stays a small
// gRPC-free binary: gRPC's libraries, threads and allocator would be
// measurement noise there and are of no use against anything but upperd.
//
// Thread-safety: single-threaded; every function runs on the main thread.
#pragma once

#include <memory>
#include <string>

#include "bench/upper_bench.h"
#include "upper/admin/v1/admin.grpc.pb.h"

namespace upper::bench {

struct AdminOptions {
  std::string probes;   // comma-separated: status, list, scrape
  std::string admin;    // host:port of the gRPC admin port
  std::string metrics;  // host:port of the /metrics endpoint
  int calls = 1000;     // per probe, at most
  double seconds = 3;   // per probe, at most
  double timeout = 10;  // bound on one call and on --wait_active
  int wait_active = 0;  // first wait until upperd reports this many live
  std::string label;    // copied into the output
};

using AdminStub = upper::admin::v1::AdminService::Stub;

// A stub over an insecure channel to `address`, connected within `timeout`
// seconds; nullptr (and a message in errors) when it did not connect.
std::unique_ptr<AdminStub> ConnectAdmin(const std::string& address,
                                        double timeout, Errors& errors);

// Polls GetStatus until active_connections >= want or `timeout` seconds
// pass; returns the last active_connections seen (-1 if no call succeeded).
double WaitActive(AdminStub& stub, int want, double timeout, Errors& errors);
// The active_connections of one GetStatus now (-1 on error).
double ActiveNow(AdminStub& stub, double timeout, Errors& errors);

// The probes. Each adds <probe>_calls, <probe>_calls_per_s and latency
// percentiles (<probe>_p50_us, _p99_us, _p999_us, _max_us) to the report,
// plus list_connections (entries in the last reply) and scrape_body_bytes.
void ProbeStatus(const AdminOptions& o, AdminStub& stub, Errors& errors,
                 Report& report);
void ProbeList(const AdminOptions& o, AdminStub& stub, Errors& errors,
               Report& report);
void ProbeScrape(const AdminOptions& o, const Endpoint& metrics, Errors& errors,
                 Report& report);

// Adds the <name>_calls, _calls_per_s and percentile keys of one probe.
void AddLatencies(const std::string& name, const Histogram& latencies,
                  double elapsed_s, uint64_t max_ns, Report& report);

}  // namespace upper::bench
