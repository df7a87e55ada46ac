// kernels/linear_attention/linear_attention.h — torch-free params + launcher of the causal linear-attention core.
//
// The core computes, for every (b, h) and token t (all accumulation fp32):
//   forward (reverse = false):  o_t = scale · ( Σ_{s <= t} (q_t·k_s) v_s + q_t S0 ),   S_final = S0 + Σ_s k_s v_sᵀ
//   reverse (reverse = true):   o_t = scale · ( Σ_{s >= t} (q_t·k_s) v_s + q_t S0 ),   S_final likewise
// q, k: [B, T, H, dk]; v, o: [B, T, H, dv], each with its own dtype and element strides (last dim contiguous);
// S0, S_final: [B, H, dk, dv] fp32 contiguous. The LibTorch glue builds the op's forward (with an appended ones
// column for the normaliser) and all its gradients from this one core:
//   dq = core(dO, v, k; S0ᵀ)   dk = core_rev(v, dO, q; dSᵀ)   dv = core_rev(k, q, dO; dS)  (dS0 = S_final of the last).
#pragma once
#include <cstddef>
#include <cstdint>

#include "common/kernel_common.h"

namespace dysra::kernels {

constexpr int kLinearAttentionChunk = 64;   ///< tokens per chunk (intra-chunk part is a masked 64×64 product)
constexpr int kLinearAttentionMaxDk = 256;  ///< largest dk (smem holds two [dk × 64] chunk tiles)

struct LinearAttentionTensor {
  const void* ptr = nullptr;
  DType dtype = DType::kFloat32;
  int64_t stride_b = 0, stride_t = 0, stride_h = 0;  // elements
};

struct LinearAttentionParams {
  int batch = 0, seqlen = 0, heads = 0, dk = 0, dv = 0;
  bool reverse = false;
  float scale = 1.f;
  LinearAttentionTensor q, k, v;
  void* out = nullptr;  // [B, T, H, dv]
  DType out_dtype = DType::kFloat32;
  int64_t out_stride_b = 0, out_stride_t = 0, out_stride_h = 0;
  const float* S0 = nullptr;  // optional
  float* S_final = nullptr;   // optional
  /// Scratch of linear_attention_workspace_bytes(params) bytes (fp32 sums of K^T V per sequence segment), owned by
  /// the caller; may be null when that is 0. n_segments is set by the launcher.
  float* workspace = nullptr;
  int n_segments = 1;
};

/// Bytes of `workspace` that linear_attention_core needs for these params (0: none), on the current device.
size_t linear_attention_workspace_bytes(const LinearAttentionParams& params);
cudaError_t linear_attention_core(const LinearAttentionParams& params, cudaStream_t stream);

}  // namespace dysra::kernels
