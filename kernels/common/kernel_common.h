// kernels/common/kernel_common.h — torch-free definitions shared by the dysra CUDA kernels.
//
// Host-visible (plain C++): the dtype tag carried in every params struct, and the error-check macro the
// launchers use. Launchers return cudaError_t (flashinfer style); the LibTorch glue turns it into an exception.
#pragma once
#include <cuda_runtime_api.h>

namespace dysra::kernels {

/// Element type of a tensor the kernels read or write. State and accumulators are always fp32.
enum class DType : int { kFloat32 = 0, kBFloat16 = 1, kFloat16 = 2 };

}  // namespace dysra::kernels

/// Returns the error of a CUDA call from the enclosing function (which must return cudaError_t).
#define DYSRA_CUDA_TRY(expr)                    \
  do {                                          \
    const cudaError_t dysra_err_ = (expr);      \
    if (dysra_err_ != cudaSuccess) return dysra_err_; \
  } while (0)
