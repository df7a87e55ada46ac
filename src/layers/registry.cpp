// The mixer registry: one line per layer type.
#include "dysra/layers/attention.h"
#include "dysra/layers/linear_attention.h"
#include "dysra/layers/mamba.h"
#include "dysra/layers/mixer.h"
#include "dysra/layers/sparse_attention.h"

namespace dysra::layers {

Registry<MixerFactory>& mixer_registry() {
  static Registry<MixerFactory> registry = [] {
    Registry<MixerFactory> r("layer type");
    r.add("attention", [](const models::ModelOptions& o, int64_t i) { return std::make_shared<AttentionImpl>(o, i); });
    r.add("mamba", [](const models::ModelOptions& o, int64_t i) { return std::make_shared<MambaImpl>(o, i); });
    r.add("linear_attention",
          [](const models::ModelOptions& o, int64_t i) { return std::make_shared<LinearAttentionImpl>(o, i); });
    r.add("sparse_attention",
          [](const models::ModelOptions& o, int64_t i) { return std::make_shared<SparseAttentionImpl>(o, i); });
    return r;
  }();
  return registry;
}

}  // namespace dysra::layers
