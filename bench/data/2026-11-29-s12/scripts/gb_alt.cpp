// session 12: gathered (b) eager vs CUDA-graph rows alternated, with dense causal SDPA between, each with the SM clock
// read (nvidia-smi in the background logs it; rows print wall timestamps). Is the graph row's slowness the clock?
#include <ATen/ATen.h>
#include <torch/torch.h>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>
#include <sys/time.h>
#include "bench/timing.h"
#include "dysra/ops/gathered_attention.h"
using dysra::bench::Timing;
static void stamp(const char* what, const Timing& t, double flops) {
  timeval tv; gettimeofday(&tv, nullptr); tm lt; localtime_r(&tv.tv_sec, &lt);
  std::printf("%02d:%02d:%02d.%03d %-22s median %.4f min %.4f max %.4f ms  %.1f TFLOP/s (median)\n", lt.tm_hour, lt.tm_min,
              lt.tm_sec, int(tv.tv_usec / 1000), what, t.median_ms, t.min_ms, t.max_ms, flops / t.median_ms * 1e-9);
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
  const double fl = 4.0 * B * H * N * K * D, fd = 2.0 * B * H * double(N) * N * D;
  for (int round = 0; round < 3; ++round) {
    stamp("(b) graph", dysra::bench::time_cuda_graph(f, 2, 3, 30), fl);
    stamp("(b) eager", dysra::bench::time_cuda(f, 3, 30), fl);
    stamp("dense causal sdpa", dysra::bench::time_cuda([&](int) { at::scaled_dot_product_attention(q, k, v, {}, 0.0, true); }, 2, 20), fd);
    stamp("(b) eager", dysra::bench::time_cuda(f, 3, 30), fl);
    stamp("(b) graph", dysra::bench::time_cuda_graph(f, 2, 3, 30), fl);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    stamp("(b) eager after 2s", dysra::bench::time_cuda(f, 0, 30), fl);
    stamp("(b) graph after", dysra::bench::time_cuda_graph(f, 2, 3, 30), fl);
  }
}
