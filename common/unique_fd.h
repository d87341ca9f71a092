// UniqueFd: the one owner of a file descriptor, in every program.
//
// Move-only; a moved-from UniqueFd holds -1; the destructor closes. Business
// logic never calls close(2) itself: it lets a UniqueFd go out of scope or
// calls Reset(). Not thread-safe: one owner at a time, like std::unique_ptr.
#pragma once

#include <utility>

namespace upper {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership without closing.
  int Release() { return std::exchange(fd_, -1); }
  // Closes the held descriptor (EINTR on close is not retried: on Linux the
  // descriptor is gone either way) and takes ownership of `fd`.
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

}  // namespace upper
