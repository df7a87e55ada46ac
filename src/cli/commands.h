// src/cli/commands.h — shared pieces of the CLI and the hooks for the subcommands that live in other files.
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "dysra/config/experiment.h"

namespace dysra::cli {

struct ExperimentArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string device;
};

/// Adds CONFIG, --set (repeatable) and --device to a subcommand.
ExperimentArgs& add_experiment_args(CLI::App* cmd, ExperimentArgs& args);
/// Loads the experiment with the overrides (and --device).
config::ExperimentOptions load(const ExperimentArgs& args);

/// Subcommands defined in other files of src/cli (bench, data, ...). run_extra_commands runs the parsed one.
void register_extra_commands(CLI::App& app);
int run_extra_commands(CLI::App& app);

}  // namespace dysra::cli
