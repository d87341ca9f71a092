#include "server/data/upper_case.h"

namespace upper {

void UpperCaseInPlace(char* data, std::size_t size) {
  auto* bytes = reinterpret_cast<unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) {
    const unsigned char c = bytes[i];
    // (c - 'a') < 26 only for 'a'..'z' once wrapped to unsigned; clearing bit
    // 5 (0x20) upper-cases exactly those.
    const unsigned char is_lower =
        static_cast<unsigned char>(static_cast<unsigned char>(c - 'a') < 26);
    bytes[i] = static_cast<unsigned char>(c ^ (is_lower << 5));
  }
}

}  // namespace upper
