// The data plane's transform: ASCII 'a'..'z' become 'A'..'Z'; every other
// byte (NUL, UTF-8, 0x80..0xFF) is left as it is.
//
// Pure, allocation-free and async-signal-safe, so fork children call it. The
// loop is branch-free so that the compiler vectorises it (the file is built
// with -O3; bench/ measures it).
#pragma once

#include <cstddef>

namespace upper {

// Upper-cases `size` bytes at `data` in place.
void UpperCaseInPlace(char* data, std::size_t size);

}  // namespace upper
