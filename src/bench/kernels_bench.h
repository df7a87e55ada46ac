// dysra/bench/kernels_bench.h (src/bench) — `dysra bench kernels`: the CUDA kernels against the LibTorch-op path of
// the same op, on one card in one run. CUDA-event timing, warm-up, median of >= 20 runs, inputs rotated over
// several buffer sets so that L2 does not flatter. Prints a table and writes JSON lines; each row carries the SM
// clock it ran at (bench/gpu_clock.h).
#pragma once
#include <string>

namespace dysra::bench {

struct KernelBenchOptions {
  std::string ops = "all";  ///< comma list of selective_scan, linear_attention, gathered_attention (or "all")
  int warmup = 5;           ///< untimed runs before timing
  int runs = 20;            ///< timed runs (the median is reported; at least 20 is the project's rule)
  int rotate = 3;           ///< input buffer sets cycled through between runs
  bool backward = true;     ///< also time forward+backward
  bool quick = false;       ///< small shapes (a smoke test of the harness, not a measurement)
  bool peers = true;        ///< also time the LibTorch-op path of each op (false: dysra's kernels only, for A/B runs)
  bool graphs = false;      ///< also time each dysra/torch call on CUDA-graph replays ("(CUDA graph)" rows: GPU time)
  int cooldown_ms = 0;      ///< idle the card this long before each row (rows then start at the same clock)
  std::string json_path;    ///< append JSON lines here ("" = only print)
};

/// Runs the kernel benchmarks; returns 0, or 2 when CUDA is unavailable (message on stderr).
int run_kernel_bench(const KernelBenchOptions& options);

}  // namespace dysra::bench
