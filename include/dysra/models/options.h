// dysra/models/options.h — typed model settings (the `model:` section of an experiment YAML).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dysra::models {

struct MambaOptions {
  int64_t d_state = 16;    ///< N
  int64_t d_conv = 4;      ///< causal depthwise conv width
  int64_t expand = 2;      ///< d_inner = expand · d_model
  int64_t dt_rank = 0;     ///< 0 → ceil(d_model / 16)
  double dt_min = 0.001;   ///< Δ initialisation range (log-uniform), as in Mamba
  double dt_max = 0.1;
};

struct LinearAttentionOptions {
  std::string feature_map = "elu1";  ///< elu1 | relu | identity
  int64_t chunk_size = 64;
  bool normalize = true;
};

struct SparseAttentionOptions {
  int64_t block_q = 64;  ///< queries per index block
  int64_t top_k = 64;    ///< keys per block when indices come from the built-in selector (oracle/random/window)
  std::string index_source = "random";  ///< random | window | oracle (supplied by the task)
};

struct ModelOptions {
  /// transformer | mamba | linear_attention | dysra (dysra uses `layers`).
  std::string backbone = "transformer";
  /// Explicit layer pattern, e.g. [mamba, mamba, sparse_attention, mamba]; empty → n_layers of the backbone's type.
  std::vector<std::string> layers;
  int64_t n_layers = 2;
  int64_t d_model = 64;
  int64_t n_heads = 1;
  int64_t mlp_ratio = 0;          ///< 0 → no MLP after each mixer (Zoology's Identity state mixer)
  double dropout = 0.0;
  std::string norm = "layernorm"; ///< layernorm | rmsnorm
  std::string position = "rope"; ///< rope | learned | none (for attention layers)
  double rope_theta = 10000.0;
  int64_t max_seq_len = 4096;     ///< learned positions table size
  int64_t context_budget = 0;     ///< attention sees at most this many previous tokens (0 = all): truncated baseline
  bool tie_embeddings = false;
  MambaOptions mamba;
  LinearAttentionOptions linear_attention;
  SparseAttentionOptions sparse_attention;
};

}  // namespace dysra::models
