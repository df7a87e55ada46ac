// dysra/train/checkpoint.h — atomic checkpoints of a training run: model, optimizer, trainer state
// (step, data position, RNG states, early-stopping bookkeeping) in one file, written to a temporary name,
// fsync'ed and renamed, so a crash never leaves a half-written checkpoint under the final name.
#pragma once
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <optional>
#include <string>

namespace dysra::train {

struct TrainerState {
  int64_t step = 0;          ///< optimizer steps done
  int64_t data_cursor = 0;   ///< training examples consumed (the data position)
  double best_metric = 0;    ///< best early-stop metric so far
  bool has_best = false;
  double elapsed_s = 0;      ///< wall time of the run so far
  std::string config_yaml;   ///< the resolved config the run was started with
};

/// Writes `dir`/step-<step>.pt atomically and points `dir`/latest at it; keeps the `keep` newest.
/// Returns the checkpoint path.
std::string save_checkpoint(const std::string& dir, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                            const TrainerState& state, int64_t keep);

/// The newest complete checkpoint in `dir`, if any.
std::optional<std::string> latest_checkpoint(const std::string& dir);

/// The checkpoint file that `path` names: a checkpoint file itself, a checkpoints folder or its `latest` pointer
/// file, or a run directory (its checkpoints/latest). Throws ConfigError naming `what` (e.g. "--weights") and the
/// path when there is none.
std::string resolve_checkpoint(const std::string& path, const std::string& what);

/// Restores model, optimizer, trainer state and the RNG states saved by save_checkpoint.
TrainerState load_checkpoint(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer& optimizer);

/// A string as a uint8 tensor and back: how text (configs, JSON state) travels inside a checkpoint archive.
torch::Tensor string_tensor(const std::string& s);
std::string tensor_string(const torch::Tensor& t);

/// Writes `content` to `path` atomically (temp file + fsync + rename).
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace dysra::train

namespace dysra::train {
/// Loads only the model weights of a checkpoint (evaluation, fine-tuning from a run).
void load_model_weights(const std::string& path, torch::nn::Module& model);
}  // namespace dysra::train
