// The benchmark's SM-clock report (src/bench/gpu_clock.h): sample summaries, reason names, the row text, a monitor
// that cannot load NVML (it must say why and time nothing, not fail), and the monitor's loading and sampling against
// a stand-in NVML (tests/support/fake_nvml.cpp). Against the real NVML: tests/gpu/test_bench_clock.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

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

TEST(BenchClock, SamplesAStandInNvml) {
  // the stand-in's clock reads 1980 MHz twice (the constructor's probe, start()'s first sample), then 1620 MHz with
  // the power cap: the samples on the thread and the one at stop() must see it
  ClockMonitor m("0000:19:00.0", DYSRA_FAKE_NVML_PATH, 1);
  ASSERT_TRUE(m.available()) << m.unavailable_reason();
  EXPECT_EQ(m.unavailable_reason(), "");
  m.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  const ClockStats s = m.stop();
  ASSERT_TRUE(s.valid);
  EXPECT_GE(s.samples, 3);
  EXPECT_EQ(s.max_mhz, 1980u);
  EXPECT_EQ(s.min_mhz, 1620u);
  EXPECT_LT(s.mean_mhz, 1980.0);
  EXPECT_EQ(dysra::bench::describe_clock_reasons(s.reasons), "power cap");
  // a second row starts afresh
  m.start();
  const ClockStats t = m.stop();
  ASSERT_TRUE(t.valid);
  EXPECT_EQ(t.max_mhz, 1620u);
  EXPECT_GE(t.samples, 2);
}

TEST(BenchClock, AStandInNvmlWithoutTheDeviceSaysWhich) {
  ClockMonitor m("0000:42:00.0", DYSRA_FAKE_NVML_PATH, 1);
  EXPECT_FALSE(m.available());
  EXPECT_NE(m.unavailable_reason().find("0000:42:00.0"), std::string::npos) << m.unavailable_reason();
}
