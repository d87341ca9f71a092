// ModeTest: the base of suites that run each test once per worker mode
// (INSTANTIATE_TEST_SUITE_P(..., ::testing::Values("thread", "fork"))).
// StartUpperd() starts a real upperd in the test's mode on free loopback
// ports; a start-up failure is a test failure and yields nullptr.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {

class ModeTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<UpperdProcess> StartUpperd(
      std::vector<std::string> args = {}) {
    args.push_back(absl::StrCat("--mode=", GetParam()));
    absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
        UpperdProcess::Start({.args = args});
    EXPECT_TRUE(upperd.ok()) << upperd.status();
    return upperd.ok() ? *std::move(upperd) : nullptr;
  }
};

}  // namespace upper::testing
