#include "common/fault_point.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace upper {
namespace {

enum class FaultAction { kKill, kStop, kExit };

struct ArmedPoint {
  char name[64];
  // With UPPER_FAULT_POINT_ONCE_DIR: <dir>/<name>; the point fires only for
  // the process that creates it, so once across upperd, its fork servers
  // (a respawned one inherits the same variables) and their children.
  char once_path[256];
  FaultAction action;
  long nth;
  std::atomic<long> hits;
};

constexpr int kMaxArmed = 8;
ArmedPoint g_armed[kMaxArmed];
// Written before any thread or child exists, read-only afterwards.
int g_armed_count = 0;

// strcmp is not on POSIX's async-signal-safe list; this loop is.
bool SameName(const char* a, const char* b) {
  for (; *a != '\0' && *a == *b; ++a, ++b) {
  }
  return *a == *b;
}

bool ParseAction(const std::string& text, FaultAction* action) {
  if (text == "kill")
    *action = FaultAction::kKill;
  else if (text == "stop")
    *action = FaultAction::kStop;
  else if (text == "exit")
    *action = FaultAction::kExit;
  else
    return false;
  return true;
}

// One "<name>:<action>[:<nth>]" entry; "" or why it is malformed.
std::string ArmOne(const std::string& entry) {
  const std::size_t colon = entry.find(':');
  if (colon == 0 || colon == std::string::npos) {
    return "UPPER_FAULT_POINT: \"" + entry + "\" is not <name>:<action>";
  }
  const std::string name = entry.substr(0, colon);
  std::string rest = entry.substr(colon + 1);
  long nth = 1;
  if (const std::size_t second = rest.find(':'); second != std::string::npos) {
    char* end = nullptr;
    nth = std::strtol(rest.c_str() + second + 1, &end, 10);
    if (*end != '\0' || nth < 1) {
      return "UPPER_FAULT_POINT: nth of \"" + entry + "\" must be >= 1";
    }
    rest.resize(second);
  }
  FaultAction action;
  if (!ParseAction(rest, &action)) {
    return "UPPER_FAULT_POINT: action of \"" + entry +
           "\" must be kill, stop or exit";
  }
  if (g_armed_count == kMaxArmed || name.size() >= sizeof(g_armed[0].name)) {
    return "UPPER_FAULT_POINT: too many points or too long a name";
  }
  const char* once_dir = std::getenv("UPPER_FAULT_POINT_ONCE_DIR");
  const std::string once = once_dir == nullptr || *once_dir == '\0'
                               ? std::string()
                               : std::string(once_dir) + "/" + name;
  if (once.size() >= sizeof(g_armed[0].once_path)) {
    return "UPPER_FAULT_POINT_ONCE_DIR: too long a path";
  }
  ArmedPoint& point = g_armed[g_armed_count++];
  std::memcpy(point.name, name.c_str(), name.size() + 1);
  std::memcpy(point.once_path, once.c_str(), once.size() + 1);
  point.action = action;
  point.nth = nth;
  point.hits.store(0, std::memory_order_relaxed);
  return "";
}

}  // namespace

std::string ArmFaultPoints(const char* spec) {
  g_armed_count = 0;
  std::string text(spec);
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (std::string error = ArmOne(text.substr(start, comma - start));
        !error.empty()) {
      g_armed_count = 0;
      return error;
    }
    start = comma + 1;
  }
  return "";
}

std::string ArmFaultPointsFromEnvironment() {
#ifdef UPPER_FAULT_POINTS
  const char* spec = std::getenv("UPPER_FAULT_POINT");
  if (spec != nullptr && *spec != '\0') return ArmFaultPoints(spec);
#endif
  return "";
}

void FaultPointHit(const char* name) {
  for (int i = 0; i < g_armed_count; ++i) {
    ArmedPoint& point = g_armed[i];
    if (!SameName(point.name, name)) continue;
    if (point.hits.fetch_add(1, std::memory_order_relaxed) + 1 != point.nth) {
      continue;
    }
    if (point.once_path[0] != '\0') {
      // open and close are async-signal-safe; O_EXCL makes one winner.
      const int marker =
          open(point.once_path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
      if (marker < 0) continue;
      close(marker);
    }
    switch (point.action) {
      case FaultAction::kKill:
        kill(getpid(), SIGKILL);
        break;
      case FaultAction::kStop:
        kill(getpid(), SIGSTOP);
        break;
      case FaultAction::kExit:
        _exit(99);
    }
  }
}

}  // namespace upper
