// dysra/bench/cache_bench.h (src/bench) — `dysra bench cache-decode`: one attention layer's decode step with the
// rotating compressive cache (RingCompressiveCache) against full-KV scaled_dot_product_attention, side by side in
// one run, at stream lengths up to millions of tokens. Both steps include writing the new key/value; RoPE of the
// new query/key is the layer's work either way and is left out of both.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dysra::bench {

struct CacheBenchOptions {
  std::vector<int64_t> lengths{4096, 16384, 65536, 262144, 524288, 1048576};  ///< tokens already streamed
  int64_t heads = 32, head_dim = 128, batch = 1;
  int64_t sinks = 4, raw_slots = 4096, delta = 256, rank = 32, summary_slots = 0;
  int64_t full_max = 1048576;  ///< full-KV baseline up to this length (its cache grows with the stream)
  int warmup = 20, runs = 200; ///< decode steps: untimed, timed (each timed alone)
  std::string device = "cuda";
  std::string json_path;
};

/// Prints a table and appends JSON lines; returns 0, or 2 without CUDA.
int run_cache_bench(const CacheBenchOptions& options);

}  // namespace dysra::bench
