#include "dysra/layers/mamba.h"

#include <torch/torch.h>

#include <cmath>

#include "dysra/core/error.h"
#include "dysra/ops/selective_scan.h"

namespace dysra::layers {
namespace F = torch::nn::functional;

namespace {
// The dtype of the scan's fp32 parameters/state: float64 for a float64 model, else fp32.
torch::ScalarType state_type(const torch::Tensor& x) {
  return x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}
}  // namespace

MambaImpl::MambaImpl(const models::ModelOptions& o, int64_t)
    : d_model_(o.d_model),
      d_inner_(o.mamba.expand * o.d_model),
      d_state_(o.mamba.d_state),
      d_conv_(o.mamba.d_conv),
      dt_rank_(o.mamba.dt_rank > 0 ? o.mamba.dt_rank : (o.d_model + 15) / 16) {
  const auto& m = o.mamba;
  DYSRA_CHECK_T(ConfigError, o.d_model >= 1, "model.d_model: must be >= 1, got ", o.d_model);
  DYSRA_CHECK_T(ConfigError, m.d_state >= 1, "model.mamba.d_state: must be >= 1, got ", m.d_state);
  DYSRA_CHECK_T(ConfigError, m.d_conv >= 1, "model.mamba.d_conv: must be >= 1, got ", m.d_conv);
  DYSRA_CHECK_T(ConfigError, m.expand >= 1, "model.mamba.expand: must be >= 1, got ", m.expand);
  DYSRA_CHECK_T(ConfigError, m.dt_rank >= 0, "model.mamba.dt_rank: must be >= 0 (0 = ceil(d_model / 16)), got ",
                m.dt_rank);
  DYSRA_CHECK_T(ConfigError, m.dt_min > 0 && m.dt_min <= m.dt_max,
                "model.mamba.dt_min/dt_max: need 0 < dt_min <= dt_max, got dt_min = ", m.dt_min,
                ", dt_max = ", m.dt_max);
  const int64_t E = d_inner_, N = d_state_, R = dt_rank_;
  in_proj_ = register_module("in_proj", torch::nn::Linear(torch::nn::LinearOptions(d_model_, 2 * E).bias(false)));
  conv_ = register_module("conv", torch::nn::Conv1d(torch::nn::Conv1dOptions(E, E, d_conv_).groups(E).bias(true)));
  x_proj_ = register_module("x_proj", torch::nn::Linear(torch::nn::LinearOptions(E, R + 2 * N).bias(false)));
  dt_proj_ = register_module("dt_proj", torch::nn::Linear(torch::nn::LinearOptions(R, E).bias(true)));
  out_proj_ = register_module("out_proj", torch::nn::Linear(torch::nn::LinearOptions(E, d_model_).bias(false)));
  {
    torch::NoGradGuard ng;
    const double std = 1.0 / std::sqrt(static_cast<double>(R));
    dt_proj_->weight.uniform_(-std, std);
    auto dt = torch::exp(torch::rand({E}) * (std::log(m.dt_max) - std::log(m.dt_min)) + std::log(m.dt_min))
                  .clamp_min(1e-4);
    dt_proj_->bias.copy_(dt + torch::log(-torch::expm1(-dt)));  // softplus⁻¹(dt)
  }
  A_log_ = register_parameter("A_log", torch::log(torch::arange(1, N + 1, torch::kFloat32)).repeat({E, 1}));
  D_ = register_parameter("D", torch::ones({E}));
}

torch::Tensor MambaImpl::forward(const torch::Tensor& x, const MixerInputs&, MixerState* state) {
  DYSRA_CHECK(x.dim() == 3 && x.size(2) == d_model_, "mamba: x must be [B, L, ", d_model_, "], got ", x.sizes());
  const int64_t B = x.size(0), L = x.size(1), E = d_inner_, N = d_state_, K = d_conv_;
  if (state && !state->empty()) {
    DYSRA_CHECK(state->tensors.size() == 2 && state->tensors[0].sizes() == torch::IntArrayRef({B, E, K - 1}) &&
                    state->tensors[1].sizes() == torch::IntArrayRef({B, E, N}),
                "mamba: state must hold a conv state [B, d_inner, d_conv - 1] = [", B, ", ", E, ", ", K - 1,
                "] and an SSM state [B, d_inner, d_state] = [", B, ", ", E, ", ", N, "]");
  }
  if (state && L == 1) return step(x, *state);

  const auto st = state_type(x);
  auto xz = in_proj_(x);                                       // [B, L, 2E]
  auto xs = xz.narrow(2, 0, E).transpose(1, 2);                // [B, E, L]
  auto z = xz.narrow(2, E, E).transpose(1, 2);
  auto conv_state = state && !state->empty() ? state->tensors[0].to(xs.scalar_type())
                                             : torch::zeros({B, E, K - 1}, xs.options());
  auto conv_in = torch::cat({conv_state, xs}, 2);              // [B, E, K - 1 + L]
  auto xc = torch::silu(conv_(conv_in));                       // [B, E, L]
  auto x_dbl = x_proj_(xc.transpose(1, 2));                    // [B, L, R + 2N]
  auto dt = F::linear(x_dbl.narrow(2, 0, dt_rank_), dt_proj_->weight).transpose(1, 2);  // [B, E, L], bias in scan
  auto Bm = x_dbl.narrow(2, dt_rank_, N).transpose(1, 2);      // [B, N, L]
  auto Cm = x_dbl.narrow(2, dt_rank_ + N, N).transpose(1, 2);
  auto A = -torch::exp(A_log_.to(st));
  torch::Tensor h0 = state && !state->empty() ? state->tensors[1].to(st) : torch::Tensor();
  ops::SelectiveScanOptions so;
  so.delta_softplus = true;
  auto r = ops::selective_scan(xc, dt, A, Bm, Cm, D_.to(st), z, dt_proj_->bias.to(st), h0, so);
  if (state) {
    state->tensors = {conv_in.narrow(2, L, K - 1).detach(), r.last_state.detach()};
    state->offset += L;
  }
  return out_proj_(r.out.transpose(1, 2));
}

// The recurrent form: one token, the conv as a dot product with the cached inputs, one SSM update.
torch::Tensor MambaImpl::step(const torch::Tensor& x, MixerState& state) {
  const int64_t B = x.size(0), E = d_inner_, N = d_state_, K = d_conv_;
  const auto st = state_type(x);
  auto xz = in_proj_(x.select(1, 0));                          // [B, 2E]
  auto xs = xz.narrow(1, 0, E), z = xz.narrow(1, E, E);
  auto conv_state = state.empty() ? torch::zeros({B, E, K - 1}, xs.options()) : state.tensors[0].to(xs.scalar_type());
  auto h = state.empty() ? torch::zeros({B, E, N}, x.options().dtype(st)) : state.tensors[1].to(st);
  auto window = torch::cat({conv_state, xs.unsqueeze(2)}, 2);  // [B, E, K]
  auto xc = torch::silu((window * conv_->weight.squeeze(1)).sum(2) + conv_->bias);  // [B, E]
  auto x_dbl = x_proj_(xc);
  auto dt = torch::softplus(F::linear(x_dbl.narrow(1, 0, dt_rank_), dt_proj_->weight).to(st) + dt_proj_->bias.to(st));
  auto Bt = x_dbl.narrow(1, dt_rank_, N).to(st), Ct = x_dbl.narrow(1, dt_rank_ + N, N).to(st);
  auto u = xc.to(st);
  auto A = -torch::exp(A_log_.to(st));
  h = torch::exp(dt.unsqueeze(2) * A) * h + (dt * u).unsqueeze(2) * Bt.unsqueeze(1);  // [B, E, N]
  auto y = ((h * Ct.unsqueeze(1)).sum(2) + D_.to(st) * u) * torch::silu(z.to(st));
  state.tensors = {window.narrow(2, 1, K - 1).detach(), h.detach()};
  state.offset += 1;
  return out_proj_(y.to(x.scalar_type())).unsqueeze(1);
}

LayerCost MambaImpl::cost(int64_t n, int64_t bpe) const {
  const double L = static_cast<double>(n), d = d_model_, E = d_inner_, N = d_state_, R = dt_rank_, K = d_conv_;
  LayerCost c;
  c.params = d_model_ * 2 * d_inner_ + d_inner_ * (d_conv_ + 1) + d_inner_ * (dt_rank_ + 2 * d_state_) +
             dt_rank_ * d_inner_ + d_inner_ + d_inner_ * d_state_ + d_inner_ + d_inner_ * d_model_;
  const double proj = 2.0 * L * (d * 2 * E + E * (R + 2 * N) + R * E + E * d);  // in, x, dt, out projections
  const double conv = 2.0 * L * E * K;
  // scan per (t, channel, state): exp(Δa), two multiply-adds for the update, one for C·x, ΔuB product
  const double scan = 9.0 * L * E * N;
  const double elementwise = 10.0 * L * E;  // SiLUs, softplus, D skip, gate
  c.flops = proj + conv + scan + elementwise;
  // weights once; activations: x, xz, conv out, x_dbl, Δ, y, out (the scan state stays on chip in a fused kernel)
  c.bytes = bpe * (static_cast<double>(c.params) + L * (d + 2 * E + E + (R + 2 * N) + E + E + d));
  c.state_bytes = bpe * E * (K - 1) + 4.0 * E * N;
  return c;
}

}  // namespace dysra::layers
