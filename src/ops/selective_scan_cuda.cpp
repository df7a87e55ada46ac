// src/ops/selective_scan_cuda.cpp — LibTorch glue of the CUDA selective scan (kernels/selective_scan).
//
// Validates, casts the fp32-only parameters (A, D, delta_bias, initial_state) outside the autograd Function so
// autograd handles those casts, makes inputs contiguous, and wraps forward + backward in a
// torch::autograd::Function. The backward kernel writes per-batch / per-channel-tile partials that are summed
// here with torch reductions (fixed order, no atomics), so gradients are bit-for-bit reproducible.
#include "ops/cuda_glue.h"

#ifdef DYSRA_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <torch/torch.h>

#include "dysra/core/error.h"
#include "ops/cuda_common.h"
#include "selective_scan/selective_scan.h"

namespace dysra::ops::cuda {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
namespace kd = dysra::kernels;
constexpr const char* kOp = "selective_scan";

// Optional inputs cross the autograd Function as 0-element tensors (Function::apply rejects undefined ones).
bool present(const Tensor& t) { return t.defined() && t.numel() > 0; }
Tensor or_empty(const Tensor& t, const torch::TensorOptions& o) { return t.defined() ? t : torch::empty({0}, o); }
const void* ptr_or_null(const Tensor& t) { return present(t) ? t.data_ptr() : nullptr; }
const float* fptr_or_null(const Tensor& t) { return present(t) ? t.data_ptr<float>() : nullptr; }

void fill_params(kd::SelectiveScanParams& p, const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B,
                 const Tensor& C, const Tensor& D, const Tensor& z, const Tensor& bias, bool softplus) {
  p.dtype = cuda_detail::kernel_dtype(u, kOp, "u");
  p.batch = int(u.size(0));
  p.dim = int(u.size(1));
  p.seqlen = int(u.size(2));
  p.dstate = int(A.size(1));
  p.delta_softplus = softplus;
  p.u = u.data_ptr();
  p.delta = delta.data_ptr();
  p.z = ptr_or_null(z);
  p.A = A.data_ptr<float>();
  p.B = B.data_ptr();
  p.C = C.data_ptr();
  p.D = fptr_or_null(D);
  p.delta_bias = fptr_or_null(bias);
}

class SelectiveScanFn : public torch::autograd::Function<SelectiveScanFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& u, const Tensor& delta, const Tensor& A,
                               const Tensor& B, const Tensor& C, const Tensor& D, const Tensor& z,
                               const Tensor& bias, const Tensor& init, bool softplus) {
    c10::cuda::CUDAGuard guard(u.device());
    const int64_t b = u.size(0), d = u.size(1), L = u.size(2), n = A.size(1);
    auto out = torch::empty_like(u);
    auto last = torch::empty({b, d, n}, u.options().dtype(torch::kFloat32));
    bool needs_grad = false;
    for (const Tensor* t : {&u, &delta, &A, &B, &C, &D, &z, &bias, &init})
      needs_grad = needs_grad || (present(*t) && t->requires_grad());
    Tensor ckpt;
    if (needs_grad) ckpt = torch::empty({b, d, kd::selective_scan_n_chunks(int(L)), n}, last.options());

    kd::SelectiveScanParams p;
    fill_params(p, u, delta, A, B, C, D, z, bias, softplus);
    p.initial_state = fptr_or_null(init);
    p.out = out.data_ptr();
    p.last_state = last.data_ptr<float>();
    p.checkpoints = ckpt.defined() ? ckpt.data_ptr<float>() : nullptr;
    cuda_detail::check_launch(kd::selective_scan_fwd(p, cuda_detail::stream_of(u)), kOp, "forward");

    ctx->save_for_backward({u, delta, A, B, C, D, z, bias, ckpt});
    ctx->saved_data["softplus"] = softplus;
    ctx->saved_data["has_init"] = present(init);
    return {out, last};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    const Tensor &u = s[0], &delta = s[1], &A = s[2], &B = s[3], &C = s[4], &D = s[5], &z = s[6], &bias = s[7],
                 &ckpt = s[8];
    DYSRA_CHECK(ckpt.defined(), "selective_scan: backward called but no input required grad in the forward");
    c10::cuda::CUDAGuard guard(u.device());
    const bool softplus = ctx->saved_data["softplus"].toBool();
    const bool has_init = ctx->saved_data["has_init"].toBool();
    const int64_t b = u.size(0), d = u.size(1), L = u.size(2), n = A.size(1);
    const int64_t n_dt = kd::selective_scan_n_dtiles(int(d));

    Tensor gout = grads[0].defined() ? grads[0].to(u.scalar_type()).contiguous() : torch::zeros_like(u);
    Tensor glast = grads[1].defined() ? grads[1].to(torch::kFloat32).contiguous() : Tensor();

    auto f32 = u.options().dtype(torch::kFloat32);
    auto du = torch::empty_like(u), ddelta = torch::empty_like(u);
    Tensor dz = present(z) ? torch::empty_like(z) : Tensor();
    auto dA_part = torch::empty({b, d, n}, f32), dD_part = torch::empty({b, d}, f32),
         dbias_part = torch::empty({b, d}, f32), dinit = torch::empty({b, d, n}, f32);
    auto dB_part = torch::empty({b, n_dt, n, L}, f32), dC_part = torch::empty({b, n_dt, n, L}, f32);

    kd::SelectiveScanBwdParams p;
    fill_params(p, u, delta, A, B, C, D, z, bias, softplus);
    p.checkpoints = ckpt.data_ptr<float>();
    p.dout = gout.data_ptr();
    p.dlast_state = fptr_or_null(glast);
    p.du = du.data_ptr();
    p.ddelta = ddelta.data_ptr();
    p.dz = dz.defined() ? dz.data_ptr() : nullptr;
    p.dA_part = dA_part.data_ptr<float>();
    p.dD_part = dD_part.data_ptr<float>();
    p.dbias_part = dbias_part.data_ptr<float>();
    p.dB_part = dB_part.data_ptr<float>();
    p.dC_part = dC_part.data_ptr<float>();
    p.dinitial = dinit.data_ptr<float>();
    cuda_detail::check_launch(kd::selective_scan_bwd(p, cuda_detail::stream_of(u)), kOp, "backward");

    return {du,
            ddelta,
            dA_part.sum(0),
            dB_part.sum(1).to(B.scalar_type()),
            dC_part.sum(1).to(C.scalar_type()),
            present(D) ? dD_part.sum(0) : Tensor(),
            dz,
            present(bias) ? dbias_part.sum(0) : Tensor(),
            has_init ? dinit : Tensor(),
            Tensor()};
  }
};

}  // namespace

SelectiveScanResult selective_scan(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                                   const torch::Tensor& B, const torch::Tensor& C, const torch::Tensor& D_skip,
                                   const torch::Tensor& z, const torch::Tensor& delta_bias,
                                   const torch::Tensor& initial_state, const SelectiveScanOptions& options) {
  using cuda_detail::check_device;
  const auto dev = u.device();
  for (auto [t, name] : {std::pair{&u, "u"}, std::pair{&delta, "delta"}, std::pair{&A, "A"}, std::pair{&B, "B"},
                         std::pair{&C, "C"}})
    check_device(*t, dev, kOp, name);
  for (auto [t, name] : {std::pair{&D_skip, "D_skip"}, std::pair{&z, "z"}, std::pair{&delta_bias, "delta_bias"},
                         std::pair{&initial_state, "initial_state"}})
    if (t->defined()) check_device(*t, dev, kOp, name);
  DYSRA_CHECK(u.dim() == 3, "selective_scan: u must be [batch, D, L], got ", u.sizes());
  const int64_t b = u.size(0), d = u.size(1), L = u.size(2);
  DYSRA_CHECK(A.dim() == 2 && A.size(0) == d, "selective_scan: A must be [D, N] = [", d, ", N], got ", A.sizes());
  const int64_t n = A.size(1);
  DYSRA_CHECK(n >= 1 && n <= kd::kSelectiveScanMaxState, "selective_scan: the CUDA kernel supports N (d_state) in [1, ",
              kd::kSelectiveScanMaxState, "], got N = ", n);
  DYSRA_CHECK(delta.sizes() == u.sizes(), "selective_scan: delta must be ", u.sizes(), " (like u), got ", delta.sizes());
  DYSRA_CHECK(B.dim() == 3 && B.size(0) == b && B.size(1) == n && B.size(2) == L,
              "selective_scan: B must be [batch, N, L] = [", b, ", ", n, ", ", L, "], got ", B.sizes());
  DYSRA_CHECK(C.sizes() == B.sizes(), "selective_scan: C must be ", B.sizes(), " (like B), got ", C.sizes());
  if (z.defined()) DYSRA_CHECK(z.sizes() == u.sizes(), "selective_scan: z must be ", u.sizes(), ", got ", z.sizes());
  if (D_skip.defined())
    DYSRA_CHECK(D_skip.dim() == 1 && D_skip.size(0) == d, "selective_scan: D_skip must be [", d, "], got ",
                D_skip.sizes());
  if (delta_bias.defined())
    DYSRA_CHECK(delta_bias.dim() == 1 && delta_bias.size(0) == d, "selective_scan: delta_bias must be [", d,
                "], got ", delta_bias.sizes());
  if (initial_state.defined())
    DYSRA_CHECK(initial_state.dim() == 3 && initial_state.size(0) == b && initial_state.size(1) == d &&
                    initial_state.size(2) == n,
                "selective_scan: initial_state must be [", b, ", ", d, ", ", n, "], got ", initial_state.sizes());
  cuda_detail::kernel_dtype(u, kOp, "u");
  for (auto [t, name] : {std::pair{&delta, "delta"}, std::pair{&B, "B"}, std::pair{&C, "C"}, std::pair{&z, "z"}})
    if (t->defined())
      DYSRA_CHECK(t->scalar_type() == u.scalar_type(), "selective_scan: ", name, " must have the dtype of u (",
                  u.scalar_type(), "), got ", t->scalar_type());
  DYSRA_CHECK(b <= 65535, "selective_scan: the CUDA kernel supports batch <= 65535, got ", b);
  DYSRA_CHECK(b * d * L < (int64_t(1) << 62), "selective_scan: tensor too large");

  const auto fo = u.options().dtype(torch::kFloat32);
  auto f32 = [&](const torch::Tensor& t) { return or_empty(t.defined() ? t.to(torch::kFloat32).contiguous() : t, fo); };
  auto outs = SelectiveScanFn::apply(u.contiguous(), delta.contiguous(), f32(A), B.contiguous(), C.contiguous(),
                                     f32(D_skip), or_empty(z.defined() ? z.contiguous() : z, u.options()),
                                     f32(delta_bias), f32(initial_state), options.delta_softplus);
  return {outs[0], outs[1]};
}

}  // namespace dysra::ops::cuda
#endif  // DYSRA_WITH_CUDA
