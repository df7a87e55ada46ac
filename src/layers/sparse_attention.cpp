#include "dysra/layers/sparse_attention.h"

#include <torch/torch.h>

#include <algorithm>
#include <random>
#include <unordered_set>

#include "dysra/cache/kv_cache.h"
#include "dysra/core/error.h"
#include "dysra/layers/rope.h"
#include "dysra/ops/gathered_attention.h"

namespace dysra::layers {

SparseAttentionImpl::SparseAttentionImpl(const models::ModelOptions& o, int64_t layer_index)
    : d_model_(o.d_model),
      n_heads_(o.n_heads),
      head_dim_(o.n_heads > 0 ? o.d_model / o.n_heads : 0),
      block_q_(o.sparse_attention.block_q),
      top_k_(o.sparse_attention.top_k),
      seed_(0x5eed0000ULL + static_cast<uint64_t>(layer_index)),
      rope_(o.position == "rope"),
      rope_theta_(o.rope_theta),
      index_source_(o.sparse_attention.index_source) {
  DYSRA_CHECK_T(ConfigError, o.n_heads >= 1 && o.d_model % o.n_heads == 0, "model.n_heads: d_model (", o.d_model,
                ") must be divisible by n_heads (", o.n_heads, ")");
  DYSRA_CHECK_T(ConfigError, !rope_ || head_dim_ % 2 == 0, "model.position: rope needs an even head dim, got ",
                head_dim_);
  DYSRA_CHECK_T(ConfigError, block_q_ >= 1, "model.sparse_attention.block_q: must be >= 1, got ", block_q_);
  DYSRA_CHECK_T(ConfigError, top_k_ >= 0, "model.sparse_attention.top_k: must be >= 0, got ", top_k_);
  DYSRA_CHECK_T(ConfigError, index_source_ == "random" || index_source_ == "window" || index_source_ == "oracle",
                "model.sparse_attention.index_source: unknown '", index_source_,
                "' (known: random, window, oracle)");
  auto lin = [&](const char* name) {
    return register_module(name, torch::nn::Linear(torch::nn::LinearOptions(d_model_, d_model_).bias(false)));
  };
  q_ = lin("q");
  k_ = lin("k");
  v_ = lin("v");
  o_ = lin("o");
}

torch::Tensor SparseAttentionImpl::build_indices(int64_t n_queries, int64_t memory_len) const {
  DYSRA_CHECK(index_source_ != "oracle",
              "sparse_attention: index_source 'oracle' needs the index lists from the task "
              "(MixerInputs::sparse_indices), none were given");
  const int64_t nb = (n_queries + block_q_ - 1) / block_q_;
  const int64_t bq = nb == 1 ? n_queries : block_q_;  // gathered_attention's block length
  const int64_t K = top_k_ + bq, first = memory_len - n_queries;
  auto idx = torch::full({nb, K}, -1, torch::kInt64);
  auto a = idx.accessor<int64_t, 2>();
  for (int64_t j = 0; j < nb; ++j) {
    const int64_t s = first + j * bq, e = std::min(s + bq, memory_len);  // the block's rows [s, e)
    int64_t col = 0;
    if (index_source_ == "window") {
      for (int64_t m = std::max<int64_t>(0, s - top_k_); m < e; ++m) a[j][col++] = m;
    } else {  // random: k distinct rows of [0, s) (Floyd's sampling), then the block itself
      std::vector<int64_t> picked;
      if (s <= top_k_) {
        for (int64_t m = 0; m < s; ++m) picked.push_back(m);
      } else {
        std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(s));
        std::unordered_set<int64_t> chosen;
        for (int64_t r = s - top_k_; r < s; ++r) {
          const int64_t m = std::uniform_int_distribution<int64_t>(0, r)(rng);
          chosen.insert(chosen.count(m) ? r : m);
        }
        picked.assign(chosen.begin(), chosen.end());
        std::sort(picked.begin(), picked.end());
      }
      for (int64_t m : picked) a[j][col++] = m;
      for (int64_t m = s; m < e; ++m) a[j][col++] = m;
    }
  }
  return idx;
}

torch::Tensor SparseAttentionImpl::index_lists(const MixerInputs& inputs, int64_t B, int64_t L, int64_t N,
                                               const torch::Device& device) const {
  const int64_t H = n_heads_, nb = (L + block_q_ - 1) / block_q_;
  if (inputs.sparse_indices.defined()) {
    const auto& si = inputs.sparse_indices;
    DYSRA_CHECK(si.dim() == 4 && (si.size(0) == B || si.size(0) == 1) && si.size(1) == H && si.size(2) == nb,
                "sparse_attention: MixerInputs::sparse_indices must be [B or 1, n_heads, n_blocks, K] = [", B, ", ",
                H, ", ", nb, ", K] (n_blocks = ceil(L / block_q) = ceil(", L, " / ", block_q_, ")), got ",
                si.sizes());
    return si.to(device).expand({B, H, nb, si.size(3)});
  }
  if (built_.n_queries != L || built_.memory_len != N || built_.lists.device() != device)  // (-1 before the first)
    built_ = {L, N, build_indices(L, N).to(device)};
  return built_.lists.view({1, 1, nb, -1}).expand({B, H, nb, -1});
}

torch::Tensor SparseAttentionImpl::forward_through_cache(const torch::Tensor& q, const torch::Tensor& k,
                                                         const torch::Tensor& v, const torch::Tensor& pos,
                                                         const MixerInputs& inputs, MixerState& state) {
  auto& cache = *state.kv_cache;
  DYSRA_CHECK_T(ConfigError, !cache.needs_attention(), "sparse_attention: cache policy '", cache.name(),
                "' scores tokens by the attention probabilities of every query, which gathered attention does not form; "
                "use full, window, streaming_llm, razor or compressive with sparse_attention layers");
  const int64_t B = q.size(0), L = q.size(1), H = n_heads_;
  auto qh = q.transpose(1, 2), kh = k.transpose(1, 2), vh = v.transpose(1, 2);  // [B, H, L, Dh] pre-RoPE
  auto m = cache::cache_memory(qh, kh, vh, pos, cache, rope_, rope_theta_);
  const int64_t N = m.n_view + L;
  // each row's entries right-aligned (padding first, order kept), so "the rows before the block" are the most
  // recent entries of every row alike
  auto order = std::get<1>(torch::sort(torch::isfinite(m.bias).to(torch::kInt32), /*stable=*/true, -1, false));
  auto row = order.unsqueeze(-1).expand({B, H, N, head_dim_});
  auto keys = m.keys.gather(2, row), vals = m.values.gather(2, row), bias = m.bias.gather(2, order);
  auto idx = index_lists(inputs, B, L, N, q.device()).to(torch::kInt64);  // [B, H, nb, K]
  const int64_t nb = idx.size(2), K = idx.size(3);
  // padding entries are dropped from the lists; a summary standing for c tokens is listed c times, which gives
  // its logit the count bias log c (gathered attention counts a row as often as it is listed)
  auto b_at = bias.unsqueeze(2).expand({B, H, nb, N}).gather(3, idx.clamp_min(0));
  auto ok = (idx >= 0) & torch::isfinite(b_at);
  idx = torch::where(ok, idx, torch::full({}, -1, idx.options()));
  auto c = torch::where(ok, b_at.to(torch::kFloat64).exp(), torch::zeros({}, torch::kFloat64));
  auto cnt = c.round().to(torch::kInt64);
  DYSRA_CHECK(((c - cnt.to(torch::kFloat64)).abs() <= 1e-3 * c.clamp_min(1)).all().item<bool>(),
              "sparse_attention: the cache holds entries of non-integer count; gathered attention applies the count "
              "bias by listing an entry count times");
  const int64_t cmax = std::max<int64_t>(1, cnt.max().item<int64_t>());
  if (cmax > 1) {
    auto rep = torch::arange(cmax, idx.options()).view({1, 1, 1, 1, cmax});
    idx = torch::where(rep < cnt.unsqueeze(-1), idx.unsqueeze(-1), torch::full({}, -1, idx.options()))
              .view({B, H, nb, K * cmax});
  }
  ops::GatheredAttentionOptions go;
  go.block_q = block_q_;
  go.causal = true;
  go.causal_offset = N - L;
  go.check_indices = inputs.sparse_indices.defined();
  auto y = ops::gathered_attention(m.queries.transpose(1, 2), keys.transpose(1, 2), vals.transpose(1, 2),
                                   idx.contiguous(), go).out;  // [B, L, H, Dh]
  cache::append_to_cache(cache, kh, vh, pos, {}, m.queries);
  state.offset += L;
  return o_(y.reshape({B, L, d_model_}));
}

torch::Tensor SparseAttentionImpl::forward(const torch::Tensor& x, const MixerInputs& inputs, MixerState* state) {
  DYSRA_CHECK(x.dim() == 3 && x.size(2) == d_model_, "sparse_attention: x must be [B, L, ", d_model_, "], got ",
              x.sizes());
  const int64_t B = x.size(0), L = x.size(1), H = n_heads_, Dh = head_dim_;
  const int64_t offset = state ? state->offset : 0;
  auto q = q_(x).view({B, L, H, Dh});
  auto k = k_(x).view({B, L, H, Dh});
  auto v = v_(x).view({B, L, H, Dh});
  auto pos = inputs.positions.defined() ? inputs.positions : default_positions(L, offset, x.device());
  if (state && state->kv_cache) return forward_through_cache(q, k, v, pos, inputs, *state);
  if (rope_) {
    q = apply_rope(q.transpose(1, 2), pos, rope_theta_).transpose(1, 2);
    k = apply_rope(k.transpose(1, 2), pos, rope_theta_).transpose(1, 2);
  }
  if (state) {
    if (!state->empty()) {
      DYSRA_CHECK(state->tensors.size() == 2 && state->tensors[0].dim() == 4 && state->tensors[0].size(0) == B &&
                      state->tensors[0].size(2) == H && state->tensors[0].size(3) == Dh,
                  "sparse_attention: state must hold K and V caches [B, T, H, Dh] with [B, H, Dh] = [", B, ", ",
                  H, ", ", Dh, "]");
      k = torch::cat({state->tensors[0], k}, 1);
      v = torch::cat({state->tensors[1], v}, 1);
    }
    state->tensors = {k.detach(), v.detach()};
    state->offset = offset + L;
  }
  const int64_t N = k.size(1);
  auto idx = index_lists(inputs, B, L, N, x.device());
  ops::GatheredAttentionOptions go;
  go.block_q = block_q_;
  go.causal = true;
  go.causal_offset = N - L;
  go.check_indices = inputs.sparse_indices.defined();  // the built-in lists are in range (no device sync for them)
  auto y = ops::gathered_attention(q, k, v, idx.contiguous(), go).out;  // [B, L, H, Dh]
  return o_(y.reshape({B, L, d_model_}));
}

LayerCost SparseAttentionImpl::cost(int64_t n, int64_t bpe) const {
  const double L = static_cast<double>(n), d = d_model_;
  const int64_t bq = std::min<int64_t>(block_q_, std::max<int64_t>(n, 1));
  const double keys = static_cast<double>(top_k_ + bq);  // logits computed per query (masked ones included)
  LayerCost c;
  c.params = 4 * d_model_ * d_model_;
  c.flops = 2.0 * L * d * 4 * d + 2.0 * 2.0 * L * keys * d + 3.0 * L * keys * n_heads_ + (rope_ ? 6.0 * L * d : 0);
  // weights, x, q/k/v/o activations, out, and the gathered key/value rows read per query block
  const double blocks = std::ceil(L / static_cast<double>(bq));
  c.bytes = bpe * (static_cast<double>(c.params) + L * 6 * d + 2.0 * blocks * keys * d);
  c.state_bytes = bpe * 2.0 * L * d;  // the K/V memory the index lists point into
  return c;
}

}  // namespace dysra::layers
