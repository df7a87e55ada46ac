// dysra/config/experiment.h — one experiment = one YAML file (+ `extends:` bases + `--set` overrides),
// resolved into typed Options. This is the only place that reads YAML; library modules take the Options.
//
// Precedence: built-in defaults < extended files (in order) < the file itself < `--set key.path=value`.
// Errors are dysra::ConfigError with "file:line: key.path: what is wrong"; unknown keys are errors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "dysra/data/task.h"
#include "dysra/models/options.h"
#include "dysra/train/options.h"

namespace dysra::config {

struct ExperimentOptions {
  std::string name = "experiment";
  uint64_t seed = 0;
  std::string device = "auto";  ///< auto | cpu | cuda
  models::ModelOptions model;
  data::TaskOptions data;
  train::TrainOptions train;
  train::EvalOptions eval;
  train::LogOptions log;
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
