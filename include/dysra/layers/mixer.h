// dysra/layers/mixer.h — the sequence-mixer interface every backbone layer implements (attention, mamba,
// linear attention, sparse attention), its recurrent state, its cost model, and the registry that maps config
// names to factories. A new layer type is one file pair plus one line in src/layers/registry.cpp.
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dysra/core/registry.h"
#include "dysra/models/options.h"

namespace dysra::cache {
class KVCachePolicy;  // dysra/cache/kv_cache.h
}

namespace dysra::layers {

/// Extra per-call inputs. All optional.
struct MixerInputs {
  /// [L] int64 absolute positions of the tokens of x (RoPE / causal masks); undefined → 0..L-1 (+ state offset).
  torch::Tensor positions;
  /// Sparse attention: [B, Hkv, n_blocks, K] indices into the sequence (or memory) each query block attends to.
  torch::Tensor sparse_indices;
};

/// Recurrent state carried across calls (decoding / streaming / processing a long input in pieces).
/// Each mixer defines the meaning of `tensors`; `offset` counts tokens already consumed.
/// `kv_cache`: when set, an attention layer keeps its keys/values in this policy (dysra::cache) instead of
/// `tensors` (one policy per layer; see dysra/cache/kv_cache.h for the protocol).
struct MixerState {
  std::vector<torch::Tensor> tensors;
  int64_t offset = 0;
  std::shared_ptr<cache::KVCachePolicy> kv_cache;
  bool empty() const { return tensors.empty(); }
};

/// Analytical cost of one forward pass of a layer over `seq_len` tokens (batch 1).
struct LayerCost {
  double flops = 0;        ///< multiply-adds counted as 2 FLOPs
  double bytes = 0;        ///< activation + weight bytes read/written, at `bytes_per_element`
  double state_bytes = 0;  ///< recurrent state or KV cache held after the pass
  int64_t params = 0;
};

class MixerImpl : public torch::nn::Module {
 public:
  /// x: [B, L, d_model] → [B, L, d_model]. When `state` is non-null the call continues from it and updates it
  /// (so f(x1 ++ x2) == f(x1) then f(x2) with the state carried), which is the streaming/decoding form.
  virtual torch::Tensor forward(const torch::Tensor& x, const MixerInputs& inputs, MixerState* state) = 0;
  virtual std::string kind() const = 0;
  virtual LayerCost cost(int64_t seq_len, int64_t bytes_per_element) const = 0;
};

using MixerFactory = std::function<std::shared_ptr<MixerImpl>(const models::ModelOptions&, int64_t layer_index)>;

/// The registry of mixer types: attention, mamba, linear_attention, sparse_attention, ...
Registry<MixerFactory>& mixer_registry();

}  // namespace dysra::layers
