#include "common/bounded_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/unique_fd.h"

namespace upper {
namespace {

absl::Status FileError(const std::string& path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", why));
}

absl::string_view FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

absl::StatusOr<std::string> ReadBoundedRegularFile(const std::string& path,
                                                   size_t max_size) {
  if (path.empty()) return FileError(path, "no file named");
  // O_NONBLOCK: opening a FIFO with no writer returns at once instead of
  // waiting for one; O_NOCTTY: a terminal never becomes ours.
  UniqueFd fd(RetryOnEintr([&] {
    return open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  }));
  if (!fd) return FileError(path, std::strerror(errno));
  struct stat st = {};
  if (fstat(fd.get(), &st) != 0) return FileError(path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    return FileError(
        path, absl::StrCat(FileKind(st.st_mode), ", not a regular file"));
  }
  const std::string too_big = absl::StrCat("larger than ", max_size, " bytes");
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    return FileError(path, too_big);
  }
  // The size may change while we read (a file being rewritten): read at most
  // one byte past the bound to tell "too big" from "exactly the bound".
  std::string content(max_size + 1, '\0');
  size_t got = 0;
  while (got < content.size()) {
    const ssize_t n = RetryOnEintr(
        [&] { return read(fd.get(), &content[got], content.size() - got); });
    if (n < 0) return FileError(path, std::strerror(errno));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > max_size) return FileError(path, too_big);
  if (got == 0) return FileError(path, "empty");
  content.resize(got);
  return content;
}

}  // namespace upper
