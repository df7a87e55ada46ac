// dysra/ops/gathered_attention.h — softmax attention over keys/values picked by an index list.
//
// Queries q: [B, Tq, H, D]. Memory k, v: [B, N, Hkv, D] (H % Hkv == 0; query head h reads kv head
// h / (H / Hkv)). indices: [B, Hkv, n_blocks, K] (int32 or int64) — the query tokens are split into
// consecutive blocks of `block_q` (n_blocks = ceil(Tq / block_q)); every query of block j and every query head
// of kv head g attends to memory rows indices[b, g, j, :]. Negative indices are padding (ignored). With
// `causal`, a query at position query_pos[t] (default t + causal_offset) ignores keys at memory positions > it.
//
//   out[b,t,h] = Σ_i softmax_i(scale · q[b,t,h] · k[b, idx_i, g]) v[b, idx_i, g]
//
// No gathered copy of k/v is formed on CUDA (the kernel reads rows through the index list); the N×N matrix is
// never formed anywhere. A query whose every key is masked gets zeros. Differentiable in q, k, v.
#pragma once
#include <torch/types.h>

namespace dysra::ops {

struct GatheredAttentionOptions {
  int64_t block_q = 64;        ///< queries per index block; >= Tq means one shared list
  double scale = 0.0;          ///< 0 → 1/sqrt(D)
  bool causal = false;         ///< mask keys whose memory position exceeds the query's position
  int64_t causal_offset = 0;   ///< query t sits at memory position t + causal_offset
  /// Range-check indices (< N) before the CUDA kernel runs, with an error naming the bad value. The check reads the
  /// maximum back to the host: a device sync per call, which also keeps the call out of CUDA graphs. false: the
  /// caller vouches for the range (e.g. indices from topk over the memory); an entry in [N, 2^31) is then ignored
  /// like padding (the kernels never read outside the memory; an int64 entry >= 2^31 is read by its low 32 bits).
  /// CPU indices are always checked (no sync).
  bool check_indices = true;
};

struct GatheredAttentionResult {
  torch::Tensor out;  ///< [B, Tq, H, D], dtype of q
  torch::Tensor lse;  ///< [B, H, Tq] fp32 log-sum-exp of the scaled logits (-inf where fully masked)
};

GatheredAttentionResult gathered_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                           const torch::Tensor& indices,
                                           const GatheredAttentionOptions& options = {});

/// Dense definition: full [Tq, N] logits with everything outside the index set (and causal) masked.
/// The test specification; memory O(Tq·N).
GatheredAttentionResult gathered_attention_reference(const torch::Tensor& q, const torch::Tensor& k,
                                                     const torch::Tensor& v, const torch::Tensor& indices,
                                                     const GatheredAttentionOptions& options = {});

}  // namespace dysra::ops
