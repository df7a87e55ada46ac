#include "dysra/models/lm.h"

#include <torch/torch.h>

#include "dysra/core/error.h"

namespace dysra::models {
namespace {

// RMSNorm (Zhang & Sennrich 2019): x / rms(x) · weight.
class RMSNormImpl : public torch::nn::Module {
 public:
  explicit RMSNormImpl(int64_t dim, double eps = 1e-6) : eps_(eps) { weight = register_parameter("weight", torch::ones({dim})); }
  torch::Tensor forward(const torch::Tensor& x) {
    auto xf = x.to(torch::kFloat32);
    return (xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps_)).to(x.scalar_type()) * weight;
  }
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

torch::nn::AnyModule make_norm(const ModelOptions& o) {
  if (o.norm == "rmsnorm") return torch::nn::AnyModule(RMSNorm(o.d_model));
  return torch::nn::AnyModule(torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.d_model})));
}

}  // namespace

std::vector<std::string> resolve_layers(const ModelOptions& o) {
  std::vector<std::string> layers = o.layers;
  if (layers.empty()) {
    DYSRA_CHECK_T(ConfigError, o.backbone != "dysra", "model.layers: backbone 'dysra' needs an explicit layer pattern");
    DYSRA_CHECK_T(ConfigError, o.n_layers >= 1, "model.n_layers: must be >= 1");
    const std::string type = o.backbone == "transformer" ? "attention" : o.backbone;
    layers.assign(static_cast<size_t>(o.n_layers), type);
  }
  for (size_t i = 0; i < layers.size(); ++i)
    DYSRA_CHECK_T(ConfigError, layers::mixer_registry().contains(layers[i]), "model.layers[", i, "]: unknown layer type '",
                  layers[i], "' (known: ", layers::mixer_registry().known(), ")");
  return layers;
}

BlockImpl::BlockImpl(const ModelOptions& o, const std::string& mixer, int64_t index) : dropout_(o.dropout) {
  norm1_ = make_norm(o);
  register_module("norm1", norm1_.ptr());
  mixer_ = layers::mixer_registry().get(mixer)(o, index);
  register_module("mixer", mixer_);
  if (o.mlp_ratio > 0) {
    norm2_ = make_norm(o);
    register_module("norm2", norm2_.ptr());
    mlp_ = register_module("mlp", torch::nn::Sequential(torch::nn::Linear(o.d_model, o.mlp_ratio * o.d_model),
                                                        torch::nn::GELU(),
                                                        torch::nn::Linear(o.mlp_ratio * o.d_model, o.d_model)));
  }
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, const layers::MixerInputs& inputs, layers::MixerState* state) {
  auto h = mixer_->forward(norm1_.forward(x), inputs, state);
  if (dropout_ > 0) h = torch::dropout(h, dropout_, is_training());
  auto y = x + h;
  if (mlp_) {
    auto m = mlp_->forward(norm2_.forward(y));
    if (dropout_ > 0) m = torch::dropout(m, dropout_, is_training());
    y = y + m;
  }
  return y;
}

LanguageModelImpl::LanguageModelImpl(const ModelOptions& o, int64_t vocab_size)
    : options_(o), vocab_size_(vocab_size), layer_types_(resolve_layers(o)) {
  DYSRA_CHECK_T(ConfigError, vocab_size >= 2, "model: vocab_size must be >= 2, got ", vocab_size);
  embed_ = register_module("embed", torch::nn::Embedding(vocab_size, o.d_model));
  if (o.position == "learned")
    pos_embed_ = register_module("pos_embed", torch::nn::Embedding(o.max_seq_len, o.d_model));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (size_t i = 0; i < layer_types_.size(); ++i) blocks_->push_back(Block(o, layer_types_[i], static_cast<int64_t>(i)));
  final_norm_ = make_norm(o);
  register_module("final_norm", final_norm_.ptr());
  head_ = register_module("head", torch::nn::Linear(torch::nn::LinearOptions(o.d_model, vocab_size).bias(false)));
  if (o.tie_embeddings) head_->weight = embed_->weight;
  torch::NoGradGuard ng;
  torch::nn::init::normal_(embed_->weight, 0.0, 0.02);
}

torch::Tensor LanguageModelImpl::hidden(const torch::Tensor& tokens, const layers::MixerInputs& inputs,
                                        std::vector<layers::MixerState>* states) {
  DYSRA_CHECK(tokens.dim() == 2 && tokens.scalar_type() == torch::kInt64, "model: tokens must be [B, L] int64, got ",
              tokens.sizes(), " ", tokens.scalar_type());
  if (states) {
    if (states->empty()) states->resize(blocks_->size());
    DYSRA_CHECK(states->size() == blocks_->size(), "model: expected ", blocks_->size(), " layer states, got ",
                states->size());
  }
  auto x = embed_(tokens);
  if (pos_embed_) {
    const int64_t offset = states ? (*states)[0].offset : 0, L = tokens.size(1);
    DYSRA_CHECK(offset + L <= options_.max_seq_len, "model: sequence of ", offset + L,
                " tokens exceeds model.max_seq_len = ", options_.max_seq_len, " (learned positions)");
    x = x + pos_embed_(torch::arange(offset, offset + L, tokens.options()));
  }
  if (options_.dropout > 0) x = torch::dropout(x, options_.dropout, is_training());
  for (size_t i = 0; i < blocks_->size(); ++i)
    x = blocks_[i]->as<BlockImpl>()->forward(x, inputs, states ? &(*states)[i] : nullptr);
  return final_norm_.forward(x);
}

torch::Tensor LanguageModelImpl::logits(const torch::Tensor& hidden) { return head_(hidden); }

int64_t LanguageModelImpl::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

ModelCost LanguageModelImpl::cost(int64_t seq_len, int64_t bpe) const {
  ModelCost c;
  const double n = static_cast<double>(seq_len), d = static_cast<double>(options_.d_model);
  auto& blocks = const_cast<torch::nn::ModuleList&>(blocks_);
  for (size_t i = 0; i < blocks->size(); ++i) {
    auto lc = blocks[i]->as<BlockImpl>()->mixer().cost(seq_len, bpe);
    if (options_.mlp_ratio > 0) {
      const double hidden = static_cast<double>(options_.mlp_ratio) * d;
      lc.flops += 2.0 * n * 2.0 * d * hidden;
      lc.bytes += static_cast<double>(bpe) * (2.0 * d * hidden + 2.0 * n * (d + hidden));
    }
    c.flops += lc.flops;
    c.bytes += lc.bytes;
    c.state_bytes += lc.state_bytes;
    c.per_layer.push_back(lc);
  }
  c.flops += 2.0 * n * d * static_cast<double>(vocab_size_);  // head
  c.params = num_parameters();
  c.bytes += static_cast<double>(bpe) * static_cast<double>(c.params);
  return c;
}

}  // namespace dysra::models
