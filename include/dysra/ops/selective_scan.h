// dysra/ops/selective_scan.h — the Mamba-1 selective scan.
//
//   x_t = exp(Δ_t ⊙ A) ⊙ x_{t-1} + (Δ_t ⊙ u_t) B_t          (state x: [D, N] per batch element)
//   y_t = C_t · x_t + D ⊙ u_t ;  out_t = y_t ⊙ SiLU(z_t)  (when z is given)
//   Δ_t = softplus(Δ_raw_t + delta_bias)                    (when delta_softplus; bias optional)
//
// Layout follows mamba-ssm: u, delta, z: [B, D, L]; A: [D, N] (real, fp32); B, C: [B, N, L] (input-dependent,
// one group); D_skip, delta_bias: [D] (fp32). u/delta/z/B/C may be fp32, bf16 or fp16 (all the same dtype);
// the state is always fp32. `initial_state`/`last_state`: [B, D, N] fp32, so a long sequence can be processed
// in pieces. Differentiable in every tensor input (u, delta, A, B, C, D_skip, z, delta_bias, initial_state).
//
// Dispatch: CUDA tensors go to the CUDA kernel (kernels/selective_scan) when dysra was built with CUDA;
// everything else runs the CPU implementation built from LibTorch ops, which is also the reference.
#pragma once
#include <torch/types.h>

namespace dysra::ops {

struct SelectiveScanOptions {
  bool delta_softplus = true;  ///< apply softplus to delta (+ delta_bias) before use
  /// Chunk length of the CPU path's scan (time steps per vectorised block); does not change results.
  int64_t cpu_chunk = 64;
};

struct SelectiveScanResult {
  torch::Tensor out;         ///< [B, D, L], dtype of u
  torch::Tensor last_state;  ///< [B, D, N], fp32
};

SelectiveScanResult selective_scan(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                                   const torch::Tensor& B, const torch::Tensor& C,
                                   const torch::Tensor& D_skip = {},       // optional
                                   const torch::Tensor& z = {},            // optional
                                   const torch::Tensor& delta_bias = {},   // optional
                                   const torch::Tensor& initial_state = {},// optional
                                   const SelectiveScanOptions& options = {});

/// The naive sequential definition (one time step at a time, in the dtype given: pass float64 for a
/// reference). Differentiable through autograd. Used by tests as the specification.
SelectiveScanResult selective_scan_reference(const torch::Tensor& u, const torch::Tensor& delta,
                                             const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& C,
                                             const torch::Tensor& D_skip = {}, const torch::Tensor& z = {},
                                             const torch::Tensor& delta_bias = {},
                                             const torch::Tensor& initial_state = {}, bool delta_softplus = true);

}  // namespace dysra::ops
