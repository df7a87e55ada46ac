// The benchmark's SM-clock monitor on a real card (GPU machine): NVML loads, finds the current CUDA device by its
// PCI bus id, and samples a plausible SM clock through a busy stretch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>

#include <cuda_runtime_api.h>

#include "bench/gpu_clock.h"

TEST(BenchClockGpu, SamplesTheSmClockWhileTheCardWorks) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  int dev = 0;
  ASSERT_EQ(cudaGetDevice(&dev), cudaSuccess);
  char bus[32] = {0};
  ASSERT_EQ(cudaDeviceGetPCIBusId(bus, sizeof bus, dev), cudaSuccess);
  dysra::bench::ClockMonitor m(bus, "libnvidia-ml.so.1", 5);
  ASSERT_TRUE(m.available()) << m.unavailable_reason();
  auto a = torch::randn({4096, 4096}, torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16));
  m.start();
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(100)) {
    auto c = torch::mm(a, a);
    torch::cuda::synchronize();
  }
  const dysra::bench::ClockStats s = m.stop();
  ASSERT_TRUE(s.valid);
  EXPECT_GE(s.samples, 3);  // one at each end, ~20 between
  EXPECT_GE(s.min_mhz, 100u);
  EXPECT_LE(s.max_mhz, 5000u);
  EXPECT_LE(s.min_mhz, s.max_mhz);
  std::printf("SM clock while busy: %s over %d samples\n", dysra::bench::format_clock(s).c_str(), s.samples);
}
