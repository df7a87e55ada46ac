// dysra/train/options.h — typed settings of the `train:`, `eval:` and `log:` sections.
#pragma once
#include <cstdint>
#include <string>

namespace dysra::train {

struct TrainOptions {
  int64_t steps = 1000;          ///< optimizer steps of the whole run
  int64_t batch_size = 64;
  double lr = 1e-3;              ///< peak learning rate
  double min_lr_ratio = 0.0;     ///< cosine floor as a fraction of lr
  int64_t warmup_steps = 0;      ///< linear warm-up from 0
  double weight_decay = 0.1;     ///< AdamW, on matrices (dim >= 2) only
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double grad_clip = 1.0;        ///< max global grad norm; 0 = off
  bool bf16 = true;              ///< bf16 autocast on CUDA (ignored on CPU)
  int64_t checkpoint_every = 500;  ///< steps; 0 = only at the end
  int64_t keep_checkpoints = 2;  ///< newest checkpoints kept
  int64_t threads = 0;           ///< CPU intra-op threads; 0 = LibTorch default
  /// Model weights to start from (a checkpoint file, or a run directory: its newest checkpoint); optimizer,
  /// schedule and data position start fresh. For staged training, e.g. a short-context stage then a long one.
  /// Ignored when a resumed run already has a checkpoint of its own.
  std::string init_from = "";
};

struct EvalOptions {
  int64_t every = 200;                  ///< steps between evaluations; 0 = only at the end
  int64_t batch_size = 256;
  int64_t examples = 0;                 ///< 0 = the task's whole evaluation split
  int64_t answer_examples = 200;        ///< examples scored by greedy generation (EM/F1; text tasks); 0 = off
  std::string early_stop_metric = "";   ///< e.g. "accuracy"; empty = no early stopping
  double early_stop_threshold = 0.0;    ///< stop once the metric reaches this (>= for accuracy-like)
  std::string early_stop_mode = "max";  ///< max: stop when metric >= threshold; min: when <=
};

struct LogOptions {
  int64_t every = 50;          ///< steps between metrics.jsonl lines
  std::string level = "info";  ///< trace | debug | info | warn | error
  std::string progress = "auto";  ///< auto (bar on a terminal) | bar | lines
};

}  // namespace dysra::train
