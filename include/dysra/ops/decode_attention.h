// dysra/ops/decode_attention.h — one decode step of softmax attention over a slot cache (the ring cache's step).
//
// A slot cache holds N slots per (batch, head): keys K and values V [B, H, N, D] and an additive logit bias
// [B, H, 1, N] (0 for a raw token, log m for a summary standing for m tokens, −inf for an empty slot). One call
//   1. writes the new token (k_new, v_new [B, H, 1, D]) into slot `slot` of every row and sets its bias to 0;
//   2. returns softmax(scale · q · Kᵀ + bias) · V over all N slots, the new token included: [B, H, 1, D].
// Keys and queries are used as given (rotate them first for RoPE). The output has K's dtype; logits, softmax and
// the weighted sum are accumulated in fp32 (float64 for float64 inputs).
//
// CUDA (`kernels/decode_attention`): a split-K ("flash-decoding") kernel — the slots of a row are cut into
// splits, each thread block streams its split's keys and values once with 16-byte loads, keeps an online softmax,
// and one small kernel merges the splits' partial results; the new token is read from k_new/v_new and written into
// its slot, and the last block of each row to finish merges the row's splits in a fixed order — one kernel launch
// per step whatever N is, bitwise reproducible. D ∈ {64, 128}; other head sizes
// and the CPU use the LibTorch path (slot copy + scaled_dot_product_attention).
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace dysra::ops {

struct DecodeAttentionOptions {
  double scale = 0.0;  ///< 0 → 1/sqrt(D)
  /// CUDA kernel scratch kept by the caller across steps (decode_attention_workspace(K)); undefined → a zeroed one
  /// is allocated per call. Ignored on the LibTorch path.
  torch::Tensor workspace;
};

/// The kernel's scratch for caches shaped like K (split counters, which every step leaves at zero, and the
/// splits' partial results): a zeroed float32 tensor on K's device when the CUDA kernel serves K, else undefined.
torch::Tensor decode_attention_workspace(const torch::Tensor& K);

/// Writes k_new/v_new into `slot` of K/V (bias there := 0), then attends q over all slots. K, V, bias contiguous;
/// q, k_new, v_new [B, H, 1, D] of any dtype (cast to K's); bias [B, H, 1, N] of K's dtype.
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k_new, const torch::Tensor& v_new,
                               torch::Tensor& K, torch::Tensor& V, torch::Tensor& bias, int64_t slot,
                               const DecodeAttentionOptions& options = {});

/// The definition in float64 on copies (K, V, bias are not modified): the test specification. Returns [B, H, 1, D]
/// float64.
torch::Tensor decode_attention_reference(const torch::Tensor& q, const torch::Tensor& k_new, const torch::Tensor& v_new,
                                         const torch::Tensor& K, const torch::Tensor& V, const torch::Tensor& bias,
                                         int64_t slot, const DecodeAttentionOptions& options = {});

}  // namespace dysra::ops
