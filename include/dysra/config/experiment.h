// dysra/config/experiment.h — one experiment = one YAML file (+ `extends:` bases + `--set` overrides),
// resolved into typed Options. This is the only place that reads YAML; library modules take the Options.
//
// Precedence: built-in defaults < extended files (in order) < the file itself < `--set key.path=value`.
// Errors are dysra::ConfigError with "file:line: key.path: what is wrong"; unknown keys are errors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "dysra/cache/options.h"
#include "dysra/data/task.h"
#include "dysra/models/options.h"
#include "dysra/train/options.h"

namespace dysra::config {

/// Section `stream`: what `dysra stream run` feeds through the model (a FactStream; see dysra/stream/runner.h).
struct StreamRunOptions {
  uint64_t tokens = 100000;             ///< stream length in model tokens
  int64_t chunk = 256;                  ///< prefill chunk length
  uint64_t report_every = 8192;         ///< interval length (tokens) of stream.jsonl
  int64_t question_interval = 4096;     ///< tokens between questions
  std::vector<int64_t> distances{1024}; ///< fact distances (tokens), cycled
  std::string filler = "noise";         ///< noise | essay
  std::string kind = "needle";          ///< needle | chain | variables
  int64_t hops = 2;
  uint64_t seed = 42;                   ///< stream seed
  uint64_t checkpoint_every = 0;        ///< tokens between stream checkpoints (0: none)
};

struct ExperimentOptions {
  std::string name = "experiment";
  uint64_t seed = 0;
  std::string device = "auto";  ///< auto | cpu | cuda
  models::ModelOptions model;
  data::TaskOptions data;
  train::TrainOptions train;
  train::EvalOptions eval;
  train::LogOptions log;
  cache::CacheOptions cache;  ///< the KV cache policy of every attention layer when streaming (`dysra stream run`)
  StreamRunOptions stream;
};

/// Loads `path`, applies its `extends:` chain and the overrides ("a.b=value", value parsed as YAML),
/// validates everything, and returns the options.
ExperimentOptions load_experiment(const std::string& path, const std::vector<std::string>& overrides = {});

/// Same, from YAML text (`source_name` is used in error messages).
ExperimentOptions parse_experiment(const std::string& yaml_text, const std::string& source_name,
                                   const std::vector<std::string>& overrides = {});

/// The fully resolved configuration as YAML (every key, defaults included). Loading it back gives the same options.
std::string to_yaml(const ExperimentOptions& options);

}  // namespace dysra::config
