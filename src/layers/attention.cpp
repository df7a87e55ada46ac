#include "dysra/layers/attention.h"

#include <torch/torch.h>

#include "dysra/cache/kv_cache.h"
#include "dysra/core/error.h"
#include "dysra/layers/rope.h"

namespace dysra::layers {

AttentionImpl::AttentionImpl(const models::ModelOptions& o, int64_t)
    : d_model_(o.d_model),
      n_heads_(o.n_heads),
      head_dim_(o.d_model / o.n_heads),
      budget_(o.context_budget),
      rope_(o.position == "rope"),
      rope_theta_(o.rope_theta),
      dropout_(o.dropout) {
  DYSRA_CHECK_T(ConfigError, o.d_model % o.n_heads == 0, "model.n_heads: d_model (", o.d_model,
                ") must be divisible by n_heads (", o.n_heads, ")");
  qkv_ = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(d_model_, 3 * d_model_).bias(false)));
  out_ = register_module("out", torch::nn::Linear(torch::nn::LinearOptions(d_model_, d_model_).bias(false)));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const MixerInputs& inputs, MixerState* state) {
  DYSRA_CHECK(x.dim() == 3 && x.size(2) == d_model_, "attention: x must be [B, L, ", d_model_, "], got ", x.sizes());
  const int64_t B = x.size(0), L = x.size(1);
  const int64_t offset = state ? state->offset : 0;
  auto qkv = qkv_(x).view({B, L, 3, n_heads_, head_dim_}).permute({2, 0, 3, 1, 4});  // [3, B, H, L, Dh]
  auto q = qkv[0], k = qkv[1], v = qkv[2];
  auto pos = inputs.positions.defined() ? inputs.positions : default_positions(L, offset, x.device());
  if (state && state->kv_cache) {  // keys/values live in the cache policy (pre-RoPE); it rotates them
    DYSRA_CHECK_T(ConfigError, budget_ <= 0, "attention: model.context_budget (", budget_,
                  ") and a KV cache policy cannot be combined; use cache.policy = window");
    auto y = cache::attend_through_cache(q, k, v, pos, *state->kv_cache, rope_, rope_theta_);
    state->offset = offset + L;
    return out_(y.transpose(1, 2).reshape({B, L, d_model_}));
  }
  if (rope_) {
    q = apply_rope(q, pos, rope_theta_);
    k = apply_rope(k, pos, rope_theta_);
  }
  if (state) {
    if (!state->empty()) {
      k = torch::cat({state->tensors[0], k}, 2);
      v = torch::cat({state->tensors[1], v}, 2);
    }
    state->tensors = {k.detach(), v.detach()};
    state->offset = offset + L;
  }
  const int64_t T = k.size(2);  // keys: the cached T-L plus the L new ones
  const double p = is_training() ? dropout_ : 0.0;
  torch::Tensor y;
  if (budget_ <= 0 && T == L) {
    y = at::scaled_dot_product_attention(q, k, v, {}, p, /*is_causal=*/true);
  } else {
    // query i (absolute T-L+i) sees key j iff j <= T-L+i and T-L+i - j < budget
    auto opts = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
    auto qi = torch::arange(T - L, T, opts).unsqueeze(1), kj = torch::arange(0, T, opts).unsqueeze(0);
    auto allowed = kj <= qi;
    if (budget_ > 0) allowed = allowed & ((qi - kj) < budget_);
    y = at::scaled_dot_product_attention(q, k, v, allowed, p, false);
  }
  return out_(y.transpose(1, 2).reshape({B, L, d_model_}));
}

LayerCost AttentionImpl::cost(int64_t n, int64_t bpe) const {
  LayerCost c;
  const double d = static_cast<double>(d_model_);
  const double span = budget_ > 0 ? std::min<double>(budget_, n) : (n + 1) / 2.0;  // mean keys per query (causal)
  c.params = 4 * d_model_ * d_model_;
  c.flops = 2.0 * n * d * 4 * d + 2.0 * 2.0 * n * span * d;  // projections + QK^T and PV
  c.bytes = static_cast<double>(bpe) * (c.params + 6.0 * n * d);
  c.state_bytes = static_cast<double>(bpe) * 2.0 * (budget_ > 0 ? std::min<int64_t>(budget_, n) : n) * d;
  return c;
}

}  // namespace dysra::layers
