// Caches attached to a LanguageModel: per-layer states, memory totals, recording, Razor probe, AttentionRAG.
#include "dysra/cache/model.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "dysra/core/error.h"
#include "dysra/data/tokenizer.h"
#include "dysra/models/lm.h"

namespace dysra::cache {
namespace {

LayerInfo info_of(models::LanguageModelImpl& model, int64_t layer) {
  const auto& o = model.options();
  LayerInfo info;
  info.layer = layer;
  info.n_layers = static_cast<int64_t>(model.layer_types().size());
  info.n_heads = o.n_heads;
  info.head_dim = o.d_model / o.n_heads;
  info.rope = o.position == "rope";
  info.rope_theta = o.rope_theta;
  return info;
}

}  // namespace

std::vector<layers::MixerState> make_layer_states(models::LanguageModelImpl& model, const CacheOptions& options,
                                                  const std::vector<LearnedCompressor>& compressors) {
  const auto& types = model.layer_types();
  const int64_t n = static_cast<int64_t>(types.size());
  std::vector<LearnedCompressor> comps = compressors;
  if (options.method == "learned" && options.policy == "compressive" && comps.empty()) {
    DYSRA_CHECK_T(ConfigError, !options.compressor_path.empty(),
                  "cache.compressor_path: method learned needs trained compressors (dysra stream train-compressor)");
    comps = load_compressors(options.compressor_path, n, model.options().d_model / model.options().n_heads,
                             options.delta, options.rank);
  }
  std::vector<layers::MixerState> states(static_cast<size_t>(n));
  for (int64_t l = 0; l < n; ++l) {
    if (types[static_cast<size_t>(l)] != "attention" && types[static_cast<size_t>(l)] != "sparse_attention") continue;
    auto info = info_of(model, l);
    if (!comps.empty() && comps[static_cast<size_t>(l)]) {
      if (!model.parameters().empty()) comps[static_cast<size_t>(l)]->to(model.parameters()[0].device());
      info.compressor = comps[static_cast<size_t>(l)].ptr();
    }
    states[static_cast<size_t>(l)].kv_cache = std::shared_ptr<KVCachePolicy>(make_cache(options, info));
  }
  return states;
}

MemoryReport total_memory(const std::vector<layers::MixerState>& states, std::vector<MemoryReport>* per_layer) {
  MemoryReport total;
  if (per_layer) per_layer->clear();
  for (const auto& s : states) {
    MemoryReport m;
    if (s.kv_cache) m = s.kv_cache->memory();
    total.slots += m.slots, total.bytes += m.bytes, total.kv_bytes += m.kv_bytes;
    total.capacity_slots += m.capacity_slots, total.capacity_bytes += m.capacity_bytes;
    if (per_layer) per_layer->push_back(m);
  }
  return total;
}

std::vector<std::shared_ptr<RecordingCache>> record_attention(models::LanguageModelImpl& model,
                                                              const torch::Tensor& tokens, bool with_probs) {
  const auto& types = model.layer_types();
  std::vector<layers::MixerState> states(types.size());
  std::vector<std::shared_ptr<RecordingCache>> out(types.size());
  CacheOptions o;
  for (size_t l = 0; l < types.size(); ++l) {
    if (types[l] != "attention") continue;
    out[l] = std::make_shared<RecordingCache>(o, info_of(model, static_cast<int64_t>(l)), with_probs);
    states[l].kv_cache = out[l];
  }
  torch::NoGradGuard ng;
  model.hidden(tokens, {}, &states);
  return out;
}

std::vector<int64_t> select_retrieval_heads(const torch::Tensor& induction, const torch::Tensor& echo,
                                            double induction_frac, double echo_frac) {
  DYSRA_CHECK(induction.sizes() == echo.sizes(), "razor: induction and echo scores must have one shape");
  auto ind = induction.reshape({-1}).to(torch::kFloat64), ech = echo.reshape({-1}).to(torch::kFloat64);
  const int64_t n = ind.numel();
  auto top = [&](const torch::Tensor& s, double frac) {
    const int64_t k = std::min<int64_t>(n, static_cast<int64_t>(std::ceil(frac * static_cast<double>(n) - 1e-9)));
    std::vector<int64_t> v;
    if (k <= 0) return v;
    auto idx = std::get<1>(s.topk(k));
    for (int64_t i = 0; i < k; ++i) v.push_back(idx[i].item<int64_t>());
    return v;
  };
  std::set<int64_t> sel;
  for (auto i : top(ind, induction_frac)) sel.insert(i);
  for (auto i : top(ech, echo_frac)) sel.insert(i);
  return {sel.begin(), sel.end()};
}

RazorProbeResult razor_probe(models::LanguageModelImpl& model, const RazorProbeOptions& o) {
  DYSRA_CHECK_T(ConfigError, o.segment >= 2 && o.repeats >= 2, "razor probe: segment >= 2 and repeats >= 2");
  DYSRA_CHECK_T(ConfigError, o.vocab_low >= 0 && o.vocab_high > o.vocab_low && o.vocab_high <= model.vocab_size(),
                "razor probe: token range [", o.vocab_low, ", ", o.vocab_high, ") must lie in the vocabulary of ",
                model.vocab_size());
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  auto seg = torch::randint(o.vocab_low, o.vocab_high, {o.segment}, gen, torch::kInt64);
  auto tokens = seg.repeat({o.repeats}).unsqueeze(0);
  auto dev = model.parameters().empty() ? torch::Device(torch::kCPU) : model.parameters()[0].device();
  auto rec = record_attention(model, tokens.to(dev), true);
  const int64_t L = static_cast<int64_t>(rec.size()), H = model.options().n_heads, S = o.segment;
  const int64_t T = S * o.repeats;
  RazorProbeResult res;
  res.induction = torch::zeros({L, H}, torch::kFloat64);
  res.echo = torch::zeros({L, H}, torch::kFloat64);
  auto i = torch::arange(S, T, torch::kInt64);  // queries of repeats 1..
  for (int64_t l = 0; l < L; ++l) {
    if (!rec[static_cast<size_t>(l)]) continue;
    auto p = rec[static_cast<size_t>(l)]->last_probs[0].to(torch::kCPU, torch::kFloat64);  // [H, T, T] (view 0)
    for (int64_t h = 0; h < H; ++h) {
      auto a = p[h].index_select(0, i);  // [T - S, T]
      auto ind = a.gather(1, (i - S + 1).unsqueeze(1)).mean();
      auto ech = a.gather(1, (i - S).unsqueeze(1)).mean();
      res.induction[l][h] = ind, res.echo[l][h] = ech;
    }
  }
  // only attention layers compete
  std::vector<int64_t> attn_rows;
  for (int64_t l = 0; l < L; ++l)
    if (rec[static_cast<size_t>(l)]) attn_rows.push_back(l);
  auto rows = torch::tensor(attn_rows, torch::kInt64);
  auto sel = select_retrieval_heads(res.induction.index_select(0, rows), res.echo.index_select(0, rows),
                                    o.induction_frac, o.echo_frac);
  for (auto f : sel) res.retrieval_heads.push_back(attn_rows[static_cast<size_t>(f / H)] * H + f % H);
  std::sort(res.retrieval_heads.begin(), res.retrieval_heads.end());
  return res;
}

std::vector<size_t> select_sentences(const torch::Tensor& token_scores, const std::vector<size_t>& sentence_of,
                                     int64_t top_k) {
  DYSRA_CHECK(token_scores.dim() == 1 && token_scores.size(0) == static_cast<int64_t>(sentence_of.size()),
              "attention_rag: one sentence id per token score (", token_scores.numel(), " scores, ",
              sentence_of.size(), " ids)");
  const int64_t k = std::min<int64_t>(top_k, token_scores.numel());
  std::set<size_t> keep;
  if (k > 0) {
    auto idx = std::get<1>(token_scores.to(torch::kFloat64).topk(k));
    for (int64_t i = 0; i < k; ++i) keep.insert(sentence_of[static_cast<size_t>(idx[i].item<int64_t>())]);
  }
  return {keep.begin(), keep.end()};
}

std::vector<size_t> attention_rag_prune(models::LanguageModelImpl& model, const data::Tokenizer& tok,
                                        const std::vector<std::string>& sentences, const std::string& hint,
                                        const AttentionRagOptions& o) {
  DYSRA_CHECK_T(ConfigError, o.top_k >= 1 && o.chunk_tokens >= 1, "attention_rag: top_k and chunk_tokens must be >= 1");
  auto hint_ids = tok.encode(hint);
  DYSRA_CHECK(!hint_ids.empty(), "attention_rag: the hint prefix is empty");
  auto dev = model.parameters().empty() ? torch::Device(torch::kCPU) : model.parameters()[0].device();
  std::vector<double> scores;
  std::vector<size_t> sent_of;
  size_t s = 0;
  while (s < sentences.size()) {
    std::vector<int32_t> ids;
    std::vector<size_t> owner;
    while (s < sentences.size()) {
      auto t = tok.encode(sentences[s] + " ");
      if (!ids.empty() && static_cast<int64_t>(ids.size() + t.size()) > o.chunk_tokens) break;
      for (auto x : t) ids.push_back(x), owner.push_back(s);
      ++s;
    }
    const int64_t n_ctx = static_cast<int64_t>(ids.size());
    std::vector<int64_t> all(ids.begin(), ids.end());
    all.insert(all.end(), hint_ids.begin(), hint_ids.end());
    auto tokens = torch::tensor(all, torch::kInt64).unsqueeze(0).to(dev);
    auto rec = record_attention(model, tokens, true);
    auto agg = torch::zeros({n_ctx}, torch::kFloat64);
    for (auto& r : rec) {
      if (!r) continue;
      auto p = r->last_probs[0].to(torch::kCPU, torch::kFloat64);  // [H, T, T]
      agg += p.select(1, p.size(1) - 1).slice(1, 0, n_ctx).sum(0);
    }
    for (int64_t i = 0; i < n_ctx; ++i) scores.push_back(agg[i].item<double>()), sent_of.push_back(owner[static_cast<size_t>(i)]);
  }
  return select_sentences(torch::tensor(scores, torch::kFloat64), sent_of, o.top_k);
}

}  // namespace dysra::cache
