// session 12: one process's gathered (b) forward timing: cool (after a 2.5 s rest) then steady (after 150 calls)
#include <ATen/ATen.h>
#include <torch/torch.h>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include "bench/timing.h"
#include "dysra/ops/gathered_attention.h"
int main(int argc, char** argv) {
  const char* tag = argc > 1 ? argv[1] : "";
  const bool shape_a = argc > 2 && std::string(argv[2]) == "a";  // (a): 4096 queries, one list; else (b)
  const int64_t B = 1, H = 16, D = 128, K = 2048, N = 65536, bq = shape_a ? 4096 : 64, tq = shape_a ? 4096 : N,
                nb = tq / bq;
  auto bf = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  std::vector<std::vector<at::Tensor>> sets;
  for (int r = 0; r < 2; ++r) {
    auto idx = std::get<1>(torch::rand({B, H, nb, N}, bf.dtype(torch::kFloat32)).topk(K, -1));
    sets.push_back({torch::randn({B, tq, H, D}, bf), torch::randn({B, N, H, D}, bf), torch::randn({B, N, H, D}, bf),
                    std::get<0>(idx.sort(-1))});
  }
  torch::NoGradGuard ng;
  dysra::ops::GatheredAttentionOptions go;
  go.block_q = bq;
  go.check_indices = false;
  auto f = [&](int i) { auto& s = sets[i % 2]; dysra::ops::gathered_attention(s[0], s[1], s[2], s[3], go); };
  const double fl = 4.0 * B * H * tq * K * D;
  dysra::bench::time_cuda(f, 1, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  auto c = dysra::bench::time_cuda(f, 0, 10);
  auto s = dysra::bench::time_cuda(f, 150, 40);
  std::printf("%-8s (%s) cool median %.4f min %.4f ms (%.1f TFLOP/s) | steady median %.4f min %.4f ms (%.1f TFLOP/s)\n", tag, shape_a ? "a" : "b",
              c.median_ms, c.min_ms, fl / c.median_ms * 1e-9, s.median_ms, s.min_ms, fl / s.median_ms * 1e-9);
}
