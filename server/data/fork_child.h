// A fork child: what runs in the process the fork server forks for fork
// mode, from fork() to _exit.
//
// A child serves one connection at a time. A single-use child (no job
// socket: --fork_spare_max=0 or --fork_child_max_connections=1) serves the
// connection it was forked for and exits; the fork server reaps it and
// frees the slot. A pool child also has a SOCK_SEQPACKET socket to the fork
// server (fork_protocol.h): after each connection it closes the socket,
// scrubs its buffer (ScrubServeBuffer), reports "done" and waits for the next
// job; it exits when the fork server's end closes, on a job without a
// socket, or after its last allowed connection (then without a "done": its
// exit is how the fork server learns the slot is free).
//
// Only async-signal-safe work: the fork server is single-threaded, but a
// child is still held to it so that it stays correct if that changes.
#pragma once

#include <cstdint>

#include "server/data/connection_table.h"

namespace upper {

struct ChildStart {
  ConnectionTable* table = nullptr;
  int conn_fd = -1;  // the first connection; -1: a spare, waits for a job
  uint32_t slot = 0;
  uint32_t generation = 0;
  int job_fd = -1;  // -1: single use
  uint32_t max_connections = 1;
};

// Exit status of a child that lost its connection to an abandon (its fork
// server died before the child claimed it): it served nothing.
inline constexpr int kExitUnserved = 3;

// Where the last resort of CloseFdsFrom stops; set by the fork server before
// it forks (getrlimit is not async-signal-safe).
void SetChildFdLimit(int limit);

[[noreturn]] void ChildMain(const ChildStart& start);

}  // namespace upper
