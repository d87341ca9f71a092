// upperd: wires the configuration, the log and the server, and maps start-up
// failures to exit codes (2: bad flag or environment value; 1: cannot start,
// e.g. the port is in use).
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "server/build_info.h"
#include "server/config.h"
#include "server/fork_server.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/server.h"

int main(int argc, char** argv) {
  if (upper::IsForkServerInvocation(argc, argv)) {
    return upper::RunForkServer(argc, argv);
  }
  absl::StatusOr<upper::ParsedCommandLine> parsed =
      upper::ParseCommandLine(argc, argv, upper::ProcessEnvironment());
  if (!parsed.ok()) {
    std::fprintf(stderr, "upperd: %s\n",
                 std::string(parsed.status().message()).c_str());
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
  absl::StatusOr<std::unique_ptr<upper::Server>> server =
      upper::Server::Create(parsed->config);
  if (!server.ok()) {
    std::fprintf(stderr, "upperd: %s\n",
                 std::string(server.status().message()).c_str());
    return server.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  // After Server::Create: civetweb starts threads; the fork server and the
  // signal mask must come first.
  upper::Server& data_plane = **server;
  upper::MetricsSources metrics_sources;
  metrics_sources.table = &data_plane.table();
  metrics_sources.draining = [&data_plane] { return data_plane.draining(); };
  absl::StatusOr<std::unique_ptr<upper::MetricsServer>> metrics =
      upper::MetricsServer::Start(parsed->config, std::move(metrics_sources));
  if (!metrics.ok()) {
    std::fprintf(stderr, "upperd: %s\n",
                 std::string(metrics.status().message()).c_str());
    return metrics.status().code() == absl::StatusCode::kInvalidArgument ? 2
                                                                         : 1;
  }
  return data_plane.Run();
}
