// dysra/layers/sparse_attention.h — softmax attention over index-selected keys (gathered attention) as a mixer.
//
// q, k, v, o projections (no bias), n_heads heads, RoPE on q and k when model.position == rope. Each block of
// model.sparse_attention.block_q queries attends (causally) to the memory rows listed for it, through
// dysra::ops::gathered_attention — no L×L matrix is formed. The memory is the layer's own keys/values of the
// sequence (plus, with a MixerState, those of earlier calls: a full KV cache, tensors[0] = K, tensors[1] = V,
// [B, T, H, Dh], after RoPE, stored detached); query t of the current call sits at memory position T_cached + t.
//
// Index lists: MixerInputs::sparse_indices ([B or 1, n_heads, ceil(L / block_q), K] into the memory, -1 = padding)
// when given; otherwise built from model.sparse_attention.index_source (top_k = k):
//   window — block [s, e] sees its own rows and the k rows before it: s-k .. e (K = k + block_q);
//   random — its own rows plus k distinct rows drawn uniformly from 0 .. s-1 with a fixed seed (layer index,
//            block start), so the same call gives the same lists (K = k + block_q);
//   oracle — must come from the task (MixerInputs::sparse_indices); an error when missing.
// Always causal within the memory.
//
// With a cache policy (MixerState::kv_cache, cache::make_layer_states) the memory is what the policy presents —
// its raw entries and summaries (cache::cache_memory), each row's entries right-aligned, then the new tokens — and
// the index lists point into that memory: the built-in window takes the most recent entries, sparse_indices
// whatever the caller picked. Padding entries are dropped from the lists; a summary of c tokens is listed c times
// (its logit then carries the count bias log c exactly). The new tokens are then appended to the cache. Policies
// that score tokens by attention probabilities (h2o, snapkv, pyramidkv) are refused: gathered attention never
// forms them.
#pragma once
#include <torch/nn/modules/linear.h>

#include "dysra/layers/mixer.h"

namespace dysra::layers {

class SparseAttentionImpl : public MixerImpl {
 public:
  SparseAttentionImpl(const models::ModelOptions& options, int64_t layer_index);
  torch::Tensor forward(const torch::Tensor& x, const MixerInputs& inputs, MixerState* state) override;
  std::string kind() const override { return "sparse_attention"; }
  LayerCost cost(int64_t seq_len, int64_t bytes_per_element) const override;

  /// The built-in index lists for `n_queries` queries that are the last rows of a memory of `memory_len` rows:
  /// [n_blocks, K] int64 (CPU), -1 = padding.
  torch::Tensor build_indices(int64_t n_queries, int64_t memory_len) const;

 private:
  /// The lists of this call: MixerInputs::sparse_indices or build_indices, [B, H, n_blocks, K] on `device`.
  torch::Tensor index_lists(const MixerInputs& inputs, int64_t B, int64_t L, int64_t N, const torch::Device& device) const;
  torch::Tensor forward_through_cache(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const torch::Tensor& pos, const MixerInputs& inputs, MixerState& state);
  int64_t d_model_, n_heads_, head_dim_, block_q_, top_k_;
  uint64_t seed_;
  bool rope_;
  double rope_theta_;
  std::string index_source_;
  torch::nn::Linear q_{nullptr}, k_{nullptr}, v_{nullptr}, o_{nullptr};
  /// The built-in lists of the last (n_queries, memory_len) on their device: a training loop calls with the same
  /// lengths every step, and the lists depend on nothing else (building them and copying them to the GPU was per call).
  struct BuiltLists {
    int64_t n_queries = -1, memory_len = -1;
    torch::Tensor lists;  // [n_blocks, K] int64 on the device
  };
  mutable BuiltLists built_;
};

}  // namespace dysra::layers
