// dysra/train/trainer.h — the training engine: AdamW, warm-up + cosine schedule, gradient clipping,
// periodic evaluation, early stopping, bf16 autocast on CUDA, atomic checkpoints and exact resume
// (model, optimizer, schedule, RNG states, data position), Ctrl-C → checkpoint → exit.
//
// A run directory holds config.yaml, metrics.jsonl (one JSON object per logged step / evaluation),
// log.txt, checkpoints/ and summary.json.
#pragma once
#include <torch/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "dysra/data/task.h"
#include "dysra/models/lm.h"
#include "dysra/train/options.h"

namespace dysra::train {

struct TrainerSetup {
  TrainOptions train;
  EvalOptions eval;
  LogOptions log;
  uint64_t seed = 0;
  std::string device = "auto";   ///< auto | cpu | cuda
  std::string run_dir;           ///< where outputs go; empty = none written (library use, tests)
  std::string config_yaml;       ///< resolved config, stored in checkpoints and config.yaml
  bool resume = false;           ///< continue from run_dir/checkpoints/latest
};

struct TrainResult {
  int64_t step = 0;
  double train_loss = 0;               ///< mean loss of the last logging interval
  std::map<std::string, double> eval;  ///< last evaluation
  bool interrupted = false;            ///< stopped by Ctrl-C / SIGTERM (a checkpoint was written)
  bool early_stopped = false;
  double elapsed_s = 0;
  std::vector<double> step_losses;     ///< loss of every step run in this call (resume tests, plots)
};

/// Loss, accuracy (Zoology's: per-example mean over labelled positions, averaged), token accuracy, perplexity,
/// sequence_accuracy (all targets of an example right: greedy exact match).
std::map<std::string, double> evaluate_lm(models::LanguageModel& model, const data::Task& task, data::Split split,
                                          int64_t max_examples, int64_t batch_size, const torch::Device& device,
                                          bool bf16);

/// Greedy decoding with the model's recurrent/KV state: prompts [B, P] → [B, max_new_tokens].
torch::Tensor greedy_generate(models::LanguageModel& model, const torch::Tensor& prompts, int64_t max_new_tokens, bool bf16);

/// evaluate_lm plus the task's answer metrics (EM/F1 of greedy answers) on `answer_examples` examples.
std::map<std::string, double> evaluate_task(models::LanguageModel& model, const data::Task& task, data::Split split,
                                            const EvalOptions& options, const torch::Device& device, bool bf16);

class Trainer {
 public:
  Trainer(models::LanguageModel model, std::shared_ptr<const data::Task> task, TrainerSetup setup);
  ~Trainer();
  /// Trains until train.steps (or `stop_at` steps when >= 0, for tests), early stop or interrupt.
  TrainResult run(int64_t stop_at = -1);
  torch::Device device() const { return device_; }
  double lr_at(int64_t step) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  torch::Device device_;
};

/// Installs SIGINT/SIGTERM handlers that ask running trainers to checkpoint and stop (a second signal kills).
void install_interrupt_handler();
bool interrupt_requested();

/// Picks the device for "auto" | "cpu" | "cuda" (error when CUDA is asked for and absent).
torch::Device resolve_device(const std::string& name);

}  // namespace dysra::train

namespace dysra::train {
/// Seeds LibTorch's CPU and CUDA generators (call before building the model).
void seed_everything(uint64_t seed);
}  // namespace dysra::train
