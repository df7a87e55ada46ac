// dysra — the experiment CLI. Thin: parse → Options → library call.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "dysra/config/experiment.h"
#include "dysra/core/error.h"
#include "dysra/data/task.h"
#include "dysra/models/lm.h"
#include "dysra/train/checkpoint.h"
#include "dysra/train/trainer.h"

namespace fs = std::filesystem;

namespace dysra::cli {

ExperimentArgs& add_experiment_args(CLI::App* cmd, ExperimentArgs& a) {
  cmd->add_option("config", a.config, "experiment YAML file")->required();
  cmd->add_option("--set", a.overrides, "override a config key: --set model.d_model=128 (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--device", a.device, "cpu | cuda (overrides the config's device)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  return a;
}

config::ExperimentOptions load(const ExperimentArgs& a) {
  std::vector<std::string> overrides = a.overrides;
  if (!a.device.empty()) overrides.push_back("device=" + a.device);
  return config::load_experiment(a.config, overrides);
}

namespace {

std::string default_run_dir(const std::string& name) {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&t));
  return (fs::path("runs") / (name + "-" + buf)).string();
}

int cmd_train(const ExperimentArgs& a, std::string run_dir, bool resume) {
  auto opts = load(a);
  if (resume && run_dir.empty()) throw ConfigError("--resume: needs --run-dir DIR (the run to continue)");
  if (run_dir.empty()) run_dir = default_run_dir(opts.name);
  train::install_interrupt_handler();
  train::seed_everything(opts.seed);
  // The tokenizer is part of the run: its fingerprint goes into config.yaml, and a resumed run must load the
  // very same model file (make_tokenizer checks expected_fingerprint).
  const fs::path saved_config = fs::path(run_dir) / "config.yaml";
  if (resume && opts.data.tokenizer.expected_fingerprint.empty() && fs::exists(saved_config)) {
    const auto saved = config::load_experiment(saved_config.string());
    if (saved.data.tokenizer.type == opts.data.tokenizer.type)
      opts.data.tokenizer.expected_fingerprint = saved.data.tokenizer.expected_fingerprint;
  }
  std::shared_ptr<const data::Task> task = data::make_task(opts.data, opts.seed);
  if (const auto* tok = task->tokenizer()) opts.data.tokenizer.expected_fingerprint = tok->identity().fingerprint;
  models::LanguageModel model(opts.model, task->vocab_size());
  if (!opts.train.init_from.empty())  // a resumed run's own checkpoint then takes precedence
    train::load_model_weights(train::resolve_checkpoint(opts.train.init_from, "train.init_from"), *model);
  train::TrainerSetup setup{opts.train, opts.eval, opts.log, opts.seed, opts.device, run_dir, config::to_yaml(opts), resume};
  train::Trainer trainer(model, task, setup);
  auto r = trainer.run();
  std::cout << "run directory: " << run_dir << "\n";
  for (const auto& kv : r.eval) std::cout << "eval." << kv.first << " = " << kv.second << "\n";
  return r.interrupted ? 130 : 0;
}

int cmd_eval(const ExperimentArgs& a, const std::string& run_dir, std::string checkpoint, const std::string& split) {
  auto opts = load(a);
  if (checkpoint.empty() && run_dir.empty()) throw ConfigError("eval: give --run-dir DIR or --checkpoint FILE");
  checkpoint = checkpoint.empty() ? train::resolve_checkpoint(run_dir, "--run-dir")
                                  : train::resolve_checkpoint(checkpoint, "--checkpoint");
  auto task = data::make_task(opts.data, opts.seed);
  models::LanguageModel model(opts.model, task->vocab_size());
  train::load_model_weights(checkpoint, *model);
  auto device = train::resolve_device(opts.device);
  model->to(device);
  auto m = train::evaluate_task(model, *task, split == "test" ? data::Split::kTest : data::Split::kValidation, opts.eval,
                                device, opts.train.bf16 && device.is_cuda());
  nlohmann::json j{{"checkpoint", checkpoint}, {"split", split}, {"eval", m}};
  std::cout << j.dump(2) << "\n";
  if (!run_dir.empty()) train::write_file_atomic((fs::path(run_dir) / ("eval-" + split + ".json")).string(), j.dump(2) + "\n");
  return 0;
}

}  // namespace
}  // namespace dysra::cli

int main(int argc, char** argv) {
  using namespace dysra;
  CLI::App app{"dysra: dynamic sparse retrieval + sub-quadratic backbones for long-context models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "dysra 0.1.0");

  cli::ExperimentArgs train_args, eval_args, config_args;
  std::string train_run_dir, eval_run_dir, eval_ckpt, eval_split = "validation";
  bool resume = false;

  auto* train = app.add_subcommand("train", "train a model from an experiment YAML");
  cli::add_experiment_args(train, train_args);
  train->add_option("--run-dir", train_run_dir, "run directory (default runs/<name>-<time>)");
  train->add_flag("--resume", resume, "continue the run in --run-dir from its latest checkpoint");

  auto* eval = app.add_subcommand("eval", "evaluate a trained checkpoint");
  cli::add_experiment_args(eval, eval_args);
  eval->add_option("--run-dir", eval_run_dir, "run directory whose latest checkpoint is evaluated");
  eval->add_option("--checkpoint", eval_ckpt, "checkpoint file (instead of --run-dir)");
  eval->add_option("--split", eval_split, "validation | test")->check(CLI::IsMember({"validation", "test"}));

  auto* cfg = app.add_subcommand("config", "print the fully resolved configuration");
  cli::add_experiment_args(cfg, config_args);

  std::vector<cli::Command> extra;
  cli::add_data_commands(app, extra);
  cli::add_bench_commands(app, extra);
  cli::add_stream_commands(app, extra);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "dysra: error: " << e.what() << "\n";
    return 2;
  }
  try {
    if (*train) return cli::cmd_train(train_args, train_run_dir, resume);
    if (*eval) return cli::cmd_eval(eval_args, eval_run_dir, eval_ckpt, eval_split);
    if (*cfg) {
      std::cout << config::to_yaml(cli::load(config_args));
      return 0;
    }
    for (auto& c : extra)
      if (*c.app) return c.run();
    return 2;
  } catch (const ConfigError& e) {
    std::cerr << "dysra: error: " << e.what() << "\n";
    return 2;
  } catch (const DataError& e) {
    std::cerr << "dysra: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "dysra: error: " << e.what() << "\n";
    return 1;
  }
}
