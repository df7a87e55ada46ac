// KV cache policies: each eviction / selection rule on hand-made cases, the memory bound, block compression
// (lossless at r = Δ, error falling with r), the learned compressor, and attention through the cache in the layer.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "dysra/cache/compressor.h"
#include "dysra/cache/kv_cache.h"
#include "dysra/cache/ring_cache.h"
#include "dysra/cache/model.h"
#include "dysra/layers/attention.h"
#include "dysra/models/lm.h"

using namespace dysra;
using cache::CacheOptions;
using cache::KVAppend;
using cache::LayerInfo;

namespace {

LayerInfo geom(int64_t H, int64_t D, int64_t layer = 0, int64_t n_layers = 1) {
  LayerInfo i;
  i.n_heads = H, i.head_dim = D, i.layer = layer, i.n_layers = n_layers;
  return i;
}

KVAppend tokens(int64_t H, int64_t D, int64_t begin, int64_t L, torch::Tensor probs = {}) {
  KVAppend a;
  a.keys = torch::randn({1, H, L, D});
  a.values = torch::randn({1, H, L, D});
  a.positions = torch::arange(begin, begin + L, torch::kInt64);
  a.probs = probs;
  return a;
}

std::vector<int64_t> kept(const cache::KVCachePolicy& c, size_t row = 0) {
  auto t = c.rows()[row].token;
  return {t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel()};
}

std::vector<int64_t> range(int64_t a, int64_t b) {
  std::vector<int64_t> v;
  for (int64_t i = a; i < b; ++i) v.push_back(i);
  return v;
}

// Probabilities [1, H, L, n_view + L] for L new queries that put weight `w[j]` on column j (then normalised).
torch::Tensor probs_from(const std::vector<std::vector<double>>& rows, int64_t H) {
  const int64_t L = static_cast<int64_t>(rows.size()), N = static_cast<int64_t>(rows[0].size());
  std::vector<double> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  auto p = torch::tensor(flat, torch::kFloat64).view({L, N}).to(torch::kFloat32);
  p = p / p.sum(-1, true).clamp_min(1e-30);
  return p.view({1, 1, L, N}).expand({1, H, L, N}).contiguous();
}

torch::Tensor attend_ref(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& bias) {
  auto l = q.matmul(k.t()) / std::sqrt(static_cast<double>(q.size(-1)));
  if (bias.defined()) l = l + bias;
  return torch::softmax(l, -1).matmul(v);
}

/// Many tiny tensor ops: one intra-op thread (a shared CPU makes OpenMP barriers very slow); restored after.
struct OneThread {
  int before = torch::get_num_threads();
  OneThread() { torch::set_num_threads(1); }
  ~OneThread() { torch::set_num_threads(before); }
};

}  // namespace

TEST(Cache, RegistryAndValidation) {
  auto names = cache::cache_registry().names();
  for (const char* n : {"full", "window", "streaming_llm", "h2o", "snapkv", "pyramidkv", "razor", "compressive"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  CacheOptions o;
  o.policy = "lru";
  try {
    cache::make_cache(o, geom(1, 4));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("known: compressive"), std::string::npos) << e.what();
  }
  o.policy = "compressive";
  o.rank = 300;
  o.delta = 256;
  EXPECT_THROW(cache::make_cache(o, geom(1, 4)), ConfigError);
  o = {};
  o.policy = "window";
  EXPECT_THROW(cache::make_cache(o, geom(1, 4)), ConfigError);  // no budget
}

TEST(Cache, WindowAndStreamingLLM) {
  torch::manual_seed(0);
  CacheOptions o;
  o.policy = "window";
  o.budget = 6;
  auto w = cache::make_cache(o, geom(2, 4));
  w->append(tokens(2, 4, 0, 7));
  w->append(tokens(2, 4, 7, 1));
  w->append(tokens(2, 4, 8, 5));
  EXPECT_EQ(kept(*w, 1), range(7, 13));
  o.policy = "streaming_llm";
  o.budget = 9;
  o.sink_tokens = 3;
  auto s = cache::make_cache(o, geom(2, 4));
  for (int64_t t = 0; t < 20; t += 4) s->append(tokens(2, 4, t, 4));
  auto want = range(0, 3);
  for (auto x : range(14, 20)) want.push_back(x);
  EXPECT_EQ(kept(*s, 0), want);
  auto v = s->view();  // in-cache positions 0..8, next query at 9
  EXPECT_TRUE(torch::equal(v.positions[0][0], torch::arange(9, torch::kFloat64)));
  EXPECT_EQ(v.query_offset[0][1].item<double>(), 9.0);
  EXPECT_EQ(s->memory().slots, 2 * 9);
}

TEST(Cache, H2OKeepsHeavyHitters) {
  torch::manual_seed(1);
  CacheOptions o;
  o.policy = "h2o";
  o.budget = 5;
  o.window = 2;
  auto c = cache::make_cache(o, geom(1, 4));
  // 10 tokens in one chunk; the queries pay most attention to tokens 2 and 5, then 7; the rest a little.
  std::vector<std::vector<double>> rows(10, std::vector<double>(10, 0.01));
  for (auto& r : rows) r[2] = 1.0, r[5] = 0.8, r[7] = 0.5, r[8] = 0.0, r[9] = 0.0;
  c->append(tokens(1, 4, 0, 10, probs_from(rows, 1)));
  EXPECT_EQ(kept(*c), (std::vector<int64_t>{2, 5, 7, 8, 9}));
  // Decode step: the new query looks only at token 9 and itself; 8 leaves the recent window with score 0 and
  // is evicted, while the heavy hitters keep their accumulated lead.
  std::vector<std::vector<double>> step{{0.0, 0.0, 0.0, 0.0, 0.6, 0.4}};  // view [2,5,7,8,9] + new token 10
  c->append(tokens(1, 4, 10, 1, probs_from(step, 1)));
  auto k = kept(*c);
  EXPECT_EQ(k.size(), 5u);
  EXPECT_EQ(std::set<int64_t>(k.begin(), k.end()), (std::set<int64_t>{2, 5, 7, 9, 10}));
}

TEST(Cache, SnapKVPoolsTheObservationWindow) {
  CacheOptions o;
  o.policy = "snapkv";
  o.obs_window = 2;
  o.kernel_size = 3;
  o.pooling = "max";
  o.budget = 5;
  auto c = cache::make_cache(o, geom(1, 4));
  // 12 tokens; queries 0..9 look at token 0 (outside the observation window: ignored); the last 2 queries look
  // at token 4 → pooled votes at 3, 4, 5.
  std::vector<std::vector<double>> rows(12, std::vector<double>(12, 0.0));
  for (int i = 0; i < 10; ++i) rows[static_cast<size_t>(i)][0] = 1.0;
  rows[10][4] = 1.0, rows[11][4] = 0.9, rows[11][11] = 0.1;
  c->append(tokens(1, 4, 0, 12, probs_from(rows, 1)));
  EXPECT_EQ(kept(*c), (std::vector<int64_t>{3, 4, 5, 10, 11}));
  // avg pooling (count_include_pad, as F.avg_pool1d): the same winners here
  o.pooling = "avg";
  auto a = cache::make_cache(o, geom(1, 4));
  a->append(tokens(1, 4, 0, 12, probs_from(rows, 1)));
  EXPECT_EQ(kept(*a), (std::vector<int64_t>{3, 4, 5, 10, 11}));
}

TEST(Cache, PyramidKVBudgets) {
  // kvcache.md §2.2 worked example: B = 128, w = 8, L = 32 → 234 selected at layer 0, 17 at layer 31.
  auto b = cache::pyramid_budgets(128, 8, 32, 100000, 20);
  ASSERT_EQ(b.size(), 32u);
  EXPECT_EQ(b[0], 234 + 8);
  EXPECT_EQ(b[31], 17 + 8);
  for (size_t l = 1; l < b.size(); ++l) EXPECT_EQ(b[l - 1] - b[l], 7);  // steps = (234 − 6) // 31
  int64_t sum = 0;
  for (auto x : b) sum += x - 8;
  EXPECT_EQ(sum, 32 * 234 - 7 * 32 * 31 / 2);  // arithmetic pyramid, ≈ uniform 32·120 = 3840
  EXPECT_LE(std::abs(sum - 32 * 120), 32 * 31 / 2);
  // Short prompt: max_num = T − w, min_num = 2(B − w) − max_num. B = 20, w = 4, L = 3, T = 24:
  // min = 16 // 20 = 0, max = 32 ≥ 20 → max = 20, min = 12, steps = 4 → 20, 16, 12 (+4).
  EXPECT_EQ(cache::pyramid_budgets(20, 4, 3, 24, 20), (std::vector<int64_t>{24, 20, 16}));
  // The cache of layer 2 of 3 keeps its pyramid budget.
  CacheOptions o;
  o.policy = "pyramidkv";
  o.budget = 20;
  o.obs_window = 4;
  o.kernel_size = 1;
  auto c = cache::make_cache(o, geom(1, 4, 2, 3));
  for (int64_t t = 0; t < 200; t += 50) c->append(tokens(1, 4, t, 50, torch::rand({1, 1, 50, c->rows().empty() ? 50 : c->rows()[0].size() + 50})));
  auto want = cache::pyramid_budgets(20, 4, 3, 200, 20)[2];
  EXPECT_EQ(c->memory().slots, want);
}

TEST(Cache, RazorRetrievalHeadsKeepEverything) {
  torch::manual_seed(2);
  CacheOptions o;
  o.policy = "razor";
  o.sink_tokens = 2;
  o.window = 3;
  o.retrieval_heads = {1 * 2 + 1};  // layer 1, head 1
  auto c = cache::make_cache(o, geom(2, 4, 1, 2));
  auto a = tokens(2, 4, 0, 10);
  c->append(a);
  auto b = tokens(2, 4, 10, 2);
  c->append(b);
  EXPECT_EQ(kept(*c, 1), range(0, 12));  // retrieval head
  // head 0: sinks 0,1 + compensation (-1) + last 3
  EXPECT_EQ(kept(*c, 0), (std::vector<int64_t>{0, 1, -1, 9, 10, 11}));
  const auto& row = c->rows()[0];
  EXPECT_EQ(row.count[2].item<double>(), 7.0);  // tokens 2..8 dropped
  auto all_k = torch::cat({a.keys[0][0], b.keys[0][0]}, 0);
  EXPECT_TRUE(torch::allclose(row.k[2], all_k.slice(0, 2, 9).mean(0), 1e-5, 1e-6));
  EXPECT_NEAR(row.pos[2].item<double>(), 5.0, 1e-12);
  auto v = c->view();
  EXPECT_NEAR(v.bias[0][0][2].item<float>(), std::log(7.0f), 1e-6);
  EXPECT_TRUE(std::isinf(v.bias[0][0][7].item<float>()));  // padding of the short row
}

TEST(Cache, RazorHeadSelectionRule) {
  // 2 layers × 4 heads = 8 heads; 14 % → ceil(1.12) = 2 by induction, 1 % → 1 by echo.
  auto ind = torch::tensor({0.1, 0.9, 0.0, 0.2, 0.5, 0.0, 0.3, 0.0}, torch::kFloat64).view({2, 4});
  auto echo = torch::tensor({0.0, 0.0, 0.7, 0.0, 0.0, 0.1, 0.0, 0.0}, torch::kFloat64).view({2, 4});
  EXPECT_EQ(cache::select_retrieval_heads(ind, echo, 0.14, 0.01), (std::vector<int64_t>{1, 2, 4}));
  auto scores = torch::tensor({0.1, 0.5, 0.2, 0.05, 0.9, 0.0}, torch::kFloat64);
  EXPECT_EQ(cache::select_sentences(scores, {0, 0, 1, 1, 2, 3}, 2), (std::vector<size_t>{0, 2}));
}

TEST(Cache, MemoryIsBoundedForEveryBoundedPolicy) {
  OneThread one;
  torch::manual_seed(3);
  const int64_t H = 2, D = 8;
  std::vector<CacheOptions> cases;
  auto add = [&](const std::string& p) {
    CacheOptions o;
    o.policy = p;
    o.budget = 48;
    o.window = 8;
    // Δ divides 90,000, so the raw buffer is at the same phase after 10K and 100K tokens (it holds between
    // M − Δ + 1 and M raw tokens; the capacity is constant at every phase).
    o.raw_slots = 96, o.delta = 48, o.rank = 4, o.summary_slots = 16, o.recompress_depth = 2;
    cases.push_back(o);
  };
  for (const char* p : {"window", "streaming_llm", "h2o", "snapkv", "pyramidkv", "razor", "compressive"}) add(p);
  for (const auto& o : cases) {
    auto c = cache::make_cache(o, geom(H, D, 1, 3));
    int64_t t = 0, bytes10k = -1, cap10k = -1;
    const int64_t chunk = c->needs_attention() ? 500 : 5000;  // probs are [chunk, N + chunk]
    while (t < 100000) {
      const int64_t n = c->rows().empty() ? 0 : c->rows()[0].size();
      torch::Tensor p;
      if (c->needs_attention()) p = torch::rand({1, H, chunk, n + chunk});
      c->append(tokens(H, D, t, chunk, p));
      t += chunk;
      if (t == 10000) bytes10k = c->memory().bytes, cap10k = c->memory().capacity_bytes;
    }
    auto m = c->memory();
    EXPECT_EQ(m.bytes, bytes10k) << o.policy;
    EXPECT_EQ(m.capacity_bytes, cap10k) << o.policy;
    EXPECT_GE(m.capacity_bytes, m.bytes) << o.policy;
    EXPECT_GT(m.bytes, 0) << o.policy;
    EXPECT_LE(m.heads[0].slots, std::max<int64_t>(c->head_budget(0), 48 + 8)) << o.policy;
    EXPECT_EQ(m.bytes, m.kv_bytes + m.slots * cache::kEntryMetaBytes) << o.policy;
  }
}

TEST(Compressive, LosslessAtFullRankAndErrorFallsWithRank) {
  torch::manual_seed(4);
  const int64_t n = 12, D = 8;
  std::vector<int64_t> ranks{1, 3, 6, 12};
  std::vector<double> err(ranks.size(), 0.0);
  for (int trial = 0; trial < 8; ++trial) {
    auto k = torch::randn({n, D}, torch::kFloat64), v = torch::randn({n, D}, torch::kFloat64);
    auto q = torch::randn({5, D}, torch::kFloat64);
    cache::Block in{k, v, torch::arange(n, torch::kFloat64), torch::ones({n}, torch::kFloat64)};
    auto ref = attend_ref(q, k, v, {});
    for (size_t i = 0; i < ranks.size(); ++i) {
      auto b = cache::compress_block(in, ranks[i], "svd");
      EXPECT_LE(b.k.size(0), ranks[i]);
      EXPECT_NEAR(b.count.sum().item<double>(), n, 1e-9);
      auto out = attend_ref(q, b.k, b.v, b.count.log());
      err[i] += (out - ref).norm().item<double>() / ref.norm().item<double>();
    }
  }
  EXPECT_LT(err[3], 1e-10);
  for (size_t i = 1; i < ranks.size(); ++i) EXPECT_LT(err[i], err[i - 1]) << "rank " << ranks[i];
  // r = 1 is RazorAttention's compensation token: mean key, mean value, count n
  auto k = torch::randn({n, D}, torch::kFloat64), v = torch::randn({n, D}, torch::kFloat64);
  auto one = cache::compress_block({k, v, torch::arange(n, torch::kFloat64), torch::ones({n}, torch::kFloat64)}, 1, "svd");
  EXPECT_TRUE(torch::allclose(one.k[0], k.mean(0))) ;
  EXPECT_EQ(one.count[0].item<double>(), n);
  auto mean = cache::compress_block({k, v, torch::arange(n, torch::kFloat64), torch::ones({n}, torch::kFloat64)}, 3, "mean");
  EXPECT_TRUE(torch::allclose(mean.v[1], v.slice(0, 4, 8).mean(0)));
}

TEST(Compressive, RankEqualDeltaMatchesFullAttentionThroughTheCache) {
  torch::manual_seed(5);
  const int64_t H = 2, D = 8;
  CacheOptions full;
  CacheOptions comp;
  comp.policy = "compressive";
  comp.sink_tokens = 2, comp.raw_slots = 16, comp.delta = 8, comp.rank = 8, comp.summary_slots = 64;
  auto fc = cache::make_cache(full, geom(H, D)), cc = cache::make_cache(comp, geom(H, D));
  for (int64_t t = 0; t < 60; t += 6) {
    auto q = torch::randn({1, H, 6, D}), k = torch::randn({1, H, 6, D}), v = torch::randn({1, H, 6, D});
    auto pos = torch::arange(t, t + 6, torch::kInt64);
    auto yf = cache::attend_through_cache(q, k, v, pos, *fc, true, 10000.0);
    auto yc = cache::attend_through_cache(q, k, v, pos, *cc, true, 10000.0);
    EXPECT_TRUE(torch::allclose(yf, yc, 1e-4, 1e-5)) << "t = " << t << " max " << (yf - yc).abs().max().item<float>();
  }
  auto m = cc->memory();
  EXPECT_GT(m.heads[0].summaries, 0);
  EXPECT_EQ(m.heads[0].raw + m.heads[0].summaries, 60);  // lossless: every token its own summary
}

TEST(Compressive, RotationAndBoundedRecompression) {
  torch::manual_seed(6);
  for (int64_t depth : {1, 2}) {
    CacheOptions o;
    o.policy = "compressive";
    o.sink_tokens = 4, o.raw_slots = 16, o.delta = 8, o.rank = 2, o.summary_slots = 6, o.recompress_depth = depth;
    auto c = cache::make_cache(o, geom(1, 4));
    for (int64_t t = 0; t < 400; t += 10) c->append(tokens(1, 4, t, 10));
    const auto& r = c->rows()[0];
    EXPECT_EQ(kept(*c).front(), 0);                       // sinks stay
    EXPECT_EQ(r.token.slice(0, 0, 4).sum().item<int64_t>(), 0 + 1 + 2 + 3);
    EXPECT_EQ(r.depth.max().item<int64_t>(), depth);     // never deeper than recompress_depth
    EXPECT_LE(c->memory().heads[0].summaries, 6);
    EXPECT_LE(c->memory().heads[0].raw, 4 + 16);
    auto pos = r.pos.slice(0, 4, r.size());               // summaries then raw, in time order
    EXPECT_TRUE(torch::equal(pos, std::get<0>(pos.sort())));
  }
}

TEST(Compressive, LearnedCompressorStartsAsMeanPoolingAndTrains) {
  OneThread one;
  torch::manual_seed(7);
  const int64_t D = 8, delta = 8, r = 2;
  cache::LearnedCompressor c(D, delta, r);
  auto k = torch::randn({3, delta, D}), v = torch::randn({3, delta, D});
  auto out = c->forward(k, v);
  EXPECT_TRUE(torch::allclose(out.first[1][0], k[1].slice(0, 0, 4).mean(0), 1e-5, 1e-6));
  // samples: queries aligned with a few keys (retrieval-like), so mean pooling loses information
  cache::CompressionSample s;
  s.keys = torch::randn({16, delta, D}) * 2;
  s.values = torch::randn({16, delta, D});
  s.key_pos = torch::arange(delta, torch::kFloat64).repeat({16, 1});
  s.queries = torch::randn({16, 6, D}) * 2;
  auto before = cache::attention_reconstruction_loss(c, s, true, 10000.0).item<double>();
  cache::CompressorTrainOptions to;
  to.steps = 60;
  to.lr = 3e-2;
  to.holdout = 0;  // fit every block: the loss itself must go down
  auto losses = cache::train_compressor(c, {s}, to, true, 10000.0);
  ASSERT_EQ(losses.size(), 60u);
  auto after = cache::attention_reconstruction_loss(c, s, true, 10000.0).item<double>();
  EXPECT_LT(after, 0.8 * before) << before << " → " << after;
}

TEST(Compressive, LearnedCompressorKeepsItsBestHeldOutParameters) {
  // a learning rate that makes training diverge: with held-out blocks the compressor must end no worse on them than
  // where it started (its mean-pooling initialisation), whatever the last steps did
  OneThread one;
  torch::manual_seed(8);
  const int64_t D = 8, delta = 8, r = 2, G = 20;
  cache::CompressionSample s;
  s.keys = torch::randn({G, delta, D}) * 2;
  s.values = torch::randn({G, delta, D});
  s.key_pos = torch::arange(delta, torch::kFloat64).repeat({G, 1});
  s.queries = torch::randn({G, 6, D}) * 2;
  // the held-out blocks are every 5th (holdout 0.2): 4, 9, 14, 19
  auto held_rows = torch::tensor({4, 9, 14, 19}, torch::kInt64);
  cache::CompressionSample h;
  h.keys = s.keys.index_select(0, held_rows), h.values = s.values.index_select(0, held_rows);
  h.key_pos = s.key_pos.index_select(0, held_rows), h.queries = s.queries.index_select(0, held_rows);
  cache::CompressorTrainOptions to;
  to.steps = 40;
  to.lr = 3.0;
  to.holdout = 0.2;
  to.eval_every = 7;
  cache::LearnedCompressor c(D, delta, r), free_run(D, delta, r);
  const double start = cache::attention_reconstruction_loss(c, h, true, 10000.0).item<double>();
  cache::train_compressor(c, {s}, to, true, 10000.0);
  const double kept = cache::attention_reconstruction_loss(c, h, true, 10000.0).item<double>();
  EXPECT_LE(kept, start + 1e-12);
  // the same run without held-out selection ends worse on those blocks (so the check above can fail)
  to.holdout = 0;
  cache::train_compressor(free_run, {s}, to, true, 10000.0);
  EXPECT_GT(cache::attention_reconstruction_loss(free_run, h, true, 10000.0).item<double>(), start);
}

TEST(Compressive, BlockErrorsAgainstRank) {
  OneThread one;
  torch::manual_seed(11);
  const int64_t D = 8, delta = 8, G = 12;
  cache::CompressionSample s;
  s.keys = torch::randn({G, delta, D}) * 1.5;
  s.values = torch::randn({G, delta, D});
  s.key_pos = torch::arange(delta, torch::kFloat64).repeat({G, 1}) + 3.0;
  s.queries = torch::randn({G, 5, D}) * 1.5;
  for (const std::string method : {"svd", "mean"}) {
    auto full = cache::compression_block_errors(s, delta, method, true, 10000.0);
    ASSERT_EQ(full.size(), static_cast<size_t>(G));
    for (double e : full) EXPECT_LT(e, 1e-6) << method << ": r = Δ is lossless (RoPE angles are float32)";
    auto mean_of = [](const std::vector<double>& x) {
      double m = 0;
      for (double v : x) m += v / static_cast<double>(x.size());
      return m;
    };
    const double e1 = mean_of(cache::compression_block_errors(s, 1, method, true, 10000.0));
    const double e4 = mean_of(cache::compression_block_errors(s, 4, method, true, 10000.0));
    EXPECT_GT(e1, 0.05) << method;
    EXPECT_LT(e4, e1) << method;
  }
  // an untrained learned compressor is mean pooling of the keys as given: the same errors without RoPE (with
  // RoPE, method mean averages the rotated keys instead)
  cache::LearnedCompressor c(D, delta, 2);
  auto learned = cache::compression_block_errors(s, 2, "learned", false, 10000.0, &c);
  auto mean = cache::compression_block_errors(s, 2, "mean", false, 10000.0);
  for (int64_t g = 0; g < G; ++g) EXPECT_NEAR(learned[g], mean[g], 1e-5) << g;
  EXPECT_THROW(cache::compression_block_errors(s, 2, "learned", true, 10000.0), ConfigError);
  EXPECT_THROW(cache::compression_block_errors(s, 2, "pca", true, 10000.0), ConfigError);
}

TEST(RingCache, DecodeEqualsTheCompressivePolicyOverALongStream) {
  OneThread one;
  torch::manual_seed(5);
  const int64_t H = 3, D = 8;
  cache::CacheOptions o;
  o.policy = "compressive";
  o.method = "mean";
  o.sink_tokens = 2, o.raw_slots = 12, o.delta = 4, o.rank = 2, o.summary_slots = 6, o.recompress_depth = 1;
  auto policy = cache::make_cache(o, geom(H, D));
  cache::RingCacheOptions ro;
  ro.sink_tokens = 2, ro.raw_slots = 12, ro.delta = 4, ro.rank = 2, ro.summary_slots = 6, ro.rope_theta = 10000;
  cache::RingCompressiveCache ring(ro, 1, H, D, torch::TensorOptions().dtype(torch::kFloat64));
  const int64_t bytes = ring.bytes();
  double worst = 0;
  for (int64_t t = 0; t < 150; ++t) {  // 150 tokens: 34 compressions, summaries rotate many times
    auto q = torch::randn({1, H, 1, D}, torch::kFloat64) * 2, k = torch::randn({1, H, 1, D}, torch::kFloat64) * 2;
    auto v = torch::randn({1, H, 1, D}, torch::kFloat64);
    auto want = cache::attend_through_cache(q, k, v, torch::tensor({t}, torch::kInt64), *policy, true, 10000.0);
    if (t == 7) {  // a bad call (wrong head count) is an error naming the shape and leaves the ring as it was
      try {
        ring.decode(q.narrow(1, 0, 2), k.narrow(1, 0, 2), v.narrow(1, 0, 2));
        ADD_FAILURE() << "no error for a wrong shape";
      } catch (const dysra::Error& e) {
        EXPECT_NE(std::string(e.what()).find("q must be [1, 3, 1, 8]"), std::string::npos) << e.what();
      }
      EXPECT_EQ(ring.tokens(), 7);
    }
    auto got = ring.decode(q, k, v);
    worst = std::max(worst, (got - want).abs().max().item<double>());
    // the policy's bias is float32 (log 2 to ~1e-8), the ring's float64
    ASSERT_TRUE(torch::allclose(got, want, 1e-6, 1e-6)) << "step " << t << "\n" << got << "\n" << want;
    EXPECT_EQ(ring.held_slots(), policy->memory().slots / H) << "step " << t;
  }
  EXPECT_EQ(ring.bytes(), bytes) << "constant memory";
  EXPECT_EQ(ring.tokens(), 150);
  EXPECT_LT(worst, 1e-6);
  // append (no attention) then decode equals decode all along
  cache::RingCompressiveCache a(ro, 1, H, D, torch::TensorOptions().dtype(torch::kFloat64)),
      b(ro, 1, H, D, torch::TensorOptions().dtype(torch::kFloat64));
  auto ks = torch::randn({1, H, 40, D}, torch::kFloat64), vs = torch::randn({1, H, 40, D}, torch::kFloat64);
  a.append(ks, vs);
  for (int64_t t = 0; t < 40; ++t) b.decode(torch::zeros({1, H, 1, D}, torch::kFloat64), ks.narrow(2, t, 1), vs.narrow(2, t, 1));
  auto q = torch::randn({1, H, 1, D}, torch::kFloat64), k = torch::randn({1, H, 1, D}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(a.decode(q, k, ks.narrow(2, 0, 1)), b.decode(q, k, ks.narrow(2, 0, 1)), 1e-12, 1e-12));
  cache::RingCacheOptions bad = ro;
  bad.delta = 5;
  EXPECT_THROW(cache::RingCompressiveCache(bad, 1, H, D, torch::TensorOptions()), ConfigError);
}

// ---- through the attention layer -----------------------------------------------------------------------------

TEST(CacheLayer, FullPolicyEqualsAttentionForward) {
  torch::manual_seed(8);
  models::ModelOptions mo;
  mo.d_model = 16, mo.n_heads = 2;
  layers::AttentionImpl attn(mo, 0);
  attn.eval();
  auto x = torch::randn({2, 13, 16});
  auto ref = attn.forward(x, {}, nullptr);
  layers::MixerState st;
  st.kv_cache = std::shared_ptr<cache::KVCachePolicy>(cache::make_cache({}, geom(2, 8)));
  std::vector<torch::Tensor> ys;
  int64_t s = 0;
  for (int64_t len : {5, 1, 7}) {
    ys.push_back(attn.forward(x.slice(1, s, s + len), {}, &st));
    s += len;
  }
  EXPECT_TRUE(torch::allclose(torch::cat(ys, 1), ref, 1e-5, 1e-6));
  EXPECT_EQ(st.offset, 13);
  EXPECT_EQ(st.kv_cache->memory().slots, 2 * 2 * 13);
}

TEST(CacheLayer, WindowPolicyDecodeEqualsContextBudget) {
  // Decoding one token at a time with a window of W − 1 cached tokens == attention with context_budget W.
  torch::manual_seed(9);
  models::ModelOptions mo;
  mo.d_model = 16, mo.n_heads = 2, mo.context_budget = 5;
  layers::AttentionImpl budgeted(mo, 0);
  mo.context_budget = 0;
  layers::AttentionImpl plain(mo, 0);
  {
    torch::NoGradGuard ng;
    auto src = budgeted.named_parameters();
    for (auto& p : plain.named_parameters()) p.value().copy_(src[p.key()]);
  }
  auto x = torch::randn({1, 17, 16});
  auto ref = budgeted.forward(x, {}, nullptr);
  CacheOptions o;
  o.policy = "window";
  o.budget = 4;
  layers::MixerState st;
  st.kv_cache = std::shared_ptr<cache::KVCachePolicy>(cache::make_cache(o, geom(2, 8)));
  std::vector<torch::Tensor> ys;
  for (int64_t t = 0; t < 17; ++t) ys.push_back(plain.forward(x.slice(1, t, t + 1), {}, &st));
  EXPECT_TRUE(torch::allclose(torch::cat(ys, 1), ref, 1e-5, 1e-6));
  // context_budget together with a cache policy is refused
  layers::MixerState st2;
  st2.kv_cache = std::shared_ptr<cache::KVCachePolicy>(cache::make_cache(o, geom(2, 8)));
  EXPECT_THROW(budgeted.forward(x, {}, &st2), ConfigError);
}

TEST(CacheModel, RazorProbeAndStatesOnATinyModel) {
  torch::manual_seed(10);
  models::ModelOptions mo;
  mo.d_model = 16, mo.n_heads = 2, mo.n_layers = 3;
  models::LanguageModel lm(mo, 64);
  cache::RazorProbeOptions po;
  po.segment = 20;
  po.repeats = 3;
  po.vocab_high = 64;
  auto res = cache::razor_probe(*lm, po);
  EXPECT_EQ(res.induction.sizes(), (std::vector<int64_t>{3, 2}));
  // probabilities: every score in [0, 1]
  EXPECT_GE(res.induction.min().item<double>(), 0.0);
  EXPECT_LE(res.echo.max().item<double>(), 1.0);
  EXPECT_GE(res.retrieval_heads.size(), 1u);  // ceil(0.14·6) = 1 by induction (+ 1 by echo unless the same)
  EXPECT_LE(res.retrieval_heads.size(), 2u);
  CacheOptions o;
  o.policy = "razor";
  o.window = 4;
  o.retrieval_heads = res.retrieval_heads;
  auto states = cache::make_layer_states(*lm, o);
  torch::NoGradGuard ng;
  auto toks = torch::randint(0, 64, {1, 40}, torch::kInt64);
  lm->hidden(toks.slice(1, 0, 30), {}, &states);
  lm->hidden(toks.slice(1, 30, 40), {}, &states);
  auto mem = cache::total_memory(states);
  const int64_t n_ret = static_cast<int64_t>(res.retrieval_heads.size());
  EXPECT_EQ(mem.slots, n_ret * 40 + (6 - n_ret) * (4 + 4 + 1));
}
