#include "tests/ctl/fake_admin_server.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/server_interceptor.h"
#include "gtest/gtest.h"

namespace upper::testing {

namespace admin = ::upper::admin::v1;

class FakeAdminServer::Service final : public admin::AdminService::Service {
 public:
  explicit Service(std::string token) : token_(std::move(token)) {
    status_ = CannedStatus();
    connections_ = CannedConnections();
  }

  grpc::Status GetStatus(grpc::ServerContext* context,
                         const admin::GetStatusRequest*,
                         admin::ServerStatus* response) override {
    if (grpc::Status auth = Authorize(*context); !auth.ok()) return auth;
    std::shared_ptr<StatusGate> gate;
    {
      std::lock_guard lock(mu_);
      gate = gate_;
    }
    if (gate && !gate->ArriveAndWait()) {
      return grpc::Status(grpc::StatusCode::ABORTED,
                          "the other instances' calls never came");
    }
    std::lock_guard lock(mu_);
    *response = status_;
    return grpc::Status::OK;
  }

  grpc::Status ListConnections(
      grpc::ServerContext* context,
      const admin::ListConnectionsRequest* request,
      admin::ListConnectionsResponse* response) override {
    if (grpc::Status auth = Authorize(*context); !auth.ok()) return auth;
    std::lock_guard lock(mu_);
    list_requests_.push_back(*request);
    // Pages as admin.proto says, with a plain token: the index to go on
    // from (the real server's token is opaque; clients must not care).
    size_t from = 0;
    if (!request->page_token().empty() &&
        !absl::SimpleAtoi(request->page_token(), &from)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad token");
    }
    const size_t page_size =
        request->page_size() > 0 ? request->page_size() : 1000;
    size_t i = from;
    for (; i < connections_.size(); ++i) {
      const admin::Connection& c = connections_[i];
      if (request->mode() != admin::MODE_UNSPECIFIED &&
          request->mode() != c.mode()) {
        continue;
      }
      if (static_cast<size_t>(response->connections_size()) == page_size) {
        response->set_next_page_token(absl::StrCat(i));
        break;
      }
      *response->add_connections() = c;
    }
    return grpc::Status::OK;
  }

  grpc::Status SetMode(grpc::ServerContext* context,
                       const admin::SetModeRequest* request,
                       admin::SetModeResponse* response) override {
    if (grpc::Status auth = Authorize(*context); !auth.ok()) return auth;
    if (request->mode() != admin::MODE_FORK &&
        request->mode() != admin::MODE_THREAD) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("mode must be MODE_FORK or MODE_THREAD, got ",
                       static_cast<int>(request->mode())));
    }
    std::lock_guard lock(mu_);
    response->set_previous_mode(status_.mode());
    response->set_mode(request->mode());
    if (status_.mode() != request->mode()) {
      status_.set_mode_switches_total(status_.mode_switches_total() + 1);
    }
    status_.set_mode(request->mode());
    return grpc::Status::OK;
  }

  grpc::Status CloseConnection(
      grpc::ServerContext* context,
      const admin::CloseConnectionRequest* request,
      admin::CloseConnectionResponse* response) override {
    if (grpc::Status auth = Authorize(*context); !auth.ok()) return auth;
    std::lock_guard lock(mu_);
    auto found = std::find_if(
        connections_.begin(), connections_.end(),
        [&](const admin::Connection& c) { return c.id() == request->id(); });
    if (found == connections_.end()) {
      return grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat("no connection with id ", request->id()));
    }
    *response->mutable_connection() = *found;
    connections_.erase(found);
    return grpc::Status::OK;
  }

  grpc::Status WatchStatus(
      grpc::ServerContext* context, const admin::WatchStatusRequest* request,
      grpc::ServerWriter<admin::ServerStatus>* writer) override {
    if (grpc::Status auth = Authorize(*context); !auth.ok()) return auth;
    const absl::Duration interval =
        absl::Seconds(request->interval().seconds()) +
        absl::Nanoseconds(request->interval().nanos());
    if (interval < absl::Milliseconds(100)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "interval must be at least 100ms");
    }
    // Bounded like everything in tests: at most 10000 updates.
    for (int update = 1; update <= 10000; ++update) {
      admin::ServerStatus status;
      int end_after = 0;
      {
        std::lock_guard lock(mu_);
        status = status_;
        end_after = end_watch_after_;
      }
      status.set_accepted_total(status.accepted_total() + update);
      if (!writer->Write(status)) return grpc::Status::OK;  // client gone
      if (end_after > 0 && update >= end_after) return grpc::Status::OK;
      const absl::Time next = absl::Now() + interval;
      while (absl::Now() < next) {
        if (context->IsCancelled()) return grpc::Status::CANCELLED;
        absl::SleepFor(absl::Milliseconds(10));
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status Authorize(const grpc::ServerContext& context) {
    std::string seen;
    const auto& metadata = context.client_metadata();
    if (auto it = metadata.find("authorization"); it != metadata.end()) {
      seen.assign(it->second.data(), it->second.size());
    }
    std::lock_guard lock(mu_);
    authorizations_.push_back(seen);
    if (token_.empty() || seen == absl::StrCat("Bearer ", token_)) {
      return grpc::Status::OK;
    }
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        seen.empty() ? "missing token" : "wrong token");
  }

  const std::string token_;
  mutable std::mutex mu_;
  admin::ServerStatus status_;                                // under mu_
  std::vector<admin::Connection> connections_;                // under mu_
  std::vector<std::string> authorizations_;                   // under mu_
  std::vector<admin::ListConnectionsRequest> list_requests_;  // under mu_
  int end_watch_after_ = 0;                                   // under mu_
  std::shared_ptr<StatusGate> gate_;                          // under mu_
};

struct FakeAdminServer::HealthLog {
  mutable std::mutex mu;
  std::vector<std::string> authorizations;  // under mu
};

namespace {

namespace exp = ::grpc::experimental;

constexpr char kHealthCheck[] = "/grpc.health.v1.Health/Check";

// Records the authorization header of each health Check into a log.
template <typename Log>
class HealthRecorder final : public exp::Interceptor {
 public:
  HealthRecorder(exp::ServerRpcInfo* info, std::shared_ptr<Log> log)
      : is_health_(std::string(info->method()) == kHealthCheck),
        log_(std::move(log)) {}

  void Intercept(exp::InterceptorBatchMethods* methods) override {
    if (is_health_ &&
        methods->QueryInterceptionHookPoint(
            exp::InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      std::string seen;
      const auto* metadata = methods->GetRecvInitialMetadata();
      if (auto it = metadata->find("authorization"); it != metadata->end()) {
        seen.assign(it->second.data(), it->second.size());
      }
      std::lock_guard lock(log_->mu);
      log_->authorizations.push_back(seen);
    }
    methods->Proceed();
  }

 private:
  const bool is_health_;
  std::shared_ptr<Log> log_;
};

template <typename Log>
class HealthRecorderFactory final
    : public exp::ServerInterceptorFactoryInterface {
 public:
  explicit HealthRecorderFactory(std::shared_ptr<Log> log)
      : log_(std::move(log)) {}
  exp::Interceptor* CreateServerInterceptor(exp::ServerRpcInfo* info) override {
    return new HealthRecorder<Log>(info, log_);
  }

 private:
  std::shared_ptr<Log> log_;
};

}  // namespace

bool StatusGate::ArriveAndWait() {
  std::unique_lock lock(mu);
  ++arrived;
  all_here.notify_all();
  return all_here.wait_for(lock, std::chrono::seconds(10),
                           [&] { return arrived >= expected; });
}

FakeAdminServer::FakeAdminServer(std::string token)
    : service_(std::make_unique<Service>(std::move(token))),
      health_log_(std::make_shared<HealthLog>()) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  std::vector<std::unique_ptr<exp::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      std::make_unique<HealthRecorderFactory<HealthLog>>(health_log_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port <= 0) {
    ADD_FAILURE() << "FakeAdminServer did not start";
    return;
  }
  port_ = static_cast<uint16_t>(port);
  server_->GetHealthCheckService()->SetServingStatus(true);
}

FakeAdminServer::~FakeAdminServer() {
  if (server_) {
    // Streams still open (a killed watch) are cancelled at the deadline.
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    server_->Wait();
  }
}

std::string FakeAdminServer::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

admin::ServerStatus FakeAdminServer::CannedStatus(int pid) {
  admin::ServerStatus status;
  status.set_mode(admin::MODE_THREAD);
  status.set_active_connections(3);
  admin::ModeStats* fork = status.add_per_mode();
  fork->set_mode(admin::MODE_FORK);
  fork->set_active_connections(1);
  fork->set_accepted_total(50);
  fork->set_closed_total(49);
  fork->set_received_bytes_total(512);
  fork->set_sent_bytes_total(1 << 20);
  admin::ModeStats* thread = status.add_per_mode();
  thread->set_mode(admin::MODE_THREAD);
  thread->set_active_connections(2);
  thread->set_accepted_total(70);
  thread->set_closed_total(68);
  thread->set_received_bytes_total(1024);
  thread->set_sent_bytes_total(2 << 20);
  status.set_accepted_total(120);
  status.set_rejected_total(2);
  status.set_closed_total(117);
  status.set_received_bytes_total(1536);
  status.set_sent_bytes_total(3 << 20);
  (*status.mutable_rejected_by_reason())["limit"] = 2;
  (*status.mutable_closed_by_reason())["client"] = 110;
  (*status.mutable_closed_by_reason())["idle_timeout"] = 7;
  status.set_mode_switches_total(1);
  status.mutable_started_at()->set_seconds(1700000000);
  status.mutable_uptime()->set_seconds(192);
  status.set_pid(pid);
  status.set_version("0.1.0");
  status.set_revision("abcdef123456");
  status.set_data_address("127.0.0.1:9999");
  status.set_max_connections(1024);
  status.mutable_idle_timeout()->set_seconds(300);
  admin::ResourceLimits& limits = *status.mutable_limits();
  limits.set_open_files_limit(4096);
  limits.set_open_files_hard_limit(524288);
  limits.set_max_processes(0);
  limits.set_pids_limit(300);
  limits.set_memory_limit_bytes(512 << 20);
  admin::WorkerPool* fork_workers = status.add_workers();
  fork_workers->set_mode(admin::MODE_FORK);
  fork_workers->set_busy(1);
  fork_workers->set_idle(2);
  fork_workers->set_spawns_total(10);
  fork_workers->set_handoffs_total(5);
  (*fork_workers->mutable_exits_by_reason())["pool_full"] = 3;
  (*fork_workers->mutable_exits_by_reason())["max_connections"] = 4;
  admin::WorkerPool* thread_workers = status.add_workers();
  thread_workers->set_mode(admin::MODE_THREAD);
  thread_workers->set_busy(2);
  thread_workers->set_idle(4);
  thread_workers->set_spawns_total(6);
  thread_workers->set_handoffs_total(64);
  (*thread_workers->mutable_exits_by_reason())["idle_timeout"] = 2;
  (*thread_workers->mutable_exits_by_reason())["cache_full"] = 0;
  return status;
}

std::vector<admin::Connection> FakeAdminServer::CannedConnections() {
  admin::Connection fork;
  fork.set_id(7);
  fork.set_peer_address("127.0.0.1");
  fork.set_peer_port(40112);
  fork.set_mode(admin::MODE_FORK);
  fork.set_worker_pid(5001);
  fork.mutable_started_at()->set_seconds(absl::ToUnixSeconds(absl::Now()) -
                                         125);
  fork.set_received_bytes(2048);
  fork.set_sent_bytes(2048);
  fork.mutable_idle()->set_nanos(450000000);
  admin::Connection thread;
  thread.set_id(9);
  thread.set_peer_address("::1");
  thread.set_peer_port(40200);
  thread.set_mode(admin::MODE_THREAD);
  thread.set_worker_pid(4242);
  thread.set_worker_tid(4250);
  thread.mutable_started_at()->set_seconds(absl::ToUnixSeconds(absl::Now()) -
                                           7500);
  thread.set_received_bytes(5 << 20);
  thread.set_sent_bytes(5 << 20);
  thread.mutable_idle()->set_seconds(12);
  return {fork, thread};
}

void FakeAdminServer::SetStatus(admin::ServerStatus status) {
  std::lock_guard lock(service_->mu_);
  service_->status_ = std::move(status);
}

void FakeAdminServer::SetConnections(
    std::vector<admin::Connection> connections) {
  std::lock_guard lock(service_->mu_);
  service_->connections_ = std::move(connections);
}

void FakeAdminServer::SetServing(bool serving) {
  server_->GetHealthCheckService()->SetServingStatus(serving);
}

void FakeAdminServer::SetStatusGate(std::shared_ptr<StatusGate> gate) {
  std::lock_guard lock(service_->mu_);
  service_->gate_ = std::move(gate);
}

void FakeAdminServer::EndWatchAfter(int updates) {
  std::lock_guard lock(service_->mu_);
  service_->end_watch_after_ = updates;
}

admin::ServerStatus FakeAdminServer::status() const {
  std::lock_guard lock(service_->mu_);
  return service_->status_;
}

std::vector<admin::Connection> FakeAdminServer::connections() const {
  std::lock_guard lock(service_->mu_);
  return service_->connections_;
}

std::vector<admin::ListConnectionsRequest> FakeAdminServer::list_requests()
    const {
  std::lock_guard lock(service_->mu_);
  return service_->list_requests_;
}

std::vector<std::string> FakeAdminServer::authorizations() const {
  std::lock_guard lock(service_->mu_);
  return service_->authorizations_;
}

std::vector<std::string> FakeAdminServer::health_authorizations() const {
  std::lock_guard lock(health_log_->mu);
  return health_log_->authorizations;
}

}  // namespace upper::testing
