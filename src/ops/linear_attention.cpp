// Causal linear attention: validating dispatcher, the chunk-parallel CPU implementation, the naive reference.
//
// CPU implementation (all LibTorch ops, differentiable through autograd, no loop over time or chunks):
// the sequence is zero-padded to n·C tokens and viewed as n chunks of C. Within a chunk the masked
// q·kᵀ (lower triangle incl. the diagonal) gives the intra-chunk part; the state before chunk c is the initial
// state plus the exclusive prefix sum over chunks of kᵀv (and of Σk for the normaliser), applied with q·S.
// Padded keys/values are zero, so they add nothing to the states. Computed in fp32 (float64 inputs: float64).
#include "dysra/ops/linear_attention.h"
#include "dysra/ops/backend.h"

#include <torch/torch.h>

#include "dysra/core/error.h"
#include "ops/cuda_glue.h"

namespace dysra::ops {
namespace {

bool is_float_type(torch::ScalarType t) {
  return t == torch::kFloat32 || t == torch::kFloat64 || t == torch::kBFloat16 || t == torch::kFloat16;
}

void check_shape(const torch::Tensor& t, const char* name, const char* dims, std::vector<int64_t> expected) {
  if (t.sizes() == c10::IntArrayRef(expected)) return;
  throw Error(detail::str_cat("linear_attention: ", name, " must be ", dims, " = ", c10::IntArrayRef(expected),
                              ", got ", t.sizes()));
}

void validate(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
              const LinearAttentionState& initial, const LinearAttentionOptions& o) {
  DYSRA_CHECK(q.defined() && k.defined() && v.defined(), "linear_attention: q, k and v are required");
  DYSRA_CHECK(q.dim() == 4, "linear_attention: q must be [batch, T, heads, d_k], got ", q.sizes());
  DYSRA_CHECK(v.dim() == 4, "linear_attention: v must be [batch, T, heads, d_v], got ", v.sizes());
  const int64_t b = q.size(0), t = q.size(1), h = q.size(2), dk = q.size(3), dv = v.size(3);
  check_shape(k, "k", "[batch, T, heads, d_k]", {b, t, h, dk});
  check_shape(v, "v", "[batch, T, heads, d_v]", {b, t, h, dv});
  if (initial.S.defined()) check_shape(initial.S, "initial.S", "[batch, heads, d_k, d_v]", {b, h, dk, dv});
  if (initial.z.defined()) check_shape(initial.z, "initial.z", "[batch, heads, d_k]", {b, h, dk});
  DYSRA_CHECK(o.chunk_size >= 1, "linear_attention: options.chunk_size must be >= 1, got ", o.chunk_size);
  DYSRA_CHECK(o.eps >= 0, "linear_attention: options.eps must be >= 0, got ", o.eps);

  const auto dt = q.scalar_type();
  DYSRA_CHECK(is_float_type(dt), "linear_attention: q must be float32, bfloat16, float16 or float64, got ", dt);
  DYSRA_CHECK(k.scalar_type() == dt, "linear_attention: k must have the dtype of q (", dt, "), got ", k.scalar_type());
  DYSRA_CHECK(v.scalar_type() == dt, "linear_attention: v must have the dtype of q (", dt, "), got ", v.scalar_type());
  const auto state_dt = dt == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  for (auto [t_, name] : {std::pair{&initial.S, "initial.S"}, std::pair{&initial.z, "initial.z"}}) {
    if (t_->defined())
      DYSRA_CHECK(t_->scalar_type() == state_dt, "linear_attention: ", name, " must be ", state_dt,
                  " (float32, or float64 when q is float64), got ", t_->scalar_type());
  }
  for (auto [t_, name] : {std::pair{&k, "k"}, std::pair{&v, "v"}, std::pair{&initial.S, "initial.S"},
                          std::pair{&initial.z, "initial.z"}}) {
    if (t_->defined())
      DYSRA_CHECK(t_->device() == q.device(), "linear_attention: ", name, " is on ", t_->device(),
                  " but q is on ", q.device());
  }
}

torch::ScalarType compute_type(const torch::Tensor& q) {
  return q.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

LinearAttentionResult linear_attention_cpu(const torch::Tensor& q_in, const torch::Tensor& k_in,
                                           const torch::Tensor& v_in, const LinearAttentionState& initial,
                                           const LinearAttentionOptions& o) {
  const auto ct = compute_type(q_in);
  const int64_t b = q_in.size(0), T = q_in.size(1), h = q_in.size(2), dk = q_in.size(3), dv = v_in.size(3);
  auto fopts = q_in.options().dtype(ct);
  auto S0 = initial.S.defined() ? initial.S.to(ct) : torch::zeros({b, h, dk, dv}, fopts);
  auto z0 = initial.z.defined() ? initial.z.to(ct) : torch::zeros({b, h, dk}, fopts);
  if (T == 0) return {torch::zeros({b, 0, h, dv}, q_in.options()), {S0, z0}};

  const int64_t C = std::min(o.chunk_size, T);
  const int64_t n = (T + C - 1) / C, pad = n * C - T;
  auto prep = [&](const torch::Tensor& x) {  // [b, T, h, d] → [b, h, n, C, d]
    auto y = x.to(ct).permute({0, 2, 1, 3});
    if (pad > 0) y = torch::constant_pad_nd(y, {0, 0, 0, pad});
    return y.reshape({b, h, n, C, x.size(3)});
  };
  auto q = prep(q_in), k = prep(k_in), v = prep(v_in);
  auto causal = torch::ones({C, C}, fopts.dtype(torch::kBool)).tril();
  auto att = torch::matmul(q, k.transpose(-1, -2)).masked_fill(causal.logical_not(), 0.0);  // [b, h, n, C, C]
  auto kv = torch::matmul(k.transpose(-1, -2), v);                                         // [b, h, n, dk, dv]
  auto kv_cum = kv.cumsum(2);
  // state before chunk c: S0 + Σ_{c' < c} kv_c'
  auto S_before = S0.unsqueeze(2) + torch::constant_pad_nd(kv_cum.narrow(2, 0, n - 1), {0, 0, 0, 0, 1, 0});
  auto num = torch::matmul(att, v) + torch::matmul(q, S_before);  // [b, h, n, C, dv]
  auto k_cum = k.sum(3).cumsum(2);                                // [b, h, n, dk]
  torch::Tensor out;
  if (o.normalize) {
    auto z_before = z0.unsqueeze(2) + torch::constant_pad_nd(k_cum.narrow(2, 0, n - 1), {0, 0, 1, 0});
    auto den = att.sum(-1) + (q * z_before.unsqueeze(3)).sum(-1);  // [b, h, n, C]
    out = num / (den + o.eps).unsqueeze(-1);
  } else {
    out = num * o.scale;
  }
  out = out.reshape({b, h, n * C, dv}).narrow(2, 0, T).permute({0, 2, 1, 3}).to(q_in.scalar_type()).contiguous();
  return {out, {S0 + kv_cum.select(2, n - 1), z0 + k_cum.select(2, n - 1)}};
}

}  // namespace

LinearAttentionResult linear_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       const LinearAttentionState& initial, const LinearAttentionOptions& options) {
  validate(q, k, v, initial, options);
  if (q.is_cuda()) {
#ifdef DYSRA_WITH_CUDA
    const bool tensor_cores = q.scalar_type() == torch::kBFloat16 && (q.size(3) == 64 || q.size(3) == 128) &&
                              v.size(3) % 8 == 0;
    if (use_cuda_kernels(Op::kLinearAttention, tensor_cores)) return cuda::linear_attention(q, k, v, initial, options);
#endif
    return linear_attention_cpu(q, k, v, initial, options);  // LibTorch ops, device-agnostic
  }
  DYSRA_CHECK(q.device().is_cpu(), "linear_attention: unsupported device ", q.device(), " (CPU or CUDA)");
  return linear_attention_cpu(q, k, v, initial, options);
}

LinearAttentionResult linear_attention_reference(const torch::Tensor& q, const torch::Tensor& k,
                                                 const torch::Tensor& v, const LinearAttentionState& initial,
                                                 const LinearAttentionOptions& o) {
  validate(q, k, v, initial, o);
  const auto ct = compute_type(q);
  const int64_t b = q.size(0), T = q.size(1), h = q.size(2), dk = q.size(3), dv = v.size(3);
  auto fopts = q.options().dtype(ct);
  auto S = initial.S.defined() ? initial.S.to(ct) : torch::zeros({b, h, dk, dv}, fopts);
  auto z = initial.z.defined() ? initial.z.to(ct) : torch::zeros({b, h, dk}, fopts);
  std::vector<torch::Tensor> outs;
  for (int64_t t = 0; t < T; ++t) {
    auto q_t = q.select(1, t).to(ct), k_t = k.select(1, t).to(ct), v_t = v.select(1, t).to(ct);  // [b, h, d]
    S = S + k_t.unsqueeze(-1) * v_t.unsqueeze(-2);
    z = z + k_t;
    auto num = (q_t.unsqueeze(-1) * S).sum(-2);  // [b, h, dv]
    outs.push_back(o.normalize ? num / ((q_t * z).sum(-1, true) + o.eps) : num * o.scale);
  }
  auto out = T > 0 ? torch::stack(outs, 1) : torch::zeros({b, 0, h, dv}, fopts);
  return {out.to(q.scalar_type()), {S, z}};
}

}  // namespace dysra::ops
