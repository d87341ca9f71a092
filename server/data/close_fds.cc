#include "server/data/close_fds.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace upper {
namespace {

// The descriptor number an entry of /proc/self/fd names; -1 for "." and
// "..". By hand: strtol is not on POSIX's async-signal-safe list.
int ParseFd(const char* name) {
  if (*name == '\0') return -1;
  int fd = 0;
  for (; *name != '\0'; ++name) {
    if (*name < '0' || *name > '9' || fd > 100000000) return -1;
    fd = fd * 10 + (*name - '0');
  }
  return fd;
}

// Closes every fd >= `first` listed in `dir`; false if `dir` cannot be read.
// Closing entries while reading the directory is safe on Linux: its offset
// is a descriptor number, so none is skipped.
bool CloseListed(int first, const char* dir) {
  int dir_fd;
  do {
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (dir_fd < 0 && errno == EINTR);
  if (dir_fd < 0) return false;
  alignas(dirent64) char buffer[4096];
  bool read_all = false;
  for (;;) {
    const ssize_t n = getdents64(dir_fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      read_all = n == 0;
      break;
    }
    for (ssize_t offset = 0; offset < n;) {
      const auto* entry = reinterpret_cast<const dirent64*>(buffer + offset);
      offset += entry->d_reclen;
      const int fd = ParseFd(entry->d_name);
      if (fd >= first && fd != dir_fd) close(fd);
    }
  }
  close(dir_fd);
  return read_all;
}

int SystemCloseRange(unsigned first, unsigned last, int flags) {
  return close_range(first, last, flags);
}

}  // namespace

CloseFdsPath CloseFdsFrom(int first, int limit, const CloseFdsSeams& seams) {
  auto* close_range_fn =
      seams.close_range != nullptr ? seams.close_range : &SystemCloseRange;
  if (close_range_fn(static_cast<unsigned>(first), ~0U, 0) == 0) {
    return CloseFdsPath::kCloseRange;
  }
  if (seams.fd_dir != nullptr && CloseListed(first, seams.fd_dir)) {
    return CloseFdsPath::kProcFdDir;
  }
  for (int fd = first; fd < limit; ++fd) close(fd);
  return CloseFdsPath::kEveryNumber;
}

CloseFdsPath CloseFdsFrom(int first, int limit) {
  return CloseFdsFrom(first, limit, CloseFdsSeams{});
}

}  // namespace upper
