# Cross-compiling for 64-bit Arm Linux (aarch64) on a Debian host with
# Debian's cross compiler (g++-aarch64-linux-gnu) and arm64 libraries
# installed through multiarch (libabsl-dev:arm64 in /usr/lib/aarch64-linux-gnu,
# whose CMake package CMAKE_LIBRARY_ARCHITECTURE makes find_package find
# instead of the host's). Programs run under qemu-user (CMake uses the
# emulator for gtest_discover_tests and add_test). Used by .ci/arm64.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

find_program(UPPER_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64
  REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${UPPER_QEMU_AARCH64})
