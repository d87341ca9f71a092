// What upperd and its fork server agree on.
//
// upperd starts the fork server with posix_spawn of its own binary and
// `kForkServerRoleFlag`, the connection table's memfd on fd kTableFd and one
// end of a SOCK_SEQPACKET socketpair on fd kControlFd. For each fork-mode
// connection upperd sends one ForkRequest datagram carrying the socket as
// SCM_RIGHTS. Nothing is sent back: the fork server records success, failure
// and every child's exit in the shared table. When upperd closes its end, the
// fork server takes no more work, waits for its children and exits.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

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

}  // namespace upper
