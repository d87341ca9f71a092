// Human text for the admin API's messages, shared by commands: a mode's
// short name, a ServerStatus as a key/value block (status, watch on a
// terminal) or as one line (watch into a pipe or file), and the helpers
// that turn protobuf times into absl ones.
//
// Pure functions; thread-safe.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "upper/admin/v1/admin.pb.h"

namespace upper::ctl {

// "fork", "thread", "unspecified", or "mode(7)" for a value this build does
// not know.
std::string ModeText(upper::admin::v1::Mode mode);

absl::Duration ToDuration(const google::protobuf::Duration& duration);
absl::Time ToTime(const google::protobuf::Timestamp& timestamp);

// Active connections of one mode from per_mode (0 when absent).
uint64_t ActiveIn(const upper::admin::v1::ServerStatus& status,
                  upper::admin::v1::Mode mode);

// The workers of one mode from `workers`; nullptr when absent (an upperd
// older than the field).
const upper::admin::v1::WorkerPool* WorkersIn(
    const upper::admin::v1::ServerStatus& status, upper::admin::v1::Mode mode);

// "busy 2, idle 4, spawns 6, hand-offs 64, exits 3 (cache_full 1,
// idle_timeout 2)": one mode's workers, the row `status` prints.
std::string WorkersText(const upper::admin::v1::WorkerPool& pool);

// Adds `from`'s figures (busy, idle, spawns, hand-offs, exits by reason) to
// `to`'s; the mode is left as it is. For fleet totals.
void AddWorkers(const upper::admin::v1::WorkerPool& from,
                upper::admin::v1::WorkerPool* to);

// "limit 2, draining 1" from a by-reason map, sorted by name; "" if empty.
std::string ReasonsText(
    const google::protobuf::Map<std::string, uint64_t>& by_reason);

// The key/value block `upperctl status` prints for one instance, then a
// "WARNING: <text>" line for each of the server's warnings (an admin
// endpoint exposed without a token, ...).
std::string StatusBlock(const std::string& address,
                        const upper::admin::v1::ServerStatus& status);

// One line, e.g. "2025-01-02T10:00:00Z mode=thread active=3 fork=1
// thread=2 accepted=120 rejected=0 closed=117 received=1.2 KiB sent=1.2 KiB
// uptime=3m12s" ("received=1.2KiB": no spaces inside a value).
std::string StatusLine(absl::Time now,
                       const upper::admin::v1::ServerStatus& status);

}  // namespace upper::ctl
