#include "bench/timing.h"

#include <algorithm>
#include <memory>
#include <numeric>
#include <vector>

#ifdef DYSRA_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
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

Timing time_cuda_graph(const std::function<void(int)>& f, int n_sets, int warmup, int runs) {
  // capture needs a non-default stream; the autograd engine runs a backward on the stream of its forward, so
  // forward+backward calls are captured whole
  auto side = c10::cuda::getStreamFromPool();
  std::vector<std::unique_ptr<at::cuda::CUDAGraph>> graphs;
  torch::cuda::synchronize();
  {
    c10::cuda::CUDAStreamGuard guard(side);
    for (int i = 0; i < warmup; ++i) f(i);
    side.synchronize();
    for (int s = 0; s < n_sets; ++s) {
      graphs.push_back(std::make_unique<at::cuda::CUDAGraph>());
      graphs.back()->capture_begin();
      try {
        f(s);
      } catch (...) {
        try {  // end the capture: the allocator leaves the graph's pool and the stream is usable again
          graphs.back()->capture_end();
        } catch (...) {
        }
        cudaGetLastError();
        throw;
      }
      graphs.back()->capture_end();
    }
    side.synchronize();
  }
  const Timing t = time_cuda([&](int i) { graphs[i % n_sets]->replay(); }, warmup, runs);
  graphs.clear();
  c10::cuda::CUDACachingAllocator::emptyCache();  // the graphs' private pools; the next row may need the memory
  return t;
}

}  // namespace dysra::bench
#endif
