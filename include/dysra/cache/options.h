// dysra/cache/options.h — the options of a KV cache policy (kv_cache.h describes each policy and its rule).
// Torch-free, so the experiment config (section `cache`) can hold them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dysra::cache {

struct CacheOptions {
  std::string policy = "full";   ///< full | window | streaming_llm | h2o | snapkv | pyramidkv | razor | compressive
  int64_t budget = 0;            ///< slots per row (raw + summaries); window, streaming_llm, h2o, snapkv, pyramidkv
  int64_t sink_tokens = 4;       ///< streaming_llm, razor, compressive
  int64_t window = 0;            ///< h2o: recent tokens (0 → budget / 2); razor: S₀ recent tokens
  std::string positions = "";    ///< original | cache (in-cache indices); "" → cache for streaming_llm, else original
  // snapkv / pyramidkv
  int64_t obs_window = 8;        ///< w: observation window (queries) and recent tokens always kept
  int64_t kernel_size = 7;       ///< pooling kernel (odd)
  std::string pooling = "max";   ///< max | avg
  double pyramid_beta = 20;      ///< β of §2.2
  // razor
  std::vector<int64_t> retrieval_heads;  ///< flat indices layer · n_heads + head that keep everything
  double razor_ratio = 0;        ///< C: L_h = max(window, N / C); 0 → L_h = window (bounded)
  // compressive
  int64_t raw_slots = 1024;      ///< M
  int64_t delta = 256;           ///< Δ (≤ M)
  int64_t rank = 32;             ///< r summaries per Δ block
  int64_t summary_slots = 0;     ///< summary cap; 0 → 4r
  int64_t recompress_depth = 1;  ///< max summary depth (1 = summaries are never re-compressed)
  std::string method = "svd";    ///< svd | mean | learned
  std::string compressor_path;   ///< learned: file written by save_compressors (loaded by make_layer_caches)
};

}  // namespace dysra::cache
