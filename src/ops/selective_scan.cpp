// The Mamba-1 selective scan: validating dispatcher, the CPU implementation and the naive reference.
//
// CPU implementation. The recurrence x_t = exp(Δ_t A) ⊙ x_{t-1} + (Δ_t u_t) B_t is run as a loop over time whose
// every step is one elementwise [batch, D, N] update (no autograd graph per step): a custom autograd Function
// (ScanCore) owns the loop and its hand-written reverse-time backward. Time is processed in chunks of
// `cpu_chunk` steps: the per-step factors exp(Δ A) and (Δ u) B of a chunk are formed in one vectorised op, and
// only the states at chunk boundaries are kept for the backward pass, which recomputes a chunk's states from its
// boundary. Memory is O(batch·D·N·(L / chunk + chunk)) instead of O(batch·D·N·L). Everything around the core
// (softplus(Δ + bias), the D skip, the SiLU(z) gate) is plain autograd. Inputs in bf16/fp16/fp32 are computed in
// fp32, float64 inputs in float64.
#include "dysra/ops/selective_scan.h"
#include "dysra/ops/backend.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "dysra/core/error.h"
#include "ops/cuda_glue.h"

namespace dysra::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool is_float_type(torch::ScalarType t) {
  return t == torch::kFloat32 || t == torch::kFloat64 || t == torch::kBFloat16 || t == torch::kFloat16;
}

// Shape checks produce "selective_scan: B must be [batch, d_state, L] = [2, 16, 37], got [2, 16, 36]".
void check_shape(const torch::Tensor& t, const char* name, const char* dims, std::vector<int64_t> expected) {
  if (t.sizes() == c10::IntArrayRef(expected)) return;
  throw Error(detail::str_cat("selective_scan: ", name, " must be ", dims, " = ", c10::IntArrayRef(expected),
                              ", got ", t.sizes()));
}

void validate(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A, const torch::Tensor& B,
              const torch::Tensor& C, const torch::Tensor& D_skip, const torch::Tensor& z,
              const torch::Tensor& delta_bias, const torch::Tensor& initial_state, int64_t cpu_chunk) {
  DYSRA_CHECK(u.defined(), "selective_scan: u is undefined");
  DYSRA_CHECK(delta.defined() && A.defined() && B.defined() && C.defined(),
              "selective_scan: delta, A, B and C are required (one is undefined)");
  DYSRA_CHECK(u.dim() == 3, "selective_scan: u must be [batch, D, L], got ", u.sizes());
  DYSRA_CHECK(A.dim() == 2, "selective_scan: A must be [D, d_state], got ", A.sizes());
  const int64_t b = u.size(0), d = u.size(1), l = u.size(2), n = A.size(1);
  check_shape(delta, "delta", "[batch, D, L]", {b, d, l});
  check_shape(A, "A", "[D, d_state]", {d, n});
  check_shape(B, "B", "[batch, d_state, L]", {b, n, l});
  check_shape(C, "C", "[batch, d_state, L]", {b, n, l});
  if (D_skip.defined()) check_shape(D_skip, "D_skip", "[D]", {d});
  if (delta_bias.defined()) check_shape(delta_bias, "delta_bias", "[D]", {d});
  if (z.defined()) check_shape(z, "z", "[batch, D, L]", {b, d, l});
  if (initial_state.defined()) check_shape(initial_state, "initial_state", "[batch, D, d_state]", {b, d, n});
  DYSRA_CHECK(n >= 1, "selective_scan: d_state (A.size(1)) must be >= 1, got A ", A.sizes());
  DYSRA_CHECK(cpu_chunk >= 1, "selective_scan: options.cpu_chunk must be >= 1, got ", cpu_chunk);

  const auto dt = u.scalar_type();
  DYSRA_CHECK(is_float_type(dt), "selective_scan: u must be float32, bfloat16, float16 or float64, got ", dt);
  auto same_dtype = [&](const torch::Tensor& t, const char* name) {
    if (t.defined())
      DYSRA_CHECK(t.scalar_type() == dt, "selective_scan: ", name, " must have the dtype of u (", dt, "), got ",
                  t.scalar_type());
  };
  same_dtype(delta, "delta");
  same_dtype(B, "B");
  same_dtype(C, "C");
  same_dtype(z, "z");
  const auto param_dt = dt == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto param_dtype = [&](const torch::Tensor& t, const char* name) {
    if (t.defined())
      DYSRA_CHECK(t.scalar_type() == param_dt, "selective_scan: ", name, " must be ", param_dt,
                  " (float32, or float64 when u is float64), got ", t.scalar_type());
  };
  param_dtype(A, "A");
  param_dtype(D_skip, "D_skip");
  param_dtype(delta_bias, "delta_bias");
  param_dtype(initial_state, "initial_state");

  auto same_device = [&](const torch::Tensor& t, const char* name) {
    if (t.defined())
      DYSRA_CHECK(t.device() == u.device(), "selective_scan: ", name, " is on ", t.device(), " but u is on ",
                  u.device());
  };
  same_device(delta, "delta");
  same_device(A, "A");
  same_device(B, "B");
  same_device(C, "C");
  same_device(D_skip, "D_skip");
  same_device(z, "z");
  same_device(delta_bias, "delta_bias");
  same_device(initial_state, "initial_state");
}

// The scan core in time-major layout: dt, u: [L, b, D]; A: [D, N]; Bm, Cm: [L, b, N]; x0: [b, D, N] (all
// contiguous, one compute dtype). Returns y: [L, b, D] with y_t = Σ_n C_t[n] x_t[:, n], and x_{L-1}.
struct ScanCore : torch::autograd::Function<ScanCore> {
  // States of one chunk [T, b, D, N], starting from the state before it: x_t = dA_t ⊙ x_{t-1} + dBu_t, written
  // in place over dBu. The recurrence is an elementwise loop over contiguous memory (vectorised by the
  // compiler, parallel over the b·D·N independent channels) rather than T LibTorch calls.
  static torch::Tensor chunk_states(const torch::Tensor& dA, torch::Tensor dBu, const torch::Tensor& x_before) {
    auto a = dA.contiguous();
    auto X = dBu.contiguous();
    auto x0 = x_before.contiguous();
    const int64_t T = X.size(0), M = x0.numel();
    TORCH_INTERNAL_ASSERT(X.device().is_cpu(), "selective_scan: the CPU scan got ", X.device(), " tensors");
    AT_DISPATCH_FLOATING_TYPES(X.scalar_type(), "selective_scan_chunk_states", [&] {
      const scalar_t* pa = a.data_ptr<scalar_t>();
      const scalar_t* px0 = x0.data_ptr<scalar_t>();
      scalar_t* px = X.data_ptr<scalar_t>();
      at::parallel_for(0, M, 2048, [&](int64_t begin, int64_t end) {
        for (int64_t t = 0; t < T; ++t) {
          const scalar_t* prev = t == 0 ? px0 : px + (t - 1) * M;
          const scalar_t* at_ = pa + t * M;
          scalar_t* cur = px + t * M;
          for (int64_t m = begin; m < end; ++m) cur[m] = at_[m] * prev[m] + cur[m];
        }
      });
    });
    return X;
  }

  // Reverse pass of one chunk, in place: G_t += h; h = dA_t ⊙ G_t for t = T-1 … 0 (h: [b, D, N], updated).
  static void chunk_adjoint(const torch::Tensor& dA, torch::Tensor& G, torch::Tensor& h) {
    auto a = dA.contiguous();
    const int64_t T = G.size(0), M = h.numel();
    TORCH_INTERNAL_ASSERT(G.is_contiguous() && h.is_contiguous());
    AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), "selective_scan_chunk_adjoint", [&] {
      const scalar_t* pa = a.data_ptr<scalar_t>();
      scalar_t* pg = G.data_ptr<scalar_t>();
      scalar_t* ph = h.data_ptr<scalar_t>();
      at::parallel_for(0, M, 2048, [&](int64_t begin, int64_t end) {
        for (int64_t t = T - 1; t >= 0; --t) {
          const scalar_t* at_ = pa + t * M;
          scalar_t* g = pg + t * M;
          for (int64_t m = begin; m < end; ++m) {
            g[m] += ph[m];
            ph[m] = at_[m] * g[m];
          }
        }
      });
    });
  }

  static variable_list forward(AutogradContext* ctx, const torch::Tensor& dt, const torch::Tensor& u,
                               const torch::Tensor& A, const torch::Tensor& Bm, const torch::Tensor& Cm,
                               const torch::Tensor& x0, int64_t chunk) {
    const int64_t L = dt.size(0);
    const int64_t n_chunks = (L + chunk - 1) / chunk;
    auto y = torch::empty_like(dt);
    auto bounds = torch::empty({n_chunks, x0.size(0), x0.size(1), x0.size(2)}, x0.options());
    torch::Tensor x = x0;
    for (int64_t c = 0; c < n_chunks; ++c) {
      const int64_t t0 = c * chunk, T = std::min(chunk, L - t0);
      auto dtc = dt.narrow(0, t0, T), uc = u.narrow(0, t0, T);
      bounds.select(0, c).copy_(x);
      auto dA = torch::exp(dtc.unsqueeze(-1) * A);                               // [T, b, D, N]
      auto X = chunk_states(dA, (dtc * uc).unsqueeze(-1) * Bm.narrow(0, t0, T).unsqueeze(2), x);
      y.narrow(0, t0, T).copy_((X * Cm.narrow(0, t0, T).unsqueeze(2)).sum(-1));
      x = X.select(0, T - 1).clone();
    }
    ctx->save_for_backward({dt, u, A, Bm, Cm, bounds});
    ctx->saved_data["chunk"] = chunk;
    return {y, L > 0 ? x : x0.clone()};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &dt = saved[0], &u = saved[1], &A = saved[2], &Bm = saved[3], &Cm = saved[4], &bounds = saved[5];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const int64_t L = dt.size(0);
    const int64_t n_chunks = (L + chunk - 1) / chunk;
    auto gy = grads[0].defined() ? grads[0].contiguous() : torch::zeros_like(dt);
    // h: dL/dx_{t-1} flowing back through the recurrence (initially: the gradient of the final state).
    auto h = grads[1].defined() ? grads[1].contiguous().clone()
                                 : torch::zeros({bounds.size(1), bounds.size(2), bounds.size(3)}, bounds.options());
    if (n_chunks == 0) return {torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(),
                               h, torch::Tensor()};
    auto g_dt = torch::empty_like(dt), g_u = torch::empty_like(u);
    auto g_B = torch::empty_like(Bm), g_C = torch::empty_like(Cm);
    auto g_A = torch::zeros_like(A);
    for (int64_t c = n_chunks - 1; c >= 0; --c) {
      const int64_t t0 = c * chunk, T = std::min(chunk, L - t0);
      auto dtc = dt.narrow(0, t0, T), uc = u.narrow(0, t0, T), gyc = gy.narrow(0, t0, T);
      auto Bc = Bm.narrow(0, t0, T).unsqueeze(2), Cc = Cm.narrow(0, t0, T).unsqueeze(2);  // [T, b, 1, N]
      auto x_before = bounds.select(0, c);
      auto dA = torch::exp(dtc.unsqueeze(-1) * A);
      auto dtu = dtc * uc;
      auto X = chunk_states(dA, dtu.unsqueeze(-1) * Bc, x_before);
      // G_t = dL/dx_t = gy_t C_t + dA_{t+1} ⊙ G_{t+1}
      auto G = (gyc.unsqueeze(-1) * Cc).contiguous();
      chunk_adjoint(dA, G, h);
      auto X_prev = torch::cat({x_before.unsqueeze(0), X.narrow(0, 0, T - 1)}, 0);
      auto W = G * X_prev * dA;               // dL/d(Δ A) per element
      auto GB = (G * Bc).sum(-1);             // [T, b, D]
      g_dt.narrow(0, t0, T).copy_((W * A).sum(-1) + uc * GB);
      g_u.narrow(0, t0, T).copy_(dtc * GB);
      g_A.add_((W * dtc.unsqueeze(-1)).sum(torch::IntArrayRef{0, 1}));
      g_B.narrow(0, t0, T).copy_((G * dtu.unsqueeze(-1)).sum(2));
      g_C.narrow(0, t0, T).copy_((X * gyc.unsqueeze(-1)).sum(2));
    }
    return {g_dt, g_u, g_A, g_B, g_C, h, torch::Tensor()};
  }
};

torch::ScalarType compute_type(const torch::Tensor& u) {
  return u.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

SelectiveScanResult selective_scan_cpu(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                                       const torch::Tensor& B, const torch::Tensor& C, const torch::Tensor& D_skip,
                                       const torch::Tensor& z, const torch::Tensor& delta_bias,
                                       const torch::Tensor& initial_state, const SelectiveScanOptions& options) {
  const auto ct = compute_type(u);
  const int64_t d = u.size(1);
  auto uf = u.to(ct);
  auto dt = delta.to(ct);
  if (delta_bias.defined()) dt = dt + delta_bias.to(ct).view({1, d, 1});
  if (options.delta_softplus) dt = torch::softplus(dt);
  auto x0 = initial_state.defined() ? initial_state.to(ct).contiguous()
                                    : torch::zeros({u.size(0), d, A.size(1)}, uf.options());
  auto res = ScanCore::apply(dt.permute({2, 0, 1}).contiguous(), uf.permute({2, 0, 1}).contiguous(),
                             A.to(ct).contiguous(), B.to(ct).permute({2, 0, 1}).contiguous(),
                             C.to(ct).permute({2, 0, 1}).contiguous(), x0, options.cpu_chunk);
  auto y = res[0].permute({1, 2, 0});  // [b, D, L]
  if (D_skip.defined()) y = y + uf * D_skip.to(ct).view({1, d, 1});
  if (z.defined()) y = y * torch::silu(z.to(ct));
  return {y.to(u.scalar_type()).contiguous(), res[1]};
}

}  // namespace

SelectiveScanResult selective_scan(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                                   const torch::Tensor& B, const torch::Tensor& C, const torch::Tensor& D_skip,
                                   const torch::Tensor& z, const torch::Tensor& delta_bias,
                                   const torch::Tensor& initial_state, const SelectiveScanOptions& options) {
  validate(u, delta, A, B, C, D_skip, z, delta_bias, initial_state, options.cpu_chunk);
  if (u.is_cuda()) {
#ifdef DYSRA_WITH_CUDA
    if (use_cuda_kernels(Op::kSelectiveScan)) return cuda::selective_scan(u, delta, A, B, C, D_skip, z, delta_bias, initial_state, options);
#endif
    // LibTorch ops on the GPU: the sequential definition (the kernels' baseline)
    return selective_scan_reference(u, delta, A, B, C, D_skip, z, delta_bias, initial_state, options.delta_softplus);
  }
  DYSRA_CHECK(u.device().is_cpu(), "selective_scan: unsupported device ", u.device(), " (CPU or CUDA)");
  return selective_scan_cpu(u, delta, A, B, C, D_skip, z, delta_bias, initial_state, options);
}

SelectiveScanResult selective_scan_reference(const torch::Tensor& u, const torch::Tensor& delta,
                                             const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& C,
                                             const torch::Tensor& D_skip, const torch::Tensor& z,
                                             const torch::Tensor& delta_bias, const torch::Tensor& initial_state,
                                             bool delta_softplus) {
  validate(u, delta, A, B, C, D_skip, z, delta_bias, initial_state, 1);
  const auto ct = compute_type(u);
  const int64_t b = u.size(0), d = u.size(1), l = u.size(2), n = A.size(1);
  auto Af = A.to(ct);
  auto x = initial_state.defined() ? initial_state.to(ct) : torch::zeros({b, d, n}, u.options().dtype(ct));
  std::vector<torch::Tensor> ys;
  for (int64_t t = 0; t < l; ++t) {
    auto u_t = u.select(2, t).to(ct);  // [b, D]
    auto dt = delta.select(2, t).to(ct);
    if (delta_bias.defined()) dt = dt + delta_bias.to(ct);
    if (delta_softplus) dt = torch::softplus(dt);
    auto B_t = B.select(2, t).to(ct).unsqueeze(1), C_t = C.select(2, t).to(ct).unsqueeze(1);  // [b, 1, N]
    x = torch::exp(dt.unsqueeze(-1) * Af) * x + (dt * u_t).unsqueeze(-1) * B_t;
    auto y = (x * C_t).sum(-1);
    if (D_skip.defined()) y = y + D_skip.to(ct) * u_t;
    if (z.defined()) y = y * torch::silu(z.select(2, t).to(ct));
    ys.push_back(y);
  }
  auto out = l > 0 ? torch::stack(ys, 2) : torch::zeros({b, d, 0}, u.options().dtype(ct));
  return {out.to(u.scalar_type()), x};
}

}  // namespace dysra::ops
