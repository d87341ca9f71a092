// CloseFdsFrom: closes every file descriptor from a number up, in a fork
// child, where only async-signal-safe calls are allowed.
//
// close_range(2) does it in one call, but it is missing on kernels before
// 5.9 and may be refused (ENOSYS, EPERM) by a seccomp profile that does not
// list it. A child that keeps the fork server's control socket and signalfd
// then holds them open after the fork server dies, and upperd's queued
// clients never see EOF. So on failure it falls back to reading
// /proc/self/fd with open() and getdents64() into a stack buffer (no
// allocation, unlike opendir), and without /proc to closing every number up
// to `limit`, which the caller reads before fork (getrlimit is not
// async-signal-safe).
//
// Async-signal-safe: only close_range, open, getdents64 and close. It changes
// the calling process's fd table, so call it where no other thread can be
// using those descriptors (a fork child).
#pragma once

namespace upper {

// Which way CloseFdsFrom closed the descriptors.
enum class CloseFdsPath { kCloseRange, kProcFdDir, kEveryNumber };

// What CloseFdsFrom calls, replaceable so that a test exercises each
// fallback for real.
struct CloseFdsSeams {
  int (*close_range)(unsigned first, unsigned last, int flags) = nullptr;
  // The directory listing the process's fds; nullptr: skip that fallback.
  const char* fd_dir = "/proc/self/fd";
};

// Closes every descriptor >= `first`; `limit` is one above the highest
// descriptor that may be open (RLIMIT_NOFILE's soft limit, read before
// fork), used only when neither close_range nor `fd_dir` works. Descriptors
// below `first` are kept. close() errors are ignored: EBADF means there was
// nothing to close, and on Linux the descriptor is gone even after EINTR or
// EIO.
CloseFdsPath CloseFdsFrom(int first, int limit, const CloseFdsSeams& seams);
CloseFdsPath CloseFdsFrom(int first, int limit);

}  // namespace upper
