// The training engine: exact resume, atomic checkpoints, run directory contents, learning MQAR.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "dysra/config/experiment.h"
#include "dysra/models/lm.h"
#include "dysra/train/checkpoint.h"
#include "dysra/train/trainer.h"
#include "test_util.h"

using namespace dysra;
namespace fs = std::filesystem;

namespace {

config::ExperimentOptions small_config(const std::string& extra = "") {
  return config::parse_experiment(
      "seed: 11\ndevice: cpu\n"
      "model: {d_model: 32, n_layers: 2, n_heads: 2, dropout: 0.1, mlp_ratio: 2}\n"
      "data: {task: mqar, mqar: {vocab_size: 128, seq_len: 64, num_kv_pairs: 4, train_examples: 96, eval_examples: 32}}\n"
      "train: {steps: 12, batch_size: 16, lr: 0.003, warmup_steps: 3, checkpoint_every: 0}\n"
      "eval: {every: 5, batch_size: 32}\nlog: {every: 1, progress: lines, level: warn}\n" +
          extra,
      "small.yaml");
}

train::TrainResult run(const config::ExperimentOptions& o, const std::string& dir, bool resume, int64_t stop_at) {
  train::seed_everything(o.seed);
  std::shared_ptr<const data::Task> task = data::make_task(o.data, o.seed);
  models::LanguageModel model(o.model, task->vocab_size());
  train::TrainerSetup setup{o.train, o.eval, o.log, o.seed, o.device, dir, config::to_yaml(o), resume};
  train::Trainer trainer(model, task, setup);
  return trainer.run(stop_at);
}

}  // namespace

TEST(Trainer, ResumeIsExact) {
  // N steps, then resume for N more == 2N straight, step by step (dropout on, so RNG state matters;
  // 96 training examples / batch 16 → the data order crosses an epoch boundary).
  auto o = small_config();
  test::TempDir straight_dir, split_dir;
  auto straight = run(o, straight_dir.path("run"), false, -1);
  ASSERT_EQ(straight.step_losses.size(), 12u);
  auto first = run(o, split_dir.path("run"), false, 6);
  ASSERT_EQ(first.step_losses.size(), 6u);
  auto second = run(o, split_dir.path("run"), true, -1);
  ASSERT_EQ(second.step_losses.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(first.step_losses[i], straight.step_losses[i]) << "step " << i + 1;
    EXPECT_EQ(second.step_losses[i], straight.step_losses[6 + i]) << "step " << 7 + i;
  }
  EXPECT_EQ(second.eval.at("loss"), straight.eval.at("loss"));
  // metrics.jsonl has each step exactly once after the resume
  std::ifstream in(fs::path(split_dir.path("run")) / "metrics.jsonl");
  std::vector<int64_t> steps;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) steps.push_back(j["step"].get<int64_t>());
  }
  ASSERT_EQ(steps.size(), 12u);
  for (size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i], static_cast<int64_t>(i) + 1);
}

TEST(Trainer, RunDirectoryContents) {
  auto o = small_config();
  test::TempDir dir;
  const std::string rd = dir.path("run");
  run(o, rd, false, -1);
  for (const char* f : {"config.yaml", "metrics.jsonl", "log.txt", "summary.json", "checkpoints/latest"})
    EXPECT_TRUE(fs::exists(fs::path(rd) / f)) << f;
  auto summary = nlohmann::json::parse(std::ifstream(fs::path(rd) / "summary.json"));
  EXPECT_EQ(summary["step"].get<int64_t>(), 12);
  EXPECT_TRUE(summary["train_loss"].is_number());
  EXPECT_TRUE(summary["eval"].contains("accuracy"));
  EXPECT_GT(summary["cost"]["forward_flops_per_sequence"].get<double>(), 0);
  // the resolved config in the run dir loads back to the same options
  auto again = config::load_experiment((fs::path(rd) / "config.yaml").string());
  EXPECT_EQ(config::to_yaml(again), config::to_yaml(o));
  // no temp files left behind
  for (const auto& e : fs::recursive_directory_iterator(rd)) EXPECT_EQ(e.path().extension(), e.path().extension() == ".tmp" ? ".never" : e.path().extension());
}

TEST(Trainer, RefusesToOverwriteARunWithoutResume) {
  auto o = small_config();
  test::TempDir dir;
  run(o, dir.path("run"), false, 2);
  EXPECT_THROW(run(o, dir.path("run"), false, -1), ConfigError);
}

TEST(Trainer, CheckpointKeepsNewestAndLatestPointsToIt) {
  auto o = small_config("");
  o.train.checkpoint_every = 2;
  o.train.keep_checkpoints = 2;
  test::TempDir dir;
  run(o, dir.path("run"), false, -1);
  auto latest = train::latest_checkpoint(dir.path("run/checkpoints"));
  ASSERT_TRUE(latest.has_value());
  EXPECT_NE(latest->find("step-00000012.pt"), std::string::npos);
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir.path("run/checkpoints"))) n += e.path().extension() == ".pt";
  EXPECT_EQ(n, 2);
}

TEST(Trainer, LearningRateScheduleWarmupThenCosine) {
  auto o = small_config();
  o.train.steps = 100;
  o.train.warmup_steps = 10;
  o.train.min_lr_ratio = 0.1;
  std::shared_ptr<const data::Task> task = data::make_task(o.data, 0);
  models::LanguageModel model(o.model, task->vocab_size());
  train::Trainer t(model, task, {o.train, o.eval, o.log, 0, "cpu", "", "", false});
  EXPECT_NEAR(t.lr_at(0), 0.0003, 1e-12);
  EXPECT_NEAR(t.lr_at(9), 0.003, 1e-12);
  EXPECT_NEAR(t.lr_at(10), 0.003, 1e-12);
  EXPECT_NEAR(t.lr_at(55), 0.0003 + 0.0027 * 0.5, 1e-9);
  EXPECT_NEAR(t.lr_at(100), 0.0003, 1e-12);
}

TEST(Trainer, EarlyStopsOnThreshold) {
  auto o = small_config();
  o.eval.every = 1;
  o.eval.early_stop_metric = "loss";
  o.eval.early_stop_mode = "min";
  o.eval.early_stop_threshold = 1e9;  // reached at the first evaluation
  auto r = run(o, "", false, -1);
  EXPECT_TRUE(r.early_stopped);
  EXPECT_EQ(r.step, 1);
}

TEST(Trainer, TransformerLearnsSmallMqar) {
  auto o = config::parse_experiment(
      "seed: 1\ndevice: cpu\nmodel: {d_model: 64, n_layers: 2, n_heads: 1}\n"
      "data: {task: mqar, mqar: {vocab_size: 128, seq_len: 64, num_kv_pairs: 4, train_examples: 50000, eval_examples: 256}}\n"
      "train: {steps: 1500, batch_size: 64, lr: 0.003, warmup_steps: 100}\n"
      "eval: {every: 100, early_stop_metric: accuracy, early_stop_threshold: 0.95}\nlog: {every: 100, level: warn}\n",
      "learn.yaml");
  auto r = run(o, "", false, -1);
  EXPECT_GE(r.eval.at("accuracy"), 0.9) << "after " << r.step << " steps";
}
