// dysra/layers/attention.h — causal multi-head softmax attention (the Transformer baseline's mixer).
//
// SDPA over [B, H, L, Dh]; RoPE when model.position == rope. With model.context_budget = W > 0 every query sees
// only the W most recent tokens (itself included): the truncated-context baseline. With a MixerState the layer
// keeps a full KV cache (tensors[0] = K, tensors[1] = V, [B, H, T, Dh]) and decodes incrementally; with
// MixerState::kv_cache set, keys/values go through that cache policy instead (cache::attend_through_cache).
#pragma once
#include <torch/nn/modules/linear.h>

#include "dysra/layers/mixer.h"

namespace dysra::layers {

class AttentionImpl : public MixerImpl {
 public:
  AttentionImpl(const models::ModelOptions& options, int64_t layer_index);
  torch::Tensor forward(const torch::Tensor& x, const MixerInputs& inputs, MixerState* state) override;
  std::string kind() const override { return "attention"; }
  LayerCost cost(int64_t seq_len, int64_t bytes_per_element) const override;

 private:
  int64_t d_model_, n_heads_, head_dim_, budget_;
  bool rope_;
  double rope_theta_, dropout_;
  torch::nn::Linear qkv_{nullptr}, out_{nullptr};
};

}  // namespace dysra::layers
