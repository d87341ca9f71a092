// Routes gRPC's own log lines (gpr_log: bind failures, transport errors,
// GRPC_VERBOSITY=debug output) and protobuf's (a request string field that
// is not UTF-8) through upperd's structured log, so that
// every stderr line has one format: with --log_format=json, gRPC's lines are
// JSON too (`{"event":"grpc","message":...,"source":"file.cc:123"}`), and a
// log collector that parses each line never meets gRPC's `E1202 ...` form.
// A peer can make gRPC log (a header value it cannot parse, logged whole,
// before any token is checked), so each message is cut at 512 bytes and at
// most 20 such lines a second are written; each line says how many were
// dropped before it (`suppressed`).
//
// Call once, before the first gRPC object is made (gRPC may log from its
// first call on). gRPC calls the hook from any of its threads.
#pragma once

namespace upper {

void RouteGrpcLogsToUpperLog();

}  // namespace upper
