#include "bench/cache_bench.h"

#include <torch/torch.h>

#include <cstdio>

#include "bench/timing.h"
#include "dysra/cache/ring_cache.h"
#include "dysra/core/error.h"
#include "dysra/ops/backend.h"

namespace dysra::bench {

#ifndef DYSRA_WITH_CUDA
int run_cache_bench(const CacheBenchOptions&) {
  std::fprintf(stderr, "dysra bench cache-decode: dysra was built without CUDA (DYSRA_WITH_CUDA off)\n");
  return 2;
}
#else
int run_cache_bench(const CacheBenchOptions& o) {
  if (!torch::cuda::is_available()) {
    std::fprintf(stderr, "dysra bench cache-decode: no CUDA device\n");
    return 2;
  }
  const auto B = o.batch, H = o.heads, D = o.head_dim;
  auto opts = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
  FILE* json = o.json_path.empty() ? nullptr : std::fopen(o.json_path.c_str(), "a");
  DYSRA_CHECK_T(ConfigError, o.json_path.empty() || json, "--json ", o.json_path, ": cannot open for appending");
  const int steps = 2 * (o.warmup + o.runs);  // the kernel step, then the LibTorch-ops step
  // rotated inputs: 8 sets of (q, k, v) for a step
  std::vector<torch::Tensor> qs, ks, vs;
  for (int i = 0; i < 8; ++i) {
    qs.push_back(torch::randn({B, H, 1, D}, opts));
    ks.push_back(torch::randn({B, H, 1, D}, opts));
    vs.push_back(torch::randn({B, H, 1, D}, opts));
  }
  std::printf("%10s %12s %12s %12s %13s %14s %12s %10s %14s %10s\n", "tokens", "ring_med_ms", "ring_mean_ms",
              "ring_max_ms", "ring_sdpa_ms", "ring_bytes", "full_med_ms", "speedup", "full_kv_bytes", "ring_slots");
  cache::RingCacheOptions ro;
  ro.sink_tokens = o.sinks, ro.raw_slots = o.raw_slots, ro.delta = o.delta, ro.rank = o.rank;
  ro.summary_slots = o.summary_slots;
  for (int64_t L : o.lengths) {
    DYSRA_CHECK_T(ConfigError, L > steps, "--lengths: each length must exceed 2 × (warm-up + runs) (", steps, ")");
    // ring: prefill L − steps tokens in chunks, then decode `steps` steps
    cache::RingCompressiveCache ring(ro, B, H, D, opts);
    const int64_t chunk = 16384;
    for (int64_t t = 0; t < L - steps; t += chunk) {
      const int64_t n = std::min(chunk, L - steps - t);
      ring.append(torch::randn({B, H, n, D}, opts), torch::randn({B, H, n, D}, opts));
    }
    torch::cuda::synchronize();
    // the ring step with dysra's decode kernel, then the same step on LibTorch ops (slot copies + SDPA)
    const auto backend = ops::cuda_backend();
    ops::set_cuda_backend(ops::CudaBackend::kKernels);
    auto tr = time_cuda([&](int i) { ring.decode_rotated(qs[i % 8], ks[i % 8], vs[i % 8]); }, o.warmup, o.runs);
    ops::set_cuda_backend(ops::CudaBackend::kTorchOps);
    auto tt = time_cuda([&](int i) { ring.decode_rotated(qs[i % 8], ks[i % 8], vs[i % 8]); }, o.warmup, o.runs);
    ops::set_cuda_backend(backend);
    // full KV: a [B, H, L, D] cache; a step writes the newest key/value (slot L − 1) and attends to all L. The
    // shape is the same at every timed step: a length that changes every call makes some SDPA backends (cuDNN)
    // plan again each time, which measured ~35 ms per call on an H200 whatever the length — not decode cost.
    Timing tf;
    int64_t full_bytes = 0;
    const bool full = L <= o.full_max;
    if (full) {
      auto K = torch::randn({B, H, L, D}, opts), V = torch::randn({B, H, L, D}, opts);
      full_bytes = 2 * K.numel() * static_cast<int64_t>(K.element_size());
      torch::cuda::synchronize();
      tf = time_cuda(
          [&](int i) {
            K.narrow(2, L - 1, 1).copy_(ks[i % 8]);
            V.narrow(2, L - 1, 1).copy_(vs[i % 8]);
            at::scaled_dot_product_attention(qs[i % 8], K, V);
          },
          o.warmup, o.runs);
    }
    std::printf("%10lld %12.4f %12.4f %12.4f %13.4f %14lld %12.4f %10.1f %14lld %10lld\n", static_cast<long long>(L),
                tr.median_ms, tr.mean_ms, tr.max_ms, tt.median_ms, static_cast<long long>(ring.bytes()),
                full ? tf.median_ms : 0.0,
                full ? tf.median_ms / tr.median_ms : 0.0, static_cast<long long>(full_bytes),
                static_cast<long long>(ring.held_slots()));
    if (json)
      std::fprintf(json,
                   "{\"bench\":\"cache_decode\",\"tokens\":%lld,\"heads\":%lld,\"head_dim\":%lld,\"batch\":%lld,"
                   "\"raw_slots\":%lld,\"delta\":%lld,\"rank\":%lld,\"sinks\":%lld,\"ring_median_ms\":%.5f,"
                   "\"ring_mean_ms\":%.5f,\"ring_max_ms\":%.5f,\"ring_sdpa_median_ms\":%.5f,\"ring_bytes\":%lld,\"ring_slots\":%lld,"
                   "\"full_median_ms\":%.5f,\"full_kv_bytes\":%lld,\"runs\":%d,\"dtype\":\"bf16\"}\n",
                   static_cast<long long>(L), static_cast<long long>(H), static_cast<long long>(D),
                   static_cast<long long>(B), static_cast<long long>(o.raw_slots), static_cast<long long>(o.delta),
                   static_cast<long long>(o.rank), static_cast<long long>(o.sinks), tr.median_ms, tr.mean_ms,
                   tr.max_ms, tt.median_ms, static_cast<long long>(ring.bytes()), static_cast<long long>(ring.held_slots()),
                   full ? tf.median_ms : -1.0, static_cast<long long>(full_bytes), o.runs);
    std::fflush(stdout);
  }
  if (json) std::fclose(json);
  return 0;
}
#endif

}  // namespace dysra::bench
