// src/cli/commands.h — shared pieces of the CLI; each group of subcommands lives in its own file and adds
// (subcommand, action) pairs through an add_*_commands function.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
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

/// A parsed leaf subcommand and what to run when it was given.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

void add_data_commands(CLI::App& app, std::vector<Command>& out);   // src/cli/data_cmd.cpp
void add_bench_commands(CLI::App& app, std::vector<Command>& out);  // src/cli/bench_cmd.cpp
void add_stream_commands(CLI::App& app, std::vector<Command>& out); // src/cli/stream_cmd.cpp

}  // namespace dysra::cli
