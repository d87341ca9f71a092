// Runs the admin plane's start-up on a short-lived thread whose nice value is
// raised first, so that every thread gRPC creates inherits it (issue 12,
// rapid reset).
//
// Why: Debian's gRPC 1.51.1 is unpatched for HTTP/2 rapid reset
// (CVE-2023-44487): a peer with no token can make the admin port's threads
// burn about a CPU by opening and resetting streams, and no channel argument
// of 1.51 bounds that. Those threads live in upperd's process, beside the
// data plane. On Linux the nice value is a property of each thread, and a
// new thread (clone) starts with its creator's. gRPC creates all its threads
// (timer manager, executors, resolver, the sync server's pollers and
// workers) from grpc_init and Server::Start or from its own threads, so when
// AdminServer::Start runs on a thread at nice N, the whole admin plane runs
// at nice N, while the event loop, the data plane's workers, the metrics
// server and the fork server (and its children) keep the process's nice.
// Under CPU contention CFS then gives the admin plane about 1/(1 + 1.25^N)
// of what a data-plane thread gets (nice 10: ~10 %); idle CPU it still uses.
//
// Raising one's own nice needs no privilege (a non-root container user can
// do it); lowering it does, and is never attempted. An unprivileged process
// can also not lower it back, which is fine: nothing in upperd wants it.
//
// What this does not cover: a gRPC thread created later by a thread that is
// not gRPC's (gRPC 1.51 creates none on upperd's calls after Start, verified
// by tests/integration/admin_nice_test.cc on a running upperd), and kernel
// time spent on the admin socket in softirq context.
//
// Thread-safety: call from the main thread at start-up, before any gRPC call.
#pragma once

#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/status/status.h"

namespace upper {

// The nice value of the calling thread.
int ThisThreadNice();

// Adds `increment` (0..19) to the calling thread's nice value, capped at 19.
// Errors name setpriority and its errno.
absl::Status RaiseThisThreadNice(int increment);

// RaiseThisThreadNice, logging a warning on failure.
void RaiseThisThreadNiceOrWarn(int increment);

// Runs `start` on a new thread whose nice value is the caller's plus
// `increment` and returns what it returned. If the nice value cannot be
// raised, logs a warning and runs `start` anyway (the admin plane then
// competes with the data plane at equal weight, as before). `start` must
// return an absl::Status or absl::StatusOr; ResourceExhausted when no thread
// can be started.
template <typename Start>
auto StartAtNice(int increment, Start&& start) -> decltype(start()) {
  std::optional<decltype(start())> result;
  try {
    std::thread thread([&] {
      RaiseThisThreadNiceOrWarn(increment);
      result.emplace(start());
    });
    thread.join();
  } catch (const std::system_error& e) {
    return absl::ResourceExhaustedError(
        std::string("cannot start the admin plane's thread: ") + e.what());
  }
  return *std::move(result);
}

}  // namespace upper
