// kernels/common/kernel_common.h — torch-free definitions shared by the dysra CUDA kernels.
//
// Host-visible (plain C++): the dtype tag carried in every params struct, the error-check macro the launchers use,
// and two host helpers of the launchers (alignment, SM count). Launchers return cudaError_t (flashinfer style); the
// LibTorch glue turns it into an exception.
#pragma once
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>

namespace dysra::kernels {

/// Element type of a tensor the kernels read or write. State and accumulators are always fp32.
enum class DType : int { kFloat32 = 0, kBFloat16 = 1, kFloat16 = 2 };

/// Whether `ptr` is 16-byte aligned (what cp.async and 16-byte vector accesses need).
inline bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

/// Streaming multiprocessors of the current device, queried once per device (132, an H100/H200, if the query fails).
inline int current_device_sm_count() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> counts[kMaxDevices];  // zero-initialised (static storage)
  int dev = 0, n = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 132;
  if (dev >= 0 && dev < kMaxDevices && counts[dev].load(std::memory_order_relaxed) > 0)
    return counts[dev].load(std::memory_order_relaxed);
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0) n = 132;
  if (dev >= 0 && dev < kMaxDevices) counts[dev].store(n, std::memory_order_relaxed);
  return n;
}

}  // namespace dysra::kernels

/// Returns the error of a CUDA call from the enclosing function (which must return cudaError_t).
#define DYSRA_CUDA_TRY(expr)                    \
  do {                                          \
    const cudaError_t dysra_err_ = (expr);      \
    if (dysra_err_ != cudaSuccess) return dysra_err_; \
  } while (0)
