// libFuzzer target: UpperCaseInPlace against a byte-by-byte reference, at
// every alignment (the first input byte picks the start offset, so the
// vectorised loop's head, body and tail are all exercised), and never
// touching a byte outside its range.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "server/data/upper_case.h"

namespace {

constexpr unsigned char kGuard = 'g';  // a lower-case letter: would change
constexpr size_t kGuardSize = 64;

unsigned char Reference(unsigned char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<unsigned char>(c - 0x20) : c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t offset = data[0] % 64;
  const uint8_t* input = data + 1;
  const size_t length = size - 1;
  std::vector<unsigned char> buffer(kGuardSize + offset + length + kGuardSize,
                                    kGuard);
  unsigned char* start = buffer.data() + kGuardSize + offset;
  if (length > 0) std::memcpy(start, input, length);
  upper::UpperCaseInPlace(reinterpret_cast<char*>(start), length);
  for (size_t i = 0; i < length; ++i) {
    if (start[i] != Reference(input[i])) std::abort();
  }
  for (size_t i = 0; i < kGuardSize + offset; ++i) {
    if (buffer[i] != kGuard) std::abort();
  }
  for (size_t i = kGuardSize + offset + length; i < buffer.size(); ++i) {
    if (buffer[i] != kGuard) std::abort();
  }
  return 0;
}
