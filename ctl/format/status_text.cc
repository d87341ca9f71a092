#include "ctl/format/status_text.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "ctl/format/table.h"
#include "ctl/format/units.h"

namespace upper::ctl {
namespace {

namespace admin = ::upper::admin::v1;

std::string WithReasons(
    uint64_t total, const google::protobuf::Map<std::string, uint64_t>& by) {
  const std::string reasons = ReasonsText(by);
  return reasons.empty() ? absl::StrCat(total)
                         : absl::StrCat(total, " (", reasons, ")");
}

std::string NoSpaces(std::string text) {
  return absl::StrReplaceAll(text, {{" ", ""}});
}

}  // namespace

std::string ModeText(admin::Mode mode) {
  switch (mode) {
    case admin::MODE_FORK:
      return "fork";
    case admin::MODE_THREAD:
      return "thread";
    case admin::MODE_UNSPECIFIED:
      return "unspecified";
    default:
      return absl::StrCat("mode(", static_cast<int>(mode), ")");
  }
}

absl::Duration ToDuration(const google::protobuf::Duration& duration) {
  return absl::Seconds(duration.seconds()) +
         absl::Nanoseconds(duration.nanos());
}

absl::Time ToTime(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixSeconds(timestamp.seconds()) +
         absl::Nanoseconds(timestamp.nanos());
}

uint64_t ActiveIn(const admin::ServerStatus& status, admin::Mode mode) {
  for (const admin::ModeStats& stats : status.per_mode()) {
    if (stats.mode() == mode) return stats.active_connections();
  }
  return 0;
}

const admin::WorkerPool* WorkersIn(const admin::ServerStatus& status,
                                   admin::Mode mode) {
  for (const admin::WorkerPool& pool : status.workers()) {
    if (pool.mode() == mode) return &pool;
  }
  return nullptr;
}

std::string WorkersText(const admin::WorkerPool& pool) {
  uint64_t exits = 0;
  for (const auto& [reason, n] : pool.exits_by_reason()) exits += n;
  return absl::StrCat("busy ", pool.busy(), ", idle ", pool.idle(), ", spawns ",
                      pool.spawns_total(), ", hand-offs ",
                      pool.handoffs_total(), ", exits ",
                      WithReasons(exits, pool.exits_by_reason()));
}

void AddWorkers(const admin::WorkerPool& from, admin::WorkerPool* to) {
  to->set_busy(to->busy() + from.busy());
  to->set_idle(to->idle() + from.idle());
  to->set_spawns_total(to->spawns_total() + from.spawns_total());
  to->set_handoffs_total(to->handoffs_total() + from.handoffs_total());
  for (const auto& [reason, n] : from.exits_by_reason()) {
    (*to->mutable_exits_by_reason())[reason] += n;
  }
}

std::string ReasonsText(
    const google::protobuf::Map<std::string, uint64_t>& by_reason) {
  std::vector<std::pair<std::string, uint64_t>> sorted(by_reason.begin(),
                                                       by_reason.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::string> parts;
  for (const auto& [reason, count] : sorted) {
    if (count > 0) parts.push_back(absl::StrCat(reason, " ", count));
  }
  return absl::StrJoin(parts, ", ");
}

namespace {

// A limit where 0 means none: "unlimited", or the number as `text` shows it.
std::string LimitText(uint64_t limit, std::string (*text)(uint64_t) = nullptr) {
  if (limit == 0) return "unlimited";
  return text != nullptr ? text(limit) : absl::StrCat(limit);
}

// What caps connections: open files (one per thread-mode connection) and
// tasks (one per connection), and the memory they share.
void AddLimitRows(Table& table, const admin::ResourceLimits& limits) {
  table.AddRow(
      {"open files limit", absl::StrCat(limits.open_files_limit(), " (hard ",
                                        limits.open_files_hard_limit(), ")")});
  table.AddRow({"max processes", LimitText(limits.max_processes())});
  table.AddRow({"pids limit", LimitText(limits.pids_limit())});
  table.AddRow(
      {"memory limit", LimitText(limits.memory_limit_bytes(), HumanBytes)});
}

// "0.0.0.0: EXPOSED (no token), TLS off", "127.0.0.1: loopback, no
// token, TLS off", "::: token, TLS on".
std::string AdminSecurityText(const admin::AdminSecurity& security) {
  std::string reach;
  if (security.exposed()) {
    reach = "EXPOSED (no token)";
  } else {
    reach = absl::StrCat(security.loopback() ? "loopback, " : "",
                         security.token_required() ? "token" : "no token");
  }
  return absl::StrCat(security.bind(), ": ", reach, ", TLS ",
                      security.tls() ? "on" : "off");
}

}  // namespace

std::string StatusBlock(const std::string& address,
                        const admin::ServerStatus& status) {
  Table table({{"KEY"}, {"VALUE"}}, /*show_header=*/false);
  table.AddRow({"instance", address});
  table.AddRow({"version", status.revision().empty()
                               ? status.version()
                               : absl::StrCat(status.version(), " (",
                                              status.revision(), ")")});
  table.AddRow({"pid", absl::StrCat(status.pid())});
  table.AddRow({"uptime", HumanDuration(ToDuration(status.uptime()))});
  table.AddRow({"mode", ModeText(status.mode())});
  table.AddRow({"draining", status.draining() ? "yes" : "no"});
  table.AddRow(
      {"active", absl::StrCat(status.active_connections(), " (fork ",
                              ActiveIn(status, admin::MODE_FORK), ", thread ",
                              ActiveIn(status, admin::MODE_THREAD), ")")});
  table.AddRow({"accepted", absl::StrCat(status.accepted_total())});
  table.AddRow({"rejected", WithReasons(status.rejected_total(),
                                        status.rejected_by_reason())});
  table.AddRow({"closed",
                WithReasons(status.closed_total(), status.closed_by_reason())});
  table.AddRow({"received", HumanBytes(status.received_bytes_total())});
  table.AddRow({"sent", HumanBytes(status.sent_bytes_total())});
  table.AddRow({"mode switches", absl::StrCat(status.mode_switches_total())});
  for (const admin::WorkerPool& pool : status.workers()) {
    table.AddRow(
        {absl::StrCat(ModeText(pool.mode()), " workers"), WorkersText(pool)});
  }
  table.AddRow({"worker crashes", absl::StrCat(status.worker_crashes_total())});
  table.AddRow({"max connections", absl::StrCat(status.max_connections())});
  table.AddRow({"idle timeout",
                status.has_idle_timeout() &&
                        ToDuration(status.idle_timeout()) > absl::ZeroDuration()
                    ? HumanDuration(ToDuration(status.idle_timeout()))
                    : "none"});
  if (status.has_limits()) AddLimitRows(table, status.limits());
  table.AddRow({"data address", status.data_address()});
  if (status.has_admin_security()) {
    table.AddRow({"admin access", AdminSecurityText(status.admin_security())});
  }
  std::string out = table.Render();
  for (const std::string& warning : status.warnings()) {
    absl::StrAppend(&out, "WARNING: ", warning, "\n");
  }
  return out;
}

std::string StatusLine(absl::Time now, const admin::ServerStatus& status) {
  return absl::StrCat(
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now, absl::UTCTimeZone()),
      " mode=", ModeText(status.mode()),
      status.draining() ? " draining=yes" : "",
      " active=", status.active_connections(),
      " fork=", ActiveIn(status, admin::MODE_FORK),
      " thread=", ActiveIn(status, admin::MODE_THREAD),
      " accepted=", status.accepted_total(),
      " rejected=", status.rejected_total(), " closed=", status.closed_total(),
      " received=", NoSpaces(HumanBytes(status.received_bytes_total())),
      " sent=", NoSpaces(HumanBytes(status.sent_bytes_total())),
      " uptime=", HumanDuration(ToDuration(status.uptime())));
}

}  // namespace upper::ctl
