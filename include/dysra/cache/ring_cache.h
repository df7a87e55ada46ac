// dysra/cache/ring_cache.h — the rotating compressive cache as fixed device buffers, for fast decoding.
//
// Same rule as KVCachePolicy "compressive" with method "mean", recompress_depth 1 and original positions
// (kv_cache.h): the first S tokens are sinks; raw tokens follow; once more than M raw tokens are held, the oldest
// Δ become r summaries (means of r contiguous segments of Δ/r tokens — keys: the mean of the rotated keys — with
// logit bias log(Δ/r)); at most C summaries are kept and the oldest r rotate out. The difference is storage: the
// policy keeps growable per-(batch, head) rows on the host side of the computation, this class keeps
//   keys (RoPE applied), values  [B, H, S + C + M + 1, D]   and a logit bias [B, H, 1, S + C + M + 1]
// on the device (slots padded to a multiple of 16), with the raw tokens in a ring of M + 1 slots and the summaries
// in a ring of C / r groups. A decode step is one ops::decode_attention call — write the rotated key and the
// value into one slot, set its bias, attend over all slots (empty slots carry −inf bias; on CUDA one split-K
// kernel launch, on the CPU a slot copy + scaled_dot_product_attention) — and every Δ steps one block
// compression (the mean of the block's rotated keys, compress_block's rule) — O(1) work
// and memory per token however long the stream is. Attention output is invariant to the order of the slots, so
// it equals the policy's (tested).
#pragma once
#include <torch/types.h>

#include <cstdint>

#include "dysra/ops/decode_attention.h"

namespace dysra::cache {

struct RingCacheOptions {
  int64_t sink_tokens = 4;     ///< S
  int64_t raw_slots = 4096;    ///< M
  int64_t delta = 256;         ///< Δ (≤ M, a multiple of rank)
  int64_t rank = 32;           ///< r summaries per block
  int64_t summary_slots = 0;   ///< C (a multiple of r); 0 → 4r
  double rope_theta = 10000;   ///< 0: no RoPE (keys and queries used as given)
};

class RingCompressiveCache {
 public:
  /// Buffers for `batch` × `heads` rows of `head_dim`, allocated once with `options` (dtype and device).
  RingCompressiveCache(const RingCacheOptions& o, int64_t batch, int64_t heads, int64_t head_dim,
                       const torch::TensorOptions& options);
  /// One token at position tokens(): q, k (before RoPE) and v [B, H, 1, D] → attention output [B, H, 1, D] over
  /// the held set plus this token, which is then kept.
  torch::Tensor decode(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);
  /// decode() for q and k already rotated at position tokens() (the attention layer rotates them anyway).
  torch::Tensor decode_rotated(const torch::Tensor& q_rot, const torch::Tensor& k_rot, const torch::Tensor& v);
  /// Appends L tokens [B, H, L, D] (k before RoPE) without attending: a prefill whose outputs are not needed.
  void append(const torch::Tensor& k, const torch::Tensor& v);
  int64_t tokens() const { return seen_; }
  /// Bytes of every buffer, the decode kernel's workspace included (constant from construction on).
  int64_t bytes() const;
  /// Slots attended per row: sinks + summaries + raw currently held (≤ S + C + M + 1).
  int64_t held_slots() const;

 private:
  torch::Tensor rotate(const torch::Tensor& x, double position) const;
  int64_t next_slot() const;  // the slot the next token goes to
  void advance();              // counts that token in
  void put(int64_t slot, const torch::Tensor& k_rot, const torch::Tensor& v);  // slots [slot, slot + L) valid
  void compress_oldest_block();
  RingCacheOptions o_;
  int64_t S_, C_, M_, N_;      // N_ ≥ S + C + M + 1 slots (a multiple of 16)
  torch::Tensor k_, v_, bias_;
  ops::DecodeAttentionOptions decode_opts_;  // the decode kernel's workspace, kept across steps
  int64_t seen_ = 0, raw_head_ = 0, n_raw_ = 0, n_groups_ = 0, next_group_ = 0;
};

}  // namespace dysra::cache
