// dysra/eval/throughput.h — training throughput of a model (forward + backward + optimizer-free), measured the
// same way for every backbone so their scaling in sequence length can be compared on one machine.
#pragma once
#include <torch/types.h>

#include <vector>

#include "dysra/models/lm.h"

namespace dysra::eval {

struct ThroughputOptions {
  int64_t batch_size = 1;
  int64_t seq_len = 2048;
  int64_t warmup = 1;
  int64_t runs = 5;      ///< timed iterations; the median is reported
  bool backward = true;  ///< forward+backward (else forward only, no grad)
  bool bf16 = false;     ///< bf16 autocast (CUDA only)
};

struct ThroughputResult {
  double median_s = 0;     ///< seconds per iteration (median)
  double tokens_per_s = 0; ///< batch_size·seq_len / median_s
  double peak_bytes = 0;   ///< CUDA peak allocated bytes during the timed runs (0 on CPU)
  std::vector<double> times_s;
};

/// Times `model` on random tokens of the model's vocabulary. CUDA timing synchronises around each iteration.
ThroughputResult measure_throughput(models::LanguageModel& model, const ThroughputOptions& options,
                                    const torch::Device& device);

}  // namespace dysra::eval
