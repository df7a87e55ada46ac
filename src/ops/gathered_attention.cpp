// Gathered (sparse) attention: validating dispatcher, the CPU implementation and the dense reference.
//
// CPU implementation (LibTorch ops, differentiable through autograd in q, k, v): the rows each query block
// attends to are gathered from k and v ([batch, Hkv, n_blocks, K, D], the size of the index list, never
// Tq × N), the block's queries (all query heads of a kv head together) take their K logits, padding indices
// (< 0) and keys after the query's position (causal) are masked, and a max-shifted softmax with a guarded
// denominator gives zeros (and lse = -inf) for a query whose every key is masked. A memory row listed twice in
// one index list counts twice (the reference counts multiplicities the same way).
#include "dysra/ops/gathered_attention.h"
#include "dysra/ops/backend.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "dysra/core/error.h"
#include "ops/cuda_glue.h"

namespace dysra::ops {
namespace {

bool is_float_type(torch::ScalarType t) {
  return t == torch::kFloat32 || t == torch::kFloat64 || t == torch::kBFloat16 || t == torch::kFloat16;
}

int64_t n_blocks_of(int64_t tq, int64_t block_q) { return (tq + block_q - 1) / block_q; }

void validate(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& indices,
              const GatheredAttentionOptions& o) {
  DYSRA_CHECK(q.defined() && k.defined() && v.defined() && indices.defined(),
              "gathered_attention: q, k, v and indices are required");
  DYSRA_CHECK(o.block_q >= 1, "gathered_attention: options.block_q must be >= 1, got ", o.block_q);
  DYSRA_CHECK(o.scale >= 0, "gathered_attention: options.scale must be >= 0 (0 = 1/sqrt(D)), got ", o.scale);
  DYSRA_CHECK(q.dim() == 4, "gathered_attention: q must be [batch, Tq, heads, D], got ", q.sizes());
  DYSRA_CHECK(k.dim() == 4, "gathered_attention: k must be [batch, N, kv_heads, D], got ", k.sizes());
  const int64_t b = q.size(0), tq = q.size(1), h = q.size(2), d = q.size(3), n = k.size(1), hkv = k.size(2);
  DYSRA_CHECK(k.size(0) == b && k.size(3) == d, "gathered_attention: k must be [batch, N, kv_heads, D] = [", b,
              ", N, kv_heads, ", d, "] (batch and D of q), got ", k.sizes());
  DYSRA_CHECK(v.sizes() == k.sizes(), "gathered_attention: v must be [batch, N, kv_heads, D] = ", k.sizes(),
              " (the shape of k), got ", v.sizes());
  DYSRA_CHECK(hkv >= 1 && h % hkv == 0, "gathered_attention: query heads (", h,
              ") must be a multiple of kv heads (", hkv, ")");
  const int64_t nb = n_blocks_of(tq, o.block_q);
  DYSRA_CHECK(indices.dim() == 4 && indices.size(0) == b && indices.size(1) == hkv && indices.size(2) == nb,
              "gathered_attention: indices must be [batch, kv_heads, n_blocks, K] = [", b, ", ", hkv, ", ", nb,
              ", K] (n_blocks = ceil(Tq / block_q) = ceil(", tq, " / ", o.block_q, ")), got ", indices.sizes());
  DYSRA_CHECK(indices.size(3) >= 1, "gathered_attention: indices must have K >= 1 columns, got ", indices.sizes());
  DYSRA_CHECK(indices.scalar_type() == torch::kInt64 || indices.scalar_type() == torch::kInt32,
              "gathered_attention: indices must be int32 or int64, got ", indices.scalar_type());
  const auto dt = q.scalar_type();
  DYSRA_CHECK(is_float_type(dt), "gathered_attention: q must be float32, bfloat16, float16 or float64, got ", dt);
  DYSRA_CHECK(k.scalar_type() == dt && v.scalar_type() == dt, "gathered_attention: k and v must have the dtype of q (",
              dt, "), got ", k.scalar_type(), " and ", v.scalar_type());
  for (auto [t_, name] : {std::pair{&k, "k"}, std::pair{&v, "v"}, std::pair{&indices, "indices"}})
    DYSRA_CHECK(t_->device() == q.device(), "gathered_attention: ", name, " is on ", t_->device(), " but q is on ",
                q.device());
  // Entries >= N: an error naming the value; always for CPU indices, for device indices with o.check_indices (a
  // device sync). Unchecked, they are ignored like padding (every path masks them).
  if ((indices.device().is_cpu() || o.check_indices) && indices.numel() > 0) {
    const int64_t mx = indices.max().item<int64_t>();
    DYSRA_CHECK(mx < n, "gathered_attention: indices must be < N = ", n, " (memory rows of k), got ", mx);
  }
}

double scale_of(const GatheredAttentionOptions& o, int64_t d) {
  return o.scale > 0 ? o.scale : 1.0 / std::sqrt(static_cast<double>(d));
}

torch::ScalarType compute_type(const torch::Tensor& q) {
  return q.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

// Softmax over the last dim of masked logits (-inf = masked) with multiplicity-free guards: rows with no
// unmasked entry give p = 0 everywhere, s = 0. Returns {p (unnormalised), s, m}.
struct SafeSoftmax {
  torch::Tensor p, s, m;
};
SafeSoftmax safe_exp(const torch::Tensor& logits) {
  auto m = std::get<0>(logits.max(-1, true)).detach();
  m = torch::where(torch::isfinite(m), m, torch::zeros_like(m));
  auto p = torch::exp(logits - m);
  return {p, p.sum(-1, true), m};
}

// out = p·V / s (0 where s = 0), lse = m + log s (-inf where s = 0); both without NaN gradients.
std::pair<torch::Tensor, torch::Tensor> finish(const SafeSoftmax& sm, const torch::Tensor& pv) {
  auto has = sm.s > 0;
  auto s_safe = torch::where(has, sm.s, torch::ones_like(sm.s));
  auto out = pv / s_safe;
  auto lse = torch::where(has, torch::log(s_safe) + sm.m,
                          torch::full_like(sm.m, -std::numeric_limits<double>::infinity()));
  return {out, lse.squeeze(-1)};
}

GatheredAttentionResult gathered_attention_cpu(const torch::Tensor& q_in, const torch::Tensor& k_in,
                                               const torch::Tensor& v_in, const torch::Tensor& indices,
                                               const GatheredAttentionOptions& o) {
  const auto ct = compute_type(q_in);
  const int64_t b = q_in.size(0), tq = q_in.size(1), h = q_in.size(2), d = q_in.size(3);
  const int64_t hkv = k_in.size(2), g = h / hkv, K = indices.size(3);
  const int64_t nb = n_blocks_of(tq, o.block_q), bq = nb == 1 ? tq : o.block_q, tp = nb * bq;
  auto q = q_in.to(ct);
  if (tp > tq) q = torch::constant_pad_nd(q, {0, 0, 0, 0, 0, tp - tq});
  // [b, tp, h, d] → [b, hkv, nb, g·bq, d]; query head hh = gi·g + r reads kv head gi.
  q = q.view({b, nb, bq, hkv, g, d}).permute({0, 3, 1, 4, 2, 5}).reshape({b, hkv, nb, g * bq, d});
  auto idx = indices.to(torch::kInt64);
  const int64_t n = k_in.size(1);
  auto gather_rows = [&](const torch::Tensor& x) {  // [b, N, hkv, d] → [b, hkv, nb, K, d]
    auto xm = x.to(ct).permute({0, 2, 1, 3});
    auto ix = idx.clamp(0, n - 1).reshape({b, hkv, nb * K, 1}).expand({b, hkv, nb * K, d});
    return torch::gather(xm, 2, ix).view({b, hkv, nb, K, d});
  };
  auto kg = gather_rows(k_in), vg = gather_rows(v_in);
  auto logits = torch::matmul(q, kg.transpose(-1, -2)) * scale_of(o, d);  // [b, hkv, nb, g·bq, K]
  auto valid = ((idx >= 0) & (idx < n)).unsqueeze(3);  // [b, hkv, nb, 1, K]; unchecked entries >= N are padding
  if (o.causal) {
    auto opts = idx.options();
    auto qpos = (torch::arange(nb, opts).unsqueeze(1) * bq + torch::arange(bq, opts).repeat({g}).unsqueeze(0)) +
                o.causal_offset;                                           // [nb, g·bq]
    valid = valid & (idx.unsqueeze(3) <= qpos.unsqueeze(-1));             // [b, hkv, nb, g·bq, K]
  }
  logits = logits.masked_fill(valid.logical_not(), -std::numeric_limits<double>::infinity());
  auto sm = safe_exp(logits);
  auto [out, lse] = finish(sm, torch::matmul(sm.p, vg));
  out = out.view({b, hkv, nb, g, bq, d}).permute({0, 2, 4, 1, 3, 5}).reshape({b, tp, h, d}).narrow(1, 0, tq);
  lse = lse.view({b, hkv, nb, g, bq}).permute({0, 1, 3, 2, 4}).reshape({b, h, tp}).narrow(2, 0, tq);
  return {out.to(q_in.scalar_type()).contiguous(), lse.contiguous()};
}

}  // namespace

GatheredAttentionResult gathered_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                           const torch::Tensor& indices, const GatheredAttentionOptions& options) {
  validate(q, k, v, indices, options);
  if (q.is_cuda()) {
#ifdef DYSRA_WITH_CUDA
    const bool tensor_cores = (q.scalar_type() == torch::kBFloat16 || q.scalar_type() == torch::kHalf) &&
                              (q.size(3) == 64 || q.size(3) == 128);
    if (use_cuda_kernels(Op::kGatheredAttention, tensor_cores))
      return cuda::gathered_attention(q, k, v, indices, options);
#endif
    return gathered_attention_cpu(q, k, v, indices, options);  // LibTorch ops, device-agnostic
  }
  DYSRA_CHECK(q.device().is_cpu(), "gathered_attention: unsupported device ", q.device(), " (CPU or CUDA)");
  return gathered_attention_cpu(q, k, v, indices, options);
}

GatheredAttentionResult gathered_attention_reference(const torch::Tensor& q_in, const torch::Tensor& k_in,
                                                     const torch::Tensor& v_in, const torch::Tensor& indices,
                                                     const GatheredAttentionOptions& o) {
  validate(q_in, k_in, v_in, indices, o);
  const auto ct = compute_type(q_in);
  const int64_t b = q_in.size(0), tq = q_in.size(1), h = q_in.size(2), d = q_in.size(3);
  const int64_t n = k_in.size(1), hkv = k_in.size(2), g = h / hkv;
  auto q = q_in.to(ct).permute({0, 2, 1, 3});                                    // [b, h, tq, d]
  auto k = k_in.to(ct).permute({0, 2, 1, 3}).repeat_interleave(g, 1);            // [b, h, n, d]
  auto v = v_in.to(ct).permute({0, 2, 1, 3}).repeat_interleave(g, 1);
  auto logits = torch::matmul(q, k.transpose(-1, -2)) * scale_of(o, d);          // [b, h, tq, n]
  // count[b, gi, j, m] = how often memory row m appears in block j's list
  auto idx = indices.to(torch::kInt64);
  auto count = torch::zeros({b, hkv, idx.size(2), n}, q.options());
  count.scatter_add_(3, idx.clamp_min(0), (idx >= 0).to(ct));
  auto block_of = torch::arange(tq, idx.options()).div(o.block_q, "floor");                // [tq]
  count = count.index_select(2, block_of).repeat_interleave(g, 1);               // [b, h, tq, n]
  auto allowed = count > 0;
  if (o.causal) {
    auto qpos = torch::arange(tq, idx.options()).unsqueeze(1) + o.causal_offset;
    allowed = allowed & (torch::arange(n, idx.options()).unsqueeze(0) <= qpos);
  }
  logits = (logits + torch::log(count)).masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  auto sm = safe_exp(logits);
  auto [out, lse] = finish(sm, torch::matmul(sm.p, v));
  return {out.permute({0, 2, 1, 3}).to(q_in.scalar_type()).contiguous(), lse.contiguous()};
}

}  // namespace dysra::ops
