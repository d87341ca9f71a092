// StopCleanly: ends a test's upperd the way an operator does, with SIGTERM,
// and expects the drain to finish and upperd to exit 0 within `timeout`
// (a failure message carries upperd's log).
#pragma once

#include <signal.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {

inline void StopCleanly(UpperdProcess& upperd,
                        absl::Duration timeout = absl::Seconds(30)) {
  upperd.Signal(SIGTERM);
  absl::StatusOr<int> code = upperd.WaitExit(timeout);
  ASSERT_TRUE(code.ok()) << code.status() << "\n" << upperd.Log();
  EXPECT_EQ(*code, 0) << upperd.Log();
}

}  // namespace upper::testing
