#include "server/admin/admin_service.h"

#include <unistd.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/build_info.h"
#include "google/protobuf/util/time_util.h"
#include "server/admin/admin_convert.h"
#include "server/admin/admin_token.h"
#include "server/admin/connection_pages.h"
#include "server/base/log.h"

namespace upper {
namespace {

using google::protobuf::util::TimeUtil;

constexpr absl::Duration kDefaultWatchInterval = absl::Seconds(1);
constexpr absl::Duration kMinWatchInterval = absl::Milliseconds(100);
// How often a waiting WatchStatus looks whether its client has gone: the sync
// API does not wake a handler on cancellation.
constexpr absl::Duration kWatchCancelPoll = absl::Milliseconds(50);

constexpr absl::Duration kMaxWatchInterval = absl::Hours(1);

// WatchStatusRequest.interval: unset or zero is the default (1s); otherwise
// a valid google.protobuf.Duration (seconds within +-315,576,000,000, nanos
// within +-999,999,999, one sign) of 100ms..1h. Checked before converting:
// ~586 years overflowed int64 nanoseconds and streamed every 291 ms.
absl::StatusOr<absl::Duration> WatchInterval(
    const admin::v1::WatchStatusRequest& request) {
  if (!request.has_interval()) return kDefaultWatchInterval;
  const google::protobuf::Duration& d = request.interval();
  const bool mixed =
      (d.seconds() > 0 && d.nanos() < 0) || (d.seconds() < 0 && d.nanos() > 0);
  if (d.seconds() < TimeUtil::kDurationMinSeconds ||
      d.seconds() > TimeUtil::kDurationMaxSeconds || d.nanos() < -999999999 ||
      d.nanos() > 999999999 || mixed) {
    return absl::InvalidArgumentError(
        "interval is not a valid google.protobuf.Duration");
  }
  const absl::Duration interval =
      absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
  if (interval == absl::ZeroDuration()) return kDefaultWatchInterval;
  if (interval < kMinWatchInterval || interval > kMaxWatchInterval) {
    return absl::InvalidArgumentError(
        absl::StrCat("interval ", absl::FormatDuration(interval),
                     " is out of range (100ms..1h; unset or 0 means 1s)"));
  }
  return interval;
}

// A request the paging helpers refused (their statuses are InvalidArgument).
grpc::Status InvalidArgument(const absl::Status& status) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      std::string(status.message()));
}

}  // namespace

AdminServiceImpl::AdminServiceImpl(ServerControl& server, const Config& config,
                                   std::string token)
    : server_(server),
      max_connections_(config.max_connections),
      idle_timeout_(config.idle_timeout),
      token_(std::move(token)),
      exposure_([&] {
        // The token in force decides, whichever way it was configured.
        AdminExposure exposure = AssessAdminExposure(config);
        exposure.token_required = !token_.empty();
        return exposure;
      }()) {}

grpc::Status AdminServiceImpl::Authorize(
    const grpc::ServerContext& context) const {
  if (token_.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "this upperd requires a token: send metadata "
                        "'authorization: Bearer <token>'");
  }
  if (!BearerTokenMatches(
          token_, absl::string_view(it->second.data(), it->second.size()))) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "wrong token in 'authorization' metadata (expected "
                        "'Bearer <token>')");
  }
  return grpc::Status::OK;
}

absl::string_view AdminServiceImpl::AuthName() const {
  return token_.empty() ? "none" : "token";
}

admin::v1::ServerStatus AdminServiceImpl::CurrentStatus() const {
  ServerFacts facts;
  facts.started_at = server_.started_at();
  facts.now = absl::Now();
  facts.pid = static_cast<int32_t>(getpid());
  facts.version = std::string(Version());
  facts.revision = std::string(Revision());
  facts.data_address = server_.data_address();
  facts.max_connections = max_connections_;
  facts.idle_timeout = idle_timeout_;
  facts.draining = server_.draining();
  facts.limits = server_.resource_limits();
  facts.admin = exposure_;
  facts.thread_workers = server_.thread_workers();
  facts.fork_workers = server_.fork_workers();
  return ToServerStatus(server_.table().ReadTotals(), facts);
}

grpc::Status AdminServiceImpl::GetStatus(grpc::ServerContext* context,
                                         const admin::v1::GetStatusRequest*,
                                         admin::v1::ServerStatus* response) {
  if (grpc::Status s = Authorize(*context); !s.ok()) return s;
  *response = CurrentStatus();
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ListConnections(
    grpc::ServerContext* context,
    const admin::v1::ListConnectionsRequest* request,
    admin::v1::ListConnectionsResponse* response) {
  if (grpc::Status s = Authorize(*context); !s.ok()) return s;
  Mode filter = Mode::kUnspecified;
  if (request->mode() != admin::v1::MODE_UNSPECIFIED) {
    const std::optional<Mode> only = FromProtoMode(request->mode());
    if (!only) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("mode ", request->mode(),
                       " is not a mode (expected MODE_FORK, MODE_THREAD or "
                       "MODE_UNSPECIFIED for all)"));
    }
    filter = *only;
  }
  const absl::StatusOr<size_t> page_size =
      ConnectionsPageSize(request->page_size());
  if (!page_size.ok()) return InvalidArgument(page_size.status());
  const absl::StatusOr<uint64_t> after_id =
      DecodeConnectionsPageToken(request->page_token(), filter);
  if (!after_id.ok()) return InvalidArgument(after_id.status());
  ConnectionsPage page =
      ReadConnectionsPage(server_.table(), filter, *after_id, *page_size);
  const uint64_t now = NowNs(CLOCK_MONOTONIC_COARSE);
  response->mutable_connections()->Reserve(
      static_cast<int>(page.connections.size()));
  for (const ConnectionInfo& c : page.connections) {
    *response->add_connections() = ToConnection(c, now);
  }
  response->set_next_page_token(std::move(page.next_page_token));
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::SetMode(grpc::ServerContext* context,
                                       const admin::v1::SetModeRequest* request,
                                       admin::v1::SetModeResponse* response) {
  if (grpc::Status s = Authorize(*context); !s.ok()) return s;
  const std::optional<Mode> mode = FromProtoMode(request->mode());
  if (!mode) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("mode ",
                     admin::v1::Mode_IsValid(request->mode())
                         ? admin::v1::Mode_Name(request->mode())
                         : absl::StrCat(request->mode()),
                     " cannot be set (expected MODE_FORK or MODE_THREAD)"));
  }
  if (server_.draining()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "upperd is draining: it accepts no new connections, "
                        "so the mode cannot change");
  }
  const Mode previous = server_.SetMode(*mode);
  LogEvent(LogLevel::kInfo, "mode_set_by_admin",
           {{"mode", ModeName(*mode)},
            {"previous", ModeName(previous)},
            {"caller", context->peer()},
            {"auth", AuthName()}});
  response->set_previous_mode(ToProtoMode(previous));
  response->set_mode(ToProtoMode(*mode));
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::CloseConnection(
    grpc::ServerContext* context,
    const admin::v1::CloseConnectionRequest* request,
    admin::v1::CloseConnectionResponse* response) {
  if (grpc::Status s = Authorize(*context); !s.ok()) return s;
  const uint64_t id = request->id();
  const absl::StatusOr<ConnectionInfo> closed =
      server_.CloseConnection(id, CloseReason::kKilled);
  if (!closed.ok()) {
    return grpc::Status(absl::IsNotFound(closed.status())
                            ? grpc::StatusCode::NOT_FOUND
                            : grpc::StatusCode::UNAVAILABLE,
                        std::string(closed.status().message()));
  }
  *response->mutable_connection() =
      ToConnection(*closed, NowNs(CLOCK_MONOTONIC_COARSE));
  LogEvent(LogLevel::kInfo, "connection_closed_by_admin",
           {{"id", id},
            {"peer", closed->peer},
            {"mode", ModeName(closed->mode)},
            {"caller", context->peer()},
            {"auth", AuthName()}});
  return grpc::Status::OK;
}

bool AdminServiceImpl::watches_ended() const {
  std::lock_guard lock(mu_);
  return watches_ended_;
}

void AdminServiceImpl::EndWatches() {
  std::lock_guard lock(mu_);
  watches_ended_ = true;
  watches_wakeup_.notify_all();
}

grpc::Status AdminServiceImpl::WatchStatus(
    grpc::ServerContext* context, const admin::v1::WatchStatusRequest* request,
    grpc::ServerWriter<admin::v1::ServerStatus>* writer) {
  if (grpc::Status s = Authorize(*context); !s.ok()) return s;
  absl::StatusOr<absl::Duration> checked = WatchInterval(*request);
  if (!checked.ok()) return InvalidArgument(checked.status());
  const absl::Duration interval = *checked;
  {
    std::lock_guard lock(mu_);
    if (active_watches_ >= kMaxWatches) {
      return grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrCat(kMaxWatches,
                       " WatchStatus streams are open already; end one, or "
                       "poll GetStatus instead"));
    }
    ++active_watches_;
  }
  absl::Cleanup release = [this] {
    std::lock_guard lock(mu_);
    --active_watches_;
  };
  const absl::Time started = absl::Now();
  uint64_t sent = 0;
  const absl::string_view why =
      StreamStatuses(*context, interval, *writer, sent);
  LogEvent(LogLevel::kInfo, "watch_ended",
           {{"reason", why},
            {"statuses", sent},
            {"duration", absl::FormatDuration(absl::Now() - started)},
            {"peer", context->peer()}});
  return grpc::Status::OK;
}

absl::string_view AdminServiceImpl::StreamStatuses(
    grpc::ServerContext& context, absl::Duration interval,
    grpc::ServerWriter<admin::v1::ServerStatus>& writer, uint64_t& sent) {
  for (;;) {
    // Read before the status, so the last status sent says draining.
    const bool last = watches_ended();
    if (!writer.Write(CurrentStatus())) return "client_gone";
    ++sent;
    if (last) return "draining";
    const absl::Time next = absl::Now() + interval;
    std::unique_lock lock(mu_);
    while (!watches_ended_) {
      if (context.IsCancelled()) return "cancelled";
      const absl::Duration left = next - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      watches_wakeup_.wait_for(
          lock, absl::ToChronoNanoseconds(std::min(left, kWatchCancelPoll)));
    }
  }
}

}  // namespace upper
