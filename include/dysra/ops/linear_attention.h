// dysra/ops/linear_attention.h — causal linear attention (Katharopoulos et al. 2020).
//
//   S_t = S_{t-1} + k_t v_tᵀ,  z_t = z_{t-1} + k_t
//   o_t = scale · q_tᵀ S_t                       (normalize = false; fla's chunk_linear_attn convention)
//   o_t = q_tᵀ S_t / (q_tᵀ z_t + eps)            (normalize = true; the paper's normaliser, scale unused)
//
// q, k: [B, T, H, Dk] — already passed through the feature map (see dysra/layers/linear_attention.h);
// v: [B, T, H, Dv]. fp32/bf16/fp16 inputs, fp32 accumulation. State: S [B, H, Dk, Dv], z [B, H, Dk], fp32.
// Computed chunk-parallel within chunks of `chunk_size` and recurrently across chunks.
// Differentiable in q, k, v and the initial state.
#pragma once
#include <torch/types.h>

namespace dysra::ops {

struct LinearAttentionOptions {
  bool normalize = true;
  double scale = 1.0;      ///< multiplies the output when normalize = false
  double eps = 1e-6;       ///< added to the normaliser
  int64_t chunk_size = 64;
};

struct LinearAttentionState {
  torch::Tensor S;  ///< [B, H, Dk, Dv] fp32 (undefined = zeros)
  torch::Tensor z;  ///< [B, H, Dk] fp32 (undefined = zeros; only used when normalize)
};

struct LinearAttentionResult {
  torch::Tensor out;  ///< [B, T, H, Dv], dtype of q
  LinearAttentionState state;
};

LinearAttentionResult linear_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       const LinearAttentionState& initial = {},
                                       const LinearAttentionOptions& options = {});

/// Naive sequential definition (one token at a time); the test specification.
LinearAttentionResult linear_attention_reference(const torch::Tensor& q, const torch::Tensor& k,
                                                 const torch::Tensor& v, const LinearAttentionState& initial = {},
                                                 const LinearAttentionOptions& options = {});

}  // namespace dysra::ops
