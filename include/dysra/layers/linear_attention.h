// dysra/layers/linear_attention.h — causal linear attention (Katharopoulos et al. 2020) as a sequence mixer.
//
// q, k, v, o projections (d_model → d_model, no bias), n_heads heads of d_model / n_heads. The feature map φ
// (model.linear_attention.feature_map: elu1 = elu(x) + 1 | relu | identity) is applied to q and k; the chunked
// op (dysra/ops/linear_attention.h, chunk_size) computes o_t = φ(q_t)ᵀS_t / (φ(q_t)ᵀz_t + eps) when normalize
// (the paper's form), else o_t = φ(q_t)ᵀS_t / sqrt(head_dim). Note relu/identity with normalize can make the
// normaliser ~0 or negative; elu1 keeps it positive.
//
// With a MixerState the layer continues from it (tensors[0] = S [B, H, Dh, Dh], tensors[1] = z [B, H, Dh], fp32;
// float64 for a float64 model; stored detached); a one-token call with a state uses the recurrent step form.
#pragma once
#include <torch/nn/modules/linear.h>

#include "dysra/layers/mixer.h"

namespace dysra::layers {

class LinearAttentionImpl : public MixerImpl {
 public:
  LinearAttentionImpl(const models::ModelOptions& options, int64_t layer_index);
  torch::Tensor forward(const torch::Tensor& x, const MixerInputs& inputs, MixerState* state) override;
  std::string kind() const override { return "linear_attention"; }
  LayerCost cost(int64_t seq_len, int64_t bytes_per_element) const override;

 private:
  torch::Tensor feature_map(const torch::Tensor& x) const;

  int64_t d_model_, n_heads_, head_dim_, chunk_size_;
  bool normalize_;
  std::string feature_map_;
  torch::nn::Linear q_{nullptr}, k_{nullptr}, v_{nullptr}, o_{nullptr};
};

}  // namespace dysra::layers
