// The fork server: a small single-threaded process whose only job is to
// fork one child per fork-mode connection and reap it.
//
// Why a separate process: upperd runs gRPC and metrics threads. fork()
// copies only the calling thread, so a lock another thread held at that
// moment (malloc's, gRPC's) stays locked forever in the child; and each fork
// copies upperd's big page tables (fork_server_main.cc has the figures;
// README.md, "Fork mode never forks...", says this for operators). This
// process is exec'd fresh (from upperd-fork-server, or upperd's own binary),
// so it holds no thread, no gRPC state and no listening socket; its children
// hold only stdio and their connection. They keep serving even if upperd is
// killed, which lets a new upperd bind at once.
//
// Single-threaded but for its log writer (log.h), which children never
// touch; children run only async-signal-safe code (ChildMain).
#pragma once

namespace upper {

// True when argv asks for the fork server role (see fork_protocol.h).
bool IsForkServerInvocation(int argc, const char* const* argv);

// Runs the fork server until upperd closes the control socket and every child
// has been reaped. Returns the process exit code.
int RunForkServer(int argc, const char* const* argv);

}  // namespace upper
