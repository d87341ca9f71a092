// The gRPC probes of upper-admin-bench: GetStatus and ListConnections (all
// pages).
#include <chrono>
#include <string>
#include <thread>

#include "bench/admin_bench.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace upper::bench {
namespace {

namespace v1 = upper::admin::v1;

std::chrono::system_clock::time_point DeadlineIn(double seconds) {
  return std::chrono::system_clock::now() +
         std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
}

std::string Describe(const char* what, const grpc::Status& s) {
  return std::string(what) + ": gRPC code " +
         std::to_string(static_cast<int>(s.error_code())) + ": " +
         s.error_message();
}

// Runs `call` (one RPC, true when it succeeded) up to o.calls times within
// o.seconds and records each call's latency under `name`.
template <typename Call>
void TimeCalls(const std::string& name, const AdminOptions& o, Call call,
               Report& report) {
  Histogram latencies;
  uint64_t max_ns = 0;
  const uint64_t start = NowNs();
  const uint64_t stop = start + SecondsToNs(o.seconds);
  for (int i = 0; i < o.calls && NowNs() < stop; ++i) {
    const uint64_t before = NowNs();
    if (!call()) break;
    const uint64_t took = NowNs() - before;
    latencies.Add(took);
    if (took > max_ns) max_ns = took;
  }
  AddLatencies(name, latencies, (NowNs() - start) / 1e9, max_ns, report);
}

}  // namespace

std::unique_ptr<AdminStub> ConnectAdmin(const std::string& address,
                                        double timeout, Errors& errors) {
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(DeadlineIn(timeout))) {
    errors.Fail("admin: no gRPC connection to " + address + " within " +
                std::to_string(timeout) + " s");
    return nullptr;
  }
  return v1::AdminService::NewStub(channel);
}

double ActiveNow(AdminStub& stub, double timeout, Errors& errors) {
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(timeout));
  v1::ServerStatus status;
  const grpc::Status s = stub.GetStatus(&context, {}, &status);
  if (!s.ok()) {
    errors.Fail(Describe("GetStatus", s));
    return -1;
  }
  return static_cast<double>(status.active_connections());
}

double WaitActive(AdminStub& stub, int want, double timeout, Errors& errors) {
  const uint64_t stop = NowNs() + SecondsToNs(timeout);
  double active = -1;
  while (NowNs() < stop) {
    active = ActiveNow(stub, timeout, errors);
    if (active < 0 || active >= want) return active;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  errors.Fail("admin: " + std::to_string(want) +
              " active connections not reached within " +
              std::to_string(timeout) + " s (last seen " +
              std::to_string(static_cast<int64_t>(active)) + ")");
  return active;
}

void ProbeStatus(const AdminOptions& o, AdminStub& stub, Errors& errors,
                 Report& report) {
  TimeCalls(
      "status", o,
      [&] {
        grpc::ClientContext context;
        context.set_deadline(DeadlineIn(o.timeout));
        v1::ServerStatus status;
        const grpc::Status s = stub.GetStatus(&context, {}, &status);
        if (!s.ok()) errors.Fail(Describe("GetStatus", s));
        if (s.ok() && status.pid() <= 0) {
          errors.Fail("GetStatus: reply without a pid");
          return false;
        }
        return s.ok();
      },
      report);
}

// One "list" call is a whole listing: every page (the server's default
// size) followed as upperctl does, each page with its own deadline.
void ProbeList(const AdminOptions& o, AdminStub& stub, Errors& errors,
               Report& report) {
  int listed = 0;
  int pages = 0;
  TimeCalls(
      "list", o,
      [&] {
        v1::ListConnectionsRequest request;
        listed = 0;
        for (pages = 1; pages <= 100000; ++pages) {  // bounded
          grpc::ClientContext context;
          context.set_deadline(DeadlineIn(o.timeout));
          v1::ListConnectionsResponse response;
          const grpc::Status s =
              stub.ListConnections(&context, request, &response);
          if (!s.ok()) {
            errors.Fail(Describe("ListConnections", s));
            return false;
          }
          listed += response.connections_size();
          if (response.next_page_token().empty()) return true;
          request.set_page_token(response.next_page_token());
        }
        errors.Fail("ListConnections: the pages never ended");
        return false;
      },
      report);
  report.Add("list_connections", listed);
  report.Add("list_pages", pages);
}

}  // namespace upper::bench
