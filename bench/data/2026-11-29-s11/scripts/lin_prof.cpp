// profiling driver: one warm fwd+bwd of linear_attention (B4 H16 D128 bf16) under cudaProfilerStart/Stop
// usage: lin_prof T normalize(0/1) [fwd_only]
#include <cuda_profiler_api.h>
#include <cuda_runtime_api.h>
#include <torch/torch.h>
#include <cstdio>
#include <cstdlib>
#include "dysra/ops/backend.h"
#include "dysra/ops/linear_attention.h"
int main(int argc, char** argv) {
  const int64_t T = argc > 1 ? std::atoll(argv[1]) : 4096;
  const bool norm = argc > 2 && std::atoi(argv[2]);
  const bool fwd_only = argc > 3 && std::atoi(argv[3]);
  dysra::ops::set_cuda_backend(dysra::ops::CudaBackend::kKernels);
  auto bf = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  auto q = (torch::rand({4, T, 16, 128}, bf) + 0.1).requires_grad_(true);
  auto k = (torch::rand({4, T, 16, 128}, bf) + 0.1).requires_grad_(true);
  auto v = torch::randn({4, T, 16, 128}, bf).requires_grad_(true);
  auto g = torch::randn({4, T, 16, 128}, bf);
  dysra::ops::LinearAttentionOptions o;
  o.normalize = norm;
  o.scale = 1.0 / std::sqrt(128.0);
  auto step = [&] {
    auto out = dysra::ops::linear_attention(q, k, v, {}, o).out;
    if (!fwd_only) torch::autograd::grad({out}, {q, k, v}, {g});
  };
  for (int i = 0; i < 3; ++i) step();
  cudaDeviceSynchronize();
  cudaProfilerStart();
  step();
  cudaDeviceSynchronize();
  cudaProfilerStop();
  std::printf("ok\n");
}
