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

/// Rank-1 augmentations of the core, tensor-core path only (the normalised op and its gradients are built from
/// them). Per-token vectors are fp32 [B, H, T] contiguous; a null alpha, beta or gamma stands for all ones.
/// Contraction (contract = true): q_t and k_s get one more component α_t, β_s, and S one more row σ [B, H, dv]:
///   o_t += scale·(Σ_{s<=t} α_t β_s v_s + α_t σ0),            σ_final = σ0 + Σ_s β_s v_s
/// Value (value = true): v_s gets one more component γ_s, and S one more column ζ [B, H, dk]; the extra output
/// column goes to `out` [B, H, T] fp32 (may be null):
///   ô_t = scale·(Σ_{s<=t} (q_t·k_s) γ_s + q_t·ζ0),             ζ_final = ζ0 + Σ_s k_s γ_s
/// (s >= t for reverse.) sigma0 / zeta0 may be null (zeros); the finals are written when non-null.
/// normalize (value only): the main output becomes o_t / (ô_t + eps) (both with the scale), i.e. the normalised
/// op in one launch; `out` still receives ô_t.
struct LinearAttentionAug {
  bool contract = false, value = false;
  bool normalize = false;
  float eps = 0.f;
  const float* alpha = nullptr;
  const float* beta = nullptr;
  const float* sigma0 = nullptr;
  float* sigma_final = nullptr;
  const float* gamma = nullptr;
  const float* zeta0 = nullptr;
  float* zeta_final = nullptr;
  float* out = nullptr;
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
  int n_sub = 1;  ///< the segment sums are taken over n_sub equal parts of a segment each (set by the launcher)
  /// The segment sums are already in `workspace`, from an earlier call with the same segments (same
  /// linear_attention_segments) and direction: the sum kernel is skipped. With workspace_transposed they are those of
  /// the transposed state (Σ v kᵀ for Σ k vᵀ; the augmentation's vector as it is): core(dO, v, k) reuses the
  /// forward's, core_rev(k, q, dO) those of core_rev(v, dO, q).
  bool workspace_ready = false, workspace_transposed = false;
  LinearAttentionAug aug;  ///< requires the tensor-core path (linear_attention_tensor_core_path)
  /// Optional [B, H, n_segments, dk] fp32 (n_segments from linear_attention_segments): Σ k_t over each segment's
  /// tokens, from the same K tiles as the state (the normaliser's increment that the unnormalised op carries on).
  /// Tensor-core path without augmentation only: linear_attention_core rejects it elsewhere.
  float* k_sum = nullptr;
};

/// The gradients through the normalisation o = num / (den + eps), per row (b, t, h) of d_v elements:
///   g_num = g_o / (den + eps)   (g_num: [B, T, H, dv] contiguous, dtype g_num_dtype)
///   g_den = −(g_o · o) / (den + eps)   ([B, H, T] fp32, like den)
struct LinearAttentionNormGradParams {
  int batch = 0, seqlen = 0, heads = 0, dv = 0;
  float eps = 0.f;
  LinearAttentionTensor g_out, out;  // [B, T, H, dv], last dim contiguous
  const float* den = nullptr;
  void* g_num = nullptr;
  DType g_num_dtype = DType::kFloat32;
  float* g_den = nullptr;
};
cudaError_t linear_attention_norm_grad(const LinearAttentionNormGradParams& params, cudaStream_t stream);

/// Bytes of `workspace` that linear_attention_core needs for these params (0: none), on the current device.
size_t linear_attention_workspace_bytes(const LinearAttentionParams& params);
/// The sequence segmentation the launcher picks for these params (P segments of n_sub parts; P = 1: no sums).
void linear_attention_segments(const LinearAttentionParams& params, int& n_segments, int& n_sub);
/// Whether these params take the tensor-core path (bf16 q, k, v; d_k 64 or 128; d_v % 8 == 0; aligned rows).
bool linear_attention_tensor_core_path(const LinearAttentionParams& params);
cudaError_t linear_attention_core(const LinearAttentionParams& params, cudaStream_t stream);

}  // namespace dysra::kernels
