// The three sequence ops (selective_scan, linear_attention, gathered_attention) against their float64
// references: values, final states, gradients (vs the reference's autograd and vs finite differences),
// non-contiguous inputs, piecewise processing and the dispatchers' error messages.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "dysra/core/error.h"
#include "dysra/ops/decode_attention.h"
#include "dysra/ops/gathered_attention.h"
#include "dysra/ops/linear_attention.h"
#include "dysra/ops/selective_scan.h"

using namespace dysra;
using namespace dysra::ops;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// |a - b| <= atol + rtol·|b| elementwise; reports the worst element.
::testing::AssertionResult close(const torch::Tensor& a, const torch::Tensor& b, double rtol, double atol) {
  if (a.sizes() != b.sizes())
    return ::testing::AssertionFailure() << "shape " << a.sizes() << " vs " << b.sizes();
  auto a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  auto excess = (a64 - b64).abs() - (atol + rtol * b64.abs());
  const double worst = excess.max().item<double>();
  if (worst <= 0 && !torch::isnan(a64).any().item<bool>()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max |a-b| = " << max_abs_diff(a, b) << " (rtol " << rtol << ", atol "
                                       << atol << ")";
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const dysra::Error& e) {
    return e.what();
  }
  return "<no error>";
}

// Central finite differences of the scalar f over every element of every input, against autograd.
void expect_gradients_match_finite_differences(const std::function<torch::Tensor(std::vector<torch::Tensor>&)>& f,
                                               std::vector<torch::Tensor> inputs, double tol = 1e-6) {
  for (auto& x : inputs) x = x.detach().clone().set_requires_grad(true);
  auto y = f(inputs);
  auto grads = torch::autograd::grad({y}, inputs, {}, {}, false, /*allow_unused=*/true);
  for (size_t i = 0; i < grads.size(); ++i)
    if (!grads[i].defined()) grads[i] = torch::zeros_like(inputs[i]);  // unused input: its gradient is 0
  const double h = 1e-6;
  torch::NoGradGuard ng;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto flat = inputs[i].view(-1);
    auto g = grads[i].reshape(-1);
    for (int64_t e = 0; e < flat.numel(); ++e) {
      const double x0 = flat[e].item<double>();
      flat[e] = x0 + h;
      const double fp = f(inputs).item<double>();
      flat[e] = x0 - h;
      const double fm = f(inputs).item<double>();
      flat[e] = x0;
      const double fd = (fp - fm) / (2 * h);
      EXPECT_NEAR(g[e].item<double>(), fd, tol * (1 + std::abs(fd))) << "input " << i << " element " << e;
    }
  }
}

// ---- selective scan -----------------------------------------------------------------------------------------

struct ScanInputs {
  torch::Tensor u, delta, A, B, C, D, z, bias, x0;
  std::vector<torch::Tensor> all() const { return {u, delta, A, B, C, D, z, bias, x0}; }
};

ScanInputs scan_inputs(int64_t b, int64_t d, int64_t l, int64_t n, torch::ScalarType dt = torch::kFloat64) {
  const auto pt = dt == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto o = torch::TensorOptions().dtype(torch::kFloat64);
  ScanInputs s;
  s.u = torch::randn({b, d, l}, o).to(dt);
  s.delta = (torch::randn({b, d, l}, o) * 0.5 - 1.0).to(dt);
  s.A = (-torch::exp(torch::randn({d, n}, o) * 0.5)).to(pt);
  s.B = torch::randn({b, n, l}, o).to(dt);
  s.C = torch::randn({b, n, l}, o).to(dt);
  s.D = torch::randn({d}, o).to(pt);
  s.z = torch::randn({b, d, l}, o).to(dt);
  s.bias = (torch::randn({d}, o) * 0.3).to(pt);
  s.x0 = torch::randn({b, d, n}, o).to(pt);
  return s;
}

SelectiveScanResult run_scan(const ScanInputs& s, int64_t chunk = 8) {
  SelectiveScanOptions o;
  o.cpu_chunk = chunk;
  return selective_scan(s.u, s.delta, s.A, s.B, s.C, s.D, s.z, s.bias, s.x0, o);
}

SelectiveScanResult run_scan_ref(const ScanInputs& s) {
  auto f = [](const torch::Tensor& t) { return t.to(torch::kFloat64); };
  return selective_scan_reference(f(s.u), f(s.delta), f(s.A), f(s.B), f(s.C), f(s.D), f(s.z), f(s.bias), f(s.x0));
}

TEST(SelectiveScan, MatchesReferenceFloat64) {
  torch::manual_seed(1);
  auto s = scan_inputs(2, 5, 37, 3);
  auto ref = run_scan_ref(s);
  for (int64_t chunk : {1, 8, 37, 64}) {
    auto r = run_scan(s, chunk);
    EXPECT_EQ(r.out.scalar_type(), torch::kFloat64);
    EXPECT_TRUE(close(r.out, ref.out, 1e-10, 1e-11)) << "chunk " << chunk;
    EXPECT_TRUE(close(r.last_state, ref.last_state, 1e-10, 1e-11)) << "chunk " << chunk;
  }
}

TEST(SelectiveScan, Float32MatchesFloat64Reference) {
  torch::manual_seed(2);
  auto s = scan_inputs(2, 5, 37, 3, torch::kFloat32);
  auto r = run_scan(s);
  auto ref = run_scan_ref(s);
  EXPECT_EQ(r.out.scalar_type(), torch::kFloat32);
  EXPECT_EQ(r.last_state.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(close(r.out, ref.out, 1e-4, 1e-5));
  EXPECT_TRUE(close(r.last_state, ref.last_state, 1e-4, 1e-5));
}

TEST(SelectiveScan, BFloat16RunsInFloat32) {
  torch::manual_seed(3);
  auto s = scan_inputs(2, 5, 37, 3, torch::kBFloat16);
  auto r = run_scan(s);
  auto ref = run_scan_ref(s);  // the same bf16-rounded inputs, in float64
  EXPECT_EQ(r.out.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(r.last_state.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(close(r.out, ref.out, 2e-2, 2e-2));
  EXPECT_TRUE(close(r.last_state, ref.last_state, 1e-4, 1e-5));
}

TEST(SelectiveScan, OptionalInputsAndNoSoftplus) {
  torch::manual_seed(4);
  auto s = scan_inputs(2, 5, 19, 4);
  auto delta = torch::rand({2, 5, 19}, kF64) * 0.3 + 0.01;  // used as Δ directly
  SelectiveScanOptions o;
  o.delta_softplus = false;
  o.cpu_chunk = 4;
  auto r = selective_scan(s.u, delta, s.A, s.B, s.C, {}, {}, {}, {}, o);
  auto ref = selective_scan_reference(s.u, delta, s.A, s.B, s.C, {}, {}, {}, {}, false);
  EXPECT_TRUE(close(r.out, ref.out, 1e-10, 1e-11));
  EXPECT_TRUE(close(r.last_state, ref.last_state, 1e-10, 1e-11));
  // and the explicit form of the first step: x_0 = Δ u B, y_0 = C·x_0
  auto x = (delta.select(2, 0) * s.u.select(2, 0)).unsqueeze(-1) * s.B.select(2, 0).unsqueeze(1);
  auto y = (x * s.C.select(2, 0).unsqueeze(1)).sum(-1);
  EXPECT_TRUE(close(r.out.select(2, 0), y, 1e-12, 1e-12));
}

TEST(SelectiveScan, GradientsMatchReference) {
  torch::manual_seed(5);
  for (auto dt : {torch::kFloat64, torch::kFloat32}) {
    auto s = scan_inputs(2, 5, 37, 3, dt);
    auto gout = torch::randn({2, 5, 37}, kF64), gstate = torch::randn({2, 5, 3}, kF64);
    auto grads_of = [&](bool reference) {
      auto in = s.all();
      for (auto& t : in) t = (reference ? t.to(torch::kFloat64) : t).detach().requires_grad_(true);
      SelectiveScanOptions o;
      o.cpu_chunk = 8;
      auto r = reference ? selective_scan_reference(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], in[8])
                         : selective_scan(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], in[8], o);
      auto loss = (r.out.to(torch::kFloat64) * gout).sum() + (r.last_state.to(torch::kFloat64) * gstate).sum();
      return torch::autograd::grad({loss}, in);
    };
    auto g = grads_of(false), gref = grads_of(true);
    const char* names[] = {"u", "delta", "A", "B", "C", "D", "z", "bias", "x0"};
    const double rtol = dt == torch::kFloat64 ? 1e-9 : 1e-3, atol = dt == torch::kFloat64 ? 1e-10 : 1e-3;
    for (size_t i = 0; i < g.size(); ++i)
      EXPECT_TRUE(close(g[i], gref[i], rtol, atol)) << "grad of " << names[i] << " (" << dt << ")";
  }
}

TEST(SelectiveScan, GradientsMatchFiniteDifferences) {
  torch::manual_seed(6);
  auto s = scan_inputs(1, 2, 5, 2);
  auto w = torch::randn({1, 2, 5}, kF64), w2 = torch::randn({1, 2, 2}, kF64);
  expect_gradients_match_finite_differences(
      [&](std::vector<torch::Tensor>& in) {
        SelectiveScanOptions o;
        o.cpu_chunk = 2;
        auto r = selective_scan(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], in[8], o);
        return (r.out * w).sum() + (r.last_state * w2).sum();
      },
      s.all());
}

TEST(SelectiveScan, NonContiguousInputs) {
  torch::manual_seed(7);
  auto s = scan_inputs(2, 5, 37, 3);
  ScanInputs t = s;
  // the same values, stored [b, L, ·] and viewed [b, ·, L]
  t.u = s.u.transpose(1, 2).contiguous().transpose(1, 2);
  t.delta = s.delta.transpose(1, 2).contiguous().transpose(1, 2);
  t.B = s.B.transpose(1, 2).contiguous().transpose(1, 2);
  t.C = s.C.transpose(1, 2).contiguous().transpose(1, 2);
  t.z = s.z.transpose(1, 2).contiguous().transpose(1, 2);
  t.A = s.A.t().contiguous().t();
  ASSERT_FALSE(t.u.is_contiguous());
  ASSERT_FALSE(t.A.is_contiguous());
  auto r = run_scan(t), ref = run_scan_ref(s);
  EXPECT_TRUE(close(r.out, ref.out, 1e-10, 1e-11));
  EXPECT_TRUE(close(r.last_state, ref.last_state, 1e-10, 1e-11));
}

TEST(SelectiveScan, PiecewiseEqualsOneShot) {
  torch::manual_seed(8);
  for (auto dt : {torch::kFloat64, torch::kFloat32}) {
    auto s = scan_inputs(2, 5, 37, 3, dt);
    auto whole = run_scan(s);
    torch::Tensor state = s.x0;
    std::vector<torch::Tensor> outs;
    int64_t t0 = 0;
    for (int64_t len : {10, 1, 26}) {
      auto part = [&](const torch::Tensor& x) { return x.narrow(2, t0, len); };
      SelectiveScanOptions o;
      o.cpu_chunk = 8;
      auto r = selective_scan(part(s.u), part(s.delta), s.A, part(s.B), part(s.C), s.D, part(s.z), s.bias, state, o);
      outs.push_back(r.out);
      state = r.last_state;
      t0 += len;
    }
    const double tol = dt == torch::kFloat64 ? 1e-12 : 1e-5;
    EXPECT_TRUE(close(torch::cat(outs, 2), whole.out, tol, tol)) << dt;
    EXPECT_TRUE(close(state, whole.last_state, tol, tol)) << dt;
  }
}

TEST(SelectiveScan, EmptySequenceKeepsState) {
  auto s = scan_inputs(2, 5, 0, 3);
  auto r = run_scan(s);
  EXPECT_EQ(r.out.sizes(), (std::vector<int64_t>{2, 5, 0}));
  EXPECT_TRUE(torch::equal(r.last_state, s.x0));
}

TEST(SelectiveScan, BadInputsNameTheArgument) {
  torch::manual_seed(9);
  auto s = scan_inputs(2, 16, 37, 3);
  auto msg = error_of([&] { selective_scan(s.u, s.delta, s.A, s.B.narrow(2, 0, 36), s.C); });
  EXPECT_EQ(msg, "selective_scan: B must be [batch, d_state, L] = [2, 3, 37], got [2, 3, 36]");
  msg = error_of([&] { selective_scan(s.u, s.delta.narrow(1, 0, 15), s.A, s.B, s.C); });
  EXPECT_EQ(msg, "selective_scan: delta must be [batch, D, L] = [2, 16, 37], got [2, 15, 37]");
  msg = error_of([&] { selective_scan(s.u, s.delta, s.A, s.B, s.C, s.D, {}, {}, torch::zeros({2, 16, 4}, kF64)); });
  EXPECT_EQ(msg, "selective_scan: initial_state must be [batch, D, d_state] = [2, 16, 3], got [2, 16, 4]");
  msg = error_of([&] { selective_scan(s.u, s.delta, s.A, s.B, s.C, torch::ones({5}, kF64)); });
  EXPECT_EQ(msg, "selective_scan: D_skip must be [D] = [16], got [5]");
  msg = error_of([&] { selective_scan(s.u, s.delta, s.A, s.B.to(torch::kFloat32), s.C); });
  EXPECT_NE(msg.find("B must have the dtype of u"), std::string::npos) << msg;
  msg = error_of([&] { selective_scan(s.u.to(torch::kFloat32), s.delta.to(torch::kFloat32), s.A,
                                      s.B.to(torch::kFloat32), s.C.to(torch::kFloat32)); });
  EXPECT_NE(msg.find("A must be Float"), std::string::npos) << msg;
  msg = error_of([&] { selective_scan(s.u.select(0, 0), s.delta, s.A, s.B, s.C); });
  EXPECT_NE(msg.find("u must be [batch, D, L], got [16, 37]"), std::string::npos) << msg;
}

// ---- linear attention ---------------------------------------------------------------------------------------

struct LinInputs {
  torch::Tensor q, k, v, S0, z0;
};

// q, k positive (as after the elu+1 feature map) so that the normaliser is bounded away from 0.
LinInputs lin_inputs(int64_t b, int64_t t, int64_t h, int64_t dk, int64_t dv, torch::ScalarType dt = torch::kFloat64) {
  const auto st = dt == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  LinInputs x;
  x.q = (torch::elu(torch::randn({b, t, h, dk}, kF64)) + 1).to(dt);
  x.k = (torch::elu(torch::randn({b, t, h, dk}, kF64)) + 1).to(dt);
  x.v = torch::randn({b, t, h, dv}, kF64).to(dt);
  x.S0 = torch::randn({b, h, dk, dv}, kF64).to(st);
  x.z0 = (torch::rand({b, h, dk}, kF64) * 3).to(st);
  return x;
}

LinearAttentionResult run_lin(const LinInputs& x, bool normalize, int64_t chunk = 8, bool reference = false) {
  LinearAttentionOptions o;
  o.normalize = normalize;
  o.scale = 0.7;
  o.chunk_size = chunk;
  if (reference) {
    auto f = [](const torch::Tensor& t) { return t.to(torch::kFloat64); };
    return linear_attention_reference(f(x.q), f(x.k), f(x.v), {f(x.S0), f(x.z0)}, o);
  }
  return linear_attention(x.q, x.k, x.v, {x.S0, x.z0}, o);
}

TEST(LinearAttention, MatchesReferenceFloat64) {
  torch::manual_seed(11);
  auto x = lin_inputs(2, 37, 3, 5, 4);
  for (bool normalize : {true, false}) {
    auto ref = run_lin(x, normalize, 8, true);
    for (int64_t chunk : {1, 8, 16, 64}) {
      auto r = run_lin(x, normalize, chunk);
      EXPECT_TRUE(close(r.out, ref.out, 1e-10, 1e-11)) << "normalize " << normalize << " chunk " << chunk;
      EXPECT_TRUE(close(r.state.S, ref.state.S, 1e-10, 1e-11));
      EXPECT_TRUE(close(r.state.z, ref.state.z, 1e-10, 1e-11));
    }
  }
  // without an initial state
  LinearAttentionOptions o;
  o.chunk_size = 8;
  auto r = linear_attention(x.q, x.k, x.v, {}, o), ref = linear_attention_reference(x.q, x.k, x.v, {}, o);
  EXPECT_TRUE(close(r.out, ref.out, 1e-10, 1e-11));
  // the first output of the normalised form without state is exactly v_0 (q0·k0 v0 / q0·k0)
  EXPECT_TRUE(close(r.out.select(1, 0), x.v.select(1, 0), 1e-6, 1e-9));
}

TEST(LinearAttention, Float32MatchesFloat64Reference) {
  torch::manual_seed(12);
  auto x = lin_inputs(2, 37, 3, 5, 4, torch::kFloat32);
  for (bool normalize : {true, false}) {
    auto r = run_lin(x, normalize), ref = run_lin(x, normalize, 8, true);
    EXPECT_EQ(r.out.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(close(r.out, ref.out, 1e-4, 1e-4)) << normalize;
    EXPECT_TRUE(close(r.state.S, ref.state.S, 1e-4, 1e-4));
  }
}

TEST(LinearAttention, GradientsMatchReference) {
  torch::manual_seed(13);
  for (bool normalize : {true, false}) {
    auto x = lin_inputs(2, 37, 3, 5, 4);
    auto gout = torch::randn({2, 37, 3, 4}, kF64), gS = torch::randn({2, 3, 5, 4}, kF64),
         gz = torch::randn({2, 3, 5}, kF64);
    auto grads_of = [&](bool reference) {
      std::vector<torch::Tensor> in = {x.q, x.k, x.v, x.S0, x.z0};
      for (auto& t : in) t = t.detach().clone().requires_grad_(true);
      auto r = run_lin({in[0], in[1], in[2], in[3], in[4]}, normalize, 8, reference);
      auto loss = (r.out * gout).sum() + (r.state.S * gS).sum() + (r.state.z * gz).sum();
      return torch::autograd::grad({loss}, in, {}, {}, false, /*allow_unused=*/true);
    };
    auto g = grads_of(false), gref = grads_of(true);
    const char* names[] = {"q", "k", "v", "S0", "z0"};
    for (size_t i = 0; i < g.size(); ++i)
      EXPECT_TRUE(close(g[i], gref[i], 1e-9, 1e-10)) << "grad of " << names[i] << " normalize " << normalize;
  }
}

TEST(LinearAttention, GradientsMatchFiniteDifferences) {
  torch::manual_seed(14);
  auto x = lin_inputs(1, 5, 2, 2, 3);
  auto w = torch::randn({1, 5, 2, 3}, kF64), wS = torch::randn({1, 2, 2, 3}, kF64);
  for (bool normalize : {true, false}) {
    expect_gradients_match_finite_differences(
        [&](std::vector<torch::Tensor>& in) {
          LinearAttentionOptions o;
          o.normalize = normalize;
          o.chunk_size = 2;
          auto r = linear_attention(in[0], in[1], in[2], {in[3], in[4]}, o);
          return (r.out * w).sum() + (r.state.S * wS).sum();
        },
        {x.q, x.k, x.v, x.S0, x.z0});
  }
}

TEST(LinearAttention, NonContiguousInputs) {
  torch::manual_seed(15);
  auto x = lin_inputs(2, 37, 3, 5, 4);
  LinInputs t = x;
  t.q = x.q.permute({0, 2, 1, 3}).contiguous().permute({0, 2, 1, 3});  // stored [b, h, T, d]
  t.k = x.k.permute({0, 2, 1, 3}).contiguous().permute({0, 2, 1, 3});
  t.v = x.v.permute({0, 2, 1, 3}).contiguous().permute({0, 2, 1, 3});
  t.S0 = x.S0.transpose(2, 3).contiguous().transpose(2, 3);
  ASSERT_FALSE(t.q.is_contiguous());
  auto r = run_lin(t, true), ref = run_lin(x, true, 8, true);
  EXPECT_TRUE(close(r.out, ref.out, 1e-10, 1e-11));
  EXPECT_TRUE(close(r.state.S, ref.state.S, 1e-10, 1e-11));
}

TEST(LinearAttention, PiecewiseEqualsOneShot) {
  torch::manual_seed(16);
  for (auto dt : {torch::kFloat64, torch::kFloat32}) {
    auto x = lin_inputs(2, 37, 3, 5, 4, dt);
    LinearAttentionOptions o;
    o.chunk_size = 8;
    auto whole = linear_attention(x.q, x.k, x.v, {x.S0, x.z0}, o);
    LinearAttentionState st{x.S0, x.z0};
    std::vector<torch::Tensor> outs;
    int64_t t0 = 0;
    for (int64_t len : {3, 17, 1, 16}) {
      auto r = linear_attention(x.q.narrow(1, t0, len), x.k.narrow(1, t0, len), x.v.narrow(1, t0, len), st, o);
      outs.push_back(r.out);
      st = r.state;
      t0 += len;
    }
    const double tol = dt == torch::kFloat64 ? 1e-12 : 1e-5;
    EXPECT_TRUE(close(torch::cat(outs, 1), whole.out, tol, tol)) << dt;
    EXPECT_TRUE(close(st.S, whole.state.S, tol, tol)) << dt;
    EXPECT_TRUE(close(st.z, whole.state.z, tol, tol)) << dt;
  }
}

TEST(LinearAttention, BadInputsNameTheArgument) {
  auto x = lin_inputs(2, 37, 3, 5, 4);
  auto msg = error_of([&] { linear_attention(x.q, x.k.narrow(1, 0, 36), x.v); });
  EXPECT_EQ(msg, "linear_attention: k must be [batch, T, heads, d_k] = [2, 37, 3, 5], got [2, 36, 3, 5]");
  msg = error_of([&] { linear_attention(x.q, x.k, x.v.narrow(2, 0, 2)); });
  EXPECT_EQ(msg, "linear_attention: v must be [batch, T, heads, d_v] = [2, 37, 3, 4], got [2, 37, 2, 4]");
  msg = error_of([&] { linear_attention(x.q, x.k, x.v, {torch::zeros({2, 3, 4, 5}, kF64), {}}); });
  EXPECT_EQ(msg, "linear_attention: initial.S must be [batch, heads, d_k, d_v] = [2, 3, 5, 4], got [2, 3, 4, 5]");
  msg = error_of([&] { linear_attention(x.q, x.k, x.v.to(torch::kFloat32)); });
  EXPECT_NE(msg.find("v must have the dtype of q"), std::string::npos) << msg;
  LinearAttentionOptions o;
  o.chunk_size = 0;
  msg = error_of([&] { linear_attention(x.q, x.k, x.v, {}, o); });
  EXPECT_NE(msg.find("chunk_size must be >= 1"), std::string::npos) << msg;
}

// ---- gathered attention -------------------------------------------------------------------------------------

// Random index lists [b, hkv, nb, K] into [0, n) with about a quarter padding (-1).
torch::Tensor random_indices(int64_t b, int64_t hkv, int64_t nb, int64_t K, int64_t n) {
  auto idx = torch::randint(0, n, {b, hkv, nb, K}, torch::kInt64);
  auto pad = torch::rand({b, hkv, nb, K}) < 0.25;
  return idx.masked_fill(pad, -1);
}

TEST(GatheredAttention, MatchesDenseReference) {
  torch::manual_seed(21);
  const int64_t b = 2, tq = 37, h = 4, hkv = 2, d = 5, n = 41, K = 9;
  for (auto dt : {torch::kFloat64, torch::kFloat32}) {
    for (bool causal : {false, true}) {
      for (int64_t block_q : {8, 37, 100}) {
        const int64_t nb = (tq + block_q - 1) / block_q;
        auto q = torch::randn({b, tq, h, d}, kF64).to(dt), k = torch::randn({b, n, hkv, d}, kF64).to(dt),
             v = torch::randn({b, n, hkv, d}, kF64).to(dt);
        auto idx = random_indices(b, hkv, nb, K, n);
        GatheredAttentionOptions o;
        o.block_q = block_q;
        o.causal = causal;
        o.causal_offset = n - tq;  // the queries are the last tq memory rows
        auto r = gathered_attention(q, k, v, idx, o);
        auto ref = gathered_attention_reference(q.to(torch::kFloat64), k.to(torch::kFloat64), v.to(torch::kFloat64),
                                                idx, o);
        const double tol = dt == torch::kFloat64 ? 1e-11 : 2e-5;
        EXPECT_EQ(r.out.scalar_type(), dt);
        EXPECT_TRUE(close(r.out, ref.out, tol, tol)) << dt << " causal " << causal << " block_q " << block_q;
        auto finite = torch::isfinite(ref.lse);
        EXPECT_TRUE(torch::equal(torch::isfinite(r.lse), finite));
        EXPECT_TRUE(close(r.lse.masked_fill(finite.logical_not(), 0), ref.lse.masked_fill(finite.logical_not(), 0),
                          tol, tol));
      }
    }
  }
}

TEST(GatheredAttention, AllPreviousIndicesEqualCausalDenseAttention) {
  torch::manual_seed(22);
  const int64_t b = 2, t = 29, h = 3, d = 6, block_q = 8, nb = 4;
  auto q = torch::randn({b, t, h, d}, kF64), k = torch::randn({b, t, h, d}, kF64), v = torch::randn({b, t, h, d}, kF64);
  // block j lists rows 0 .. min(8j+7, t-1), the rest padding
  auto idx = torch::full({b, h, nb, block_q * nb}, -1, torch::kInt64);
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t m = 0; m < std::min((j + 1) * block_q, t); ++m) idx.select(2, j).select(2, m).fill_(m);
  GatheredAttentionOptions o;
  o.block_q = block_q;
  o.causal = true;
  auto r = gathered_attention(q, k, v, idx, o);
  // dense causal softmax attention written out
  auto logits = torch::einsum("bthd,bshd->bhts", {q, k}) / std::sqrt(double(d));
  auto mask = torch::ones({t, t}, torch::kBool).triu(1);
  auto p = torch::softmax(logits.masked_fill(mask, -std::numeric_limits<double>::infinity()), -1);
  auto dense = torch::einsum("bhts,bshd->bthd", {p, v});
  EXPECT_TRUE(close(r.out, dense, 1e-12, 1e-12));
  EXPECT_TRUE(close(r.lse, torch::logsumexp(logits.masked_fill(mask, -INFINITY), -1), 1e-12, 1e-12));
}

TEST(GatheredAttention, FullyMaskedQueriesGiveZeros) {
  torch::manual_seed(23);
  auto q = torch::randn({1, 6, 2, 4}, kF64), k = torch::randn({1, 10, 1, 4}, kF64), v = torch::randn({1, 10, 1, 4}, kF64);
  auto idx = torch::tensor({5, 1, -1, 3, 7, -1}, torch::kInt64).view({1, 1, 2, 3});
  idx.select(2, 0).fill_(-1);  // block 0: nothing to attend to
  GatheredAttentionOptions o;
  o.block_q = 3;
  o.causal = true;  // block 1 (queries 3..5): query 3 sees row 3, queries 4/5 rows 3 (7 is in the future)
  auto q_ = q.clone().requires_grad_(true);
  auto r = gathered_attention(q_, k, v, idx, o);
  EXPECT_TRUE(torch::equal(r.out.narrow(1, 0, 3), torch::zeros({1, 3, 2, 4}, kF64)));
  EXPECT_TRUE(torch::isinf(r.lse.narrow(2, 0, 3)).all().item<bool>());
  // every query of block 1 sees exactly row 3 → out = v[3]
  EXPECT_TRUE(close(r.out.narrow(1, 3, 3), v.select(1, 3).unsqueeze(1).expand({1, 3, 2, 4}), 1e-12, 1e-12));
  r.out.sum().backward();
  EXPECT_FALSE(torch::isnan(q_.grad()).any().item<bool>());
}

TEST(GatheredAttention, GradientsMatchReference) {
  torch::manual_seed(24);
  const int64_t b = 2, tq = 37, h = 4, hkv = 2, d = 5, n = 41, K = 9, block_q = 8;
  for (auto dt : {torch::kFloat64, torch::kFloat32}) {
    auto q = torch::randn({b, tq, h, d}, kF64), k = torch::randn({b, n, hkv, d}, kF64),
         v = torch::randn({b, n, hkv, d}, kF64);
    auto idx = random_indices(b, hkv, 5, K, n).to(torch::kInt32);
    auto gout = torch::randn({b, tq, h, d}, kF64);
    GatheredAttentionOptions o;
    o.block_q = block_q;
    o.causal = true;
    o.causal_offset = 4;
    auto grads_of = [&](bool reference) {
      std::vector<torch::Tensor> in = {q, k, v};
      for (auto& t : in) t = (reference ? t : t.to(dt)).detach().requires_grad_(true);
      auto r = reference ? gathered_attention_reference(in[0], in[1], in[2], idx, o)
                         : gathered_attention(in[0], in[1], in[2], idx, o);
      return torch::autograd::grad({(r.out.to(torch::kFloat64) * gout).sum()}, in);
    };
    auto g = grads_of(false), gref = grads_of(true);
    const double tol = dt == torch::kFloat64 ? 1e-10 : 1e-4;
    for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(close(g[i], gref[i], tol, tol)) << "input " << i << " " << dt;
  }
}

TEST(GatheredAttention, GradientsMatchFiniteDifferences) {
  torch::manual_seed(25);
  auto idx = torch::tensor({0, 2, -1, 1, 4, 2, 3, 0}, torch::kInt64).view({1, 2, 2, 2});
  auto w = torch::randn({1, 3, 2, 3}, kF64);
  expect_gradients_match_finite_differences(
      [&](std::vector<torch::Tensor>& in) {
        GatheredAttentionOptions o;
        o.block_q = 2;
        o.causal = true;
        o.causal_offset = 2;
        return (gathered_attention(in[0], in[1], in[2], idx, o).out * w).sum();
      },
      {torch::randn({1, 3, 2, 3}, kF64), torch::randn({1, 5, 2, 3}, kF64), torch::randn({1, 5, 2, 3}, kF64)});
}

TEST(GatheredAttention, NonContiguousInputs) {
  torch::manual_seed(26);
  const int64_t b = 2, tq = 13, h = 2, d = 4, n = 17;
  auto q = torch::randn({b, tq, h, d}, kF64), k = torch::randn({b, n, h, d}, kF64), v = torch::randn({b, n, h, d}, kF64);
  auto idx = random_indices(b, h, 3, 5, n);
  auto nc = [](const torch::Tensor& x) { return x.transpose(1, 2).contiguous().transpose(1, 2); };
  GatheredAttentionOptions o;
  o.block_q = 5;
  auto r = gathered_attention(nc(q), nc(k), nc(v), idx.transpose(0, 1).contiguous().transpose(0, 1), o);
  auto ref = gathered_attention_reference(q, k, v, idx, o);
  EXPECT_TRUE(close(r.out, ref.out, 1e-12, 1e-12));
}

TEST(GatheredAttention, BadInputsNameTheArgument) {
  auto q = torch::randn({2, 37, 4, 5}, kF64), k = torch::randn({2, 41, 2, 5}, kF64), v = k.clone();
  GatheredAttentionOptions o;
  o.block_q = 8;
  auto msg = error_of([&] { gathered_attention(q, k, v, torch::zeros({2, 2, 4, 3}, torch::kInt64), o); });
  EXPECT_EQ(msg,
            "gathered_attention: indices must be [batch, kv_heads, n_blocks, K] = [2, 2, 5, K] (n_blocks = "
            "ceil(Tq / block_q) = ceil(37 / 8)), got [2, 2, 4, 3]");
  msg = error_of([&] { gathered_attention(q, k, v, torch::full({2, 2, 5, 3}, 41, torch::kInt64), o); });
  EXPECT_EQ(msg, "gathered_attention: indices must be < N = 41 (memory rows of k), got 41");
  msg = error_of([&] { gathered_attention(q, torch::randn({2, 41, 3, 5}, kF64), torch::randn({2, 41, 3, 5}, kF64),
                                          torch::zeros({2, 3, 5, 3}, torch::kInt64), o); });
  EXPECT_EQ(msg, "gathered_attention: query heads (4) must be a multiple of kv heads (3)");
  msg = error_of([&] { gathered_attention(q, k, v.narrow(1, 0, 40), torch::zeros({2, 2, 5, 3}, torch::kInt64), o); });
  EXPECT_EQ(msg, "gathered_attention: v must be [batch, N, kv_heads, D] = [2, 41, 2, 5] (the shape of k), got "
                 "[2, 40, 2, 5]");
  msg = error_of([&] { gathered_attention(q, k, v, torch::zeros({2, 2, 5, 3}, torch::kFloat32), o); });
  EXPECT_NE(msg.find("indices must be int32 or int64"), std::string::npos) << msg;
}

}  // namespace

// ---- decode attention over a slot cache ----------------------------------------------------------------------

namespace {
struct SlotCache {
  torch::Tensor q, k_new, v_new, K, V, bias;
};
/// Random slot cache: raw slots (bias 0), summaries (bias log m, m in 2..9) and empty slots (−inf), none zero.
SlotCache random_slot_cache(int64_t B, int64_t H, int64_t N, int64_t D, torch::ScalarType dt, uint64_t seed) {
  torch::manual_seed(seed);
  auto o = torch::TensorOptions().dtype(dt);
  SlotCache c;
  c.q = torch::randn({B, H, 1, D}, o), c.k_new = torch::randn({B, H, 1, D}, o), c.v_new = torch::randn({B, H, 1, D}, o);
  c.K = torch::randn({B, H, N, D}, o), c.V = torch::randn({B, H, N, D}, o);
  auto kind = torch::randint(0, 4, {B, H, 1, N}, torch::kInt64);
  auto counts = torch::randint(2, 10, {B, H, 1, N}, torch::kInt64).to(torch::kFloat64);
  auto b = torch::where(kind == 0, torch::full({}, -std::numeric_limits<double>::infinity(), torch::kFloat64),
                        torch::where(kind == 1, counts.log(), torch::zeros({}, torch::kFloat64)));
  c.bias = b.to(dt).contiguous();
  return c;
}
}  // namespace

TEST(DecodeAttention, MatchesReferenceAndWritesTheSlot) {
  for (auto dt : {torch::kFloat64, torch::kFloat32}) {
    for (int64_t slot : {0, 17, 36}) {
      auto c = random_slot_cache(2, 3, 37, 24, dt, 40 + static_cast<uint64_t>(slot));
      c.bias.narrow(3, slot, 1).fill_(-std::numeric_limits<double>::infinity());  // the slot is free before the step
      auto ref = dysra::ops::decode_attention_reference(c.q, c.k_new, c.v_new, c.K, c.V, c.bias, slot);
      auto out = dysra::ops::decode_attention(c.q, c.k_new, c.v_new, c.K, c.V, c.bias, slot);
      const double tol = dt == torch::kFloat64 ? 1e-12 : 1e-5;
      EXPECT_LT((out.to(torch::kFloat64) - ref).abs().max().item<double>(), tol) << "slot " << slot;
      EXPECT_TRUE(torch::equal(c.K.narrow(2, slot, 1), c.k_new));
      EXPECT_TRUE(torch::equal(c.V.narrow(2, slot, 1), c.v_new));
      EXPECT_EQ(c.bias[0][0][0][slot].item<double>(), 0.0);
    }
  }
}

TEST(DecodeAttention, ReferenceIsTheDenseSoftmaxWithCountBias) {
  // one row, hand-checkable: two raw keys and a summary of 3 equal to the first key
  auto f = torch::TensorOptions().dtype(torch::kFloat64);
  auto K = torch::tensor({1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0}, f).view({1, 1, 4, 2});
  auto V = torch::tensor({1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 9.0, 9.0}, f).view({1, 1, 4, 2});
  auto bias = torch::tensor({0.0, 0.0, std::log(3.0), 0.0}, f).view({1, 1, 1, 4});
  auto q = torch::tensor({2.0, 0.0}, f).view({1, 1, 1, 2});
  auto kn = torch::tensor({0.0, 0.0}, f).view({1, 1, 1, 2}), vn = torch::tensor({5.0, 5.0}, f).view({1, 1, 1, 2});
  auto out = dysra::ops::decode_attention_reference(q, kn, vn, K, V, bias, 3, {1.0});
  // logits: key0 2, key1 0, summary 2 + log 3, new 0 → weights e², 1, 3e², 1
  const double e2 = std::exp(2.0), z = 4 * e2 + 2;
  EXPECT_NEAR(out[0][0][0][0].item<double>(), (4 * e2 * 1.0 + 3.0 + 5.0) / z, 1e-12);
  EXPECT_NEAR(out[0][0][0][1].item<double>(), (4 * e2 * 2.0 + 4.0 + 5.0) / z, 1e-12);
}

TEST(DecodeAttention, BadInputsNameTheArgument) {
  auto c = random_slot_cache(1, 2, 8, 4, torch::kFloat32, 3);
  auto msg = [&](const std::function<void()>& f) {
    try {
      f();
    } catch (const dysra::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg([&] { dysra::ops::decode_attention(c.q, c.k_new, c.v_new, c.K, c.V, c.bias, 8); }).find("slot"), std::string::npos);
  auto q3 = torch::randn({1, 2, 2, 4});
  EXPECT_NE(msg([&] { dysra::ops::decode_attention(q3, c.k_new, c.v_new, c.K, c.V, c.bias, 0); }).find("q must be"), std::string::npos);
  auto b64 = c.bias.to(torch::kFloat64);
  EXPECT_NE(msg([&] { dysra::ops::decode_attention(c.q, c.k_new, c.v_new, c.K, c.V, b64, 0); }).find("bias"), std::string::npos);
  auto Kt = c.K.transpose(2, 3).contiguous().transpose(2, 3);
  EXPECT_NE(msg([&] { dysra::ops::decode_attention(c.q, c.k_new, c.v_new, Kt, c.V, c.bias, 0); }).find("contiguous"), std::string::npos);
}
