// src/ops/cuda_common.h — internal helpers of the LibTorch glue around the torch-free kernels (DYSRA_WITH_CUDA).
#pragma once
#ifdef DYSRA_WITH_CUDA
#include <cuda_runtime_api.h>
#include <torch/types.h>

#include "common/kernel_common.h"

namespace dysra::ops::cuda_detail {

/// fp32/bf16/fp16 → the kernels' dtype tag; anything else throws naming the op and the tensor.
kernels::DType kernel_dtype(const torch::Tensor& t, const char* op, const char* name);
/// Throws dysra::Error("<op>: CUDA kernel <what> failed: <cuda error>") unless `err` is cudaSuccess.
void check_launch(cudaError_t err, const char* op, const char* what);
/// The current CUDA stream of t's device (c10::cuda::getCurrentCUDAStream).
cudaStream_t stream_of(const torch::Tensor& t);
/// Checks that t is defined, on CUDA and on `device`.
void check_device(const torch::Tensor& t, const torch::Device& device, const char* op, const char* name);
/// Returns t with a contiguous last dimension (a copy only if needed).
torch::Tensor last_dim_contiguous(const torch::Tensor& t);

}  // namespace dysra::ops::cuda_detail
#endif  // DYSRA_WITH_CUDA
