// src/ops/cuda_glue.h — internal: the CUDA entry points the op dispatchers call for CUDA tensors.
// Defined in src/ops/*_cuda.cpp (LibTorch glue around the torch-free launchers in kernels/), compiled only
// when DYSRA_WITH_CUDA. Each returns autograd-aware results (a torch::autograd::Function inside).
#pragma once
#include "dysra/ops/decode_attention.h"
#include "dysra/ops/gathered_attention.h"
#include "dysra/ops/linear_attention.h"
#include "dysra/ops/selective_scan.h"

namespace dysra::ops::cuda {

bool available();  ///< built with CUDA and a device is present

SelectiveScanResult selective_scan(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                                   const torch::Tensor& B, const torch::Tensor& C, const torch::Tensor& D_skip,
                                   const torch::Tensor& z, const torch::Tensor& delta_bias,
                                   const torch::Tensor& initial_state, const SelectiveScanOptions& options);

LinearAttentionResult linear_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       const LinearAttentionState& initial, const LinearAttentionOptions& options);

GatheredAttentionResult gathered_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                           const torch::Tensor& indices, const GatheredAttentionOptions& options);

/// decode_attention on validated inputs (contiguous, one dtype, D supported: decode_supported).
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k_new, const torch::Tensor& v_new,
                               torch::Tensor& K, torch::Tensor& V, torch::Tensor& bias, int64_t slot, double scale,
                               const torch::Tensor& workspace);
/// A zeroed workspace for K's geometry (counters + partials).
torch::Tensor decode_workspace(const torch::Tensor& K);
bool decode_supported(int64_t head_dim);

}  // namespace dysra::ops::cuda
