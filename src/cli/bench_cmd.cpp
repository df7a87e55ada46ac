// `dysra bench backbones` (throughput of each backbone against sequence length) and `dysra bench kernels`
// (the CUDA kernels against the LibTorch-op path, same card, same run).
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include <torch/torch.h>

#include "bench/cache_bench.h"
#include "bench/kernels_bench.h"
#include "cli/commands.h"
#include "dysra/core/error.h"
#include "dysra/eval/throughput.h"
#include "dysra/models/lm.h"
#include "dysra/train/trainer.h"

namespace dysra::cli {
namespace {

struct BackboneBenchArgs {
  std::vector<std::string> backbones{"transformer", "mamba", "linear_attention"};
  std::vector<int64_t> lengths{1024, 2048, 4096, 8192};
  int64_t d_model = 128, n_layers = 2, n_heads = 4, batch = 1, runs = 3, vocab = 256, threads = 0;
  std::string device = "cpu", json_path;
  bool forward_only = false, bf16 = false;
};

int run_backbone_bench(const BackboneBenchArgs& a) {
  if (a.threads > 0) torch::set_num_threads(static_cast<int>(a.threads));
  auto device = train::resolve_device(a.device);
  std::unique_ptr<std::ofstream> json;
  if (!a.json_path.empty()) json = std::make_unique<std::ofstream>(a.json_path, std::ios::app);
  std::printf("%-18s %8s %12s %14s %12s\n", "backbone", "seq_len", "median_ms", "tokens/s", "params");
  for (const auto& b : a.backbones) {
    models::ModelOptions mo;
    mo.backbone = b;
    mo.d_model = a.d_model;
    mo.n_layers = a.n_layers;
    mo.n_heads = a.n_heads;
    mo.mlp_ratio = 0;
    mo.max_seq_len = *std::max_element(a.lengths.begin(), a.lengths.end());
    torch::manual_seed(0);
    models::LanguageModel model(mo, a.vocab);
    for (auto L : a.lengths) {
      eval::ThroughputOptions to;
      to.batch_size = a.batch;
      to.seq_len = L;
      to.runs = a.runs;
      to.backward = !a.forward_only;
      to.bf16 = a.bf16;
      auto r = eval::measure_throughput(model, to, device);
      std::printf("%-18s %8lld %12.2f %14.0f %12lld\n", b.c_str(), static_cast<long long>(L), r.median_s * 1e3,
                  r.tokens_per_s, static_cast<long long>(model->num_parameters()));
      std::fflush(stdout);
      if (json)
        *json << nlohmann::json{{"bench", "backbones"}, {"backbone", b}, {"seq_len", L}, {"batch", a.batch},
                                {"d_model", a.d_model}, {"n_layers", a.n_layers}, {"device", device.str()},
                                {"threads", torch::get_num_threads()}, {"backward", !a.forward_only},
                                {"median_ms", r.median_s * 1e3}, {"tokens_per_s", r.tokens_per_s}}
                     .dump()
              << "\n";
    }
  }
  return 0;
}

}  // namespace

void add_bench_commands(CLI::App& app, std::vector<Command>& out) {
  auto* bench = app.add_subcommand("bench", "benchmarks (not tests): throughput and kernels");
  bench->require_subcommand(1);

  auto a = std::make_shared<BackboneBenchArgs>();
  auto* bb = bench->add_subcommand("backbones", "training throughput of each backbone against sequence length");
  bb->add_option("--backbones", a->backbones, "backbones to time")->delimiter(',')->capture_default_str()
      ->check(CLI::IsMember({"transformer", "mamba", "linear_attention"}));
  bb->add_option("--lengths", a->lengths, "sequence lengths")->delimiter(',')->capture_default_str()->check(CLI::PositiveNumber);
  bb->add_option("--d-model", a->d_model, "model width")->capture_default_str()->check(CLI::PositiveNumber);
  bb->add_option("--layers", a->n_layers, "layers")->capture_default_str()->check(CLI::PositiveNumber);
  bb->add_option("--heads", a->n_heads, "attention heads")->capture_default_str()->check(CLI::PositiveNumber);
  bb->add_option("--batch", a->batch, "batch size")->capture_default_str()->check(CLI::PositiveNumber);
  bb->add_option("--runs", a->runs, "timed runs (median reported)")->capture_default_str()->check(CLI::PositiveNumber);
  bb->add_option("--threads", a->threads, "CPU threads (0 = default)")->capture_default_str();
  bb->add_option("--device", a->device, "cpu | cuda")->capture_default_str()->check(CLI::IsMember({"cpu", "cuda"}));
  bb->add_option("--json", a->json_path, "append JSON lines to this file");
  bb->add_flag("--forward-only", a->forward_only, "time the forward pass only");
  bb->add_flag("--bf16", a->bf16, "bf16 autocast (CUDA)");
  out.push_back({bb, [a] { return run_backbone_bench(*a); }});

  auto k = std::make_shared<bench::KernelBenchOptions>();
  auto* kc = bench->add_subcommand("kernels", "CUDA kernels vs the LibTorch-op path (GPU machine)");
  kc->add_option("--ops", k->ops, "selective_scan,linear_attention,gathered_attention or all")->capture_default_str();
  kc->add_option("--warmup", k->warmup, "untimed runs")->capture_default_str();
  kc->add_option("--runs", k->runs, "timed runs (>= 20)")->capture_default_str()->check(CLI::Range(20, 100000));
  kc->add_option("--rotate", k->rotate, "input buffer sets rotated")->capture_default_str();
  kc->add_option("--json", k->json_path, "append JSON lines to this file");
  kc->add_flag("--quick", k->quick, "small shapes: a smoke test of the harness");
  kc->add_flag("--graphs", k->graphs, "also time each call on CUDA-graph replays (GPU time without launch overhead)");
  kc->add_flag("!--no-backward", k->backward, "forward only");
  kc->add_flag("!--no-peers", k->peers, "time dysra's kernels only, not the LibTorch-op path (A/B runs)");
  kc->add_option("--cooldown-ms", k->cooldown_ms,
                 "idle the card this long before each row, so that rows start at the same SM clock (the power cap "
                 "lowers it under sustained load)")
      ->capture_default_str()
      ->check(CLI::Range(0, 600000));
  out.push_back({kc, [k] { return bench::run_kernel_bench(*k); }});

  auto c = std::make_shared<bench::CacheBenchOptions>();
  auto* cd = bench->add_subcommand("cache-decode",
                                   "decode step: rotating compressive cache vs full-KV SDPA against stream length (GPU)");
  cd->add_option("--lengths", c->lengths, "tokens already streamed")->delimiter(',')->capture_default_str()
      ->check(CLI::PositiveNumber);
  cd->add_option("--heads", c->heads, "heads")->capture_default_str()->check(CLI::PositiveNumber);
  cd->add_option("--head-dim", c->head_dim, "head dim")->capture_default_str()->check(CLI::PositiveNumber);
  cd->add_option("--batch", c->batch, "batch")->capture_default_str()->check(CLI::PositiveNumber);
  cd->add_option("--sinks", c->sinks, "sink tokens")->capture_default_str();
  cd->add_option("--raw", c->raw_slots, "raw slots M")->capture_default_str()->check(CLI::PositiveNumber);
  cd->add_option("--delta", c->delta, "block size Δ")->capture_default_str()->check(CLI::PositiveNumber);
  cd->add_option("--rank", c->rank, "summaries per block r")->capture_default_str()->check(CLI::PositiveNumber);
  cd->add_option("--summaries", c->summary_slots, "summary slots C (0 = 4r)")->capture_default_str();
  cd->add_option("--full-max", c->full_max, "full-KV baseline up to this length")->capture_default_str();
  cd->add_option("--warmup", c->warmup, "untimed decode steps")->capture_default_str();
  cd->add_option("--runs", c->runs, "timed decode steps (>= 20)")->capture_default_str()->check(CLI::Range(20, 1000000));
  cd->add_option("--json", c->json_path, "append JSON lines to this file");
  out.push_back({cd, [c] { return bench::run_cache_bench(*c); }});
}

}  // namespace dysra::cli
