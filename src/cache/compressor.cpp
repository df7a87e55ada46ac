// The learned compressor (Compressive Transformer f_c), its attention-reconstruction loss and training.
#include "dysra/cache/compressor.h"

#include <torch/torch.h>

#include <cmath>

#include "dysra/cache/kv_cache.h"
#include "dysra/cache/model.h"
#include "dysra/core/error.h"
#include "dysra/models/lm.h"

namespace dysra::cache {

LearnedCompressorImpl::LearnedCompressorImpl(int64_t head_dim, int64_t delta, int64_t rank)
    : head_dim_(head_dim), delta_(delta), rank_(rank) {
  DYSRA_CHECK_T(ConfigError, head_dim >= 1 && rank >= 1 && delta >= rank && delta % rank == 0,
                "learned compressor: need head_dim >= 1 and delta (", delta, ") a multiple of rank (", rank, ")");
  const int64_t c = delta / rank;
  auto opts = torch::nn::Conv1dOptions(head_dim, head_dim, c).stride(c).bias(false);
  ck_ = register_module("ck", torch::nn::Conv1d(opts));
  cv_ = register_module("cv", torch::nn::Conv1d(opts));
  torch::NoGradGuard ng;
  auto w = torch::eye(head_dim).unsqueeze(2).expand({head_dim, head_dim, c}) / static_cast<double>(c);
  ck_->weight.copy_(w);
  cv_->weight.copy_(w);
}

std::pair<torch::Tensor, torch::Tensor> LearnedCompressorImpl::forward(const torch::Tensor& k, const torch::Tensor& v) {
  DYSRA_CHECK(k.dim() == 3 && k.size(1) == delta_ && k.size(2) == head_dim_ && v.sizes() == k.sizes(),
              "learned compressor: k and v must be [G, ", delta_, ", ", head_dim_, "], got ", k.sizes(), " ",
              v.sizes());
  auto w = ck_->weight;
  auto kc = ck_(k.to(w.scalar_type()).transpose(1, 2)).transpose(1, 2);
  auto vc = cv_(v.to(w.scalar_type()).transpose(1, 2)).transpose(1, 2);
  return {kc, vc};
}

namespace {
torch::Tensor attn(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& bias) {
  auto logits = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(q.size(-1)));
  if (bias.defined()) logits = logits + bias.unsqueeze(-2);
  return torch::matmul(torch::softmax(logits, -1), v);
}
}  // namespace

torch::Tensor attention_reconstruction_loss(LearnedCompressor& c, const CompressionSample& s, bool rope, double theta) {
  DYSRA_CHECK(s.keys.dim() == 3 && s.queries.dim() == 3 && s.key_pos.dim() == 2,
              "compressor loss: sample must hold keys [G, Δ, D], key_pos [G, Δ], queries [G, Q, D]");
  const int64_t G = s.keys.size(0), r = c->rank(), per = c->delta() / r;
  auto q = s.queries.to(torch::kFloat32), k = s.keys.to(torch::kFloat32), v = s.values.to(torch::kFloat32);
  auto kr = rope ? rope_at(k, s.key_pos, theta) : k;
  torch::Tensor target;
  {
    torch::NoGradGuard ng;
    target = attn(q, kr, v, {});
  }
  auto kv = c->forward(k, v);
  auto spos = s.key_pos.view({G, r, per}).mean(2);
  auto kc = rope ? rope_at(kv.first, spos, theta) : kv.first;
  auto bias = torch::full({G, r}, std::log(static_cast<double>(per)), kc.options());
  auto out = attn(q, kc, kv.second, bias);
  return (out - target).pow(2).mean();
}

std::vector<double> compression_block_errors(const CompressionSample& s, int64_t rank, const std::string& method,
                                             bool rope, double theta, LearnedCompressor* learned) {
  DYSRA_CHECK(s.keys.dim() == 3 && s.queries.dim() == 3 && s.key_pos.dim() == 2,
              "compression error: sample must hold keys [G, Δ, D], key_pos [G, Δ], queries [G, Q, D]");
  DYSRA_CHECK_T(ConfigError, rank >= 1, "compression error: rank must be >= 1, got ", rank);
  torch::NoGradGuard ng;
  const int64_t G = s.keys.size(0), delta = s.keys.size(1);
  auto q = s.queries.to(torch::kFloat64), k = s.keys.to(torch::kFloat64), v = s.values.to(torch::kFloat64);
  auto pos = s.key_pos.to(k.device(), torch::kFloat64);
  auto target = attn(q, rope ? rope_at(k, pos, theta) : k, v, {});  // [G, Q, D]
  auto rel = [&](const torch::Tensor& out, const torch::Tensor& ref) {
    return (out - ref).norm().item<double>() / std::max(ref.norm().item<double>(), 1e-300);
  };
  std::vector<double> errors;
  errors.reserve(static_cast<size_t>(G));
  if (method == "learned") {
    DYSRA_CHECK_T(ConfigError, learned && *learned, "compression error: method learned needs a compressor");
    auto& c = *learned;
    DYSRA_CHECK_T(ConfigError, c->delta() == delta && c->rank() == rank, "compression error: the compressor is for delta ",
                  c->delta(), ", rank ", c->rank(), "; the samples have delta ", delta, " and rank ", rank, " was asked");
    auto kv = c->forward(s.keys, s.values);
    const int64_t per = delta / rank;
    auto spos = pos.view({G, rank, per}).mean(2);
    auto kc = kv.first.to(torch::kFloat64), vc = kv.second.to(torch::kFloat64);
    auto bias = torch::full({G, rank}, std::log(static_cast<double>(per)), kc.options());
    auto out = attn(q, rope ? rope_at(kc, spos, theta) : kc, vc, bias);
    for (int64_t g = 0; g < G; ++g) errors.push_back(rel(out[g], target[g]));
    return errors;
  }
  DYSRA_CHECK_T(ConfigError, method == "svd" || method == "mean", "compression error: method must be svd, mean or learned, got '",
                method, "'");
  auto ones = torch::ones({delta}, torch::TensorOptions().dtype(torch::kFloat64).device(k.device()));
  for (int64_t g = 0; g < G; ++g) {
    Block b = compress_block({k[g], v[g], pos[g], ones}, rank, method, rope ? theta : 0.0);
    auto kc = rope ? rope_at(b.k, b.pos.to(b.k.device()), theta) : b.k;
    auto out = attn(q[g], kc, b.v, b.count.to(b.k.device()).log());
    errors.push_back(rel(out, target[g]));
  }
  return errors;
}

namespace {
CompressionSample select_blocks(const CompressionSample& s, const torch::Tensor& rows) {
  CompressionSample out;
  out.keys = s.keys.index_select(0, rows.to(s.keys.device()));
  out.values = s.values.index_select(0, rows.to(s.values.device()));
  out.key_pos = s.key_pos.index_select(0, rows.to(s.key_pos.device()));
  out.queries = s.queries.index_select(0, rows.to(s.queries.device()));
  return out;
}
}  // namespace

std::vector<double> train_compressor(LearnedCompressor& c, const std::vector<CompressionSample>& samples,
                                     const CompressorTrainOptions& o, bool rope, double theta) {
  DYSRA_CHECK_T(ConfigError, o.steps >= 0 && o.lr > 0, "compressor training: steps >= 0 and lr > 0");
  DYSRA_CHECK_T(ConfigError, o.holdout >= 0 && o.holdout < 1 && o.eval_every >= 1,
                "compressor training: holdout must be in [0, 1) and eval_every >= 1");
  // every `every`-th block of a sample is held out (0: none)
  const int64_t every = o.holdout > 0 ? std::max<int64_t>(2, static_cast<int64_t>(std::llround(1.0 / o.holdout))) : 0;
  std::vector<CompressionSample> train, held;
  for (const auto& s : samples) {
    if (!s.keys.defined() || s.keys.size(0) == 0) continue;
    const int64_t G = s.keys.size(0);
    if (every == 0 || G < 2) {
      train.push_back(s);
      continue;
    }
    std::vector<int64_t> tr, ho;
    for (int64_t g = 0; g < G; ++g) (g % every == every - 1 ? ho : tr).push_back(g);
    if (ho.empty()) ho.push_back(G - 1), tr.pop_back();
    train.push_back(select_blocks(s, torch::tensor(tr, torch::kInt64)));
    held.push_back(select_blocks(s, torch::tensor(ho, torch::kInt64)));
  }
  DYSRA_CHECK(!train.empty() || o.steps == 0, "compressor training: no samples");
  torch::manual_seed(o.seed);
  torch::optim::Adam opt(c->parameters(), torch::optim::AdamOptions(o.lr));
  auto held_loss = [&] {
    torch::NoGradGuard ng;
    double sum = 0;
    for (const auto& h : held) sum += attention_reconstruction_loss(c, h, rope, theta).item<double>();
    return sum;
  };
  auto snapshot = [&] {
    std::vector<torch::Tensor> p;
    for (const auto& t : c->parameters()) p.push_back(t.detach().clone());
    return p;
  };
  double best = held.empty() ? 0.0 : held_loss();
  auto best_params = held.empty() ? std::vector<torch::Tensor>{} : snapshot();
  std::vector<double> losses;
  for (int64_t step = 0; step < o.steps; ++step) {
    const auto& s = train[static_cast<size_t>(step) % train.size()];
    opt.zero_grad();
    auto loss = attention_reconstruction_loss(c, s, rope, theta);
    loss.backward();
    opt.step();
    losses.push_back(loss.item<double>());
    if (!held.empty() && ((step + 1) % o.eval_every == 0 || step + 1 == o.steps)) {
      const double h = held_loss();
      if (h < best) best = h, best_params = snapshot();
    }
  }
  if (!held.empty()) {
    torch::NoGradGuard ng;
    auto params = c->parameters();
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(best_params[i]);
  }
  return losses;
}

std::vector<CompressionSample> collect_compression_samples(models::LanguageModelImpl& model,
                                                           const torch::Tensor& tokens, int64_t delta,
                                                           int64_t n_queries) {
  DYSRA_CHECK_T(ConfigError, delta >= 1 && n_queries >= 1, "compressor samples: delta and n_queries must be >= 1");
  DYSRA_CHECK(tokens.dim() == 2 && tokens.size(0) == 1, "compressor samples: tokens must be [1, T]");
  const int64_t T = tokens.size(1);
  DYSRA_CHECK(T >= delta + n_queries, "compressor samples: need at least delta + n_queries = ", delta + n_queries,
              " tokens, got ", T);
  auto rec = record_attention(model, tokens, false);
  std::vector<CompressionSample> out(rec.size());
  for (size_t l = 0; l < rec.size(); ++l) {
    if (!rec[l]) continue;
    const auto& rows = rec[l]->rows();  // one row per head (batch 1), all T tokens, pre-RoPE
    auto q = rec[l]->last_queries[0];   // [H, T, D] post-RoPE
    std::vector<torch::Tensor> ks, vs, ps, qs;
    for (int64_t s = 0; s + delta + n_queries <= T; s += delta)
      for (size_t h = 0; h < rows.size(); ++h) {
        ks.push_back(rows[h].k.slice(0, s, s + delta));
        vs.push_back(rows[h].v.slice(0, s, s + delta));
        ps.push_back(rows[h].pos.slice(0, s, s + delta));
        qs.push_back(q[static_cast<int64_t>(h)].slice(0, s + delta, s + delta + n_queries));
      }
    out[l].keys = torch::stack(ks), out[l].values = torch::stack(vs);
    out[l].key_pos = torch::stack(ps), out[l].queries = torch::stack(qs);
  }
  return out;
}

void save_compressors(const std::string& path, const std::vector<LearnedCompressor>& cs) {
  torch::serialize::OutputArchive ar;
  std::vector<int64_t> present;
  for (size_t l = 0; l < cs.size(); ++l) {
    present.push_back(cs[l] ? 1 : 0);
    if (!cs[l]) continue;
    torch::serialize::OutputArchive sub;
    cs[l]->save(sub);
    ar.write("layer" + std::to_string(l), sub);
  }
  ar.write("present", torch::tensor(present, torch::kInt64));
  if (!cs.empty() && cs[0])
    ar.write("shape", torch::tensor({cs[0]->head_dim(), cs[0]->delta(), cs[0]->rank()}, torch::kInt64));
  ar.save_to(path);
}

std::vector<LearnedCompressor> load_compressors(const std::string& path, int64_t n_layers, int64_t head_dim,
                                                int64_t delta, int64_t rank) {
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(path);
  } catch (const std::exception& e) {
    throw DataError(path + ": cannot read compressors: " + e.what());
  }
  torch::Tensor present;
  ar.read("present", present);
  DYSRA_CHECK_T(DataError, present.numel() == n_layers, path, ": compressors for ", present.numel(),
                " layers, the model has ", n_layers);
  std::vector<LearnedCompressor> out(static_cast<size_t>(n_layers), LearnedCompressor{nullptr});
  for (int64_t l = 0; l < n_layers; ++l) {
    if (present[l].item<int64_t>() == 0) continue;
    LearnedCompressor c(head_dim, delta, rank);
    torch::serialize::InputArchive sub;
    DYSRA_CHECK_T(DataError, ar.try_read("layer" + std::to_string(l), sub), path, ": missing layer ", l);
    try {
      c->load(sub);
    } catch (const std::exception& e) {
      throw DataError(path + ": layer " + std::to_string(l) + ": compressor does not match head_dim " +
                      std::to_string(head_dim) + ", delta " + std::to_string(delta) + ", rank " +
                      std::to_string(rank) + ": " + e.what());
    }
    out[static_cast<size_t>(l)] = c;
  }
  return out;
}

}  // namespace dysra::cache
