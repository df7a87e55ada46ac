// session 12: gathered (b) against dense causal SDPA over all N at matched card states: each right after a 2.5 s rest
// (cool, 1980 MHz; dense SDPA: its first 3 calls, ~90 ms), then interleaved back to back under the power cap
#include <ATen/ATen.h>
#include <torch/torch.h>
#include <chrono>
#include <cstdio>
#include <sys/time.h>
#include <thread>
#include "bench/timing.h"
#include "dysra/ops/gathered_attention.h"
using dysra::bench::Timing;
static void stamp(const char* what, const Timing& t, double flops) {
  timeval tv; gettimeofday(&tv, nullptr); tm lt; localtime_r(&tv.tv_sec, &lt);
  std::printf("%02d:%02d:%02d.%03d %-26s median %.4f min %.4f ms  %.1f TFLOP/s (median) %.1f (min)\n", lt.tm_hour, lt.tm_min,
              lt.tm_sec, int(tv.tv_usec / 1000), what, t.median_ms, t.min_ms, flops / t.median_ms * 1e-9, flops / t.min_ms * 1e-9);
  std::fflush(stdout);
}
int main() {
  const int64_t B = 1, H = 16, D = 128, K = 2048, N = 65536, bq = 64, nb = N / bq;
  auto bf = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  std::vector<std::vector<at::Tensor>> sets;
  for (int r = 0; r < 2; ++r) {
    auto idx = std::get<1>(torch::rand({B, H, nb, N}, bf.dtype(torch::kFloat32)).topk(K, -1));
    sets.push_back({torch::randn({B, N, H, D}, bf), torch::randn({B, N, H, D}, bf), torch::randn({B, N, H, D}, bf),
                    std::get<0>(idx.sort(-1))});
  }
  torch::NoGradGuard ng;
  dysra::ops::GatheredAttentionOptions go;
  go.block_q = bq;
  go.check_indices = false;
  auto f = [&](int i) { auto& s = sets[i % 2]; dysra::ops::gathered_attention(s[0], s[1], s[2], s[3], go); };
  auto q = torch::randn({B, H, N, D}, bf), k = torch::randn({B, H, N, D}, bf), v = torch::randn({B, H, N, D}, bf);
  auto dense = [&](int) { at::scaled_dot_product_attention(q, k, v, {}, 0.0, true); };
  const double fl = 4.0 * B * H * N * K * D, fd = 2.0 * B * H * double(N) * N * D;
  dysra::bench::time_cuda(f, 1, 1);
  dysra::bench::time_cuda(dense, 1, 1);
  auto rest = [] { std::this_thread::sleep_for(std::chrono::milliseconds(2500)); };
  for (int round = 0; round < 3; ++round) {
    rest(); stamp("dense causal sdpa, cool", dysra::bench::time_cuda(dense, 0, 3), fd);
    rest(); stamp("dysra (b), cool", dysra::bench::time_cuda(f, 0, 10), fl);
  }
  dysra::bench::time_cuda(f, 150, 1);  // into the power cap
  for (int round = 0; round < 4; ++round) {
    stamp("dense causal sdpa, steady", dysra::bench::time_cuda(dense, 0, 10), fd);
    stamp("dysra (b), steady", dysra::bench::time_cuda(f, 0, 40), fl);
  }
}
