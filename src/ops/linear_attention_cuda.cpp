// src/ops/linear_attention_cuda.cpp — LibTorch glue of the CUDA chunked causal linear attention.
//
// Everything is built from one kernel, the unnormalised causal core (kernels/linear_attention):
//   core(q, k, v; S0) → (scale·[Σ_{s<=t} (q_t·k_s) v_s + q_t S0], S0 + Σ k vᵀ), plus a reverse-time variant.
// normalize = true: on the tensor-core path (bf16, d_k and d_v in {64, 128}) one launch computes numerator, normaliser
// q_t·z_t (z_t = z0 + Σ_{s<=t} k_s) and the division (the core's value augmentation, NormalizedCoreFn); elsewhere the
// core gives the numerator in fp32 and the normaliser is a chunked cumulative sum in torch ops.
// Keeping d_v as the model's lets bf16 inputs with d_k, d_v in {64, 128} take the kernel's tensor-core path in all
// four core calls. The core's gradients are three more core calls (see kernels/linear_attention/linear_attention.h)
// that take dO as it is (the scale goes to their outputs); the first reuses the forward's segment sums and the last
// those of the second (each state is the transpose of the other's).
#include "ops/cuda_glue.h"

#ifdef DYSRA_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>

#include <torch/torch.h>

#include <cstdlib>
#include <string>

#include "dysra/core/error.h"
#include "linear_attention/linear_attention.h"
#include "ops/cuda_common.h"

namespace dysra::ops::cuda {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
namespace kd = dysra::kernels;
constexpr const char* kOp = "linear_attention";

kd::LinearAttentionTensor view_of(const Tensor& t, const char* name) {
  kd::LinearAttentionTensor v;
  v.ptr = t.data_ptr();
  v.dtype = cuda_detail::kernel_dtype(t, kOp, name);
  v.stride_b = t.stride(0);
  v.stride_t = t.stride(1);
  v.stride_h = t.stride(2);
  return v;
}

/// Params of core(q, k, v) without output or state pointers (enough to ask which path the kernel takes).
kd::LinearAttentionParams params_of(const Tensor& q, const Tensor& k, const Tensor& v, bool reverse, double scale) {
  kd::LinearAttentionParams p;
  p.batch = int(q.size(0));
  p.seqlen = int(q.size(1));
  p.heads = int(q.size(2));
  p.dk = int(q.size(3));
  p.dv = int(v.size(3));
  p.reverse = reverse;
  p.scale = float(scale);
  p.q = view_of(q, "q");
  p.k = view_of(k, "k");
  p.v = view_of(v, "v");
  return p;
}

/// The rank-1 augmentations of the core (kernels/linear_attention/linear_attention.h): fp32 tensors, contiguous;
/// undefined alpha / beta / gamma = ones, undefined sigma0 / zeta0 = zeros.
struct Aug {
  bool contract = false, value = false;
  Tensor alpha, beta, sigma0;  // [B, H, T], [B, H, T], [B, H, dv]
  Tensor gamma, zeta0;         // [B, H, T], [B, H, dk]
  bool want_zeta_final = false, want_out = false;
  bool normalize = false;  // value only: the output divided by (ô + eps)
  double eps = 0.0;
};
struct CoreOut {
  Tensor out, S_final, zeta_final, aug_out;
  Tensor k_sum;  ///< Σ_t k_t [B, H, dk] fp32 (want_k_sum)
  Tensor workspace;  ///< the segment sums of the tensor-core path (undefined when it needs none)
  int n_segments = 1, n_sub = 1;
};
/// Segment sums of an earlier core call whose state is the transpose of this call's (see
/// LinearAttentionParams::workspace_transposed); used when the segments agree.
struct SumsOf {
  const CoreOut* from = nullptr;
};

const float* f32_or_null(const Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; }

/// o = scale·core(q, k, v; S0) in `out_dtype`, optionally the final state and Σ_t k_t (on the tensor-core path from the
/// kernel's K tiles, elsewhere a torch sum), with an optional augmentation. q/k/v: [B, T, H, ·], last dim contiguous.
CoreOut run_core_aug(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& S0, bool reverse, double scale,
                     torch::ScalarType out_dtype, bool want_state, const Aug& aug, SumsOf reuse = {},
                     bool want_k_sum = false) {
  const int64_t b = q.size(0), t = q.size(1), h = q.size(2), dk = q.size(3), dv = v.size(3);
  auto f32 = q.options().dtype(torch::kFloat32);
  CoreOut r;
  r.out = torch::empty({b, t, h, dv}, q.options().dtype(out_dtype));
  if (want_state) r.S_final = torch::empty({b, h, dk, dv}, f32);
  kd::LinearAttentionParams p = params_of(q, k, v, reverse, scale);
  p.out = r.out.data_ptr();
  p.out_dtype = cuda_detail::kernel_dtype(r.out, kOp, "out");
  p.out_stride_b = r.out.stride(0);
  p.out_stride_t = r.out.stride(1);
  p.out_stride_h = r.out.stride(2);
  p.S0 = (S0.defined() && S0.numel() > 0) ? S0.data_ptr<float>() : nullptr;
  p.S_final = want_state ? r.S_final.data_ptr<float>() : nullptr;
  if (aug.contract || aug.value) {
    p.aug.contract = aug.contract;
    p.aug.value = aug.value;
    p.aug.alpha = f32_or_null(aug.alpha);
    p.aug.beta = f32_or_null(aug.beta);
    p.aug.sigma0 = f32_or_null(aug.sigma0);
    p.aug.gamma = f32_or_null(aug.gamma);
    p.aug.zeta0 = f32_or_null(aug.zeta0);
    p.aug.normalize = aug.normalize;
    p.aug.eps = float(aug.eps);
    if (aug.want_zeta_final) {
      r.zeta_final = torch::empty({b, h, dk}, f32);
      p.aug.zeta_final = r.zeta_final.data_ptr<float>();
    }
    if (aug.want_out) {
      r.aug_out = torch::empty({b, h, t}, f32);
      p.aug.out = r.aug_out.data_ptr<float>();
    }
  }
  int n_seg = 1, n_sub = 1;  // the launcher's segmentation (1, 1 off the tensor-core path)
  kd::linear_attention_segments(p, n_seg, n_sub);
  Tensor k_sums;  // [B, H, P, dk]: per segment
  if (want_k_sum && !aug.contract && !aug.value && kd::linear_attention_tensor_core_path(p)) {
    k_sums = torch::empty({b, h, n_seg, dk}, f32);
    p.k_sum = k_sums.data_ptr<float>();
  }
  // per-segment state sums of the tensor-core path (freed in stream order after the launch unless kept by the caller)
  if (const size_t bytes = kd::linear_attention_workspace_bytes(p)) {
    r.n_segments = n_seg;
    r.n_sub = n_sub;
    // Reading an earlier call's sums transposed costs the core more than summing afresh when segments are short:
    // H200, B4 H16 D128 bf16 (session 11, CUDA graphs), T4096 (32 chunks per segment) forward+backward 0.857 ms with
    // reuse vs 0.819 without (normalised), 0.610 vs 0.596 (unnormalised); T16384 (128 per segment) 2.863 vs 2.950
    // and 1.499 vs 1.635. So reuse from 64 chunks per segment on. DYSRA_LINEAR_ATTENTION_REUSE_SUMS=0 / 1 forces it
    // off / on (A/B timing).
    const char* e = std::getenv("DYSRA_LINEAR_ATTENTION_REUSE_SUMS");
    const int reuse_env = e && std::string(e) == "0" ? 0 : e && std::string(e) == "1" ? 1 : -1;
    const int64_t chunks_per_segment = (t + kd::kLinearAttentionChunk - 1) / kd::kLinearAttentionChunk / n_seg;
    const bool reuse_on = reuse_env >= 0 ? reuse_env == 1 : chunks_per_segment >= 64;
    const CoreOut* from = reuse_on ? reuse.from : nullptr;
    if (from && from->workspace.defined() && from->n_segments == r.n_segments && from->n_sub == r.n_sub &&
        size_t(from->workspace.numel()) * sizeof(float) >= bytes) {
      r.workspace = from->workspace;
      p.workspace_ready = p.workspace_transposed = true;
    } else {
      r.workspace = torch::empty({int64_t(bytes / sizeof(float))}, f32);
    }
    p.workspace = r.workspace.data_ptr<float>();
  }
  cuda_detail::check_launch(kd::linear_attention_core(p, cuda_detail::stream_of(q)), kOp, "core");
  if (want_k_sum && k_sums.defined()) {  // over the segments (one or two: a view or one add)
    r.k_sum = n_seg == 1 ? k_sums.squeeze(2) : n_seg == 2 ? k_sums.select(2, 0) + k_sums.select(2, 1) : k_sums.sum(2);
  } else if (want_k_sum) {
    r.k_sum = k.sum(1, false, torch::kFloat32);
  }
  return r;
}

CoreOut run_core(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& S0, bool reverse, double scale,
                 torch::ScalarType out_dtype, bool want_state, SumsOf reuse = {}, bool want_k_sum = false) {
  return run_core_aug(q, k, v, S0, reverse, scale, out_dtype, want_state, Aug{}, reuse, want_k_sum);
}

/// The forward's segment sums kept for the backward's first core call (its state is their transpose); they stay
/// alive with the autograd graph: B·H·P·n_sub·(d_k·d_v + d_k) floats (42 MB at B4 H16 D128, P = 2, n_sub = 5).
void save_sums(AutogradContext* ctx, const CoreOut& r) {
  if (!r.workspace.defined()) return;
  ctx->saved_data["sums"] = r.workspace;
  ctx->saved_data["n_segments"] = int64_t(r.n_segments);
  ctx->saved_data["n_sub"] = int64_t(r.n_sub);
}
CoreOut saved_sums(AutogradContext* ctx) {
  CoreOut r;
  if (ctx->saved_data.count("sums") == 0) return r;
  r.workspace = ctx->saved_data["sums"].toTensor();
  r.n_segments = int(ctx->saved_data["n_segments"].toInt());
  r.n_sub = int(ctx->saved_data["n_sub"].toInt());
  return r;
}

/// Inclusive cumulative sum over dim 1 of [B, T, ...] in chunks of 64: a scan inside each chunk plus a scan over the
/// chunk totals. (torch's cumsum over a long middle dimension walks it with one thread per column: ~2 ms at
/// B4 T4096 H16 D128 on an H200; its backward, a reversed cumsum, likewise. Both scans here are short.)
Tensor chunked_cumsum_t(const Tensor& x) {
  const int64_t t = x.size(1), c = 64, n = (t + c - 1) / c;
  if (n <= 1) return x.cumsum(1);
  auto sizes = x.sizes().vec();
  std::vector<int64_t> pad(2 * (x.dim() - 2), 0);
  pad.push_back(0);
  pad.push_back(n * c - t);
  auto xc = torch::constant_pad_nd(x, pad);  // [B, n·c, ...]
  std::vector<int64_t> shape{sizes[0], n, c};
  shape.insert(shape.end(), sizes.begin() + 2, sizes.end());
  auto within = xc.reshape(shape).cumsum(2);
  auto totals = within.select(2, c - 1).cumsum(1) - within.select(2, c - 1);  // exclusive, [B, n, ...]
  auto out = (within + totals.unsqueeze(2)).reshape(xc.sizes());
  return out.narrow(1, 0, t);
}

class LinearAttentionCoreFn : public torch::autograd::Function<LinearAttentionCoreFn> {
 public:
  // q, k: [B, T, H, dk]; v: [B, T, H, dv]; S0: [B, H, dk, dv] fp32 contiguous, or 0 elements for none
  // (Function::apply rejects undefined inputs).
  static variable_list forward(AutogradContext* ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                               const Tensor& S0, double scale, bool out_fp32, bool want_k_sum) {
    c10::cuda::CUDAGuard guard(q.device());
    ctx->set_materialize_grads(false);  // unused outputs (often the state, Σ k) get no gradient passes
    auto r = run_core(q, k, v, S0, false, scale, out_fp32 ? torch::kFloat32 : q.scalar_type(), true, {}, want_k_sum);
    ctx->save_for_backward({q, k, v});
    save_sums(ctx, r);
    ctx->saved_data["scale"] = scale;
    const bool has_S0 = S0.numel() > 0;
    ctx->saved_data["has_S0"] = has_S0;
    if (has_S0) ctx->saved_data["S0"] = S0;
    return {r.out, r.S_final, want_k_sum ? r.k_sum : torch::empty({0}, r.S_final.options())};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    const Tensor &q = s[0], &k = s[1], &v = s[2];
    c10::cuda::CUDAGuard guard(q.device());
    const double scale = ctx->saved_data["scale"].toDouble();
    const bool has_S0 = ctx->saved_data["has_S0"].toBool();
    Tensor S0 = has_S0 ? ctx->saved_data["S0"].toTensor() : Tensor();
    const int64_t b = q.size(0), t = q.size(1), h = q.size(2), dv = v.size(3);
    // The output was scaled, the state was not. The core calls below take dO as it is and apply `scale` to their
    // outputs (no pass over dO); the state terms they add are divided by it first, and dS0 multiplied after:
    //   dq = scale·core(dO, v, k; S0ᵀ)   dk = scale·core_rev(v, dO, q; dSᵀ/scale)   dv = scale·core_rev(k, q, dO; dS/scale)
    const auto g_dtype = q.scalar_type() == torch::kBFloat16 ? torch::kBFloat16 : torch::kFloat32;
    const bool fold = scale != 0.0;
    Tensor gO;
    if (grads[0].defined()) {
      gO = grads[0].to(g_dtype);
      gO = fold ? cuda_detail::last_dim_contiguous(gO) : (gO * scale).contiguous();
    } else {
      gO = torch::zeros({b, t, h, dv}, q.options().dtype(g_dtype));
    }
    const double s_out = fold ? scale : 1.0;
    Tensor gS = grads[1].defined() ? grads[1].to(torch::kFloat32).contiguous() : Tensor();
    if (gS.defined() && fold && scale != 1.0) gS = gS / scale;
    auto T_ = [](const Tensor& x) { return x.defined() ? x.transpose(2, 3).contiguous() : x; };
    // (each of the three core calls only when its input needs the gradient; the dq call reuses the forward's segment
    // sums, the dv call those of the dk call: each state is the transpose of the other's)
    // dq_t = Σ_{s<=t} (gO_t·v_s) k_s + gO_t S0ᵀ
    Tensor dq, dk, dv_, dS0;
    const CoreOut fwd_sums = saved_sums(ctx);
    if (ctx->needs_input_grad(0)) dq = run_core(gO, v, k, T_(S0), false, s_out, q.scalar_type(), false, {&fwd_sums}).out;
    // dk_s = Σ_{t>=s} (v_s·gO_t) q_t + gS v_s
    CoreOut rk;
    if (ctx->needs_input_grad(1)) dk = (rk = run_core(v, gO, q, T_(gS), true, s_out, k.scalar_type(), false)).out;
    // (+ the gradient of Σ_t k_t, the third output, on every token)
    if (dk.defined() && grads.size() > 2 && grads[2].defined() && grads[2].numel() > 0)
      dk = (dk + grads[2].unsqueeze(1)).to(k.scalar_type());
    // dv_s = Σ_{t>=s} (k_s·q_t) gO_t + gSᵀ k_s ; its final state is dS0 = gS + Σ_t q_t gO_tᵀ
    const bool want_dS0 = has_S0 && ctx->needs_input_grad(3);
    if (ctx->needs_input_grad(2) || want_dS0) {
      auto r = run_core(k, q, gO, gS, true, s_out, v.scalar_type(), want_dS0, {&rk});
      dv_ = r.out;
      dS0 = r.S_final;
      if (want_dS0 && s_out != 1.0) dS0 = dS0 * s_out;
    }
    return {dq, dk, ctx->needs_input_grad(2) ? dv_ : Tensor(), want_dS0 ? dS0 : Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

/// The normalised op on the tensor-core path, o_t = num_t / (den_t + eps) with num = core(q, k, v; S0) and
/// den_t = q_t·(z0 + Σ_{s<=t} k_s): one launch (the value augmentation with γ = 1, ζ0 = z0, dividing in the kernel).
/// Backward: one pass for the gradients through the division (g_num = g_o / (den + eps), g_den = −g_o·o / (den + eps)),
/// then three launches (contraction augmentations carry g_den into dq and dk, a value augmentation gives dz0).
/// Outputs: o [B, T, H, dv] (dtype of q), S_final, z_final.
class NormalizedCoreFn : public torch::autograd::Function<NormalizedCoreFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                               const Tensor& S0, const Tensor& z0, double eps) {
    c10::cuda::CUDAGuard guard(q.device());
    // unused outputs (the states, in training) get no zero-filled gradients: no passes over them in the backward
    ctx->set_materialize_grads(false);
    Aug aug;
    aug.value = aug.normalize = true;
    aug.eps = eps;
    if (z0.numel() > 0) aug.zeta0 = z0;  // (0 elements: z0 = 0)
    aug.want_zeta_final = aug.want_out = true;
    auto r = run_core_aug(q, k, v, S0, false, 1.0, q.scalar_type(), true, aug);
    ctx->save_for_backward({q, k, v, z0, r.out, r.aug_out});
    save_sums(ctx, r);
    const bool has_S0 = S0.numel() > 0;
    ctx->saved_data["has_S0"] = has_S0;
    ctx->saved_data["eps"] = eps;
    if (has_S0) ctx->saved_data["S0"] = S0;
    return {r.out, r.S_final, r.zeta_final};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    const Tensor &q = s[0], &k = s[1], &v = s[2], &z0 = s[3], &out = s[4], &den = s[5];
    c10::cuda::CUDAGuard guard(q.device());
    const bool has_S0 = ctx->saved_data["has_S0"].toBool();
    Tensor S0 = has_S0 ? ctx->saved_data["S0"].toTensor() : Tensor();
    const int64_t b = q.size(0), t = q.size(1), h = q.size(2), dv = v.size(3);
    auto f32 = q.options().dtype(torch::kFloat32);
    // g_num (dtype of q) and g_den [B, H, T] from the output's gradient
    Tensor gO = torch::empty({b, t, h, dv}, q.options());
    Tensor gden = torch::empty({b, h, t}, f32);
    if (grads[0].defined()) {
      Tensor go = cuda_detail::last_dim_contiguous(grads[0]);
      kd::LinearAttentionNormGradParams np;
      np.batch = int(b);
      np.seqlen = int(t);
      np.heads = int(h);
      np.dv = int(dv);
      np.eps = float(ctx->saved_data["eps"].toDouble());
      np.g_out = view_of(go, "grad_out");
      np.out = view_of(out, "out");
      np.den = den.data_ptr<float>();
      np.g_num = gO.data_ptr();
      np.g_num_dtype = cuda_detail::kernel_dtype(gO, kOp, "grad_num");
      np.g_den = gden.data_ptr<float>();
      cuda_detail::check_launch(kd::linear_attention_norm_grad(np, cuda_detail::stream_of(q)), kOp, "norm_grad");
    } else {
      gO.zero_();
      gden.zero_();
    }
    Tensor gS = grads[1].defined() ? grads[1].to(torch::kFloat32).contiguous() : Tensor();
    Tensor gz = grads[2].defined() ? grads[2].to(torch::kFloat32).contiguous() : Tensor();
    auto T_ = [](const Tensor& x) { return x.defined() ? x.transpose(2, 3).contiguous() : x; };
    // (segment sums reused as in LinearAttentionCoreFn: the augmentations' vectors agree as well — σ of the dq call
    // is ζ of the forward, Σ k; ζ of the dv call is σ of the dk call, Σ g_den q)
    Tensor dq, dk, dv_, dS0, dz0;
    const CoreOut fwd_sums = saved_sums(ctx);
    if (ctx->needs_input_grad(0)) {  // dq_t = Σ_{s<=t} (gO_t·v_s + g_den_t) k_s + gO_t S0ᵀ + g_den_t z0
      Aug a;
      a.contract = true;
      a.alpha = gden;
      if (z0.numel() > 0) a.sigma0 = z0;
      dq = run_core_aug(gO, v, k, T_(S0), false, 1.0, q.scalar_type(), false, a, {&fwd_sums}).out;
    }
    CoreOut rk;
    if (ctx->needs_input_grad(1)) {  // dk_s = Σ_{t>=s} (v_s·gO_t + g_den_t) q_t + v_s gSᵀ + g_z
      Aug a;
      a.contract = true;
      a.beta = gden;
      a.sigma0 = gz;
      rk = run_core_aug(v, gO, q, T_(gS), true, 1.0, k.scalar_type(), false, a);
      dk = rk.out;
    }
    const bool want_dS0 = has_S0 && ctx->needs_input_grad(3);
    if (ctx->needs_input_grad(2) || want_dS0 || ctx->needs_input_grad(4)) {
      // dv_s = Σ_{t>=s} (k_s·q_t) gO_t + gSᵀ k_s; final state dS0 = gS + Σ_t q_t gO_tᵀ; ζ_final = g_z + Σ_t q_t g_den_t
      Aug a;
      a.value = true;
      a.gamma = gden;
      a.zeta0 = gz;
      a.want_zeta_final = ctx->needs_input_grad(4);
      auto r = run_core_aug(k, q, gO, gS, true, 1.0, v.scalar_type(), want_dS0, a, {&rk});
      dv_ = r.out;
      dS0 = r.S_final;
      dz0 = r.zeta_final;
    }
    return {dq, dk, ctx->needs_input_grad(2) ? dv_ : Tensor(), want_dS0 ? dS0 : Tensor(), dz0, Tensor()};
  }
};

}  // namespace

LinearAttentionResult linear_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       const LinearAttentionState& initial, const LinearAttentionOptions& options) {
  using cuda_detail::check_device;
  const auto dev = q.device();
  check_device(q, dev, kOp, "q");
  check_device(k, dev, kOp, "k");
  check_device(v, dev, kOp, "v");
  DYSRA_CHECK(q.dim() == 4, "linear_attention: q must be [batch, T, heads, d_k], got ", q.sizes());
  const int64_t b = q.size(0), t = q.size(1), h = q.size(2), dk = q.size(3);
  DYSRA_CHECK(k.sizes() == q.sizes(), "linear_attention: k must be ", q.sizes(), " (like q), got ", k.sizes());
  DYSRA_CHECK(v.dim() == 4 && v.size(0) == b && v.size(1) == t && v.size(2) == h,
              "linear_attention: v must be [", b, ", ", t, ", ", h, ", d_v], got ", v.sizes());
  const int64_t dv = v.size(3);
  cuda_detail::kernel_dtype(q, kOp, "q");
  DYSRA_CHECK(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
              "linear_attention: k and v must have the dtype of q (", q.scalar_type(), ")");
  DYSRA_CHECK(dk <= kd::kLinearAttentionMaxDk && dv <= kd::kLinearAttentionMaxDk,
              "linear_attention: the CUDA kernel supports d_k and d_v <= ", kd::kLinearAttentionMaxDk, ", got d_k = ",
              dk, ", d_v = ", dv);
  DYSRA_CHECK(b <= 65535 && h <= 65535, "linear_attention: the CUDA kernel supports batch, heads <= 65535");
  if (initial.S.defined()) {
    check_device(initial.S, dev, kOp, "initial.S");
    DYSRA_CHECK(initial.S.dim() == 4 && initial.S.size(0) == b && initial.S.size(1) == h &&
                    initial.S.size(2) == dk && initial.S.size(3) == dv,
                "linear_attention: initial.S must be [", b, ", ", h, ", ", dk, ", ", dv, "], got ", initial.S.sizes());
  }
  if (initial.z.defined()) {
    check_device(initial.z, dev, kOp, "initial.z");
    DYSRA_CHECK(initial.z.dim() == 3 && initial.z.size(0) == b && initial.z.size(1) == h && initial.z.size(2) == dk,
                "linear_attention: initial.z must be [", b, ", ", h, ", ", dk, "], got ", initial.z.sizes());
  }
  const auto qc = cuda_detail::last_dim_contiguous(q), kc = cuda_detail::last_dim_contiguous(k);
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(dev);

  const auto vc = cuda_detail::last_dim_contiguous(v);
  Tensor S0 = initial.S.defined() ? initial.S.to(torch::kFloat32).contiguous() : torch::empty({0}, f32);
  if (!options.normalize) {
    auto outs = LinearAttentionCoreFn::apply(qc, kc, vc, S0, options.scale, false, true);
    // z is not used without normalisation; it is still carried (z0 + Σ k, from the kernel's K tiles on the
    // tensor-core path) so a state can be handed on.
    return {outs[0], {outs[1], initial.z.defined() ? initial.z.to(torch::kFloat32) + outs[2] : outs[2]}};
  }
  // (its backward contracts over d_v too: d_v must also be 64 or 128)
  if ((dv == 64 || dv == 128) && kd::linear_attention_tensor_core_path(params_of(qc, kc, vc, false, 1.0))) {
    // (no initial z: 0 elements, which the kernel reads as zeros, instead of a zero-filled tensor)
    Tensor z0 = initial.z.defined() ? initial.z.to(torch::kFloat32).contiguous() : torch::empty({0}, f32);
    auto r = NormalizedCoreFn::apply(qc, kc, vc, S0, z0, options.eps);
    return {r[0], {r[1], r[2]}};
  }
  Tensor z0 = initial.z.defined() ? initial.z.to(torch::kFloat32) : torch::zeros({b, h, dk}, f32);
  auto outs = LinearAttentionCoreFn::apply(qc, kc, vc, S0, 1.0, true, false);
  // Other paths: the normaliser q_t·(z0 + Σ_{s<=t} k_s) by a chunked cumulative sum in fp32.
  auto z = chunked_cumsum_t(k.to(torch::kFloat32)) + z0.unsqueeze(1);  // [B, T, H, dk]: z_t
  auto den = (q.to(torch::kFloat32) * z).sum(-1, true) + options.eps;
  Tensor z_final = t > 0 ? z.select(1, t - 1) : z0;
  auto out = (outs[0] / den).to(q.scalar_type());
  return {out, {outs[1], z_final}};
}

}  // namespace dysra::ops::cuda
#endif  // DYSRA_WITH_CUDA
