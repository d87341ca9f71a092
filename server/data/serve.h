// The serve loop: what every worker, thread or fork child, runs for its one
// connection.
//
// Blocking read -> upper-case -> send everything, until the client's EOF,
// an error, --idle_timeout without a byte received (SO_RCVTIMEO), or
// --send_timeout without the peer taking a byte of our output (SO_SNDTIMEO
// and TCP_USER_TIMEOUT): the loop needs no poll or timer. After the EOF it
// shuts down our write side, so the client gets all of its output and then
// EOF, and keeps the socket until the peer has acknowledged that output
// (looking with a backoff up to 250 ms, bounded by the send timeout, else
// the idle timeout), so that no reply is left to an orphan socket.
//
// Async-signal-safe by construction, because fork children run it: only
// recv, send, setsockopt, getsockopt, ioctl, shutdown, nanosleep,
// clock_gettime and atomics on the shared table; no allocation, no locks,
// no logging. SIGPIPE cannot fire (every send
// uses MSG_NOSIGNAL). The caller owns `fd` and closes it afterwards.
#pragma once

#include <cstddef>

#include "server/base/mode.h"
#include "server/data/connection_table.h"

namespace upper {

// The per-connection buffer. 64 KiB moves a loopback stream at close to
// memory speed while an idle connection touches none of it (a thread's stack
// page or a child's copy-on-write page is only made resident when written).
inline constexpr std::size_t kServeBufferSize = 64 * 1024;

// Serves `fd` until it ends; records bytes and activity through `slot` and
// returns (and records) why it ended. With `touched`, sets it to how far
// into `buffer` anything was written (the largest recv()), for
// ScrubServeBuffer.
CloseReason Serve(int fd, SlotWriter slot, char* buffer, std::size_t size,
                  std::size_t* touched = nullptr);

// Zeroes the serve buffer between two connections of one worker (a cached
// thread or a pool child). Serve() only ever sends bytes recv() has just
// written, so the next peer could not read the previous one's bytes anyway;
// zeroing makes that hold even against a bug there. A caller that knows
// the buffer was all zero before Serve() (a pool child's BSS buffer, which
// nothing but Serve() and this ever write) passes `touched` from Serve():
// only those bytes can be non-zero, and up to kScrubByMemset of them are
// memset (that page is the one every connection touches, so it stays
// resident). A thread's stack buffer is not known to start zero (glibc
// reuses stacks), so the thread cache scrubs it all. Beyond, the whole pages
// inside the buffer are given back with MADV_DONTNEED (a private anonymous
// mapping, as a thread stack and a child's BSS are: the next touch maps a
// fresh zero page), which keeps an idle worker's resident memory small
// after a large read; the partial pages at either end are memset. Giving
// back pages on every connection cost a pool child ~7% of churn8 (a
// madvise, then a page fault and a page zeroed on the next connection's
// first recv). Async-signal-safe (madvise is a plain system call, memset
// touches only the buffer).
inline constexpr std::size_t kScrubByMemset = 4096;
void ScrubServeBuffer(char* buffer, std::size_t size,
                      std::size_t touched = kServeBufferSize);

}  // namespace upper
