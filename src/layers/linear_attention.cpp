#include "dysra/layers/linear_attention.h"

#include <torch/torch.h>

#include <cmath>

#include "dysra/core/error.h"
#include "dysra/ops/linear_attention.h"

namespace dysra::layers {

LinearAttentionImpl::LinearAttentionImpl(const models::ModelOptions& o, int64_t)
    : d_model_(o.d_model),
      n_heads_(o.n_heads),
      head_dim_(o.n_heads > 0 ? o.d_model / o.n_heads : 0),
      chunk_size_(o.linear_attention.chunk_size),
      normalize_(o.linear_attention.normalize),
      feature_map_(o.linear_attention.feature_map) {
  DYSRA_CHECK_T(ConfigError, o.n_heads >= 1 && o.d_model % o.n_heads == 0, "model.n_heads: d_model (", o.d_model,
                ") must be divisible by n_heads (", o.n_heads, ")");
  DYSRA_CHECK_T(ConfigError, feature_map_ == "elu1" || feature_map_ == "relu" || feature_map_ == "identity",
                "model.linear_attention.feature_map: unknown '", feature_map_, "' (known: elu1, relu, identity)");
  DYSRA_CHECK_T(ConfigError, chunk_size_ >= 1, "model.linear_attention.chunk_size: must be >= 1, got ", chunk_size_);
  auto lin = [&](const char* name) {
    return register_module(name, torch::nn::Linear(torch::nn::LinearOptions(d_model_, d_model_).bias(false)));
  };
  q_ = lin("q");
  k_ = lin("k");
  v_ = lin("v");
  o_ = lin("o");
}

torch::Tensor LinearAttentionImpl::feature_map(const torch::Tensor& x) const {
  if (feature_map_ == "elu1") return torch::elu(x) + 1;
  if (feature_map_ == "relu") return torch::relu(x);
  return x;
}

torch::Tensor LinearAttentionImpl::forward(const torch::Tensor& x, const MixerInputs&, MixerState* state) {
  DYSRA_CHECK(x.dim() == 3 && x.size(2) == d_model_, "linear_attention: x must be [B, L, ", d_model_, "], got ",
              x.sizes());
  const int64_t B = x.size(0), L = x.size(1), H = n_heads_, Dh = head_dim_;
  const auto st = x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto q = feature_map(q_(x)).view({B, L, H, Dh});
  auto k = feature_map(k_(x)).view({B, L, H, Dh});
  auto v = v_(x).view({B, L, H, Dh});
  ops::LinearAttentionOptions o;
  o.normalize = normalize_;
  o.scale = 1.0 / std::sqrt(static_cast<double>(Dh));
  o.chunk_size = chunk_size_;
  ops::LinearAttentionState init;
  if (state && !state->empty()) {
    DYSRA_CHECK(state->tensors.size() == 2 && state->tensors[0].sizes() == torch::IntArrayRef({B, H, Dh, Dh}) &&
                    state->tensors[1].sizes() == torch::IntArrayRef({B, H, Dh}),
                "linear_attention: state must hold S [B, H, Dh, Dh] = [", B, ", ", H, ", ", Dh, ", ", Dh,
                "] and z [B, H, Dh]");
    init = {state->tensors[0].to(st), state->tensors[1].to(st)};
  }
  torch::Tensor y;
  if (state && L == 1) {
    // recurrent form: S += k vᵀ, z += k; o = qᵀS / (qᵀz + eps) or scale · qᵀS
    auto q1 = q.select(1, 0).to(st), k1 = k.select(1, 0).to(st), v1 = v.select(1, 0).to(st);  // [B, H, Dh]
    auto S = k1.unsqueeze(3) * v1.unsqueeze(2);
    auto z = k1;
    if (init.S.defined()) {
      S = S + init.S;
      z = z + init.z;
    }
    auto num = torch::matmul(q1.unsqueeze(2), S).squeeze(2);  // [B, H, Dh]
    y = normalize_ ? num / ((q1 * z).sum(-1, true) + o.eps) : num * o.scale;
    y = y.unsqueeze(1).to(x.scalar_type());
    state->tensors = {S.detach(), z.detach()};
  } else {
    auto r = ops::linear_attention(q, k, v, init, o);
    y = r.out;
    if (state) state->tensors = {r.state.S.detach(), r.state.z.detach()};
  }
  if (state) state->offset += L;
  return o_(y.reshape({B, L, d_model_}));
}

LayerCost LinearAttentionImpl::cost(int64_t n, int64_t bpe) const {
  const double L = static_cast<double>(n), d = d_model_, H = n_heads_, Dh = head_dim_;
  const double C = static_cast<double>(std::min<int64_t>(chunk_size_, std::max<int64_t>(n, 1)));
  LayerCost c;
  c.params = 4 * d_model_ * d_model_;
  const double proj = 2.0 * L * d * 4 * d;
  // per head: intra-chunk q·kᵀ and (·)v over C keys, chunk states kᵀv, inter-chunk q·S, the normaliser
  const double mix = H * (2.0 * L * C * Dh * 2 + 2.0 * L * Dh * Dh * 2 + (normalize_ ? 4.0 * L * Dh : 0.0));
  c.flops = proj + mix + 3.0 * L * d;  // + feature maps
  c.bytes = bpe * (static_cast<double>(c.params) + L * (d + 4 * d + d));  // weights, x, q/k/v/o, out
  c.state_bytes = 4.0 * H * (Dh * Dh + Dh);
  return c;
}

}  // namespace dysra::layers
