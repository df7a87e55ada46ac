// tests/gpu/test_kernels.cpp — the CUDA kernels against the float64 CPU references (GPU only).
//
// Every case: fresh random inputs (never zeros), odd sizes, a non-contiguous input, the CUDA caching allocator
// poisoned with NaN before the run (so an output element the kernel forgets to write fails), outputs and all
// gradients (one shared random upstream gradient) compared with the float64 reference on the CPU under a
// per-dtype tolerance. A failure prints the max abs error, its index and both values.
#include <gtest/gtest.h>

#include "dysra/ops/backend.h"
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "dysra/ops/decode_attention.h"
#include "dysra/ops/gathered_attention.h"
#include "dysra/ops/linear_attention.h"
#include "dysra/ops/selective_scan.h"
#include "ops/cuda_glue.h"

namespace {

using torch::Tensor;
namespace ops = dysra::ops;

// These tests check dysra's kernels: force them for every op (the default picks per op, see backend.h).
const bool kKernelsForced = (ops::set_cuda_backend(ops::CudaBackend::kKernels), true);

bool have_cuda() { return ops::cuda::available(); }

#define REQUIRE_CUDA() \
  if (!have_cuda()) GTEST_SKIP() << "no CUDA device"

struct Tol {
  double atol, rtol;
};
Tol tol_of(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return {2e-4, 2e-4};  // observed ~1e-6 relative
    case torch::kFloat16: return {4e-3, 4e-3};  // observed <= 1e-3 relative
    default: return {1.5e-2, 1.5e-2};           // bf16, 8 mantissa bits on every stored output: observed <= 4e-3
  }
}
const char* dname(torch::ScalarType t) {
  return t == torch::kFloat32 ? "fp32" : t == torch::kFloat16 ? "fp16" : "bf16";
}

/// Fills the caching allocator's free blocks with NaN so that torch::empty() hands out poisoned memory.
void poison_allocator() {
  auto o = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat32);
  std::vector<Tensor> keep;
  for (int64_t n : {int64_t(1) << 26, int64_t(1) << 24, int64_t(1) << 22})  // large pool
    keep.push_back(torch::full({n}, NAN, o));
  for (int i = 0; i < 256; ++i) keep.push_back(torch::full({(i % 16 + 1) * 4096}, NAN, o));  // small pool
  torch::cuda::synchronize();
}

/// |actual - expected| <= atol·max(1, max|expected|) + rtol·|expected| elementwise; prints the worst element.
::testing::AssertionResult close(const Tensor& actual_in, const Tensor& expected_in, Tol tol, const std::string& what) {
  if (!actual_in.defined() || !expected_in.defined())
    return ::testing::AssertionFailure() << what << ": gradient " << (actual_in.defined() ? "missing in reference"
                                                                                            : "missing");
  auto a = actual_in.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  auto e = expected_in.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  if (a.sizes() != e.sizes())
    return ::testing::AssertionFailure() << what << ": shape " << a.sizes() << " vs reference " << e.sizes();
  auto fin = torch::isfinite(e);
  auto same_inf = (a == e) & fin.logical_not();  // e.g. lse = -inf on both
  auto err = (a - e).abs().masked_fill(same_inf, 0);
  const double scale = std::max(1.0, e.masked_fill(fin.logical_not(), 0).abs().max().item<double>());
  auto bound = tol.atol * scale + tol.rtol * e.abs().masked_fill(fin.logical_not(), 0);
  auto bad = (err > bound) | torch::isnan(err);
  const double max_err = torch::nan_to_num(err, 1e300).max().item<double>();
  const int64_t n_bad = bad.sum().item<int64_t>();
  std::ostringstream msg;
  const int64_t at = torch::nan_to_num(err, 1e300).flatten().argmax().item<int64_t>();
  std::vector<int64_t> idx(a.dim());
  for (int64_t r = at, dd = a.dim() - 1; dd >= 0; --dd) {
    idx[dd] = r % a.size(dd);
    r /= a.size(dd);
  }
  msg << what << ": max abs error " << max_err << " at [";
  for (size_t i = 0; i < idx.size(); ++i) msg << (i ? "," : "") << idx[i];
  msg << "] (got " << a.flatten()[at].item<double>() << ", want " << e.flatten()[at].item<double>() << "), "
      << n_bad << " of " << a.numel() << " elements outside atol " << tol.atol << "·" << scale << " + rtol "
      << tol.rtol;
  std::printf("  %s\n", msg.str().c_str());
  return n_bad == 0 ? ::testing::AssertionSuccess() : ::testing::AssertionFailure() << msg.str();
}

Tensor cuda_leaf(const Tensor& cpu64, torch::ScalarType t) {
  return cpu64.to(torch::kCUDA, t).detach().requires_grad_(true);
}
Tensor ref_leaf(const Tensor& cuda_t) { return cuda_t.detach().to(torch::kCPU, torch::kFloat64).requires_grad_(true); }
Tensor grad_of(const Tensor& t) { return t.grad(); }

// ------------------------------------------------------------------------------------------ selective scan
struct ScanCase {
  torch::ScalarType dtype;
  int64_t b, d, L, n;
  bool z, D, bias, init, softplus, noncontig;
};

void run_scan_case(const ScanCase& c) {
  SCOPED_TRACE(::testing::Message() << dname(c.dtype) << " b" << c.b << " d" << c.d << " L" << c.L << " n" << c.n
                                    << " z" << c.z << " D" << c.D << " bias" << c.bias << " init" << c.init
                                    << " softplus" << c.softplus << " noncontig" << c.noncontig);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // u as a transposed view when noncontig (mamba's usual [B, L, D] → [B, D, L])
  Tensor u = c.noncontig ? cuda_leaf(torch::randn({c.b, c.L, c.d}, f64), c.dtype)
                         : cuda_leaf(torch::randn({c.b, c.d, c.L}, f64), c.dtype);
  Tensor u_in = c.noncontig ? u.transpose(1, 2) : u;
  Tensor delta = cuda_leaf(torch::rand({c.b, c.d, c.L}, f64) * 2 - 1.5, c.dtype);  // softplus → ~0.1..0.7
  if (!c.softplus) delta = cuda_leaf(torch::rand({c.b, c.d, c.L}, f64) * 0.5 + 0.05, c.dtype);
  Tensor A = cuda_leaf(-(torch::rand({c.d, c.n}, f64) * 3 + 0.2), torch::kFloat32);
  Tensor B = cuda_leaf(torch::randn({c.b, c.n, c.L}, f64), c.dtype);
  Tensor C = cuda_leaf(torch::randn({c.b, c.n, c.L}, f64), c.dtype);
  Tensor D = c.D ? cuda_leaf(torch::randn({c.d}, f64), torch::kFloat32) : Tensor();
  Tensor z = c.z ? cuda_leaf(torch::randn({c.b, c.d, c.L}, f64), c.dtype) : Tensor();
  Tensor bias = c.bias ? cuda_leaf(torch::randn({c.d}, f64) * 0.5, torch::kFloat32) : Tensor();
  Tensor init = c.init ? cuda_leaf(torch::randn({c.b, c.d, c.n}, f64), torch::kFloat32) : Tensor();
  ops::SelectiveScanOptions opt;
  opt.delta_softplus = c.softplus;

  poison_allocator();
  auto res = ops::selective_scan(u_in, delta, A, B, C, D, z, bias, init, opt);
  auto g_out = torch::randn({c.b, c.d, c.L}, f64);
  auto g_last = torch::randn({c.b, c.d, c.n}, f64);
  poison_allocator();
  torch::autograd::backward({res.out, res.last_state},
                            {g_out.to(torch::kCUDA, c.dtype), g_last.to(torch::kCUDA, torch::kFloat32)});

  auto ru = ref_leaf(u_in), rdelta = ref_leaf(delta), rA = ref_leaf(A), rB = ref_leaf(B), rC = ref_leaf(C);
  Tensor rD = c.D ? ref_leaf(D) : Tensor(), rz = c.z ? ref_leaf(z) : Tensor(), rbias = c.bias ? ref_leaf(bias) : Tensor(),
         rinit = c.init ? ref_leaf(init) : Tensor();
  auto ref = ops::selective_scan_reference(ru, rdelta, rA, rB, rC, rD, rz, rbias, rinit, c.softplus);
  torch::autograd::backward({ref.out, ref.last_state}, {g_out, g_last});

  const Tol t = tol_of(c.dtype);
  EXPECT_TRUE(close(res.out, ref.out, t, "out"));
  EXPECT_TRUE(close(res.last_state, ref.last_state, t, "last_state"));
  EXPECT_TRUE(close(grad_of(u), c.noncontig ? ru.grad().transpose(1, 2) : ru.grad(), t, "du"));
  EXPECT_TRUE(close(grad_of(delta), rdelta.grad(), t, "ddelta"));
  EXPECT_TRUE(close(grad_of(A), rA.grad(), t, "dA"));
  EXPECT_TRUE(close(grad_of(B), rB.grad(), t, "dB"));
  EXPECT_TRUE(close(grad_of(C), rC.grad(), t, "dC"));
  if (c.D) {
    EXPECT_TRUE(close(grad_of(D), rD.grad(), t, "dD"));
  }
  if (c.z) {
    EXPECT_TRUE(close(grad_of(z), rz.grad(), t, "dz"));
  }
  if (c.bias) {
    EXPECT_TRUE(close(grad_of(bias), rbias.grad(), t, "ddelta_bias"));
  }
  if (c.init) {
    EXPECT_TRUE(close(grad_of(init), rinit.grad(), t, "dinitial_state"));
  }
}

TEST(SelectiveScanCuda, AllFeaturesEachDtype) {
  REQUIRE_CUDA();
  for (auto dt : {torch::kFloat32, torch::kBFloat16, torch::kFloat16})
    run_scan_case({dt, 2, 37, 131, 16, true, true, true, true, true, true});
}
TEST(SelectiveScanCuda, OddStateNoOptions) {
  REQUIRE_CUDA();
  run_scan_case({torch::kFloat32, 3, 5, 77, 5, false, false, false, false, true, false});
  run_scan_case({torch::kFloat32, 1, 33, 1, 3, true, false, true, false, false, false});
}
TEST(SelectiveScanCuda, LargeState) {
  REQUIRE_CUDA();
  run_scan_case({torch::kFloat32, 2, 40, 150, 32, true, true, false, true, true, false});
  run_scan_case({torch::kBFloat16, 1, 64, 64, 24, false, true, true, false, true, true});
}
TEST(SelectiveScanCuda, LongSequence) {
  REQUIRE_CUDA();
  run_scan_case({torch::kFloat32, 1, 64, 1000, 16, true, true, true, true, true, false});
}
// L a multiple of 8 (16-byte rows: the cp.async path) but not of the 64-step tile, D not a multiple of the block's
// channels, N = 16 / 8 / 12 (full, K = 8 and padded states), each dtype.
TEST(SelectiveScanCuda, AlignedPathOddSizes) {
  REQUIRE_CUDA();
  for (auto dt : {torch::kBFloat16, torch::kFloat16, torch::kFloat32})
    run_scan_case({dt, 2, 70, 200, 16, true, true, true, true, true, false});
  run_scan_case({torch::kBFloat16, 3, 33, 136, 8, false, true, true, false, true, false});
  run_scan_case({torch::kFloat16, 1, 130, 72, 12, true, false, false, true, false, false});
}
TEST(SelectiveScanCuda, BackwardIsDeterministic) {
  REQUIRE_CUDA();
  auto o = torch::TensorOptions().device(torch::kCUDA);
  const int64_t b = 2, d = 96, L = 300, n = 16;
  auto u = torch::randn({b, d, L}, o).requires_grad_(), delta = torch::randn({b, d, L}, o).requires_grad_();
  auto A = (-torch::rand({d, n}, o) - 0.5).requires_grad_();
  auto B = torch::randn({b, n, L}, o).requires_grad_(), C = torch::randn({b, n, L}, o).requires_grad_();
  auto g = torch::randn({b, d, L}, o);
  std::vector<Tensor> first;
  for (int rep = 0; rep < 2; ++rep) {
    for (auto* t : {&u, &delta, &A, &B, &C}) t->mutable_grad() = Tensor();
    auto r = ops::selective_scan(u, delta, A, B, C);
    r.out.backward(g);
    std::vector<Tensor> gs{u.grad().clone(), delta.grad().clone(), A.grad().clone(), B.grad().clone(),
                           C.grad().clone()};
    if (rep == 0) first = gs;
    else
      for (size_t i = 0; i < gs.size(); ++i) EXPECT_TRUE(torch::equal(gs[i], first[i])) << "gradient " << i;
  }
}

// ---------------------------------------------------------------------------------------- linear attention
struct LinCase {
  torch::ScalarType dtype;
  int64_t b, t, h, dk, dv;
  bool normalize, init, noncontig;
  bool only_out = false;  // only the output gets a gradient (the final state and z none: their gradient passes skipped)
};

void run_lin_case(const LinCase& c) {
  SCOPED_TRACE(::testing::Message() << dname(c.dtype) << " b" << c.b << " T" << c.t << " h" << c.h << " dk" << c.dk
                                    << " dv" << c.dv << " normalize" << c.normalize << " init" << c.init
                                    << " noncontig" << c.noncontig);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // positive features (as after the feature map) so the normaliser stays away from 0
  auto feat = [&](std::vector<int64_t> s) { return torch::rand(s, f64) * 0.9 + 0.1; };
  Tensor qk_packed = cuda_leaf(c.normalize ? feat({c.b, c.t, c.h, 2 * c.dk}) : torch::randn({c.b, c.t, c.h, 2 * c.dk}, f64),
                               c.dtype);
  Tensor q = c.noncontig ? qk_packed.narrow(-1, 0, c.dk) : cuda_leaf(qk_packed.narrow(-1, 0, c.dk).contiguous(), c.dtype);
  Tensor k = c.noncontig ? qk_packed.narrow(-1, c.dk, c.dk)
                         : cuda_leaf(qk_packed.narrow(-1, c.dk, c.dk).contiguous(), c.dtype);
  Tensor leaf_qk = c.noncontig ? qk_packed : Tensor();
  Tensor v = cuda_leaf(torch::randn({c.b, c.t, c.h, c.dv}, f64), c.dtype);
  ops::LinearAttentionState init;
  if (c.init) {
    init.S = cuda_leaf(torch::randn({c.b, c.h, c.dk, c.dv}, f64) * 0.5, torch::kFloat32);
    init.z = cuda_leaf(feat({c.b, c.h, c.dk}), torch::kFloat32);
  }
  ops::LinearAttentionOptions opt;
  opt.normalize = c.normalize;
  opt.scale = c.normalize ? 1.0 : 0.25;

  poison_allocator();
  auto res = ops::linear_attention(q, k, v, init, opt);
  auto g_out = torch::randn({c.b, c.t, c.h, c.dv}, f64);
  auto g_S = torch::randn({c.b, c.h, c.dk, c.dv}, f64);
  auto g_z = torch::randn({c.b, c.h, c.dk}, f64);
  poison_allocator();
  // z = z0 + Σ k is carried in both modes (unnormalised: from the kernel's K tiles on the tensor-core path)
  std::vector<Tensor> outs{res.out, res.state.S, res.state.z},
      gs{g_out.to(torch::kCUDA, c.dtype), g_S.to(torch::kCUDA).to(torch::kFloat32), g_z.to(torch::kCUDA).to(torch::kFloat32)};
  if (c.only_out) {
    outs.resize(1);
    gs.resize(1);
  }
  torch::autograd::backward(outs, gs);

  auto rq = ref_leaf(q), rk = ref_leaf(k), rv = ref_leaf(v);
  ops::LinearAttentionState rinit;
  if (c.init) {
    rinit.S = ref_leaf(init.S);
    rinit.z = ref_leaf(init.z);
  }
  auto ref = ops::linear_attention_reference(rq, rk, rv, rinit, opt);
  std::vector<Tensor> routs{ref.out, ref.state.S, ref.state.z}, rgs{g_out, g_S, g_z};
  if (c.only_out) {
    routs.resize(1);
    rgs.resize(1);
  }
  torch::autograd::backward(routs, rgs);

  const Tol t = tol_of(c.dtype);
  EXPECT_TRUE(close(res.out, ref.out, t, "out"));
  EXPECT_TRUE(close(res.state.S, ref.state.S, t, "S"));
  EXPECT_TRUE(close(res.state.z, ref.state.z, t, "z"));
  if (c.noncontig) {
    auto gqk = leaf_qk.grad();
    EXPECT_TRUE(close(gqk.narrow(-1, 0, c.dk), rq.grad(), t, "dq"));
    EXPECT_TRUE(close(gqk.narrow(-1, c.dk, c.dk), rk.grad(), t, "dk"));
  } else {
    EXPECT_TRUE(close(q.grad(), rq.grad(), t, "dq"));
    EXPECT_TRUE(close(k.grad(), rk.grad(), t, "dk"));
  }
  EXPECT_TRUE(close(v.grad(), rv.grad(), t, "dv"));
  if (c.init) {
    EXPECT_TRUE(close(init.S.grad(), rinit.S.grad(), t, "dS0"));
    EXPECT_TRUE(close(init.z.grad(), rinit.z.grad(), t, "dz0"));
  }
}

TEST(LinearAttentionCuda, NormalizedEachDtype) {
  REQUIRE_CUDA();
  for (auto dt : {torch::kFloat32, torch::kBFloat16, torch::kFloat16})
    run_lin_case({dt, 2, 150, 3, 16, 24, true, true, true});
}
TEST(LinearAttentionCuda, Unnormalized) {
  REQUIRE_CUDA();
  run_lin_case({torch::kFloat32, 1, 64, 2, 32, 40, false, false, false});
  run_lin_case({torch::kFloat32, 2, 131, 3, 20, 33, false, true, true});
  run_lin_case({torch::kBFloat16, 1, 200, 2, 64, 64, false, true, false});
  // only the output's gradient (as in training): the backward without the state's and z's gradient terms
  run_lin_case({torch::kBFloat16, 2, 333, 3, 128, 128, false, false, true, true});
  run_lin_case({torch::kFloat32, 1, 131, 2, 32, 40, false, false, false, true});
}
// bf16 with d_k in {64, 128}, d_v % 8 == 0 and aligned rows: the tensor-core (mma.sync) path of the kernel, in the
// forward and in all three backward core calls. Odd T (partial last chunk), T < one chunk, a partial 64-column v
// tile (d_v = 72), strided q/k, an initial state, both modes.
TEST(LinearAttentionCuda, TensorCorePathBf16) {
  REQUIRE_CUDA();
  run_lin_case({torch::kBFloat16, 2, 333, 3, 128, 128, false, true, true});
  run_lin_case({torch::kBFloat16, 1, 200, 2, 64, 72, true, true, false});
  run_lin_case({torch::kBFloat16, 2, 37, 1, 128, 64, true, false, true});
  run_lin_case({torch::kBFloat16, 1, 256, 2, 64, 136, false, false, false});
  // long enough for the sequence to be cut into segments (few heads: 3 or 4 segments of unequal length)
  run_lin_case({torch::kBFloat16, 1, 1100, 2, 128, 64, false, true, false});
  run_lin_case({torch::kBFloat16, 2, 777, 1, 64, 128, true, true, true});
  // normalised with d_k, d_v in {64, 128}: the normaliser from the kernel's rank-1 augmentations (forward and all
  // gradients, dz0 included), with segments
  run_lin_case({torch::kBFloat16, 1, 1100, 2, 128, 128, true, true, false});
  run_lin_case({torch::kBFloat16, 2, 900, 2, 128, 64, true, true, true});  // σ over d_v 64 of a 128-column block
  // calls with d_k 128 take their segment sums (and the augmentations' σ, ζ) from the warpgroup sum kernel; the
  // mma.sync one again
  ::setenv("DYSRA_LINEAR_ATTENTION_WGMMA_SUMS", "0", 1);
  run_lin_case({torch::kBFloat16, 1, 1100, 2, 128, 64, false, true, false});
  run_lin_case({torch::kBFloat16, 2, 777, 1, 128, 136, false, true, true});
  run_lin_case({torch::kBFloat16, 1, 1100, 2, 128, 128, true, true, false});
  ::unsetenv("DYSRA_LINEAR_ATTENTION_WGMMA_SUMS");
}
// The warpgroup (wgmma) core (DYSRA_LINEAR_ATTENTION_WGMMA=1 / 2, the default from T = 8192 on: bf16, core calls with
// d_k 128, unnormalised: the forward, and the backward's calls whose first operand has 128 columns, reverse walks and
// reused transposed segment sums included; TMA loads and stores): odd T, a partial v tile (d_v 72, 136), a second
// warpgroup wholly past d_v (192), T < one chunk, an initial state, strided q/k, segments, a normalised call with d_v 72
// (its core call writes fp32 output); then the default choice.
TEST(LinearAttentionCuda, WgmmaCore) {
  REQUIRE_CUDA();
  for (const char* mode : {"1", "2"}) {  // one / two warpgroups per block
    SCOPED_TRACE(std::string("DYSRA_LINEAR_ATTENTION_WGMMA=") + mode);
    ::setenv("DYSRA_LINEAR_ATTENTION_WGMMA", mode, 1);
    run_lin_case({torch::kBFloat16, 2, 333, 3, 128, 128, false, true, true});
    run_lin_case({torch::kBFloat16, 1, 200, 2, 128, 72, false, false, false});
    run_lin_case({torch::kBFloat16, 2, 37, 1, 128, 64, false, true, false});
    run_lin_case({torch::kBFloat16, 1, 1100, 2, 128, 64, false, true, false});
    run_lin_case({torch::kBFloat16, 1, 2500, 1, 128, 136, false, false, true});
    run_lin_case({torch::kBFloat16, 1, 4100, 2, 128, 192, false, true, false});
    // normalised with d_v 72: the core call writes fp32 output (the kernel's direct store path, not the TMA store)
    run_lin_case({torch::kBFloat16, 1, 300, 2, 128, 72, true, true, false});
  }
  ::unsetenv("DYSRA_LINEAR_ATTENTION_WGMMA");
  run_lin_case({torch::kBFloat16, 1, 8250, 1, 128, 128, false, true, true});
}
// the normalised op on the tensor-core path (one augmented launch forward, three backward) with and without an initial
// state, with the states' gradients and without them (only_out: the backward gets no gradient for them at all)
// (each with the backward's first core calls reusing the sums of the one before, as long sequences do, and without)
TEST(LinearAttentionCuda, NormalizedTensorCore) {
  REQUIRE_CUDA();
  for (const char* reuse : {"1", "0"}) {
    SCOPED_TRACE(std::string("DYSRA_LINEAR_ATTENTION_REUSE_SUMS=") + reuse);
    ::setenv("DYSRA_LINEAR_ATTENTION_REUSE_SUMS", reuse, 1);
    // (T >= 512: several segments, so there are sums to reuse)
    run_lin_case({torch::kBFloat16, 2, 1100, 3, 128, 128, true, false, false, true});
    run_lin_case({torch::kBFloat16, 1, 900, 2, 128, 128, true, true, true, true});
    run_lin_case({torch::kBFloat16, 2, 600, 2, 64, 64, true, false, true});
    run_lin_case({torch::kBFloat16, 1, 530, 2, 128, 64, true, true, false});
    run_lin_case({torch::kBFloat16, 2, 1100, 3, 128, 128, false, true, false});
  }
  ::unsetenv("DYSRA_LINEAR_ATTENTION_REUSE_SUMS");
}
TEST(LinearAttentionCuda, HeadDim128) {
  REQUIRE_CUDA();
  run_lin_case({torch::kFloat32, 1, 190, 2, 128, 128, true, false, false});
  run_lin_case({torch::kFloat32, 1, 70, 1, 128, 128, false, true, false});
}

// -------------------------------------------------------------------------------------- gathered attention
struct GatherCase {
  torch::ScalarType dtype;
  int64_t b, tq, h, hkv, n, d, k, block_q;
  bool causal;
  int64_t offset;
  bool noncontig;
  bool padded = true;  // ~1/9 of the list entries are padding (-1); false: none (whole tiles take unmasked softmax)
  bool out_of_range = false;  // ~1/8 of the entries >= N, unchecked (check_indices off): must act as padding
  bool idx32 = false;         // int32 indices (int64 otherwise: the kernels read both in place)
  bool growing = false;       // key rows scaled by 1 + 6 n / N and lists sorted: each row's max climbs tile by tile
};

void run_gather_case(const GatherCase& c) {
  SCOPED_TRACE(::testing::Message() << dname(c.dtype) << " b" << c.b << " Tq" << c.tq << " h" << c.h << " hkv"
                                    << c.hkv << " N" << c.n << " D" << c.d << " K" << c.k << " block_q" << c.block_q
                                    << " causal" << c.causal << " offset" << c.offset << " noncontig" << c.noncontig
                                    << " padded" << c.padded << " out_of_range" << c.out_of_range
                                    << " idx32" << c.idx32 << " growing" << c.growing);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // strided q: a view into wider rows (at an offset of 8 elements, so 16-byte aligned rows stay aligned)
  Tensor qbig = cuda_leaf(torch::randn({c.b, c.tq, c.h, c.d + 16}, f64), c.dtype);
  Tensor q = c.noncontig ? qbig.narrow(-1, 8, c.d) : cuda_leaf(torch::randn({c.b, c.tq, c.h, c.d}, f64), c.dtype);
  Tensor kv_packed = cuda_leaf(torch::randn({c.b, c.n, c.hkv, 2, c.d}, f64), c.dtype);
  Tensor k64 = torch::randn({c.b, c.n, c.hkv, c.d}, f64);
  if (c.growing) k64 *= (1 + 6 * torch::arange(c.n, f64) / c.n).view({1, c.n, 1, 1});
  Tensor k = c.noncontig ? kv_packed.select(3, 0) : cuda_leaf(k64, c.dtype);
  Tensor v = c.noncontig ? kv_packed.select(3, 1) : cuda_leaf(torch::randn({c.b, c.n, c.hkv, c.d}, f64), c.dtype);
  const int64_t nb = (c.tq + c.block_q - 1) / c.block_q;
  auto idx = torch::randint(c.padded ? -c.n / 8 : 0, c.n, {c.b, c.hkv, nb, c.k}, torch::kInt64);  // may repeat
  idx = idx.clamp_min(-1);
  if (c.growing) idx = std::get<0>(idx.sort(-1));
  Tensor ref_idx = idx;
  if (c.out_of_range) {  // entries N .. 2^31 - 1, which the kernels must ignore (as the reference ignores -1)
    auto bad = torch::rand(idx.sizes()) < 0.125;
    auto big = torch::randint(c.n, int64_t(1) << 31, idx.sizes(), torch::kInt64);
    idx = torch::where(bad, big, idx);
    ref_idx = torch::where(bad, torch::full({}, int64_t(-1)), idx);
  }
  idx = idx.to(torch::kCUDA, c.idx32 ? torch::kInt32 : torch::kInt64);
  ops::GatheredAttentionOptions opt;
  opt.block_q = c.block_q;
  opt.causal = c.causal;
  opt.causal_offset = c.offset;
  opt.check_indices = !c.out_of_range;

  poison_allocator();
  auto res = ops::gathered_attention(q, k, v, idx, opt);
  auto g_out = torch::randn({c.b, c.tq, c.h, c.d}, f64);
  poison_allocator();
  res.out.backward(g_out.to(torch::kCUDA, c.dtype));

  auto rq = ref_leaf(q), rk = ref_leaf(k), rv = ref_leaf(v);
  auto ref = ops::gathered_attention_reference(rq, rk, rv, ref_idx, opt);
  ref.out.backward(g_out);

  const Tol t = tol_of(c.dtype);
  EXPECT_TRUE(close(res.out, ref.out, t, "out"));
  EXPECT_TRUE(close(res.lse, ref.lse, t, "lse"));
  if (c.noncontig) {
    EXPECT_TRUE(close(qbig.grad().narrow(-1, 8, c.d), rq.grad(), t, "dq"));
    EXPECT_TRUE(close(kv_packed.grad().select(3, 0), rk.grad(), t, "dk"));
    EXPECT_TRUE(close(kv_packed.grad().select(3, 1), rv.grad(), t, "dv"));
  } else {
    EXPECT_TRUE(close(q.grad(), rq.grad(), t, "dq"));
    EXPECT_TRUE(close(k.grad(), rk.grad(), t, "dk"));
    EXPECT_TRUE(close(v.grad(), rv.grad(), t, "dv"));
  }
}

TEST(GatheredAttentionCuda, EachDtype) {
  REQUIRE_CUDA();
  for (auto dt : {torch::kFloat32, torch::kBFloat16, torch::kFloat16})
    run_gather_case({dt, 2, 70, 4, 2, 300, 64, 45, 32, false, 0, false});
}
TEST(GatheredAttentionCuda, CausalGqaOddSizes) {
  REQUIRE_CUDA();
  // offset 0 with memory positions up to 299: early queries see few keys, some none (lse = -inf, out = 0)
  run_gather_case({torch::kFloat32, 1, 93, 6, 2, 300, 36, 70, 16, true, 0, true});
  run_gather_case({torch::kFloat32, 2, 33, 2, 1, 129, 128, 100, 1000, true, 60, false});
  run_gather_case({torch::kBFloat16, 1, 64, 8, 8, 500, 50, 33, 64, true, 200, true});
}
// bf16/fp16 with D in {64, 128} and aligned rows: the tensor-core forward and backward. Partial key tiles, padding
// and repeated indices, GQA with query blocks that straddle the 64-row blocks, causal masks that hide every key of
// early rows.
TEST(GatheredAttentionCuda, TensorCorePath) {
  REQUIRE_CUDA();
  // D 128 runs the warp-specialised warpgroup (wgmma) forward by default ("3", overlapped, 128-key tiles for two
  // consumers); every case runs in each variant of it (key tiles of 64 and of 128, plain and overlapped), in the
  // wgmma forward without a producer ("1", and "2" with the intra-warpgroup overlap) and with wgmma off ("0")
  // (ws_pair "1": lists of at most 64 rows, an even number of them, run two per block)
  struct Mode {
    const char *wgmma, *ws_keys, *ws_overlap, *ws_pair;
  };
  const Mode modes[] = {{"1", "64", "0", "0"},  {"2", "64", "0", "0"},  {"3", "64", "0", "0"},
                        {"3", "128", "0", "0"}, {"3", "64", "1", "0"},  {"3", "128", "1", "0"},
                        {"3", "128", "1", "1"}, {"3", "64", "0", "1"},  {"0", "64", "0", "0"}};
  for (const Mode& m : modes) {
    SCOPED_TRACE(::testing::Message() << "DYSRA_GATHERED_ATTENTION_WGMMA=" << m.wgmma
                                      << " DYSRA_GATHERED_ATTENTION_WS_KEYS=" << m.ws_keys
                                      << " DYSRA_GATHERED_ATTENTION_WS_OVERLAP=" << m.ws_overlap
                                      << " DYSRA_GATHERED_ATTENTION_WS_PAIR=" << m.ws_pair);
    ::setenv("DYSRA_GATHERED_ATTENTION_WGMMA", m.wgmma, 1);
    ::setenv("DYSRA_GATHERED_ATTENTION_WS_KEYS", m.ws_keys, 1);
    ::setenv("DYSRA_GATHERED_ATTENTION_WS_OVERLAP", m.ws_overlap, 1);
    ::setenv("DYSRA_GATHERED_ATTENTION_WS_PAIR", m.ws_pair, 1);
    run_gather_case({torch::kBFloat16, 1, 200, 4, 2, 700, 128, 150, 48, true, 100, true});
    run_gather_case({torch::kFloat16, 2, 77, 3, 1, 400, 64, 64, 1000, true, 0, false});
    run_gather_case({torch::kBFloat16, 1, 130, 2, 2, 5000, 128, 300, 64, false, 0, true});
    run_gather_case({torch::kFloat16, 2, 90, 2, 2, 500, 128, 100, 32, true, 10, false});
    // lists shared by >= 128 rows: the wide (128-row) forward; two warpgroups per block on the wgmma path
    run_gather_case({torch::kBFloat16, 1, 300, 4, 2, 1000, 128, 150, 300, true, 100, true});
    run_gather_case({torch::kFloat16, 1, 129, 1, 1, 700, 128, 70, 1000, false, 0, false});
    // no padding: whole key tiles of non-causal lists skip the mask (warp-specialised forward), the last one is partial
    run_gather_case({torch::kBFloat16, 1, 200, 4, 2, 700, 128, 300, 48, false, 0, false, false});
    run_gather_case({torch::kFloat16, 1, 300, 4, 2, 1000, 128, 200, 300, false, 0, true, false});
    // long lists: the stage rings of the warp-specialised forward wrap several times (16 and 15 key tiles of 64)
    run_gather_case({torch::kBFloat16, 1, 256, 2, 1, 5000, 128, 1000, 256, false, 0, false, false});
    run_gather_case({torch::kFloat16, 1, 64, 2, 2, 4000, 128, 900, 64, true, 3000, false});
    // 64-row lists, an even number of them, unpadded: paired lists (WS_PAIR) take the unmasked softmax
    run_gather_case({torch::kBFloat16, 1, 256, 2, 2, 3000, 128, 500, 64, false, 0, false, false});
  }
  ::unsetenv("DYSRA_GATHERED_ATTENTION_WGMMA");
  ::unsetenv("DYSRA_GATHERED_ATTENTION_WS_KEYS");
  ::unsetenv("DYSRA_GATHERED_ATTENTION_WS_OVERLAP");
  ::unsetenv("DYSRA_GATHERED_ATTENTION_WS_PAIR");
}
// The tensor-core backward's two dk/dv schemes on the same cases: lists shared by >= 128 rows take the key-major
// kernel (a block owns 64 keys and walks every row of the list) plus the row-major one for dq only; shorter lists the
// row-major kernel alone. DYSRA_GATHERED_ATTENTION_BWD_KEYS=1 forces key-major on every list (here also 48- and
// 64-row lists, many per head), =0 row-major on every list: causal, padding, GQA, partial tiles, both index widths.
TEST(GatheredAttentionCuda, BackwardKeyMajor) {
  REQUIRE_CUDA();
  for (const char* keys : {"1", "0"}) {
    SCOPED_TRACE(std::string("DYSRA_GATHERED_ATTENTION_BWD_KEYS=") + keys);
    ::setenv("DYSRA_GATHERED_ATTENTION_BWD_KEYS", keys, 1);
    run_gather_case({torch::kBFloat16, 1, 200, 4, 2, 700, 128, 150, 48, true, 100, true});
    run_gather_case({torch::kFloat16, 2, 77, 3, 1, 400, 64, 64, 1000, true, 0, false});
    run_gather_case({torch::kBFloat16, 1, 300, 4, 2, 1000, 128, 150, 300, true, 100, true, true, false, true});
    run_gather_case({torch::kFloat16, 1, 129, 1, 1, 700, 128, 70, 1000, false, 0, false});
    run_gather_case({torch::kBFloat16, 1, 256, 2, 1, 5000, 128, 1000, 256, false, 0, false, false});
    run_gather_case({torch::kFloat16, 1, 64, 2, 2, 4000, 128, 900, 64, true, 3000, false});
    ::unsetenv("DYSRA_GATHERED_ATTENTION_BWD_KEYS");
  }
}
// The warp-specialised forward's lazy running max (a row's max moves only when a tile's max exceeds it by more than
// the slack, 8 by default in base 2; otherwise P may reach 2^slack and the rows skip the rescale): keys whose scale
// grows along the sorted lists make each row's max climb by more than the slack several times. Slack 0 (the exact max,
// rescaled only when it moves) and 15 (the largest: P up to 2^15 still fits fp16) too.
TEST(GatheredAttentionCuda, LazyMaxRescale) {
  REQUIRE_CUDA();
  for (const char* slack : {"", "0", "15"}) {
    SCOPED_TRACE(std::string("DYSRA_GATHERED_ATTENTION_WS_MAX_SLACK=") + slack);
    if (*slack) ::setenv("DYSRA_GATHERED_ATTENTION_WS_MAX_SLACK", slack, 1);
    // 64-row lists (one consumer, 64-key tiles) and 128-row lists (two consumers, 128-key tiles), GQA
    run_gather_case({torch::kBFloat16, 1, 256, 4, 2, 3000, 128, 700, 64, false, 0, false, false, false, false, true});
    run_gather_case({torch::kBFloat16, 1, 256, 4, 2, 3000, 128, 700, 128, false, 0, true, true, false, false, true});
    run_gather_case({torch::kFloat16, 1, 200, 4, 4, 2000, 128, 500, 100, true, 1800, false, true, false, false, true});
    ::unsetenv("DYSRA_GATHERED_ATTENTION_WS_MAX_SLACK");
  }
}
// check_indices (default): an entry >= N is an error naming it; off: such entries are ignored like padding on every
// kernel path (fp32 CUDA-core, mma.sync D 64, warp-specialised wgmma D 128 with 64- and 128-row lists), with int64
// and int32 indices
TEST(GatheredAttentionCuda, IndicesOutOfRange) {
  REQUIRE_CUDA();
  auto q = torch::randn({1, 8, 2, 64}, torch::kCUDA), k = torch::randn({1, 50, 2, 64}, torch::kCUDA);
  auto idx = torch::randint(0, 50, {1, 2, 1, 10}, torch::TensorOptions().dtype(torch::kInt64).device(torch::kCUDA));
  idx.index_put_({0, 1, 0, 3}, 50);
  ops::GatheredAttentionOptions opt;
  opt.block_q = 8;
  try {
    ops::gathered_attention(q, k, k, idx, opt);
    ADD_FAILURE() << "an index equal to N passed the check";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("indices must be < N = 50"), std::string::npos) << e.what();
  }
  for (bool idx32 : {false, true}) {  // the kernels read int64 indices in place (their low words) and int32 ones
    run_gather_case({torch::kFloat32, 1, 40, 4, 2, 300, 36, 70, 16, true, 280, true, true, true, idx32});
    run_gather_case({torch::kFloat16, 2, 77, 3, 1, 400, 64, 64, 1000, true, 0, false, true, true, idx32});
    run_gather_case({torch::kBFloat16, 1, 200, 4, 2, 700, 128, 150, 48, true, 100, true, true, true, idx32});
    run_gather_case({torch::kBFloat16, 1, 300, 4, 2, 1000, 128, 300, 300, false, 0, false, false, true, idx32});
  }
  // the LibTorch-op path on the GPU (DYSRA_CUDA_BACKEND=torch) masks them too
  ops::set_cuda_backend(ops::CudaBackend::kTorchOps);
  run_gather_case({torch::kFloat32, 1, 40, 4, 2, 300, 36, 70, 16, true, 280, true, true, true});
  ops::set_cuda_backend(ops::CudaBackend::kKernels);
}
TEST(GatheredAttentionCuda, BackwardSpread) {
  // dk/dv use float atomics: report (and bound) the run-to-run spread, on the fp32 path and on the bf16 tensor-core
  // path (whose fp32 sums are rounded to bf16 at the end: a different order may move a value by one bf16 step)
  REQUIRE_CUDA();
  for (auto dt : {torch::kFloat32, torch::kBFloat16}) {
    auto o = torch::TensorOptions().device(torch::kCUDA);
    const int64_t b = 1, tq = 512, h = 4, hkv = 2, n = 256, d = 64, K = 128, bq = 32;
    auto q = torch::randn({b, tq, h, d}, o).to(dt).requires_grad_(), k = torch::randn({b, n, hkv, d}, o).to(dt).requires_grad_(),
         v = torch::randn({b, n, hkv, d}, o).to(dt).requires_grad_();
    auto idx = torch::randint(0, n, {b, hkv, tq / bq, K}, o.dtype(torch::kInt64));
    auto g = torch::randn({b, tq, h, d}, o).to(dt);
    ops::GatheredAttentionOptions opt;
    opt.block_q = bq;
    std::vector<Tensor> dk, dv;
    for (int rep = 0; rep < 3; ++rep) {
      k.mutable_grad() = Tensor();
      v.mutable_grad() = Tensor();
      ops::gathered_attention(q, k, v, idx, opt).out.backward(g);
      dk.push_back(k.grad().to(torch::kFloat32).clone());
      dv.push_back(v.grad().to(torch::kFloat32).clone());
    }
    double spread = 0, mag = std::max(dk[0].abs().max().item<double>(), dv[0].abs().max().item<double>());
    for (int rep = 1; rep < 3; ++rep)
      spread = std::max({spread, (dk[rep] - dk[0]).abs().max().item<double>(), (dv[rep] - dv[0]).abs().max().item<double>()});
    std::printf("  gathered attention %s dk/dv run-to-run spread: max abs %.3g (max |dk|, |dv| %.3g)\n", dname(dt), spread, mag);
    EXPECT_LE(spread, (dt == torch::kFloat32 ? 1e-5 : 1.0 / 128) * std::max(1.0, mag));
  }
}

TEST(KernelErrors, ClearMessages) {
  REQUIRE_CUDA();
  auto o = torch::TensorOptions().device(torch::kCUDA);
  auto q = torch::randn({1, 8, 2, 16}, o), k = torch::randn({1, 20, 2, 16}, o);
  auto idx = torch::full({1, 2, 1, 4}, 20, o.dtype(torch::kInt64));  // out of range
  try {
    ops::gathered_attention(q, k, k, idx, {});
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("< N"), std::string::npos) << e.what();
  }
  auto u = torch::randn({1, 4, 8}, o), A = -torch::rand({4, 40}, o), B = torch::randn({1, 40, 8}, o);
  try {
    ops::selective_scan(u, u, A, B, B);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("N"), std::string::npos) << e.what();
  }
}

}  // namespace

// ---- decode attention over a slot cache ------------------------------------------------------------------------

namespace {
void check_decode(int64_t B, int64_t H, int64_t N, int64_t D, torch::ScalarType dt, uint64_t seed) {
  torch::manual_seed(seed);
  auto f = torch::TensorOptions().dtype(torch::kFloat32);
  auto q = torch::randn({B, H, 1, D}, f), kn = torch::randn({B, H, 1, D}, f), vn = torch::randn({B, H, 1, D}, f);
  auto K = torch::randn({B, H, N, D}, f), V = torch::randn({B, H, N, D}, f);
  // raw (0), summaries (log m) and empty slots (−inf); one row entirely empty but for the new token
  auto kind = torch::randint(0, 4, {B, H, 1, N}, torch::kInt64);
  auto bias = torch::where(kind == 0, torch::full({}, -INFINITY), torch::where(kind == 1,
                           torch::randint(2, 10, {B, H, 1, N}).to(torch::kFloat32).log(), torch::zeros({})));
  bias[0][0].fill_(-INFINITY);
  for (int64_t slot : {int64_t(0), N / 2 + 1, N - 1}) {
    auto Kd = K.to(torch::kCUDA, dt), Vd = V.to(torch::kCUDA, dt), bd = bias.to(torch::kCUDA, dt).contiguous();
    bd.narrow(3, slot, 1).fill_(-INFINITY);
    // reference on the dtype-rounded inputs
    auto ref = ops::decode_attention_reference(q.to(dt), kn.to(dt), vn.to(dt), Kd.cpu(), Vd.cpu(), bd.cpu(), slot);
    poison_allocator();
    auto out = ops::decode_attention(q.to(torch::kCUDA, dt), kn.to(torch::kCUDA, dt), vn.to(torch::kCUDA, dt), Kd,
                                     Vd, bd, slot);
    std::ostringstream what;
    what << "decode " << dname(dt) << " B" << B << " H" << H << " N" << N << " D" << D << " slot " << slot;
    EXPECT_TRUE(close(out, ref, tol_of(dt), what.str()));
    EXPECT_TRUE(torch::equal(Kd.narrow(2, slot, 1).cpu(), kn.to(dt))) << what.str();
    EXPECT_TRUE(torch::equal(Vd.narrow(2, slot, 1).cpu(), vn.to(dt))) << what.str();
    EXPECT_EQ(bd.cpu().to(torch::kFloat32)[B - 1][H - 1][0][slot].item<float>(), 0.f) << what.str();
  }
}
}  // namespace

TEST(DecodeAttentionCuda, EachDtypeAndHeadSize) {
  REQUIRE_CUDA();
  for (auto dt : {torch::kFloat32, torch::kBFloat16, torch::kFloat16})
    for (int64_t D : {64, 128}) check_decode(2, 3, 1037, D, dt, 7 + static_cast<uint64_t>(D));
}

TEST(DecodeAttentionCuda, ManySplitsAndFewSlots) {
  REQUIRE_CUDA();
  check_decode(1, 32, 4229, 128, torch::kBFloat16, 11);  // the benchmark's shape, odd N
  check_decode(1, 1, 5, 64, torch::kFloat32, 12);        // fewer slots than a block's key groups
  check_decode(3, 2, 70000, 64, torch::kFloat32, 13);    // long rows: splits of thousands of slots
}

TEST(DecodeAttentionCuda, WorkspaceKeptAcrossSteps) {
  // the ring cache's use: one workspace for every step (the kernel must leave its split counters at zero)
  REQUIRE_CUDA();
  torch::manual_seed(9);
  auto o = torch::TensorOptions().dtype(torch::kFloat32).device(torch::kCUDA);
  auto K = torch::randn({2, 4, 777, 64}, o), V = torch::randn({2, 4, 777, 64}, o);
  auto bias = torch::zeros({2, 4, 1, 777}, o);
  ops::DecodeAttentionOptions opt;
  opt.workspace = ops::decode_attention_workspace(K);
  ASSERT_TRUE(opt.workspace.defined());
  for (int64_t slot : {3, 400, 776, 0, 401}) {
    auto q = torch::randn({2, 4, 1, 64}, o), kn = torch::randn({2, 4, 1, 64}, o), vn = torch::randn({2, 4, 1, 64}, o);
    auto ref = ops::decode_attention_reference(q.cpu(), kn.cpu(), vn.cpu(), K.cpu(), V.cpu(), bias.cpu(), slot);
    auto out = ops::decode_attention(q, kn, vn, K, V, bias, slot, opt);
    EXPECT_TRUE(close(out, ref, tol_of(torch::kFloat32), "step at slot " + std::to_string(slot)));
  }
  EXPECT_EQ(opt.workspace.narrow(0, 0, 8).abs().sum().item<float>(), 0.f) << "split counters left non-zero";
}

TEST(DecodeAttentionCuda, IsDeterministic) {
  REQUIRE_CUDA();
  torch::manual_seed(5);
  auto o = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
  auto q = torch::randn({1, 8, 1, 128}, o), kn = torch::randn({1, 8, 1, 128}, o), vn = torch::randn({1, 8, 1, 128}, o);
  auto K = torch::randn({1, 8, 3000, 128}, o), V = torch::randn({1, 8, 3000, 128}, o);
  auto bias = torch::zeros({1, 8, 1, 3000}, o);
  auto a = ops::decode_attention(q, kn, vn, K, V, bias, 5);
  auto b = ops::decode_attention(q, kn, vn, K, V, bias, 5);
  EXPECT_TRUE(torch::equal(a, b));
}
