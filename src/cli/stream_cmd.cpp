// `dysra stream run` (a long FactStream through a model with a KV cache policy: per-interval accuracy, decode
// latency, cache bytes), `dysra stream train-compressor` (the learned compressors of the compressive cache) and
// `dysra stream compression-error` (attention-output error of block compression against rank, on real text).
//
// Flags only, no experiment YAML: the model comes from --config EXP.yaml (its `model:` section, plus --set
// overrides) and --weights CKPT, or, without --config, a randomly initialised Transformer of --d-model/--layers/
// --heads (memory and speed measurements). The tokenizer is the byte tokenizer (vocab 260).
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "dysra/cache/compressor.h"
#include "dysra/cache/model.h"
#include "dysra/core/error.h"
#include "dysra/data/lm_task.h"
#include "dysra/data/streaming.h"
#include "dysra/data/tokenizer.h"
#include "dysra/models/lm.h"
#include "dysra/stream/runner.h"
#include "dysra/train/checkpoint.h"
#include "dysra/train/trainer.h"

namespace dysra::cli {
namespace {

struct ModelArgs {
  std::string config, weights, device = "cpu";
  std::vector<std::string> overrides;
  int64_t d_model = 128, n_layers = 2, n_heads = 4, threads = 0;
};

void add_model_args(CLI::App* c, ModelArgs& a) {
  c->add_option("--config", a.config, "experiment YAML whose model section is used (else a random Transformer)");
  c->add_option("--set", a.overrides, "override a config key (repeatable)")->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("--weights", a.weights, "model weights: a checkpoint file, or a run directory (its latest checkpoint)");
  c->add_option("--device", a.device, "cpu | cuda | auto")->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  c->add_option("--d-model", a.d_model, "random model: width")->capture_default_str()->check(CLI::PositiveNumber);
  c->add_option("--layers", a.n_layers, "random model: layers")->capture_default_str()->check(CLI::PositiveNumber);
  c->add_option("--heads", a.n_heads, "random model: heads")->capture_default_str()->check(CLI::PositiveNumber);
  c->add_option("--threads", a.threads, "CPU threads (0 = torch default)")->capture_default_str();
}

/// The model of `a`: the `model` section of `exp` (the loaded --config; loaded here when null), or a random
/// Transformer of the --d-model/--layers/--heads flags without a config.
models::LanguageModel build_model(const ModelArgs& a, torch::Device* dev,
                                  const config::ExperimentOptions* exp = nullptr) {
  if (a.threads > 0) torch::set_num_threads(static_cast<int>(a.threads));
  models::ModelOptions mo;
  if (exp) {
    mo = exp->model;
  } else if (!a.config.empty()) {
    mo = config::load_experiment(a.config, a.overrides).model;
  } else {
    DYSRA_CHECK_T(ConfigError, a.weights.empty(), "--weights needs --config (the model's architecture)");
    mo.d_model = a.d_model, mo.n_layers = a.n_layers, mo.n_heads = a.n_heads;
  }
  torch::manual_seed(0);
  models::LanguageModel model(mo, data::ByteTokenizer::kVocab);
  if (!a.weights.empty()) train::load_model_weights(train::resolve_checkpoint(a.weights, "--weights"), *model);
  *dev = train::resolve_device(a.device);
  model->to(*dev);
  return model;
}

void add_cache_args(CLI::App* c, cache::CacheOptions& o) {
  c->add_option("--policy", o.policy, "cache policy: " + cache::cache_registry().known())->capture_default_str();
  c->add_option("--budget", o.budget, "slots per head per layer (window, streaming_llm, h2o, snapkv, pyramidkv)")
      ->capture_default_str();
  c->add_option("--sinks", o.sink_tokens, "sink tokens")->capture_default_str();
  c->add_option("--window", o.window, "h2o recent tokens / razor S0")->capture_default_str();
  c->add_option("--positions", o.positions, "original | cache (default: cache for streaming_llm)");
  c->add_option("--obs-window", o.obs_window, "snapkv/pyramidkv observation window")->capture_default_str();
  c->add_option("--kernel", o.kernel_size, "snapkv pooling kernel")->capture_default_str();
  c->add_option("--pooling", o.pooling, "max | avg")->capture_default_str();
  c->add_option("--pyramid-beta", o.pyramid_beta, "PyramidKV beta")->capture_default_str();
  c->add_option("--retrieval-heads", o.retrieval_heads, "razor: layer*heads+head list (default: probe)")
      ->delimiter(',');
  c->add_option("--razor-ratio", o.razor_ratio, "razor C (0: window only)")->capture_default_str();
  c->add_option("--raw-slots", o.raw_slots, "compressive M")->capture_default_str();
  c->add_option("--delta", o.delta, "compressive delta")->capture_default_str();
  c->add_option("--rank", o.rank, "compressive r")->capture_default_str();
  c->add_option("--summary-slots", o.summary_slots, "compressive summary cap (0 = 4r)")->capture_default_str();
  c->add_option("--recompress-depth", o.recompress_depth, "compressive max summary depth")->capture_default_str();
  c->add_option("--method", o.method, "svd | mean | learned")->capture_default_str();
  c->add_option("--compressor", o.compressor_path, "learned compressors file (train-compressor)");
}

/// Overrides `o` with the config's `cache` and `stream` sections, then with every flag given on the command line
/// (their values in `flags`, the --filler value in `flags_filler`): flags win over the file, as --set does.
void override_from_config(const CLI::App& cmd, const stream::StreamOptions& flags, const std::string& flags_filler,
                          const config::ExperimentOptions& exp, stream::StreamOptions& o, std::string& filler) {
  o.cache = exp.cache;
  const auto& s = exp.stream;
  o.total_tokens = s.tokens, o.chunk_tokens = s.chunk, o.report_every = s.report_every;
  o.facts.question_interval = static_cast<size_t>(s.question_interval);
  o.facts.distances.assign(s.distances.begin(), s.distances.end());
  o.facts.kind = s.kind, o.facts.hops = static_cast<size_t>(s.hops), o.facts.seed = s.seed;
  o.checkpoint_every = s.checkpoint_every;
  filler = s.filler;
  auto given = [&](const char* flag) { return cmd.count(flag) > 0; };
  auto take = [&](const char* flag, auto member) {
    if (given(flag)) o.cache.*member = flags.cache.*member;
  };
  using C = cache::CacheOptions;
  take("--policy", &C::policy), take("--budget", &C::budget), take("--sinks", &C::sink_tokens);
  take("--window", &C::window), take("--positions", &C::positions), take("--obs-window", &C::obs_window);
  take("--kernel", &C::kernel_size), take("--pooling", &C::pooling), take("--pyramid-beta", &C::pyramid_beta);
  take("--retrieval-heads", &C::retrieval_heads), take("--razor-ratio", &C::razor_ratio);
  take("--raw-slots", &C::raw_slots), take("--delta", &C::delta), take("--rank", &C::rank);
  take("--summary-slots", &C::summary_slots), take("--recompress-depth", &C::recompress_depth);
  take("--method", &C::method), take("--compressor", &C::compressor_path);
  if (given("--tokens")) o.total_tokens = flags.total_tokens;
  if (given("--chunk")) o.chunk_tokens = flags.chunk_tokens;
  if (given("--report-every")) o.report_every = flags.report_every;
  if (given("--question-interval")) o.facts.question_interval = flags.facts.question_interval;
  if (given("--distances")) o.facts.distances = flags.facts.distances;
  if (given("--seed")) o.facts.seed = flags.facts.seed;
  if (given("--kind")) o.facts.kind = flags.facts.kind;
  if (given("--hops")) o.facts.hops = flags.facts.hops;
  if (given("--checkpoint-every")) o.checkpoint_every = flags.checkpoint_every;
  if (given("--filler")) filler = flags_filler;
}

/// The run's stream options: the flags, or with a config (`exp`, loaded once by the caller) its `cache` and
/// `stream` sections with the given flags on top.
stream::StreamOptions stream_options(const CLI::App& cmd, const stream::StreamOptions& flags, const std::string& filler,
                                     const config::ExperimentOptions* exp) {
  stream::StreamOptions o = flags;
  std::string fill = filler;
  if (exp) override_from_config(cmd, flags, filler, *exp, o, fill);
  o.facts.filler = fill == "essay" ? data::Haystack::essay : data::Haystack::noise;
  o.facts.chunk_size = static_cast<size_t>(std::max<int64_t>(o.chunk_tokens, 1));
  return o;
}

}  // namespace

void add_stream_commands(CLI::App& app, std::vector<Command>& out) {
  auto* stream = app.add_subcommand("stream", "constant-memory streaming with KV cache policies");
  stream->require_subcommand(1);

  // ---- run ----
  struct RunArgs {
    ModelArgs model;
    stream::StreamOptions opt;
    std::string filler = "noise";
  };
  auto r = std::make_shared<RunArgs>();
  auto* run = stream->add_subcommand("run", "feed a FactStream through a model with a cache policy");
  add_model_args(run, r->model);
  add_cache_args(run, r->opt.cache);
  run->add_option("--run-dir", r->opt.run_dir, "output directory")->required();
  run->add_option("--tokens", r->opt.total_tokens, "stream length in tokens")->capture_default_str();
  run->add_option("--chunk", r->opt.chunk_tokens, "prefill chunk")->capture_default_str();
  run->add_option("--report-every", r->opt.report_every, "interval length (tokens)")->capture_default_str();
  run->add_option("--question-interval", r->opt.facts.question_interval, "tokens between questions")
      ->capture_default_str();
  run->add_option("--distances", r->opt.facts.distances, "fact distances (tokens), cycled")->delimiter(',')
      ->capture_default_str();
  run->add_option("--filler", r->filler, "noise | essay")->capture_default_str()
      ->check(CLI::IsMember({"noise", "essay"}));
  run->add_option("--seed", r->opt.facts.seed, "stream seed")->capture_default_str();
  run->add_option("--kind", r->opt.facts.kind, "facts: needle | chain (multi-hop) | variables (variable tracking)")
      ->capture_default_str()->check(CLI::IsMember({"needle", "chain", "variables"}));
  run->add_option("--hops", r->opt.facts.hops, "chain: facts per chain; variables: assignments")->capture_default_str();
  run->add_option("--checkpoint-every", r->opt.checkpoint_every, "tokens between checkpoints (0 = none)")
      ->capture_default_str();
  run->add_flag("--resume", r->opt.resume, "continue from RUN_DIR/stream.ckpt");
  run->add_option("config", r->model.config, "experiment YAML (same as --config): model, cache and stream sections");
  out.push_back({run, [r, run]() {
                   torch::Device dev(torch::kCPU);
                   std::optional<config::ExperimentOptions> exp;  // read once: model, cache and stream sections
                   if (!r->model.config.empty()) exp = config::load_experiment(r->model.config, r->model.overrides);
                   auto model = build_model(r->model, &dev, exp ? &*exp : nullptr);
                   auto o = stream_options(*run, r->opt, r->filler, exp ? &*exp : nullptr);
                   data::ByteTokenizer tok;
                   auto s = stream::run_stream(o, *model, tok);
                   std::cout << nlohmann::json{{"tokens", s.tokens}, {"questions", s.questions},
                                               {"accuracy", s.accuracy}, {"cache_bytes", s.cache_bytes},
                                               {"decode_ms_per_token", s.decode_ms_per_token}}
                                    .dump()
                             << "\n";
                   return 0;
                 }});

  // ---- train-compressor ----
  struct TrainArgs {
    ModelArgs model;
    int64_t delta = 256, rank = 32, tokens = 8192, queries = 64, steps = 300;
    double lr = 1e-3;
    std::string out;
  };
  auto t = std::make_shared<TrainArgs>();
  auto* tc = stream->add_subcommand("train-compressor",
                                    "train the learned compressors (attention reconstruction) on a FactStream prefix");
  add_model_args(tc, t->model);
  tc->add_option("--out", t->out, "compressors file")->required();
  tc->add_option("--delta", t->delta, "block size")->capture_default_str();
  tc->add_option("--rank", t->rank, "summaries per block")->capture_default_str();
  tc->add_option("--tokens", t->tokens, "stream tokens of activations")->capture_default_str();
  tc->add_option("--queries", t->queries, "queries after each block in the loss")->capture_default_str();
  tc->add_option("--steps", t->steps, "Adam steps per layer")->capture_default_str();
  tc->add_option("--lr", t->lr, "learning rate")->capture_default_str();
  out.push_back({tc, [t]() {
                   torch::Device dev(torch::kCPU);
                   auto model = build_model(t->model, &dev);
                   model->eval();
                   data::ByteTokenizer tok;
                   data::FactStreamOptions fo;
                   fo.count_tokens = data::byte_token_counter();
                   data::FactStream fs(fo);
                   std::vector<int64_t> ids;
                   while (static_cast<int64_t>(ids.size()) < t->tokens) {
                     auto c = fs.next();
                     for (auto x : tok.encode(c.text)) ids.push_back(x);
                   }
                   ids.resize(static_cast<size_t>(t->tokens));
                   auto tokens = torch::tensor(ids, torch::kInt64).unsqueeze(0).to(dev);
                   auto samples = cache::collect_compression_samples(*model, tokens, t->delta, t->queries);
                   const auto& mo = model->options();
                   std::vector<cache::LearnedCompressor> comps(samples.size(), cache::LearnedCompressor{nullptr});
                   cache::CompressorTrainOptions to;
                   to.steps = t->steps, to.lr = t->lr;
                   for (size_t l = 0; l < samples.size(); ++l) {
                     if (!samples[l].keys.defined()) continue;
                     comps[l] = cache::LearnedCompressor(mo.d_model / mo.n_heads, t->delta, t->rank);
                     comps[l]->to(dev);
                     auto s = samples[l];
                     s.key_pos = s.key_pos.to(dev);
                     auto first = cache::attention_reconstruction_loss(comps[l], s, mo.position == "rope", mo.rope_theta)
                                      .item<double>();
                     auto losses = cache::train_compressor(comps[l], {s}, to, mo.position == "rope", mo.rope_theta);
                     std::cout << nlohmann::json{{"layer", l}, {"loss_mean_pooling", first},
                                                 {"loss_trained", losses.empty() ? first : losses.back()}}
                                      .dump()
                               << "\n";
                     comps[l]->to(torch::kCPU);
                   }
                   cache::save_compressors(t->out, comps);
                   return 0;
                 }});

  // ---- compression-error ----
  struct ErrorArgs {
    ModelArgs model;
    std::string text, json;
    int64_t delta = 64, tokens = 4096, queries = 16, learned_steps = 300;
    std::vector<int64_t> ranks{1, 2, 4, 8, 16, 32, 64};
    std::vector<std::string> methods{"svd", "mean", "learned"};
  };
  auto e = std::make_shared<ErrorArgs>();
  auto* ce = stream->add_subcommand(
      "compression-error",
      "attention-output error of compressing Δ-blocks of a model's real keys/values to r summaries, per layer and rank");
  add_model_args(ce, e->model);
  ce->add_option("--text", e->text, "text the model reads (corpus JSONL or plain text, e.g. lm/austen/validation.txt)")
      ->required();
  ce->add_option("--delta", e->delta, "block size Δ")->capture_default_str()->check(CLI::PositiveNumber);
  ce->add_option("--tokens", e->tokens, "tokens of activations per half (learned: train on the first, all: score the second)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  ce->add_option("--queries", e->queries, "queries after each block")->capture_default_str()->check(CLI::PositiveNumber);
  ce->add_option("--ranks", e->ranks, "summaries per block")->delimiter(',')->capture_default_str()->check(CLI::PositiveNumber);
  ce->add_option("--methods", e->methods, "svd, mean, learned")->delimiter(',')->capture_default_str()
      ->check(CLI::IsMember({"svd", "mean", "learned"}));
  ce->add_option("--learned-steps", e->learned_steps, "Adam steps per (layer, rank) for method learned")->capture_default_str();
  ce->add_option("--json", e->json, "append one JSON line per (layer, method, rank)");
  out.push_back({ce, [e]() {
                   torch::Device dev(torch::kCPU);
                   auto model = build_model(e->model, &dev);
                   model->eval();
                   const auto& mo = model->options();
                   const bool rope = mo.position == "rope";
                   data::ByteTokenizer tok;
                   std::vector<int64_t> ids;
                   for (const auto& d : data::read_lm_documents(e->text)) {
                     for (auto x : tok.encode(d + "\n\n")) ids.push_back(x);
                     if (static_cast<int64_t>(ids.size()) >= 2 * e->tokens) break;
                   }
                   DYSRA_CHECK_T(DataError, static_cast<int64_t>(ids.size()) >= 2 * e->tokens, e->text, ": ", ids.size(),
                                 " bytes, fewer than 2 × --tokens = ", 2 * e->tokens);
                   auto all = torch::tensor(ids, torch::kInt64).slice(0, 0, 2 * e->tokens).to(dev);
                   auto train_s = cache::collect_compression_samples(*model, all.slice(0, 0, e->tokens).unsqueeze(0),
                                                                     e->delta, e->queries);
                   auto eval_s = cache::collect_compression_samples(*model, all.slice(0, e->tokens).unsqueeze(0),
                                                                    e->delta, e->queries);
                   std::unique_ptr<std::ofstream> js;
                   if (!e->json.empty()) js = std::make_unique<std::ofstream>(e->json, std::ios::app);
                   std::printf("%-6s %-8s %5s %12s %12s %7s\n", "layer", "method", "rank", "mean_error", "median", "blocks");
                   for (size_t l = 0; l < eval_s.size(); ++l) {
                     if (!eval_s[l].keys.defined()) continue;
                     for (const auto& method : e->methods)
                       for (int64_t r : e->ranks) {
                         if (r > e->delta || (method == "learned" && e->delta % r != 0)) continue;
                         cache::LearnedCompressor c{nullptr};
                         if (method == "learned") {
                           c = cache::LearnedCompressor(mo.d_model / mo.n_heads, e->delta, r);
                           c->to(dev);
                           cache::CompressorTrainOptions to;
                           to.steps = e->learned_steps;
                           cache::train_compressor(c, {train_s[l]}, to, rope, mo.rope_theta);
                         }
                         auto err = cache::compression_block_errors(eval_s[l], r, method, rope, mo.rope_theta,
                                                                    method == "learned" ? &c : nullptr);
                         std::vector<double> sorted = err;
                         std::sort(sorted.begin(), sorted.end());
                         double mean = 0;
                         for (double x : err) mean += x / static_cast<double>(err.size());
                         const double median = sorted[sorted.size() / 2];
                         std::printf("%-6zu %-8s %5lld %12.5f %12.5f %7zu\n", l, method.c_str(), static_cast<long long>(r),
                                     mean, median, err.size());
                         if (js)
                           *js << nlohmann::json{{"bench", "compression_error"}, {"layer", l}, {"method", method},
                                                 {"rank", r}, {"delta", e->delta}, {"queries", e->queries},
                                                 {"mean_rel_error", mean}, {"median_rel_error", median},
                                                 {"blocks", err.size()}, {"text", e->text}, {"weights", e->model.weights}}
                                      .dump()
                               << "\n";
                       }
                   }
                   return 0;
                 }});
}

}  // namespace dysra::cli
