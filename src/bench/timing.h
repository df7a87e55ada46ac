// dysra/bench/timing.h (src/bench) — CUDA-event timing shared by the benchmarks (built with CUDA only).
#pragma once
#include <functional>

namespace dysra::bench {

struct Timing {
  double median_ms = 0, min_ms = 0, max_ms = 0, mean_ms = 0;
  int runs = 0;
};

/// f(i) for i < warmup untimed, then `runs` times, each between two CUDA events on the current stream with the
/// device idle before it (so a run's time includes its launch overhead). Returns median, min, max and mean.
Timing time_cuda(const std::function<void(int)>& f, int warmup, int runs);

/// The GPU time of f without its launch overhead: f(i) for i < warmup on a side stream, then one CUDA graph
/// captured per input set (graph s holds f(s), s < n_sets), then `runs` replays of graph i % n_sets, each timed
/// as in time_cuda. This is how the Python peers' "(CUDA graph)" rows are timed (scripts/bench_peers.py --graphs);
/// compare like with like. Throws (c10::Error) when f cannot be captured (a host sync, a blocking copy).
Timing time_cuda_graph(const std::function<void(int)>& f, int n_sets, int warmup, int runs);

}  // namespace dysra::bench
