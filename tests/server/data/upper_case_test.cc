#include "server/data/upper_case.h"

#include <cctype>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace upper {
namespace {

unsigned char Reference(unsigned char c) {
  return c >= 'a' && c <= 'z' ? static_cast<unsigned char>(c - 'a' + 'A') : c;
}

TEST(UpperCase, EveryByteMatchesAsciiToupper) {
  for (int c = 0; c < 256; ++c) {
    char byte = static_cast<char>(c);
    UpperCaseInPlace(&byte, 1);
    // In the C locale toupper() changes exactly 'a'..'z'.
    EXPECT_EQ(static_cast<unsigned char>(byte), std::toupper(c)) << c;
    EXPECT_EQ(static_cast<unsigned char>(byte), Reference(c)) << c;
  }
}

TEST(UpperCase, EmptyBufferIsUntouched) {
  char sentinel = 'a';
  UpperCaseInPlace(&sentinel, 0);
  EXPECT_EQ(sentinel, 'a');
}

TEST(UpperCase, RandomBuffersAtEveryAlignmentAndLength) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<unsigned char> storage(4096 + 64 + 2);
  for (size_t length = 0; length <= 4096; length += (length < 130 ? 1 : 61)) {
    for (size_t offset = 0; offset < 64; ++offset) {
      for (auto& b : storage) b = static_cast<unsigned char>(byte(rng));
      const std::vector<unsigned char> before = storage;
      UpperCaseInPlace(reinterpret_cast<char*>(storage.data()) + offset,
                       length);
      for (size_t i = 0; i < storage.size(); ++i) {
        const bool inside = i >= offset && i < offset + length;
        const unsigned char want = inside ? Reference(before[i]) : before[i];
        ASSERT_EQ(storage[i], want)
            << "length " << length << " offset " << offset << " index " << i;
      }
    }
  }
}

TEST(UpperCase, Utf8AndNulArePassedThrough) {
  std::string text("gr\xc3\xbc\xc3\x9f \0 \xe2\x82\xac z", 14);
  UpperCaseInPlace(text.data(), text.size());
  EXPECT_EQ(text, std::string("GR\xc3\xbc\xc3\x9f \0 \xe2\x82\xac Z", 14));
}

}  // namespace
}  // namespace upper
