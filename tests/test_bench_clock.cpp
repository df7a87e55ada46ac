// The benchmark's SM-clock report (src/bench/gpu_clock.h): sample summaries, reason names, the row text, and a
// monitor that cannot load NVML (it must say why and time nothing, not fail). The NVML path runs in
// tests/gpu/test_bench_clock.cpp.
#include <gtest/gtest.h>

#include "bench/gpu_clock.h"

using dysra::bench::ClockMonitor;
using dysra::bench::ClockStats;

TEST(BenchClock, SummarizesSamples) {
  const ClockStats s = dysra::bench::summarize_clock_samples({1980, 1620, 1665, 1980}, {0x0, 0x4, 0x4, 0x1});
  ASSERT_TRUE(s.valid);
  EXPECT_EQ(s.samples, 4);
  EXPECT_EQ(s.min_mhz, 1620u);
  EXPECT_EQ(s.max_mhz, 1980u);
  EXPECT_DOUBLE_EQ(s.mean_mhz, (1980.0 + 1620 + 1665 + 1980) / 4);
  EXPECT_EQ(s.reasons, 0x5u);
  EXPECT_FALSE(dysra::bench::summarize_clock_samples({}, {}).valid);
}

TEST(BenchClock, NamesTheReasonsThatSlowTheClock) {
  using dysra::bench::describe_clock_reasons;
  EXPECT_EQ(describe_clock_reasons(0x0), "");
  EXPECT_EQ(describe_clock_reasons(0x1 | 0x2), "");  // idle, applications clocks: not slowdowns
  EXPECT_EQ(describe_clock_reasons(0x4), "power cap");
  EXPECT_EQ(describe_clock_reasons(0x4 | 0x40), "power cap, thermal");
  EXPECT_EQ(describe_clock_reasons(0x20), "thermal");
  EXPECT_EQ(describe_clock_reasons(0x8 | 0x80), "hardware slowdown, power brake");
}

TEST(BenchClock, FormatsARow) {
  using dysra::bench::format_clock;
  using dysra::bench::summarize_clock_samples;
  EXPECT_EQ(format_clock(ClockStats{}), "");
  EXPECT_EQ(format_clock(summarize_clock_samples({1980, 1980}, {0, 0})), "1980 MHz");
  EXPECT_EQ(format_clock(summarize_clock_samples({1620, 1620}, {0x4, 0x4})), "1620 MHz (power cap)");
  EXPECT_EQ(format_clock(summarize_clock_samples({1620, 1710}, {0x4, 0})), "1665 MHz (1620-1710, power cap)");
  EXPECT_EQ(format_clock(summarize_clock_samples({1960, 1980}, {0, 0})), "1970 MHz (1960-1980)");
}

TEST(BenchClock, WithoutNvmlSaysWhyAndTimesNothing) {
  ClockMonitor m("0000:00:00.0", "libdysra-no-such-nvml.so.1");
  EXPECT_FALSE(m.available());
  EXPECT_NE(m.unavailable_reason().find("libdysra-no-such-nvml.so.1"), std::string::npos) << m.unavailable_reason();
  m.start();
  EXPECT_FALSE(m.stop().valid);
  EXPECT_FALSE(m.stop().valid);  // (a stop without a start)
}
