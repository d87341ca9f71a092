// CloseDelivery: what signalling a connection's worker to end achieved, so
// that a close is answered by what happened (OK, NOT_FOUND, UNAVAILABLE).
#pragma once

namespace upper {

enum class CloseDelivery {
  kSignalled,  // the worker was told (SIGTERM/SIGKILL, or its fd shut down)
  kPending,    // no worker has claimed the slot yet: it sees the request when
               // it does, or the slot is abandoned counted as the request
  kEnded,      // the connection ended meanwhile (counted as requested)
  kFailed,     // a worker serves it but could not be signalled
};

}  // namespace upper
