// The KV cache base (row storage, view, memory, state), the eviction policies (full, window, streaming_llm,
// h2o, snapkv, pyramidkv, razor), block compression, and attention through a cache.
#include "dysra/cache/kv_cache.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "cache/policies.h"
#include "dysra/core/error.h"

namespace dysra::cache {
namespace F = torch::nn::functional;

namespace detail {

torch::Tensor cat_rows(const torch::Tensor& a, const torch::Tensor& b) {
  if (!a.defined()) return b;
  if (!b.defined()) return a;
  return torch::cat({a, b}, 0);
}

KVCachePolicy::Row slice(const KVCachePolicy::Row& row, int64_t b, int64_t e) {
  KVCachePolicy::Row out;
  out.k = row.k.slice(0, b, e);
  out.v = row.v.slice(0, b, e);
  out.pos = row.pos.slice(0, b, e);
  out.count = row.count.slice(0, b, e);
  out.depth = row.depth.slice(0, b, e);
  out.token = row.token.slice(0, b, e);
  out.score = row.score.slice(0, b, e);
  if (row.obs.defined()) out.obs = row.obs.slice(1, b, e);
  return out;
}

KVCachePolicy::Row concat(const std::vector<KVCachePolicy::Row>& parts) {
  std::vector<torch::Tensor> k, v, pos, count, depth, token, score, obs;
  bool has_obs = true;
  for (const auto& p : parts) {
    k.push_back(p.k), v.push_back(p.v), pos.push_back(p.pos), count.push_back(p.count);
    depth.push_back(p.depth), token.push_back(p.token), score.push_back(p.score);
    if (p.obs.defined()) obs.push_back(p.obs); else has_obs = false;
  }
  KVCachePolicy::Row out;
  out.k = torch::cat(k, 0), out.v = torch::cat(v, 0), out.pos = torch::cat(pos, 0);
  out.count = torch::cat(count, 0), out.depth = torch::cat(depth, 0), out.token = torch::cat(token, 0);
  out.score = torch::cat(score, 0);
  if (has_obs && !obs.empty()) out.obs = torch::cat(obs, 1);
  return out;
}

}  // namespace detail

// ---- base ---------------------------------------------------------------------------------------------------

KVCachePolicy::KVCachePolicy(CacheOptions options, LayerInfo info)
    : opt_(std::move(options)), info_(std::move(info)), layer_budget_(opt_.budget) {
  cache_positions_ = opt_.positions == "cache" || (opt_.positions.empty() && opt_.policy == "streaming_llm");
}

int64_t KVCachePolicy::head_budget(int64_t head) const {
  if (!head_budgets_.empty()) return head_budgets_.at(static_cast<size_t>(head));
  return layer_budget_;
}

void KVCachePolicy::set_layer_budget(int64_t budget) {
  DYSRA_CHECK_T(ConfigError, budget >= 0, "cache.budget: must be >= 0, got ", budget);
  layer_budget_ = budget;
}

void KVCachePolicy::set_head_budgets(std::vector<int64_t> budgets) {
  DYSRA_CHECK_T(ConfigError, budgets.empty() || static_cast<int64_t>(budgets.size()) == info_.n_heads,
                "cache: per-head budgets must list one value per head (", info_.n_heads, "), got ", budgets.size());
  for (auto b : budgets) DYSRA_CHECK_T(ConfigError, b >= 0, "cache: per-head budget must be >= 0, got ", b);
  head_budgets_ = std::move(budgets);
}

void KVCachePolicy::keep_only(Row& row, const torch::Tensor& keep) {
  auto idx = std::get<0>(keep.to(torch::kInt64).to(row.k.device()).sort());
  auto idx_cpu = idx.to(torch::kCPU);
  row.k = row.k.index_select(0, idx);
  row.v = row.v.index_select(0, idx);
  row.pos = row.pos.index_select(0, idx_cpu);
  row.count = row.count.index_select(0, idx_cpu);
  row.depth = row.depth.index_select(0, idx_cpu);
  row.token = row.token.index_select(0, idx_cpu);
  row.score = row.score.index_select(0, idx_cpu);
  if (row.obs.defined()) row.obs = row.obs.index_select(1, idx_cpu);
}

CacheView KVCachePolicy::view() const {
  CacheView out;
  const int64_t H = info_.n_heads, D = info_.head_dim;
  if (rows_.empty()) return out;
  int64_t n = 0;
  for (const auto& r : rows_) n = std::max(n, r.size());
  const auto dev = rows_[0].k.device();
  const auto dt = rows_[0].k.scalar_type();
  const int64_t R = static_cast<int64_t>(rows_.size());
  std::vector<torch::Tensor> ks, vs, ps, bs;
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  std::vector<double> qoff(static_cast<size_t>(R));
  for (int64_t i = 0; i < R; ++i) {
    const auto& r = rows_[static_cast<size_t>(i)];
    const int64_t m = r.size(), pad = n - m;
    auto pos = cache_positions_ ? torch::arange(m, f64) : r.pos;
    auto bias = r.count.log().to(torch::kFloat32);
    qoff[static_cast<size_t>(i)] = static_cast<double>(m);
    if (pad > 0) {
      ks.push_back(torch::cat({r.k, torch::zeros({pad, D}, r.k.options())}, 0));
      vs.push_back(torch::cat({r.v, torch::zeros({pad, D}, r.v.options())}, 0));
      pos = torch::cat({pos, torch::zeros({pad}, f64)});
      bias = torch::cat({bias, torch::full({pad}, -std::numeric_limits<float>::infinity())});
    } else {
      ks.push_back(r.k), vs.push_back(r.v);
    }
    ps.push_back(pos), bs.push_back(bias);
  }
  out.keys = torch::stack(ks).view({batch_, H, n, D});
  out.values = torch::stack(vs).view({batch_, H, n, D});
  out.positions = torch::stack(ps).view({batch_, H, n}).to(dev);
  out.bias = torch::stack(bs).view({batch_, H, n}).to(dev);
  if (cache_positions_) out.query_offset = torch::tensor(qoff, f64).view({batch_, H}).to(dev);
  (void)dt;
  return out;
}

void KVCachePolicy::append(const KVAppend& in) {
  const int64_t H = info_.n_heads, D = info_.head_dim;
  DYSRA_CHECK(in.keys.defined() && in.keys.dim() == 4 && in.keys.size(1) == H && in.keys.size(3) == D,
              "cache: keys must be [B, ", H, ", L, ", D, "], got ", in.keys.defined() ? in.keys.sizes() : at::IntArrayRef{});
  DYSRA_CHECK(in.values.defined() && in.values.sizes() == in.keys.sizes(), "cache: values must have the shape of keys ",
              in.keys.sizes());
  const int64_t B = in.keys.size(0), L = in.keys.size(2);
  DYSRA_CHECK(in.positions.defined() && in.positions.dim() == 1 && in.positions.size(0) == L,
              "cache: positions must be [L] = [", L, "]");
  if (rows_.empty()) {
    batch_ = B;
    rows_.resize(static_cast<size_t>(B * H));
    for (auto& r : rows_) {
      r.k = torch::empty({0, D}, in.keys.options());
      r.v = torch::empty({0, D}, in.values.options());
      auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
      r.pos = torch::empty({0}, f64), r.count = torch::empty({0}, f64), r.score = torch::empty({0}, f64);
      r.depth = torch::empty({0}, torch::kInt64), r.token = torch::empty({0}, torch::kInt64);
    }
  }
  DYSRA_CHECK(B == batch_, "cache: batch size changed from ", batch_, " to ", B);
  int64_t nv = 0;
  for (const auto& r : rows_) nv = std::max(nv, r.size());
  torch::Tensor probs;
  if (in.probs.defined()) {
    DYSRA_CHECK(in.probs.dim() == 4 && in.probs.size(0) == B && in.probs.size(1) == H && in.probs.size(2) == L &&
                    in.probs.size(3) == nv + L,
                "cache: probs must be [B, H, L, N_view + L] = [", B, ", ", H, ", ", L, ", ", nv + L, "], got ",
                in.probs.sizes());
    probs = in.probs.detach().to(torch::kCPU, torch::kFloat64);
  } else {
    DYSRA_CHECK(!needs_attention(), "cache: policy '", name(), "' needs the attention probabilities (KVAppend::probs)");
  }
  on_append(in, nv);
  auto pos_cpu = in.positions.to(torch::kCPU, torch::kInt64);
  auto kd = in.keys.detach(), vd = in.values.detach();
  const int64_t w = std::max<int64_t>(opt_.obs_window, 1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t ri = b * H + h;
      auto& r = rows_[static_cast<size_t>(ri)];
      const int64_t n = r.size();
      auto new_score = torch::zeros({L}, torch::kFloat64);
      if (probs.defined()) {
        auto p = probs[b][h];                                   // [L, nv + L]
        auto p_old = p.slice(1, 0, n), p_new = p.slice(1, nv, nv + L);
        r.score = r.score + p_old.sum(0);
        new_score = p_new.sum(0);
        auto rows_new = torch::cat({p_old, p_new}, 1);            // [L, n + L]
        auto obs = r.obs.defined() ? torch::cat({r.obs, torch::zeros({r.obs.size(0), L}, torch::kFloat64)}, 1)
                                   : torch::zeros({0, n + L}, torch::kFloat64);
        obs = torch::cat({obs, rows_new}, 0);
        if (obs.size(0) > w) obs = obs.slice(0, obs.size(0) - w, obs.size(0));
        r.obs = obs.contiguous();
      } else if (r.obs.defined()) {
        r.obs = torch::cat({r.obs, torch::zeros({r.obs.size(0), L}, torch::kFloat64)}, 1);
      }
      r.k = torch::cat({r.k, kd[b][h]}, 0);
      r.v = torch::cat({r.v, vd[b][h]}, 0);
      r.pos = torch::cat({r.pos, pos_cpu.to(torch::kFloat64)});
      r.count = torch::cat({r.count, torch::ones({L}, torch::kFloat64)});
      r.depth = torch::cat({r.depth, torch::zeros({L}, torch::kInt64)});
      r.token = torch::cat({r.token, pos_cpu});
      r.score = torch::cat({r.score, new_score});
    }
  seen_ += L;
  for (int64_t ri = 0; ri < static_cast<int64_t>(rows_.size()); ++ri) enforce(rows_[static_cast<size_t>(ri)], ri);
}

MemoryReport KVCachePolicy::memory() const {
  MemoryReport m;
  m.heads.resize(static_cast<size_t>(info_.n_heads));
  for (size_t i = 0; i < rows_.size(); ++i) {
    const auto& r = rows_[i];
    auto& hm = m.heads[i % static_cast<size_t>(info_.n_heads)];
    const int64_t n = r.size();
    const int64_t raw = n == 0 ? 0 : (r.depth == 0).sum().item<int64_t>();
    const int64_t kv = n * info_.head_dim * (r.k.element_size() + r.v.element_size());
    hm.slots += n, hm.raw += raw, hm.summaries += n - raw;
    hm.bytes += kv + n * kEntryMetaBytes;
    m.kv_bytes += kv;
    const int64_t budget = head_budget(static_cast<int64_t>(i) % info_.n_heads);
    const int64_t cap = std::max(budget, n);
    m.capacity_slots += cap;
    m.capacity_bytes += cap * (info_.head_dim * (r.k.element_size() + r.v.element_size()) + kEntryMetaBytes);
  }
  for (const auto& h : m.heads) m.slots += h.slots, m.bytes += h.bytes;
  return m;
}

std::map<std::string, torch::Tensor> KVCachePolicy::state() const {
  std::map<std::string, torch::Tensor> s;
  s["meta"] = torch::tensor({seen_, batch_, layer_budget_, static_cast<int64_t>(rows_.size())}, torch::kInt64);
  s["head_budgets"] = torch::tensor(head_budgets_, torch::kInt64);
  for (size_t i = 0; i < rows_.size(); ++i) {
    const auto& r = rows_[i];
    const std::string p = "row" + std::to_string(i) + ".";
    s[p + "k"] = r.k, s[p + "v"] = r.v, s[p + "pos"] = r.pos, s[p + "count"] = r.count;
    s[p + "depth"] = r.depth, s[p + "token"] = r.token, s[p + "score"] = r.score;
    if (r.obs.defined()) s[p + "obs"] = r.obs;
  }
  return s;
}

void KVCachePolicy::load_state(const std::map<std::string, torch::Tensor>& s) {
  auto get = [&](const std::string& key) -> const torch::Tensor& {
    auto it = s.find(key);
    DYSRA_CHECK(it != s.end(), "cache: state of policy '", name(), "' lacks '", key, "'");
    return it->second;
  };
  auto meta = get("meta").to(torch::kCPU);
  DYSRA_CHECK(meta.numel() == 4, "cache: bad state 'meta'");
  seen_ = meta[0].item<int64_t>(), batch_ = meta[1].item<int64_t>(), layer_budget_ = meta[2].item<int64_t>();
  const int64_t R = meta[3].item<int64_t>();
  auto hb = get("head_budgets").to(torch::kCPU);
  head_budgets_.assign(hb.data_ptr<int64_t>(), hb.data_ptr<int64_t>() + hb.numel());
  rows_.assign(static_cast<size_t>(R), Row{});
  for (int64_t i = 0; i < R; ++i) {
    auto& r = rows_[static_cast<size_t>(i)];
    const std::string p = "row" + std::to_string(i) + ".";
    r.k = get(p + "k"), r.v = get(p + "v"), r.pos = get(p + "pos"), r.count = get(p + "count");
    r.depth = get(p + "depth"), r.token = get(p + "token"), r.score = get(p + "score");
    DYSRA_CHECK(r.k.dim() == 2 && r.k.size(1) == info_.head_dim, "cache: state row ", i, " keys must be [N, ",
                info_.head_dim, "], got ", r.k.sizes());
    auto it = s.find(p + "obs");
    if (it != s.end()) r.obs = it->second;
  }
}

// ---- policies -----------------------------------------------------------------------------------------------
namespace {

class FullCache final : public KVCachePolicy {
 public:
  using KVCachePolicy::KVCachePolicy;
  std::string name() const override { return "full"; }

 protected:
  void enforce(Row&, int64_t) override {}
};

class WindowCache final : public KVCachePolicy {
 public:
  using KVCachePolicy::KVCachePolicy;
  std::string name() const override { return "window"; }

 protected:
  void enforce(Row& row, int64_t r) override {
    const int64_t b = head_budget(r % info_.n_heads), n = row.size();
    if (b > 0 && n > b) row = detail::slice(row, n - b, n);
  }
};

class StreamingLLMCache final : public KVCachePolicy {
 public:
  using KVCachePolicy::KVCachePolicy;
  std::string name() const override { return "streaming_llm"; }

 protected:
  void enforce(Row& row, int64_t r) override {
    const int64_t b = head_budget(r % info_.n_heads), n = row.size(), s = opt_.sink_tokens;
    if (n <= b) return;
    row = detail::concat({detail::slice(row, 0, s), detail::slice(row, n - (b - s), n)});
  }
};

/// Keeps the last `recent` entries and the top (budget − recent) of the others by `scores`.
void keep_top(KVCachePolicy::Row& row, const torch::Tensor& scores, int64_t budget, int64_t recent,
              void (*keep_only)(KVCachePolicy::Row&, const torch::Tensor&)) {
  const int64_t n = row.size();
  if (n <= budget) return;
  const int64_t cand = n - recent, k = budget - recent;
  auto top = std::get<1>(scores.slice(0, 0, cand).topk(k, 0, /*largest=*/true, /*sorted=*/true));
  keep_only(row, torch::cat({top, torch::arange(cand, n, torch::kInt64)}));
}

class H2OCache final : public KVCachePolicy {
 public:
  using KVCachePolicy::KVCachePolicy;
  std::string name() const override { return "h2o"; }
  bool needs_attention() const override { return true; }

 protected:
  void enforce(Row& row, int64_t r) override {
    const int64_t b = head_budget(r % info_.n_heads);
    const int64_t recent = opt_.window > 0 ? opt_.window : b / 2;
    keep_top(row, row.score, b, std::min(recent, b), &KVCachePolicy::keep_only);
  }
};

torch::Tensor pool_scores(const torch::Tensor& s, int64_t kernel, const std::string& pooling) {
  if (kernel <= 1 || s.numel() == 0) return s;
  auto x = s.view({1, 1, -1});
  auto y = pooling == "avg" ? F::avg_pool1d(x, F::AvgPool1dFuncOptions(kernel).stride(1).padding(kernel / 2))
                            : F::max_pool1d(x, F::MaxPool1dFuncOptions(kernel).stride(1).padding(kernel / 2));
  return y.view({-1}).slice(0, 0, s.numel());
}

class SnapKVCache : public KVCachePolicy {
 public:
  using KVCachePolicy::KVCachePolicy;
  std::string name() const override { return "snapkv"; }
  bool needs_attention() const override { return true; }

 protected:
  void enforce(Row& row, int64_t r) override {
    const int64_t b = head_budget(r % info_.n_heads), n = row.size(), w = std::min(opt_.obs_window, b);
    if (n <= b) return;
    auto votes = row.obs.defined() && row.obs.size(0) > 0 ? row.obs.sum(0) : torch::zeros({n}, torch::kFloat64);
    auto pooled = pool_scores(votes.slice(0, 0, n - w), opt_.kernel_size, opt_.pooling);
    keep_top(row, torch::cat({pooled, votes.slice(0, n - w, n)}), b, w, &KVCachePolicy::keep_only);
  }
};

class PyramidKVCache final : public SnapKVCache {
 public:
  using SnapKVCache::SnapKVCache;
  std::string name() const override { return "pyramidkv"; }
  int64_t head_budget(int64_t head) const override {
    if (!head_budgets_.empty()) return KVCachePolicy::head_budget(head);
    auto b = pyramid_budgets(layer_budget_, opt_.obs_window, info_.n_layers, seen_, opt_.pyramid_beta);
    return b.at(static_cast<size_t>(info_.layer));
  }
};

class RazorCache final : public KVCachePolicy {
 public:
  RazorCache(const CacheOptions& o, const LayerInfo& info) : KVCachePolicy(o, info) {
    for (auto f : o.retrieval_heads)
      if (f / info.n_heads == info.layer) retrieval_.insert(f % info.n_heads);
  }
  std::string name() const override { return "razor"; }
  int64_t head_budget(int64_t head) const override {
    if (retrieval_.count(head)) return 0;
    return opt_.sink_tokens + opt_.window + 1;
  }

 protected:
  void enforce(Row& row, int64_t r) override {
    if (retrieval_.count(r % info_.n_heads)) return;
    // layout: [sinks (raw)] [compensation (depth 1), at most one] [recent raw]
    const int64_t n = row.size();
    auto depth = row.depth;
    const bool has_comp = n > 0 && (depth > 0).any().item<bool>();
    const int64_t n_raw = n - (has_comp ? 1 : 0);
    const int64_t s = std::min(opt_.sink_tokens, n_raw);
    int64_t lh = opt_.window;
    if (opt_.razor_ratio > 0)
      lh = std::max<int64_t>(lh, static_cast<int64_t>(static_cast<double>(seen_) / opt_.razor_ratio));
    if (n_raw <= s + lh) return;
    const int64_t comp_at = s, recent_begin = (has_comp ? s + 1 : s);
    const int64_t drop_end = n - lh;  // entries [recent_begin, drop_end) are dropped into the compensation token
    auto dropped = detail::slice(row, recent_begin, drop_end);
    std::vector<Row> parts{dropped};
    if (has_comp) parts.push_back(detail::slice(row, comp_at, comp_at + 1));
    auto all = detail::concat(parts);
    Row comp;
    const auto c = all.count;                      // [m] float64
    const double total = c.sum().item<double>();
    auto wk = c.to(all.k.scalar_type()).to(all.k.device()).unsqueeze(1);
    comp.k = ((all.k * wk).sum(0, true) / total);
    comp.v = ((all.v * wk).sum(0, true) / total);
    comp.pos = ((all.pos * c).sum() / total).view({1});
    comp.count = torch::full({1}, total, torch::kFloat64);
    comp.depth = torch::ones({1}, torch::kInt64);
    comp.token = torch::full({1}, -1, torch::kInt64);
    comp.score = (all.score).sum().view({1});
    if (row.obs.defined()) comp.obs = torch::zeros({row.obs.size(0), 1}, torch::kFloat64);
    row = detail::concat({detail::slice(row, 0, s), comp, detail::slice(row, drop_end, n)});
  }

 private:
  std::set<int64_t> retrieval_;
};

template <class P>
CacheFactory factory() {
  return [](const CacheOptions& o, const LayerInfo& i) -> std::unique_ptr<KVCachePolicy> {
    return std::make_unique<P>(o, i);
  };
}

}  // namespace

Registry<CacheFactory>& cache_registry() {
  static Registry<CacheFactory> r = [] {
    Registry<CacheFactory> reg("cache policy");
    reg.add("full", factory<FullCache>());
    reg.add("window", factory<WindowCache>());
    reg.add("streaming_llm", factory<StreamingLLMCache>());
    reg.add("h2o", factory<H2OCache>());
    reg.add("snapkv", factory<SnapKVCache>());
    reg.add("pyramidkv", factory<PyramidKVCache>());
    reg.add("razor", factory<RazorCache>());
    reg.add("compressive", detail::make_compressive);
    return reg;
  }();
  return r;
}

void validate(const CacheOptions& o, const LayerInfo& info) {
  DYSRA_CHECK_T(ConfigError, cache_registry().contains(o.policy), "cache.policy: unknown '", o.policy, "' (known: ",
                cache_registry().known(), ")");
  DYSRA_CHECK_T(ConfigError, info.n_heads >= 1 && info.head_dim >= 1 && info.n_layers >= 1 && info.layer >= 0 &&
                                 info.layer < info.n_layers,
                "cache: bad layer geometry (layer ", info.layer, " of ", info.n_layers, ", ", info.n_heads,
                " heads of ", info.head_dim, ")");
  DYSRA_CHECK_T(ConfigError, o.positions.empty() || o.positions == "original" || o.positions == "cache",
                "cache.positions: must be original or cache, got '", o.positions, "'");
  DYSRA_CHECK_T(ConfigError, o.sink_tokens >= 0, "cache.sink_tokens: must be >= 0, got ", o.sink_tokens);
  DYSRA_CHECK_T(ConfigError, o.window >= 0, "cache.window: must be >= 0, got ", o.window);
  const auto& p = o.policy;
  if (p == "window" || p == "streaming_llm" || p == "h2o" || p == "snapkv" || p == "pyramidkv")
    DYSRA_CHECK_T(ConfigError, o.budget >= 1, "cache.budget: policy '", p, "' needs a budget >= 1 slot per head");
  if (p == "streaming_llm")
    DYSRA_CHECK_T(ConfigError, o.budget > o.sink_tokens, "cache.budget (", o.budget,
                  ") must exceed cache.sink_tokens (", o.sink_tokens, ") for streaming_llm");
  if (p == "h2o")
    DYSRA_CHECK_T(ConfigError, o.window < o.budget, "cache.window (recent tokens, ", o.window,
                  ") must be < cache.budget (", o.budget, ") for h2o");
  if (p == "snapkv" || p == "pyramidkv") {
    DYSRA_CHECK_T(ConfigError, o.obs_window >= 1 && o.obs_window < o.budget, "cache.obs_window (", o.obs_window,
                  ") must be in [1, budget = ", o.budget, ")");
    DYSRA_CHECK_T(ConfigError, o.kernel_size >= 1 && o.kernel_size % 2 == 1, "cache.kernel_size: must be odd, got ",
                  o.kernel_size);
    DYSRA_CHECK_T(ConfigError, o.pooling == "max" || o.pooling == "avg", "cache.pooling: max or avg, got '",
                  o.pooling, "'");
    DYSRA_CHECK_T(ConfigError, o.pyramid_beta > 0, "cache.pyramid_beta: must be > 0");
  }
  if (p == "razor") {
    DYSRA_CHECK_T(ConfigError, o.window >= 1, "cache.window: razor needs the recent window S0 >= 1");
    DYSRA_CHECK_T(ConfigError, o.razor_ratio >= 0, "cache.razor_ratio: must be >= 0");
    for (auto f : o.retrieval_heads)
      DYSRA_CHECK_T(ConfigError, f >= 0 && f < info.n_layers * info.n_heads, "cache.retrieval_heads: ", f,
                    " is not a layer·n_heads + head index (< ", info.n_layers * info.n_heads, ")");
  }
  if (p == "compressive") {
    DYSRA_CHECK_T(ConfigError, o.delta >= 1 && o.delta <= o.raw_slots, "cache.delta: must be in [1, raw_slots = ",
                  o.raw_slots, "], got ", o.delta);
    DYSRA_CHECK_T(ConfigError, o.rank >= 1 && o.rank <= o.delta, "cache.rank: must be in [1, delta = ", o.delta,
                  "], got ", o.rank);
    DYSRA_CHECK_T(ConfigError, o.recompress_depth >= 1, "cache.recompress_depth: must be >= 1");
    const int64_t cap = o.summary_slots > 0 ? o.summary_slots : 4 * o.rank;
    DYSRA_CHECK_T(ConfigError, cap >= (o.recompress_depth > 1 ? 2 * o.rank : o.rank), "cache.summary_slots (", cap,
                  ") must hold at least ", (o.recompress_depth > 1 ? "2·rank" : "rank"), " summaries");
    DYSRA_CHECK_T(ConfigError, o.method == "svd" || o.method == "mean" || o.method == "learned",
                  "cache.method: svd, mean or learned, got '", o.method, "'");
    if (o.method == "learned") {
      DYSRA_CHECK_T(ConfigError, o.delta % o.rank == 0, "cache.method learned needs delta (", o.delta,
                    ") divisible by rank (", o.rank, ")");
      DYSRA_CHECK_T(ConfigError, info.compressor != nullptr,
                    "cache.method learned: no compressor for layer ", info.layer, " (set cache.compressor_path)");
    }
  }
}

std::unique_ptr<KVCachePolicy> make_cache(const CacheOptions& o, const LayerInfo& info) {
  validate(o, info);
  return cache_registry().get(o.policy)(o, info);
}

std::vector<int64_t> pyramid_budgets(int64_t B, int64_t w, int64_t L, int64_t T, double beta) {
  DYSRA_CHECK_T(ConfigError, B > w && w >= 0 && L >= 1, "pyramid_budgets: need budget > window >= 0 and layers >= 1");
  int64_t min_num = static_cast<int64_t>(std::floor(static_cast<double>(B - w) / beta));
  int64_t max_num = 2 * (B - w) - min_num;
  if (max_num >= T - w) {
    max_num = std::max<int64_t>(T - w, 0);
    min_num = 2 * (B - w) - max_num;
  }
  const int64_t steps = L > 1 ? (max_num - min_num) / (L - 1) : 0;
  std::vector<int64_t> out;
  for (int64_t l = 0; l < L; ++l) out.push_back(std::max<int64_t>(max_num - l * steps, 0) + w);
  return out;
}

// ---- block compression --------------------------------------------------------------------------------------

Block compress_block(const Block& in, int64_t r, const std::string& method, double rope_theta) {
  const int64_t n = in.k.size(0);
  DYSRA_CHECK(n >= 1 && r >= 1, "compress_block: need n >= 1 entries and r >= 1, got n = ", n, ", r = ", r);
  DYSRA_CHECK(in.v.size(0) == n && in.pos.size(0) == n && in.count.size(0) == n,
              "compress_block: k, v, pos, count must have the same length ", n);
  r = std::min(r, n);
  auto cnt = in.count.to(torch::kCPU, torch::kFloat64);
  torch::Tensor assign;  // [n] int64 group id
  if (method == "mean") {
    assign = torch::empty({n}, torch::kInt64);
    auto a = assign.accessor<int64_t, 1>();
    for (int64_t g = 0; g < r; ++g)
      for (int64_t i = g * n / r; i < (g + 1) * n / r; ++i) a[i] = g;
  } else if (method == "svd") {
    auto k = in.k.to(torch::kCPU, torch::kFloat64), v = in.v.to(torch::kCPU, torch::kFloat64);
    if (rope_theta > 0) k = rope_at(k, in.pos.to(torch::kCPU, torch::kFloat64), rope_theta);
    const double nk = std::max(k.norm().item<double>(), 1e-30), nv = std::max(v.norm().item<double>(), 1e-30);
    auto X = torch::cat({k / nk, v / nv}, 1);
    auto svd = torch::linalg_svd(X, /*full_matrices=*/false);
    auto U = std::get<0>(svd), S = std::get<1>(svd);
    const int64_t q = std::min<int64_t>(r, S.size(0));
    auto E = U.slice(1, 0, q) * S.slice(0, 0, q).unsqueeze(0);  // [n, q]
    auto lev = U.slice(1, 0, q).pow(2).sum(1);
    std::vector<int64_t> piv{lev.argmax().item<int64_t>()};
    auto dist = (E - E[piv[0]]).pow(2).sum(1);
    while (static_cast<int64_t>(piv.size()) < r) {
      const int64_t nxt = dist.argmax().item<int64_t>();
      if (dist[nxt].item<double>() <= 0) break;  // the rest coincide with pivots
      piv.push_back(nxt);
      dist = torch::minimum(dist, (E - E[nxt]).pow(2).sum(1));
    }
    auto C = E.index_select(0, torch::tensor(piv, torch::kInt64));
    assign = torch::cdist(E, C).argmin(1);
    for (int it = 0; it < 2; ++it) {
      auto G = static_cast<int64_t>(C.size(0));
      auto onehot = F::one_hot(assign, G).to(torch::kFloat64) * cnt.unsqueeze(1);  // [n, G]
      auto mass = onehot.sum(0);
      auto nonempty = (mass > 0).nonzero().view({-1});
      C = (onehot.t().mm(E) / mass.clamp_min(1e-300).unsqueeze(1)).index_select(0, nonempty);
      assign = torch::cdist(E, C).argmin(1);
    }
  } else {
    throw ConfigError("compress_block: method must be svd or mean, got '" + method + "'");
  }
  // group means (count-weighted), groups ordered by mean position, empty groups dropped
  const int64_t G = assign.max().item<int64_t>() + 1;
  auto W = F::one_hot(assign, G).to(torch::kFloat64) * cnt.unsqueeze(1);  // [n, G]
  auto mass = W.sum(0);
  auto keep = (mass > 0).nonzero().view({-1});
  W = W.index_select(1, keep), mass = mass.index_select(0, keep);
  auto Wn = (W / mass.unsqueeze(0)).t();  // [G', n]
  auto pos = Wn.mv(in.pos.to(torch::kCPU, torch::kFloat64));
  auto order = std::get<1>(pos.sort());
  Wn = Wn.index_select(0, order);
  Block out;
  auto Wd = Wn.to(in.k.device());
  out.pos = pos.index_select(0, order);
  if (rope_theta > 0) {
    // the mean of the rotated keys, stored unrotated at the mean position: rotated back there it is exactly that
    // mean, so a query's logit on the summary is the mean of its logits on the members
    auto kpos = in.pos.to(in.k.device(), torch::kFloat64);
    auto mean_rot = Wd.mm(rope_at(in.k.to(torch::kFloat64), kpos, rope_theta));
    out.k = rope_at(mean_rot, -out.pos.to(in.k.device()), rope_theta).to(in.k.scalar_type());
  } else {
    out.k = Wd.mm(in.k.to(torch::kFloat64)).to(in.k.scalar_type());
  }
  out.v = Wd.mm(in.v.to(torch::kFloat64)).to(in.v.scalar_type());
  out.count = mass.index_select(0, order);
  return out;
}

// ---- attention through the cache ----------------------------------------------------------------------------

torch::Tensor rope_at(const torch::Tensor& x, const torch::Tensor& pos, double theta) {
  const int64_t dh = x.size(-1);
  DYSRA_CHECK(dh % 2 == 0, "rope: head dim must be even, got ", dh);
  const int64_t half = dh / 2;
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(x.device());
  auto inv_freq = torch::pow(theta, -torch::arange(0, half, opts) / static_cast<double>(half));
  auto ang = pos.to(x.device(), torch::kFloat32).unsqueeze(-1) * inv_freq;
  auto cos = ang.cos().to(x.scalar_type()), sin = ang.sin().to(x.scalar_type());
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  return torch::cat({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, -1);
}

CacheMemory cache_memory(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                         const torch::Tensor& positions, const KVCachePolicy& cache, bool rope, double theta) {
  DYSRA_CHECK(q.dim() == 4 && k.sizes() == q.sizes() && v.sizes() == q.sizes(),
              "cache_memory: q, k, v must be [B, H, L, D] of one shape, got ", q.sizes(), k.sizes(), v.sizes());
  const int64_t B = q.size(0), H = q.size(1), L = q.size(2);
  DYSRA_CHECK(positions.defined() && positions.dim() == 1 && positions.size(0) == L,
              "cache_memory: positions must be [L] = [", L, "], got ", positions.sizes());
  auto view = cache.view();
  const int64_t N = view.size();
  auto dev = q.device();
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(dev);
  auto new_pos = view.query_offset.defined()
                     ? view.query_offset.unsqueeze(-1) + torch::arange(L, f64)       // [B, H, L]
                     : positions.to(dev, torch::kFloat64).view({1, 1, L}).expand({B, H, L});
  CacheMemory m;
  m.n_view = N;
  m.queries = rope ? rope_at(q, new_pos, theta) : q;
  auto kr = rope ? rope_at(k, new_pos, theta) : k;
  auto zeros = torch::zeros({B, H, L}, torch::TensorOptions().dtype(torch::kFloat32).device(dev));
  if (N > 0) {
    auto vk = rope ? rope_at(view.keys.to(q.scalar_type()), view.positions, theta) : view.keys.to(q.scalar_type());
    m.keys = torch::cat({vk, kr}, 2);
    m.values = torch::cat({view.values.to(v.scalar_type()), v}, 2);
    m.bias = torch::cat({view.bias.to(dev, torch::kFloat32), zeros}, 2);
  } else {
    m.keys = kr, m.values = v, m.bias = zeros;
  }
  return m;
}

void append_to_cache(KVCachePolicy& cache, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& positions, const torch::Tensor& probs, const torch::Tensor& queries) {
  KVAppend app;
  app.keys = k;
  app.values = v;
  app.positions = positions;
  app.probs = probs;
  app.queries = queries.defined() ? queries.detach() : queries;
  cache.append(app);
}

torch::Tensor attend_through_cache(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                   const torch::Tensor& positions, KVCachePolicy& cache, bool rope, double theta) {
  auto m = cache_memory(q, k, v, positions, cache, rope, theta);
  const int64_t B = q.size(0), H = q.size(1), L = q.size(2), D = q.size(3), N = m.n_view;
  auto dev = q.device();
  // causal among the new tokens; the view's count bias (log m) and padding (−inf) for every query
  auto mask = torch::zeros({L, N + L}, torch::TensorOptions().dtype(torch::kFloat32).device(dev));
  auto tri = torch::ones({L, L}, torch::TensorOptions().dtype(torch::kBool).device(dev)).triu(1);
  mask.slice(1, N, N + L).masked_fill_(tri, -std::numeric_limits<float>::infinity());
  auto full_mask = mask.view({1, 1, L, N + L}) + m.bias.unsqueeze(2);  // [B, H, L, N + L]
  torch::Tensor y, probs;
  if (cache.needs_attention()) {
    auto logits = torch::matmul(m.queries.to(torch::kFloat32), m.keys.to(torch::kFloat32).transpose(-1, -2)) /
                      std::sqrt(static_cast<double>(D)) +
                  full_mask;
    probs = torch::softmax(logits, -1);
    y = torch::matmul(probs.to(v.scalar_type()), m.values);
  } else {
    y = at::scaled_dot_product_attention(m.queries, m.keys, m.values, full_mask.expand({B, H, L, N + L}).to(q.scalar_type()),
                                         0.0, false);
  }
  append_to_cache(cache, k, v, positions, probs, m.queries);
  return y;
}

}  // namespace dysra::cache
