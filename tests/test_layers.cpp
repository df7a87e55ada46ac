// Sequence-mixer layers: Mamba and linear attention (parallel form == recurrent step form, pieces with state ==
// one shot, Mamba against a from-scratch float64 composition), sparse attention (== causal dense attention when
// every previous row is listed; window/random lists; KV-cache streaming), cost accounting and the registry.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>
#include <string>

#include "dysra/cache/kv_cache.h"
#include "dysra/core/error.h"
#include "dysra/layers/attention.h"
#include "dysra/layers/linear_attention.h"
#include "dysra/layers/mamba.h"
#include "dysra/layers/mixer.h"
#include "dysra/layers/sparse_attention.h"
#include "dysra/ops/selective_scan.h"

using namespace dysra;
using namespace dysra::layers;

namespace {

::testing::AssertionResult close(const torch::Tensor& a, const torch::Tensor& b, double rtol, double atol) {
  if (a.sizes() != b.sizes())
    return ::testing::AssertionFailure() << "shape " << a.sizes() << " vs " << b.sizes();
  auto a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  const double worst = ((a64 - b64).abs() - (atol + rtol * b64.abs())).max().item<double>();
  if (worst <= 0 && !torch::isnan(a64).any().item<bool>()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max |a-b| = " << (a64 - b64).abs().max().item<double>();
}

models::ModelOptions small_options() {
  models::ModelOptions o;
  o.d_model = 12;
  o.n_heads = 3;
  o.mamba.d_state = 5;
  o.mamba.d_conv = 4;
  o.mamba.expand = 2;
  o.linear_attention.chunk_size = 8;
  o.sparse_attention.block_q = 5;
  o.sparse_attention.top_k = 4;
  return o;
}

// Runs `layer` over x in consecutive pieces of the given lengths with one state carried along.
torch::Tensor run_pieces(MixerImpl& layer, const torch::Tensor& x, const std::vector<int64_t>& lengths,
                         MixerState& state) {
  std::vector<torch::Tensor> outs;
  int64_t t0 = 0;
  for (int64_t len : lengths) {
    outs.push_back(layer.forward(x.narrow(1, t0, len), {}, &state));
    t0 += len;
  }
  EXPECT_EQ(t0, x.size(1));
  return torch::cat(outs, 1);
}

std::vector<int64_t> ones(int64_t n) { return std::vector<int64_t>(n, 1); }

// ---- Mamba --------------------------------------------------------------------------------------------------

TEST(MambaLayer, ParallelEqualsRecurrentStepForm) {
  torch::manual_seed(31);
  for (auto dt : {torch::kFloat32, torch::kFloat64}) {
    auto layer = std::make_shared<MambaImpl>(small_options(), 0);
    layer->to(dt);
    auto x = torch::randn({2, 23, 12}, torch::TensorOptions().dtype(dt));
    torch::NoGradGuard ng;
    MixerState whole_state;
    auto whole = layer->forward(x, {}, &whole_state);
    auto plain = layer->forward(x, {}, nullptr);
    EXPECT_TRUE(torch::equal(whole, plain));
    MixerState st;
    auto steps = run_pieces(*layer, x, ones(23), st);  // token by token: the recurrent form
    const double tol = dt == torch::kFloat64 ? 1e-11 : 2e-5;
    EXPECT_TRUE(close(steps, whole, tol, tol)) << dt;
    ASSERT_EQ(st.tensors.size(), 2u);
    EXPECT_EQ(st.offset, 23);
    EXPECT_TRUE(close(st.tensors[0], whole_state.tensors[0], tol, tol)) << "conv state " << dt;
    EXPECT_TRUE(close(st.tensors[1], whole_state.tensors[1], tol, tol)) << "ssm state " << dt;
  }
}

TEST(MambaLayer, PiecesWithStateEqualOneShot) {
  torch::manual_seed(32);
  auto layer = std::make_shared<MambaImpl>(small_options(), 0);
  auto x = torch::randn({2, 37, 12});
  torch::NoGradGuard ng;
  MixerState whole_state;
  auto whole = layer->forward(x, {}, &whole_state);
  MixerState st;
  // mixes the parallel form (pieces of 7, 2, 15) and the step form (pieces of 1)
  auto pieces = run_pieces(*layer, x, {7, 1, 2, 1, 1, 15, 10}, st);
  EXPECT_TRUE(close(pieces, whole, 2e-5, 2e-5));
  EXPECT_TRUE(close(st.tensors[1], whole_state.tensors[1], 2e-5, 2e-5));
  EXPECT_EQ(st.offset, 37);
}

// The block written out from its parameters in float64: zero-padded conv1d, the naive scan, the gate.
TEST(MambaLayer, MatchesFromScratchComposition) {
  torch::manual_seed(33);
  auto o = small_options();
  o.mamba.dt_rank = 3;
  auto layer = std::make_shared<MambaImpl>(o, 0);
  layer->to(torch::kFloat64);
  auto p = layer->named_parameters();
  auto x = torch::randn({2, 19, 12}, torch::kFloat64);
  const int64_t E = 24, N = 5, R = 3;
  torch::NoGradGuard ng;
  auto xz = torch::matmul(x, p["in_proj.weight"].t());
  auto xs = xz.narrow(2, 0, E).transpose(1, 2), z = xz.narrow(2, E, E).transpose(1, 2);
  auto conv = torch::conv1d(xs, p["conv.weight"], p["conv.bias"], 1, 3, 1, E).narrow(2, 0, 19);  // causal: cut tail
  auto u = torch::silu(conv);
  auto dbl = torch::matmul(u.transpose(1, 2), p["x_proj.weight"].t());
  auto delta = torch::matmul(dbl.narrow(2, 0, R), p["dt_proj.weight"].t()).transpose(1, 2);
  auto r = ops::selective_scan_reference(u, delta, -torch::exp(p["A_log"]), dbl.narrow(2, R, N).transpose(1, 2),
                                         dbl.narrow(2, R + N, N).transpose(1, 2), p["D"], z, p["dt_proj.bias"]);
  auto expected = torch::matmul(r.out.transpose(1, 2), p["out_proj.weight"].t());
  EXPECT_TRUE(close(layer->forward(x, {}, nullptr), expected, 1e-11, 1e-12));
}

TEST(MambaLayer, InitialisationFollowsMamba) {
  torch::manual_seed(34);
  auto o = small_options();
  o.mamba.dt_min = 0.002;
  o.mamba.dt_max = 0.05;
  auto layer = std::make_shared<MambaImpl>(o, 0);
  EXPECT_EQ(layer->dt_rank(), 1);  // ceil(12 / 16)
  EXPECT_EQ(layer->d_inner(), 24);
  auto p = layer->named_parameters();
  auto dt = torch::softplus(p["dt_proj.bias"].to(torch::kFloat64));
  EXPECT_GE(dt.min().item<double>(), 0.002 * (1 - 1e-5));
  EXPECT_LE(dt.max().item<double>(), 0.05 * (1 + 1e-5));
  EXPECT_GT(dt.std().item<double>(), 0.0);  // drawn, not constant
  auto expected_A_log = torch::log(torch::arange(1, 6, torch::kFloat32)).expand({24, 5});
  EXPECT_TRUE(torch::allclose(p["A_log"], expected_A_log));
  EXPECT_TRUE(torch::equal(p["D"], torch::ones({24})));
  EXPECT_LE(p["dt_proj.weight"].abs().max().item<double>(), 1.0);  // U(±rank^-½), rank 1
}

TEST(MambaLayer, GradientsReachEveryParameter) {
  torch::manual_seed(35);
  auto layer = std::make_shared<MambaImpl>(small_options(), 0);
  auto x = torch::randn({2, 17, 12}, torch::requires_grad());
  layer->forward(x, {}, nullptr).pow(2).sum().backward();
  for (const auto& kv : layer->named_parameters()) {
    ASSERT_TRUE(kv.value().grad().defined()) << kv.key();
    EXPECT_GT(kv.value().grad().abs().sum().item<double>(), 0.0) << kv.key();
  }
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0.0);
}

TEST(MambaLayer, BadOptionsAndInputs) {
  auto o = small_options();
  o.mamba.dt_min = 0.5;
  o.mamba.dt_max = 0.1;
  EXPECT_THROW(MambaImpl(o, 0), ConfigError);
  auto layer = std::make_shared<MambaImpl>(small_options(), 0);
  try {
    layer->forward(torch::randn({2, 5, 11}), {}, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "mamba: x must be [B, L, 12], got [2, 5, 11]");
  }
}

// ---- linear attention ---------------------------------------------------------------------------------------

TEST(LinearAttentionLayer, ParallelEqualsRecurrentForEveryFeatureMap) {
  torch::manual_seed(41);
  struct Case {
    const char* map;
    bool normalize;
  };
  for (auto c : {Case{"elu1", true}, Case{"elu1", false}, Case{"relu", false}, Case{"identity", false}}) {
    auto o = small_options();
    o.linear_attention.feature_map = c.map;
    o.linear_attention.normalize = c.normalize;
    auto layer = std::make_shared<LinearAttentionImpl>(o, 0);
    auto x = torch::randn({2, 29, 12});
    torch::NoGradGuard ng;
    MixerState whole_state;
    auto whole = layer->forward(x, {}, &whole_state);
    EXPECT_TRUE(torch::equal(whole, layer->forward(x, {}, nullptr)));
    MixerState st;
    auto steps = run_pieces(*layer, x, ones(29), st);
    EXPECT_TRUE(close(steps, whole, 1e-4, 1e-5)) << c.map << " normalize " << c.normalize;
    EXPECT_TRUE(close(st.tensors[0], whole_state.tensors[0], 1e-5, 1e-5)) << c.map;
    MixerState st2;
    auto pieces = run_pieces(*layer, x, {3, 1, 11, 1, 13}, st2);
    EXPECT_TRUE(close(pieces, whole, 1e-4, 1e-5)) << c.map << " pieces";
    EXPECT_EQ(st2.offset, 29);
  }
}

TEST(LinearAttentionLayer, MatchesSoftmaxFreeDefinition) {
  // one head, elu1, normalised: out_t = W_o Σ_{s≤t} (φq_t·φk_s) v_s / Σ_{s≤t} φq_t·φk_s
  torch::manual_seed(42);
  auto o = small_options();
  o.n_heads = 1;
  auto layer = std::make_shared<LinearAttentionImpl>(o, 0);
  layer->to(torch::kFloat64);
  auto p = layer->named_parameters();
  auto x = torch::randn({1, 13, 12}, torch::kFloat64);
  torch::NoGradGuard ng;
  auto q = torch::elu(torch::matmul(x, p["q.weight"].t())) + 1, k = torch::elu(torch::matmul(x, p["k.weight"].t())) + 1;
  auto v = torch::matmul(x, p["v.weight"].t());
  auto w = torch::matmul(q, k.transpose(1, 2)).tril();  // [1, 13, 13]
  auto expected = torch::matmul(torch::matmul(w, v) / (w.sum(-1, true) + 1e-6), p["o.weight"].t());
  EXPECT_TRUE(close(layer->forward(x, {}, nullptr), expected, 1e-10, 1e-12));
}

TEST(LinearAttentionLayer, UnknownFeatureMapIsAConfigError) {
  auto o = small_options();
  o.linear_attention.feature_map = "softmax";
  try {
    LinearAttentionImpl layer(o, 0);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "model.linear_attention.feature_map: unknown 'softmax' (known: elu1, relu, identity)");
  }
}

// ---- sparse attention ---------------------------------------------------------------------------------------

// The lead's dense causal attention layer with the sparse layer's weights.
std::shared_ptr<AttentionImpl> dense_twin(const models::ModelOptions& o, SparseAttentionImpl& sparse) {
  auto dense = std::make_shared<AttentionImpl>(o, 0);
  auto ps = sparse.named_parameters();
  auto pd = dense->named_parameters();
  torch::NoGradGuard ng;
  pd["qkv.weight"].copy_(torch::cat({ps["q.weight"], ps["k.weight"], ps["v.weight"]}, 0));
  pd["out.weight"].copy_(ps["o.weight"]);
  return dense;
}

TEST(SparseAttentionLayer, AllPreviousIndicesEqualCausalDenseAttention) {
  torch::manual_seed(51);
  for (const char* position : {"rope", "none"}) {
    auto o = small_options();
    o.position = position;
    auto sparse = std::make_shared<SparseAttentionImpl>(o, 0);
    auto dense = dense_twin(o, *sparse);
    const int64_t B = 2, L = 23, nb = 5;
    auto x = torch::randn({B, L, 12});
    // block j lists every row up to its last query, in a shuffled order, padded with -1
    auto idx = torch::full({1, 3, nb, L + 2}, -1, torch::kInt64);
    for (int64_t j = 0; j < nb; ++j) {
      const int64_t e = std::min<int64_t>((j + 1) * 5, L);
      auto perm = torch::randperm(e, torch::kInt64);
      idx.select(2, j).narrow(2, 0, e).copy_(perm.expand({1, 3, e}));
    }
    MixerInputs in;
    in.sparse_indices = idx;
    torch::NoGradGuard ng;
    EXPECT_TRUE(close(sparse->forward(x, in, nullptr), dense->forward(x, {}, nullptr), 1e-5, 1e-6)) << position;
  }
}

TEST(SparseAttentionLayer, BuiltInListsCoveringEverythingEqualDense) {
  torch::manual_seed(52);
  for (const char* source : {"window", "random"}) {
    auto o = small_options();
    o.sparse_attention.index_source = source;
    o.sparse_attention.top_k = 40;  // >= L: every previous row
    auto sparse = std::make_shared<SparseAttentionImpl>(o, 3);
    auto dense = dense_twin(o, *sparse);
    auto x = torch::randn({2, 23, 12});
    torch::NoGradGuard ng;
    auto want = dense->forward(x, {}, nullptr);
    EXPECT_TRUE(close(sparse->forward(x, {}, nullptr), want, 1e-5, 1e-6)) << source;
    // streaming with the KV cache gives the same as one shot
    MixerState st;
    EXPECT_TRUE(close(run_pieces(*sparse, x, {6, 1, 9, 7}, st), want, 1e-5, 1e-6)) << source << " pieces";
    EXPECT_EQ(st.offset, 23);
    EXPECT_EQ(st.tensors[0].size(1), 23);
  }
}

TEST(SparseAttentionLayer, ReadsThroughCachePoliciesLikeDenseAttention) {
  // window lists reaching every entry: the sparse layer through a cache policy must equal the dense layer through
  // an identical policy — raw entries, re-assigned positions (streaming_llm) and summaries with counts (compressive:
  // each summary stands for 2 tokens and is listed twice)
  torch::manual_seed(53);
  auto o = small_options();
  o.sparse_attention.top_k = 100;
  auto sparse = std::make_shared<SparseAttentionImpl>(o, 0);
  auto dense = dense_twin(o, *sparse);
  cache::LayerInfo info;
  info.n_heads = 3, info.head_dim = 4, info.rope = true, info.rope_theta = o.rope_theta;
  std::vector<cache::CacheOptions> policies(4);
  policies[0].policy = "full";
  policies[1].policy = "window", policies[1].budget = 10;
  policies[2].policy = "streaming_llm", policies[2].budget = 10, policies[2].sink_tokens = 2;
  policies[3].policy = "compressive", policies[3].sink_tokens = 2, policies[3].raw_slots = 8, policies[3].delta = 4;
  policies[3].rank = 2, policies[3].summary_slots = 4, policies[3].method = "mean";
  auto x = torch::randn({2, 31, 12});
  torch::NoGradGuard ng;
  for (const auto& co : policies) {
    MixerState ss, sd;
    ss.kv_cache = cache::make_cache(co, info), sd.kv_cache = cache::make_cache(co, info);
    int64_t t0 = 0;
    for (int64_t len : {6, 1, 9, 1, 1, 7, 6}) {
      auto xi = x.narrow(1, t0, len);
      EXPECT_TRUE(close(sparse->forward(xi, {}, &ss), dense->forward(xi, {}, &sd), 1e-5, 1e-6))
          << co.policy << " at token " << t0;
      t0 += len;
    }
    EXPECT_EQ(ss.offset, 31);
    EXPECT_EQ(ss.kv_cache->memory().slots, sd.kv_cache->memory().slots) << co.policy;
  }
  // policies that score tokens by attention probabilities are refused, naming the policy
  cache::CacheOptions h2o;
  h2o.policy = "h2o", h2o.budget = 10;
  MixerState st;
  st.kv_cache = cache::make_cache(h2o, info);
  try {
    sparse->forward(x.narrow(1, 0, 4), {}, &st);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'h2o'"), std::string::npos) << e.what();
  }
}

TEST(SparseAttentionLayer, WindowListsAndTheirReach) {
  auto o = small_options();
  o.sparse_attention.index_source = "window";
  o.sparse_attention.block_q = 4;
  o.sparse_attention.top_k = 3;
  auto layer = std::make_shared<SparseAttentionImpl>(o, 0);
  auto idx = layer->build_indices(18, 18);  // blocks [0,4) [4,8) [8,12) [12,16) [16,18)
  ASSERT_EQ(idx.sizes(), (std::vector<int64_t>{5, 7}));
  EXPECT_TRUE(torch::equal(idx[0], torch::tensor({0, 1, 2, 3, -1, -1, -1}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(idx[2], torch::tensor({5, 6, 7, 8, 9, 10, 11}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(idx[4], torch::tensor({13, 14, 15, 16, 17, -1, -1}, torch::kInt64)));
  // queries that are the last 6 rows of a 20-row memory: blocks start at 14 and 18
  EXPECT_TRUE(torch::equal(layer->build_indices(6, 20)[1], torch::tensor({15, 16, 17, 18, 19, -1, -1}, torch::kInt64)));

  // a change at row 5 reaches blocks 1 and 2 (their windows hold it) but not block 3 or the rows before it
  torch::manual_seed(53);
  auto x = torch::randn({1, 18, 12});
  auto x2 = x.clone();
  x2[0][5] += 1.0;
  torch::NoGradGuard ng;
  auto y = layer->forward(x, {}, nullptr), y2 = layer->forward(x2, {}, nullptr);
  auto changed = (y - y2).abs().amax(2)[0] > 1e-6;  // [18]
  for (int64_t t = 0; t < 18; ++t) {
    const bool expect = t >= 5 && t < 12;
    EXPECT_EQ(changed[t].item<bool>(), expect) << "row " << t;
  }
}

TEST(SparseAttentionLayer, RandomListsAreCausalDistinctAndFixed) {
  auto o = small_options();
  o.sparse_attention.index_source = "random";
  o.sparse_attention.block_q = 8;
  o.sparse_attention.top_k = 5;
  auto layer = std::make_shared<SparseAttentionImpl>(o, 0);
  auto idx = layer->build_indices(60, 60);
  ASSERT_EQ(idx.sizes(), (std::vector<int64_t>{8, 13}));
  EXPECT_TRUE(torch::equal(idx, layer->build_indices(60, 60)));  // fixed seed
  std::set<std::vector<int64_t>> distinct_picks;
  for (int64_t j = 0; j < 8; ++j) {
    const int64_t s = j * 8, e = std::min<int64_t>(s + 8, 60);
    std::set<int64_t> rows;
    std::vector<int64_t> before;
    int64_t pads = 0;
    for (int64_t c = 0; c < 13; ++c) {
      const int64_t m = idx[j][c].item<int64_t>();
      if (m < 0) {
        ++pads;
        continue;
      }
      EXPECT_LT(m, e) << "block " << j;
      EXPECT_TRUE(rows.insert(m).second) << "duplicate " << m << " in block " << j;
      if (m < s) before.push_back(m);
    }
    for (int64_t m = s; m < e; ++m) EXPECT_TRUE(rows.count(m)) << "block " << j << " misses its own row " << m;
    EXPECT_EQ(static_cast<int64_t>(before.size()), std::min<int64_t>(5, s)) << "block " << j;
    EXPECT_EQ(pads, 13 - static_cast<int64_t>(rows.size()));
    if (s > 5) distinct_picks.insert(before);
  }
  EXPECT_GT(distinct_picks.size(), 3u);  // the picks differ between blocks
  auto other = std::make_shared<SparseAttentionImpl>(o, 1);  // another layer draws other rows
  EXPECT_FALSE(torch::equal(idx, other->build_indices(60, 60)));
}

TEST(SparseAttentionLayer, OracleNeedsIndicesAndBadIndicesAreNamed) {
  auto o = small_options();
  o.sparse_attention.index_source = "oracle";
  auto layer = std::make_shared<SparseAttentionImpl>(o, 0);
  auto x = torch::randn({2, 11, 12});
  try {
    layer->forward(x, {}, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("index_source 'oracle' needs the index lists"), std::string::npos);
  }
  MixerInputs in;
  in.sparse_indices = torch::zeros({2, 3, 2, 4}, torch::kInt64);
  try {
    layer->forward(x, in, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "sparse_attention: MixerInputs::sparse_indices must be [B or 1, n_heads, n_blocks, K] = [2, 3, 3, K] "
              "(n_blocks = ceil(L / block_q) = ceil(11 / 5)), got [2, 3, 2, 4]");
  }
  o.sparse_attention.index_source = "topk";
  EXPECT_THROW(SparseAttentionImpl(o, 0), ConfigError);
}

TEST(SparseAttentionLayer, GradientsFlowThroughGatheredRows) {
  torch::manual_seed(54);
  auto o = small_options();
  o.sparse_attention.index_source = "random";
  auto layer = std::make_shared<SparseAttentionImpl>(o, 0);
  auto x = torch::randn({2, 31, 12}, torch::requires_grad());
  layer->forward(x, {}, nullptr).pow(2).sum().backward();
  for (const auto& kv : layer->named_parameters())
    EXPECT_GT(kv.value().grad().abs().sum().item<double>(), 0.0) << kv.key();
}

// the built-in lists are kept per (queries, memory length): calls of other lengths in between must not change a
// call's lists, so the same input gives the same output before and after them
TEST(SparseAttentionLayer, BuiltInListsFollowTheLengths) {
  torch::manual_seed(55);
  auto o = small_options();
  o.sparse_attention.index_source = "random";
  auto layer = std::make_shared<SparseAttentionImpl>(o, 0);
  torch::NoGradGuard ng;
  auto x1 = torch::randn({1, 40, 12}), x2 = torch::randn({1, 23, 12});
  auto y1 = layer->forward(x1, {}, nullptr);
  auto y2 = layer->forward(x2, {}, nullptr);
  EXPECT_TRUE(torch::equal(layer->forward(x1, {}, nullptr), y1));
  EXPECT_TRUE(torch::equal(layer->forward(x2, {}, nullptr), y2));
  // and a layer that never saw x2 agrees with them
  auto fresh = std::make_shared<SparseAttentionImpl>(o, 0);
  for (size_t i = 0; i < fresh->parameters().size(); ++i) fresh->parameters()[i].copy_(layer->parameters()[i]);
  EXPECT_TRUE(torch::equal(fresh->forward(x2, {}, nullptr), y2));
}

// ---- cost and registry --------------------------------------------------------------------------------------

int64_t count_params(MixerImpl& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

TEST(LayerCost, ParamsMatchModulesAndFlopsScaleLinearly) {
  auto o = small_options();
  o.d_model = 64;
  o.n_heads = 4;
  o.linear_attention.chunk_size = 64;
  o.sparse_attention.block_q = 64;
  o.sparse_attention.top_k = 64;
  for (const char* kind : {"mamba", "linear_attention", "sparse_attention"}) {
    auto layer = mixer_registry().get(kind)(o, 0);
    EXPECT_EQ(layer->kind(), kind);
    auto c1 = layer->cost(1024, 4), c2 = layer->cost(2048, 4);
    EXPECT_EQ(c1.params, count_params(*layer)) << kind;
    EXPECT_GT(c1.flops, 0) << kind;
    EXPECT_NEAR(c2.flops / c1.flops, 2.0, 1e-9) << kind;  // linear in length
    EXPECT_GT(c1.bytes, 4.0 * c1.params) << kind;
    EXPECT_GT(c1.state_bytes, 0) << kind;
    EXPECT_GT(c1.flops, 2.0 * 1024 * c1.params * 0.5) << kind;  // at least the projections
  }
  // recurrent state does not grow with length; the sparse layer's K/V memory does
  auto mamba = mixer_registry().get("mamba")(o, 0);
  EXPECT_EQ(mamba->cost(1024, 2).state_bytes, mamba->cost(8192, 2).state_bytes);
  auto sparse = mixer_registry().get("sparse_attention")(o, 0);
  EXPECT_EQ(sparse->cost(2048, 2).state_bytes, 2 * sparse->cost(1024, 2).state_bytes);
}

TEST(MixerRegistry, KnowsTheSubquadraticLayers) {
  auto names = mixer_registry().names();
  for (const char* kind : {"mamba", "linear_attention", "sparse_attention"})
    EXPECT_NE(std::find(names.begin(), names.end(), kind), names.end()) << kind;
  try {
    mixer_registry().get("hyena");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("linear_attention"), std::string::npos) << e.what();
  }
}

}  // namespace
