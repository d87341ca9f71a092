// Routes gRPC's own log lines (gpr_log: bind failures, transport errors,
// GRPC_VERBOSITY=debug output) through upperd's structured log, so that
// every stderr line has one format: with --log_format=json, gRPC's lines are
// JSON too (`{"event":"grpc","message":...,"source":"file.cc:123"}`), and a
// log collector that parses each line never meets gRPC's `E1202 ...` form.
//
// Call once, before the first gRPC object is made (gRPC may log from its
// first call on). gRPC calls the hook from any of its threads.
#pragma once

namespace upper {

void RouteGrpcLogsToUpperLog();

}  // namespace upper
