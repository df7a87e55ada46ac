// dysra/layers/mamba.h — the Mamba-1 block (Gu & Dao 2023) as a sequence mixer.
//
//   [x, z] = in_proj(u);  x = SiLU(causal depthwise conv1d(x));  [δ, B, C] = x_proj(x);  Δ = softplus(dt_proj(δ))
//   y = selective_scan(x, Δ, A = -exp(A_log), B, C, D) ⊙ SiLU(z);  out = out_proj(y)
//
// d_inner = expand · d_model, dt_rank = ceil(d_model / 16) unless set. Initialisation as in mamba-ssm: dt_proj bias
// = softplus⁻¹(Δ₀) with Δ₀ log-uniform in [dt_min, dt_max] (floor 1e-4), dt_proj weight U(±dt_rank^-½),
// A_log[c, n] = log(n + 1), D = 1, the rest LibTorch defaults.
//
// Two forms that agree: the parallel form over a whole sequence (one selective_scan call), and the recurrent step
// form used when a MixerState is given and x has one token (decoding). With a MixerState the layer continues from
// it: tensors[0] = conv state [B, d_inner, d_conv - 1] (the last pre-conv inputs, dtype of x), tensors[1] = SSM
// state [B, d_inner, d_state] (fp32; float64 for a float64 model), stored detached (no gradient across calls).
// So f(x1 ++ x2) == f(x1) then f(x2).
// Parameters: in_proj, conv, x_proj, dt_proj, out_proj (Linear/Conv1d), A_log [d_inner, d_state], D [d_inner].
#pragma once
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "dysra/layers/mixer.h"

namespace dysra::layers {

class MambaImpl : public MixerImpl {
 public:
  MambaImpl(const models::ModelOptions& options, int64_t layer_index);
  torch::Tensor forward(const torch::Tensor& x, const MixerInputs& inputs, MixerState* state) override;
  std::string kind() const override { return "mamba"; }
  LayerCost cost(int64_t seq_len, int64_t bytes_per_element) const override;

  int64_t d_inner() const { return d_inner_; }
  int64_t d_state() const { return d_state_; }
  int64_t dt_rank() const { return dt_rank_; }

 private:
  torch::Tensor step(const torch::Tensor& x, MixerState& state);  // x: [B, 1, d_model]

  int64_t d_model_, d_inner_, d_state_, d_conv_, dt_rank_;
  torch::nn::Linear in_proj_{nullptr}, x_proj_{nullptr}, dt_proj_{nullptr}, out_proj_{nullptr};
  torch::nn::Conv1d conv_{nullptr};
  torch::Tensor A_log_, D_;
};

}  // namespace dysra::layers
