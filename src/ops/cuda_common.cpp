// src/ops/cuda_common.cpp — shared LibTorch glue helpers and dysra::ops::cuda::available().
#include "ops/cuda_glue.h"

#ifdef DYSRA_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

#include "dysra/core/error.h"
#include "ops/cuda_common.h"

namespace dysra::ops {
namespace cuda {

bool available() {
  try {
    return c10::cuda::device_count() > 0;
  } catch (...) {
    return false;
  }
}

}  // namespace cuda

namespace cuda_detail {

kernels::DType kernel_dtype(const torch::Tensor& t, const char* op, const char* name) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return kernels::DType::kFloat32;
    case torch::kBFloat16: return kernels::DType::kBFloat16;
    case torch::kFloat16: return kernels::DType::kFloat16;
    default:
      throw Error(detail::str_cat(op, ": the CUDA kernel takes float32, bfloat16 or float16 ", name, ", got ",
                                  t.scalar_type(), " (float64 runs only on the CPU path)"));
  }
}

void check_launch(cudaError_t err, const char* op, const char* what) {
  DYSRA_CHECK(err == cudaSuccess, op, ": CUDA kernel ", what, " failed: ", cudaGetErrorString(err));
}

cudaStream_t stream_of(const torch::Tensor& t) {
  return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
}

void check_device(const torch::Tensor& t, const torch::Device& device, const char* op, const char* name) {
  DYSRA_CHECK(t.defined(), op, ": ", name, " is required");
  DYSRA_CHECK(t.is_cuda() && t.device() == device, op, ": ", name, " is on ", t.device(), " but the op runs on ",
              device);
}

torch::Tensor last_dim_contiguous(const torch::Tensor& t) {
  return (t.dim() == 0 || t.stride(-1) == 1) ? t : t.contiguous();
}

}  // namespace cuda_detail
}  // namespace dysra::ops
#endif  // DYSRA_WITH_CUDA
