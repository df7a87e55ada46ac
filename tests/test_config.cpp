// Experiment config loading: extends, overrides, precedence, round trip, and the error for each bad input.
#include <gtest/gtest.h>

#include "dysra/config/experiment.h"
#include "dysra/core/error.h"
#include "test_util.h"

using dysra::ConfigError;
using dysra::config::load_experiment;
using dysra::config::parse_experiment;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("WRONG EXCEPTION TYPE: ") + e.what();
  }
  return "NO ERROR";
}

std::string load_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  dysra::test::TempDir dir;
  auto path = dir.file("x.yaml", yaml);
  std::string msg = error_of([&] { load_experiment(path, overrides); });
  // make messages path-independent
  auto pos = msg.find(path);
  if (pos != std::string::npos) msg.replace(pos, path.size(), "x.yaml");
  return msg;
}

}  // namespace

TEST(Config, DefaultsAndValues) {
  auto o = parse_experiment("name: t\nmodel:\n  d_model: 96\n  n_heads: 3\ntrain: {lr: 3.0e-4, steps: 7}\n", "t.yaml");
  EXPECT_EQ(o.name, "t");
  EXPECT_EQ(o.model.d_model, 96);
  EXPECT_EQ(o.model.n_heads, 3);
  EXPECT_DOUBLE_EQ(o.train.lr, 3e-4);
  EXPECT_EQ(o.train.steps, 7);
  EXPECT_EQ(o.train.batch_size, dysra::train::TrainOptions{}.batch_size);  // default kept
}

TEST(Config, ExtendsLaterWinsAndSetWinsOverFiles) {
  dysra::test::TempDir dir;
  dir.file("base.yaml", "model: {d_model: 32, n_layers: 3}\ntrain: {lr: 0.01, steps: 10}\n");
  dir.file("mid.yaml", "extends: base.yaml\ntrain: {lr: 0.02}\n");
  auto path = dir.file("top.yaml", "extends: [mid.yaml]\nmodel: {n_layers: 4}\n");
  auto o = load_experiment(path);
  EXPECT_EQ(o.model.d_model, 32);   // from base
  EXPECT_EQ(o.model.n_layers, 4);   // top wins
  EXPECT_DOUBLE_EQ(o.train.lr, 0.02);  // mid wins over base
  EXPECT_EQ(o.train.steps, 10);
  auto o2 = load_experiment(path, {"train.lr=0.5", "model.layers=[attention, attention]"});
  EXPECT_DOUBLE_EQ(o2.train.lr, 0.5);
  ASSERT_EQ(o2.model.layers.size(), 2u);
}

TEST(Config, ResolvedYamlRoundTrips) {
  auto o = parse_experiment("seed: 5\nmodel: {d_model: 48, layers: [attention], dropout: 0.1}\ntrain: {lr: 0.0003}\n", "a.yaml");
  auto text = dysra::config::to_yaml(o);
  auto o2 = parse_experiment(text, "resolved.yaml");
  EXPECT_EQ(dysra::config::to_yaml(o2), text);
  EXPECT_EQ(o2.seed, 5u);
  EXPECT_DOUBLE_EQ(o2.train.lr, 0.0003);
  EXPECT_DOUBLE_EQ(o2.model.dropout, 0.1);
}

// Each bad input and the message it must produce.
struct BadCase {
  const char* name;
  std::string yaml;
  std::vector<std::string> overrides;
  std::string expected;  // substring of the error
};

class ConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigErrors, ClearMessage) {
  const auto& c = GetParam();
  EXPECT_NE(load_error(c.yaml, c.overrides).find(c.expected), std::string::npos)
      << "case " << c.name << ": got: " << load_error(c.yaml, c.overrides);
}

INSTANTIATE_TEST_SUITE_P(
    BadInputs, ConfigErrors,
    ::testing::Values(
        BadCase{"wrong_type", "model: {d_model: 64}\ntrain:\n  steps: 10\n  lr: fast\n", {},
                "x.yaml:4: train.lr: expected a number, got \"fast\""},
        BadCase{"unknown_key", "model:\n  d_modle: 64\n", {}, "x.yaml:2: model.d_modle: unknown key"},
        BadCase{"unknown_section", "trian: {steps: 3}\n", {}, "x.yaml:1: trian: unknown key"},
        BadCase{"out_of_range", "model:\n  d_model: 0\n", {}, "x.yaml:2: model.d_model: must be >= 1, got 0"},
        BadCase{"dropout_range", "model: {dropout: -0.5}\n", {}, "model.dropout: must be in [0, 0.99], got -0.5"},
        BadCase{"bad_enum", "model:\n  backbone: rnn\n", {}, "x.yaml:2: model.backbone: unknown value \"rnn\""},
        BadCase{"bad_layer", "model:\n  backbone: dysra\n  layers: [attention, mamba7]\n", {},
                "model.layers[1]: unknown layer type \"mamba7\""},
        BadCase{"missing_extends", "extends: nowhere.yaml\n", {}, "x.yaml:1: extends: file not found"},
        BadCase{"yaml_syntax", "model: {d_model: 64\ntrain: [\n", {}, "YAML syntax error"},
        BadCase{"set_without_value", "{}\n", {"model.d_model"}, "--set model.d_model: expected key.path=value"},
        BadCase{"set_wrong_type", "{}\n", {"model.d_model=abc"},
                "--set model.d_model=abc: model.d_model: expected an integer, got \"abc\""},
        BadCase{"set_unknown_key", "{}\n", {"train.learning_rate=0.1"}, "train.learning_rate: unknown key"},
        BadCase{"heads_divide", "model:\n  d_model: 64\n  n_heads: 3\n", {},
                "model.n_heads: d_model (64) must be divisible by n_heads (3)"},
        BadCase{"mqar_odd_len", "data:\n  task: mqar\n  mqar:\n    seq_len: 101\n", {}, "x.yaml:4: data.mqar.seq_len: must be even"},
        BadCase{"section_scalar", "model: 5\n", {}, "x.yaml:1: model: expected a mapping, got \"5\""},
        BadCase{"float_for_int", "train:\n  steps: 1.5\n", {}, "x.yaml:2: train.steps: expected an integer, got \"1.5\""},
        BadCase{"unknown_task", "data: {task: squad}\n", {}, "data.task: unknown value \"squad\""},
        BadCase{"list_for_scalar", "train:\n  lr: [1, 2]\n", {}, "x.yaml:2: train.lr: expected a number, got a list"},
        BadCase{"dysra_needs_layers", "model: {backbone: dysra}\n", {}, "model.layers: backbone 'dysra' needs a layer pattern"},
        BadCase{"bool_type", "train:\n  bf16: maybe\n", {}, "x.yaml:2: train.bf16: expected true or false, got \"maybe\""},
        BadCase{"early_stop_loss_max", "eval:\n  early_stop_metric: loss\n", {},
                "eval.early_stop_mode: early stopping on loss needs early_stop_mode: min"},
        BadCase{"min_seq_len_over", "data:\n  task: passkey\n  synthetic: {seq_len: 1024, min_seq_len: 2048}\n", {},
                "data.synthetic.min_seq_len: must not exceed seq_len (1024)"},
        BadCase{"lm_mode", "data:\n  task: lm\n  lm: {mode: packed}\n", {}, "data.lm.mode: unknown value \"packed\""},
        BadCase{"tokenizer_type", "data:\n  task: passkey\n  tokenizer: {type: bpe}\n", {},
                "data.tokenizer.type: unknown value \"bpe\""},
        BadCase{"init_from_missing", "train:\n  init_from: /nonexistent/run\n", {},
                "x.yaml:2: train.init_from: no such checkpoint or run directory: /nonexistent/run"},
        BadCase{"cache_policy", "cache:\n  policy: lru\n", {}, "x.yaml:2: cache.policy: unknown value \"lru\""},
        BadCase{"cache_delta_over_raw", "cache:\n  policy: compressive\n  raw_slots: 512\n  delta: 600\n", {},
                "cache.delta: must be <= raw_slots (512), got 600"},
        BadCase{"cache_budget_missing", "cache: {policy: window}\n", {},
                "cache.budget: policy window needs a budget >= 1 slot per head"},
        BadCase{"stream_distance", "stream:\n  distances: [100, -5]\n", {}, "x.yaml:2: stream.distances: each must be > 0"},
        BadCase{"stream_filler", "stream: {filler: lorem}\n", {}, "stream.filler: unknown value \"lorem\""}),
    [](const ::testing::TestParamInfo<BadCase>& i) { return std::string(i.param.name); });

TEST(Config, CacheAndStreamSections) {
  auto o = dysra::config::parse_experiment(
      "cache:\n  policy: compressive\n  raw_slots: 512\n  delta: 128\n  rank: 32\n  summary_slots: 640\n"
      "  positions: cache\nstream:\n  tokens: 65536\n  distances: [200, 1500]\n  filler: essay\n",
      "x.yaml", {"cache.method=mean"});
  EXPECT_EQ(o.cache.policy, "compressive");
  EXPECT_EQ(o.cache.raw_slots, 512);
  EXPECT_EQ(o.cache.delta, 128);
  EXPECT_EQ(o.cache.summary_slots, 640);
  EXPECT_EQ(o.cache.method, "mean");
  EXPECT_EQ(o.cache.positions, "cache");
  EXPECT_EQ(o.stream.tokens, 65536u);
  EXPECT_EQ(o.stream.distances, (std::vector<int64_t>{200, 1500}));
  EXPECT_EQ(o.stream.filler, "essay");
  // the resolved YAML carries them (and loads back the same)
  auto back = dysra::config::parse_experiment(dysra::config::to_yaml(o), "resolved.yaml");
  EXPECT_EQ(back.cache.rank, 32);
  EXPECT_EQ(back.stream.distances, o.stream.distances);
}

TEST(Config, ExtendsCycleIsAnError) {
  dysra::test::TempDir dir;
  dir.file("a.yaml", "extends: b.yaml\n");
  dir.file("b.yaml", "extends: a.yaml\n");
  auto msg = error_of([&] { load_experiment(dir.path("a.yaml")); });
  EXPECT_NE(msg.find("extends: cycle"), std::string::npos) << msg;
}

TEST(Config, ErrorInExtendedFileNamesThatFile) {
  dysra::test::TempDir dir;
  dir.file("base.yaml", "train:\n  steps: many\n");
  auto msg = error_of([&] { load_experiment(dir.file("top.yaml", "extends: base.yaml\n")); });
  EXPECT_NE(msg.find("base.yaml:2: train.steps: expected an integer"), std::string::npos) << msg;
}

TEST(Config, MissingConfigFile) {
  auto msg = error_of([] { load_experiment("/nonexistent/exp.yaml"); });
  EXPECT_NE(msg.find("/nonexistent/exp.yaml: config file not found"), std::string::npos) << msg;
}
