// fault_point: named places where a test stops or kills this process at an
// exact instruction, to make a crash-consistency window real and certain.
//
//   UPPER_FAULT_POINT("fork_server.after_fork");
//
// compiles to nothing unless UPPER_FAULT_POINTS is defined, which CMake does
// only for builds with the tests (UPPER_BUILD_TESTS=ON); the release image
// is built without them, so there the variable below means nothing.
//
// A test arms points through the environment, read once per program by
// ArmFaultPointsFromEnvironment() before any thread or child exists:
//
//   UPPER_FAULT_POINT=<name>:<action>[:<nth>][,<name>:<action>[:<nth>]...]
//
// action: `kill` (SIGKILL to itself), `stop` (SIGSTOP to itself; a SIGCONT
// resumes it right there) or `exit` (_exit(99)). nth: the hit, counted in
// this process, that fires (default 1, the first). Children inherit the
// armed points and their counts as they stood at fork(), and a respawned
// fork server arms them afresh; with UPPER_FAULT_POINT_ONCE_DIR=<dir> set,
// each point fires once in all of them (the first to create <dir>/<name>).
//
// Hit() is async-signal-safe (fork children reach points): no allocation, no
// locks, only loads, a relaxed atomic add, getpid and kill.
#pragma once

#include <string>

namespace upper {

// Parses UPPER_FAULT_POINT (no-op when unset or when fault points are not
// compiled in). Returns an error message for a malformed value, else "".
std::string ArmFaultPointsFromEnvironment();

// Arms points from `spec` (the variable's syntax); for tests of the parser.
std::string ArmFaultPoints(const char* spec);

// Fires the action armed for `name`, if any and if this is its nth hit.
void FaultPointHit(const char* name);

}  // namespace upper

#ifdef UPPER_FAULT_POINTS
#define UPPER_FAULT_POINT(name) ::upper::FaultPointHit(name)
#else
#define UPPER_FAULT_POINT(name) \
  do {                          \
  } while (false)
#endif
