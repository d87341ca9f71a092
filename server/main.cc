// upperd: wires the configuration, the log and the server, and maps start-up
// failures to exit codes (2: bad flag or environment value; 1: cannot start,
// e.g. the port is in use).
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "common/build_info.h"
#include "server/admin/admin_exposure.h"
#include "server/admin/admin_files.h"
#include "server/admin/admin_server.h"
#include "server/admin/admin_thread_priority.h"
#include "server/base/config.h"
#include "server/base/log.h"
#include "server/data/data_plane.h"
#include "server/data/fork_server.h"
#include "server/metrics/metrics.h"

namespace {

// Prints a start-up failure and returns its exit code.
int StartupFailure(const absl::Status& status) {
  upper::LogStartupFailure(status.message());
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

// What /metrics reads from the data and admin planes; both outlive it.
upper::MetricsSources SourcesOf(upper::DataPlane& data_plane,
                                const upper::AdminServer& admin) {
  return {
      .table = &data_plane.table(),
      .draining = [&data_plane] { return data_plane.draining(); },
      .thread_workers = [&data_plane] { return data_plane.thread_workers(); },
      .fork_workers = [&data_plane] { return data_plane.fork_workers(); },
      .admin_requests = [&stats =
                             admin.rpc_stats()] { return stats.Snapshot(); }};
}

}  // namespace

int main(int argc, char** argv) {
  if (upper::IsForkServerInvocation(argc, argv)) {
    return upper::RunForkServer(argc, argv);
  }
  const upper::EnvLookup env = upper::ProcessEnvironment();
  upper::SetLogFormat(upper::RequestedLogFormat(argc, argv, env));
  upper::StartLogWriter();  // no line waits on stderr's reader (log.h)
  absl::StatusOr<upper::ParsedCommandLine> parsed =
      upper::ParseCommandLine(argc, argv, env);
  if (!parsed.ok()) {
    upper::LogStartupFailure(parsed.status().message());
    return 2;
  }
  switch (parsed->action) {
    case upper::ParsedCommandLine::Action::kHelp:
      std::fputs(upper::UsageText().c_str(), stdout);
      return 0;
    case upper::ParsedCommandLine::Action::kVersion:
      std::printf("upperd %s (%s)\n", std::string(upper::Version()).c_str(),
                  std::string(upper::Revision()).c_str());
      return 0;
    case upper::ParsedCommandLine::Action::kRun:
      break;
  }
  upper::SetLogFormat(parsed->config.log_format);
  // Every file before any port is bound and while SIGTERM still works: a
  // FIFO or a bad key exits 2 here (admin_files.h).
  absl::StatusOr<upper::AdminFiles> admin_files =
      upper::LoadAdminFiles(parsed->config);
  if (!admin_files.ok()) return StartupFailure(admin_files.status());
  // First: it starts the fork server before any thread exists.
  absl::StatusOr<std::unique_ptr<upper::DataPlane>> server =
      upper::DataPlane::Create(parsed->config);
  if (!server.ok()) return StartupFailure(server.status());
  // Threads may start from here on: DataPlane::Create has spawned the fork
  // server and set the signal mask they inherit.
  upper::DataPlane& data_plane = **server;
  // The admin plane starts gRPC, and so every gRPC thread, from a thread at
  // --admin_nice: they all inherit it (admin_thread_priority.h). Nothing
  // before this line calls gRPC.
  absl::StatusOr<std::unique_ptr<upper::AdminServer>> admin =
      upper::StartAtNice(parsed->config.admin_nice, [&] {
        return upper::AdminServer::Start(parsed->config,
                                         *std::move(admin_files), data_plane);
      });
  if (!admin.ok()) return StartupFailure(admin.status());
  upper::LogAdminExposure(upper::AssessAdminExposure(parsed->config),
                          (*admin)->address());
  absl::StatusOr<std::unique_ptr<upper::MetricsServer>> metrics =
      upper::MetricsServer::Start(parsed->config,
                                  SourcesOf(data_plane, **admin));
  if (!metrics.ok()) return StartupFailure(metrics.status());
  const int code = data_plane.Run();
  (*admin)->Stop();
  return code;
}
