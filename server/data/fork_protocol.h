// What upperd and its fork server agree on.
//
// upperd starts the fork server with posix_spawn of its own binary and
// `kForkServerRoleFlag`, the connection table's memfd on fd kTableFd and one
// end of a SOCK_SEQPACKET socketpair on fd kControlFd. For each fork-mode
// connection upperd sends one ForkRequest datagram carrying the socket as
// SCM_RIGHTS. Nothing is sent back: the fork server records success, failure
// and every child's exit in the shared table, and acknowledges each request
// it took there too (Header::fork_requests_acked, for upperd's watchdog). When
// upperd closes its end, the fork server takes no more work, waits for its
// children and exits.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"

namespace upper {

inline constexpr absl::string_view kForkServerRoleFlag =
    "--internal_fork_server";
// The fork server's own program, looked for beside upperd's binary.
inline constexpr absl::string_view kForkServerProgram = "upperd-fork-server";
inline constexpr int kTableFd = 3;
inline constexpr int kControlFd = 4;

struct ForkRequest {
  uint32_t slot;
  uint32_t generation;  // the slot's generation when upperd allocated it
};

// The fork pool (README "Fork pool") reuses ForkRequest on two more lines:
//  - upperd -> fork server, without a socket: slot kStopPoolSlot asks it to
//    keep no idle child from now on (the drain: idle workers exit at once);
//  - fork server <-> one pool child, over that child's own SOCK_SEQPACKET
//    socketpair: a job (a request with the connection's socket) one way,
//    and "done" (the request it finished, without a socket) the other. A
//    job without a socket, or the fork server's end closed, tells the
//    child to exit.
inline constexpr uint32_t kStopPoolSlot = 0xFFFFFFFF;

// The signal upperd sends a fork child to close one connection, with the
// connection's tag (CloseTag) as its value: a pool child that serves
// another connection by the time it arrives ignores it. A real-time
// signal, because those queue: a standard signal already pending would
// swallow a second one, and with it a close. SIGTERM from anyone else
// still ends a child (counted `killed`).
inline int ChildCloseSignal() { return SIGRTMIN; }
inline uint64_t CloseTag(uint32_t slot, uint32_t generation) {
  return uint64_t{slot} << 32 | generation;
}

// upperd's half: sends `request` with `conn` (none if -1) as SCM_RIGHTS on
// `socket`
// (non-blocking: upperd's end is O_NONBLOCK, so a stuck fork server never
// blocks the event loop), retrying EINTR. The caller keeps (and later
// closes) its own copy of `conn`. True: sent; false: the socket buffer is
// full (EAGAIN), nothing was sent (a SOCK_SEQPACKET datagram goes whole or
// not at all), so poll for POLLOUT and send it again. Errors:
// ErrnoStatus("sendmsg(fork server)"): EPIPE or ECONNRESET once the fork
// server is gone, ETOOMANYREFS at the fds-in-flight limit, EMSGSIZE for a
// short send.
absl::StatusOr<bool> SendForkRequest(int socket, const ForkRequest& request,
                                     int conn);

// What one ReceiveForkRequest call took off the socket.
struct ReceivedForkRequest {
  enum class Outcome {
    kRequest,    // a whole ForkRequest; see `conn` and `truncated`
    kRetry,      // EINTR or EAGAIN: nothing taken, poll again
    kClosed,     // end of file or an error: upperd will send no more
    kMalformed,  // shorter than a ForkRequest; any fds were closed (a longer
                 // datagram is cut to its first sizeof(ForkRequest) bytes)
  };
  Outcome outcome = Outcome::kClosed;
  ForkRequest request = {};
  // The first fd passed with the request; invalid when none arrived. Any
  // further fds (never sent) are closed, not leaked.
  UniqueFd conn;
  // MSG_CTRUNC: the kernel dropped passed fds that did not fit, which is how
  // a socket is lost at this process's fd limit.
  bool truncated = false;
  ssize_t bytes = 0;  // recvmsg's result, for logging a malformed request
};

// The fork server's half: one recvmsg on `socket` (MSG_CMSG_CLOEXEC: the fds
// are close-on-exec). No allocation; every received fd is owned by a
// UniqueFd. A request whose socket did not come is still kRequest, so that
// the caller can free the slot it names.
ReceivedForkRequest ReceiveForkRequest(int socket);

}  // namespace upper
