// dysra/models/lm.h — the language-model shell shared by every backbone:
//   embed → [norm → mixer → +residual (→ norm → MLP → +residual)] × layers → norm → head
// The mixer of each layer comes from the layer pattern (model.layers) or the backbone's default type.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

#include "dysra/layers/mixer.h"
#include "dysra/models/options.h"

namespace dysra::models {

/// Resolves model.backbone / model.layers into the list of mixer names (validated against the registry).
std::vector<std::string> resolve_layers(const ModelOptions& options);

struct ModelCost {
  double flops = 0;         ///< forward FLOPs over seq_len tokens, batch 1
  double bytes = 0;         ///< forward bytes moved (weights + activations)
  double state_bytes = 0;   ///< recurrent state / KV cache after the pass
  int64_t params = 0;
  std::vector<layers::LayerCost> per_layer;
};

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const ModelOptions& options, const std::string& mixer, int64_t index);
  torch::Tensor forward(const torch::Tensor& x, const layers::MixerInputs& inputs, layers::MixerState* state);
  layers::MixerImpl& mixer() { return *mixer_; }

 private:
  torch::nn::AnyModule norm1_, norm2_;
  std::shared_ptr<layers::MixerImpl> mixer_;
  torch::nn::Sequential mlp_{nullptr};
  double dropout_;
};
TORCH_MODULE(Block);

class LanguageModelImpl : public torch::nn::Module {
 public:
  LanguageModelImpl(const ModelOptions& options, int64_t vocab_size);

  /// tokens [B, L] int64 → final hidden states [B, L, d_model]. `states` (one per layer) enables streaming.
  torch::Tensor hidden(const torch::Tensor& tokens, const layers::MixerInputs& inputs = {},
                       std::vector<layers::MixerState>* states = nullptr);
  /// hidden [..., d_model] → logits [..., vocab].
  torch::Tensor logits(const torch::Tensor& hidden);
  torch::Tensor forward(const torch::Tensor& tokens) { return logits(hidden(tokens)); }

  const ModelOptions& options() const { return options_; }
  const std::vector<std::string>& layer_types() const { return layer_types_; }
  int64_t vocab_size() const { return vocab_size_; }
  int64_t num_parameters() const;
  ModelCost cost(int64_t seq_len, int64_t bytes_per_element = 4) const;

 private:
  ModelOptions options_;
  int64_t vocab_size_;
  std::vector<std::string> layer_types_;
  torch::nn::Embedding embed_{nullptr}, pos_embed_{nullptr};
  torch::nn::ModuleList blocks_;
  torch::nn::AnyModule final_norm_;
  torch::nn::Linear head_{nullptr};
};
TORCH_MODULE(LanguageModel);

}  // namespace dysra::models
