// Logs an attacker can neither forge nor flood.
#include "common/log_limiter.hpp"

#include <gtest/gtest.h>

#include "common/log_text.hpp"

namespace hearth {
namespace {

TEST(LogText, ControlCharactersCannotStartALine) {
  EXPECT_EQ(printable("node-1"), "node-1");
  EXPECT_EQ(printable("x\n[info] FORGED"), "x\\x0a[info] FORGED");
  EXPECT_EQ(printable(std::string("\x1b[2J\0\\", 6)), "\\x1b[2J\\x00\\\\");
  EXPECT_EQ(printable("\xc3\xa9"), "\\xc3\\xa9");
  EXPECT_EQ(printable(std::string(200, 'a'), 4), "aaaa...(200 bytes)");
}

TEST(LogLimiter, APeerGetsItsBurstThenOneSummaryPerSecond) {
  LogLimiter limiter("test", 3);
  const auto t = LogLimiter::Clock::now();
  int logged = 0;
  for (int i = 0; i < 1000; ++i) logged += limiter.admit("evil", t) ? 1 : 0;
  EXPECT_EQ(logged, 3);
  EXPECT_TRUE(limiter.admit("other", t)) << "peers have budgets of their own";
  EXPECT_EQ(limiter.suppressed(), 997u);
  EXPECT_TRUE(limiter.admit("evil", t + std::chrono::milliseconds(1001))) << "a new second";
}

}  // namespace
}  // namespace hearth
