#include "bench/timing.h"

#include <algorithm>
#include <numeric>
#include <vector>

#ifdef DYSRA_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <torch/cuda.h>

namespace dysra::bench {

Timing time_cuda(const std::function<void(int)>& f, int warmup, int runs) {
  for (int i = 0; i < warmup; ++i) f(i);
  torch::cuda::synchronize();
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> ms;
  for (int i = 0; i < runs; ++i) {
    cudaEventRecord(a, stream);
    f(warmup + i);
    cudaEventRecord(b, stream);
    cudaEventSynchronize(b);
    float t = 0;
    cudaEventElapsedTime(&t, a, b);
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  Timing r;
  r.runs = runs;
  r.mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / std::max(runs, 1);
  std::sort(ms.begin(), ms.end());
  r.min_ms = ms.front();
  r.max_ms = ms.back();
  r.median_ms = runs % 2 ? ms[runs / 2] : 0.5 * (ms[runs / 2 - 1] + ms[runs / 2]);
  return r;
}

}  // namespace dysra::bench
#endif
