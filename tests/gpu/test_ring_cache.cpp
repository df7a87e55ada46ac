// tests/gpu/test_ring_cache.cpp — the ring compressive cache on CUDA against the same cache in float64 on the CPU
// (which tests/test_cache.cpp checks against the compressive KVCachePolicy), fp32 and bf16, through prefill,
// many block compressions and summary rotations.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "dysra/cache/ring_cache.h"

namespace {

void check(torch::ScalarType dtype, double tol) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(17);
  const int64_t B = 2, H = 5, D = 64;
  dysra::cache::RingCacheOptions o;
  o.sink_tokens = 3, o.raw_slots = 96, o.delta = 32, o.rank = 4, o.summary_slots = 12;
  dysra::cache::RingCompressiveCache ref(o, B, H, D, torch::TensorOptions().dtype(torch::kFloat64));
  dysra::cache::RingCompressiveCache gpu(o, B, H, D, torch::TensorOptions().dtype(dtype).device(torch::kCUDA));
  auto pk = torch::randn({B, H, 300, D}, torch::kFloat64), pv = torch::randn({B, H, 300, D}, torch::kFloat64);
  ref.append(pk, pv);
  gpu.append(pk.to(torch::kCUDA, dtype), pv.to(torch::kCUDA, dtype));
  double worst = 0;
  for (int t = 0; t < 200; ++t) {
    auto q = torch::randn({B, H, 1, D}, torch::kFloat64), k = torch::randn({B, H, 1, D}, torch::kFloat64);
    auto v = torch::randn({B, H, 1, D}, torch::kFloat64);
    auto want = ref.decode(q, k, v);
    auto got = gpu.decode(q.to(torch::kCUDA, dtype), k.to(torch::kCUDA, dtype), v.to(torch::kCUDA, dtype));
    worst = std::max(worst, (got.to(torch::kCPU, torch::kFloat64) - want).abs().max().item<double>());
  }
  EXPECT_LT(worst, tol) << "max abs error over 200 decode steps";
  EXPECT_EQ(gpu.held_slots(), ref.held_slots());
  EXPECT_EQ(gpu.tokens(), 500);
}

TEST(RingCacheGpu, Float32MatchesTheFloat64Reference) { check(torch::kFloat32, 2e-4); }
TEST(RingCacheGpu, BFloat16MatchesTheFloat64Reference) { check(torch::kBFloat16, 6e-2); }

}  // namespace
