#include "dysra/train/trainer.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "dysra/core/error.h"
#include "dysra/core/random.h"
#include "dysra/train/autocast.h"
#include "dysra/train/checkpoint.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace dysra::train {
namespace {

std::atomic<int> g_interrupts{0};
std::atomic<int64_t> g_first_signal_ns{0};

int64_t monotonic_ns() {  // clock_gettime is async-signal-safe
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// First signal: finish the step, checkpoint, write the summary. A second one more than a second later: leave
// now. Signals inside that second count as one: `timeout` (coreutils) sends SIGTERM to the command and then to
// its whole process group, so the command receives it twice at once.
extern "C" void on_signal(int sig) {
  const int64_t now = monotonic_ns();
  if (g_interrupts.fetch_add(1) == 0) {
    g_first_signal_ns.store(now);
  } else if (now - g_first_signal_ns.load() > 1000000000) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

struct LossStats {
  torch::Tensor loss;  // mean CE over labelled positions
  torch::Tensor logits;
  torch::Tensor targets;
  torch::Tensor mask;
};

// Mean CE over labelled positions; with `weighted` and batch weights, Σ w·CE / Σ w (training only).
LossStats lm_loss(models::LanguageModel& model, const data::Batch& batch, bool bf16, bool weighted = false) {
  AutocastGuard ac(bf16);
  auto h = model->hidden(batch.tokens);
  auto mask = batch.labels.ne(data::kIgnoreIndex);
  auto logits = model->logits(h.index({mask})).to(torch::kFloat32);
  auto targets = batch.labels.index({mask});
  namespace F = torch::nn::functional;
  if (weighted && batch.weights.defined()) {
    auto w = batch.weights.index({mask}).to(torch::kFloat32);
    auto ce = F::cross_entropy(logits, targets, F::CrossEntropyFuncOptions().reduction(torch::kNone));
    return {(ce * w).sum() / w.sum().clamp_min(1e-12), logits, targets, mask};
  }
  return {F::cross_entropy(logits, targets), logits, targets, mask};
}

}  // namespace

void install_interrupt_handler() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}
bool interrupt_requested() { return g_interrupts.load() > 0; }

void seed_everything(uint64_t seed) {
  torch::manual_seed(seed);
  if (torch::cuda::is_available()) torch::cuda::manual_seed_all(seed);
}

torch::Device resolve_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda") {
    DYSRA_CHECK_T(ConfigError, torch::cuda::is_available(), "device: cuda was requested but no CUDA device is available");
    return torch::kCUDA;
  }
  DYSRA_CHECK_T(ConfigError, name == "auto", "device: expected auto, cpu or cuda, got \"", name, "\"");
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

std::map<std::string, double> evaluate_lm(models::LanguageModel& model, const data::Task& task, data::Split split,
                                          int64_t max_examples, int64_t batch_size, const torch::Device& device,
                                          bool bf16) {
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard ng;
  const int64_t n = max_examples > 0 ? std::min(max_examples, task.size(split)) : task.size(split);
  double nll = 0, tokens = 0, correct = 0, example_acc = 0, example_exact = 0;
  int64_t examples_with_targets = 0;
  for (int64_t start = 0; start < n; start += batch_size) {
    std::vector<int64_t> ids;
    for (int64_t i = start; i < std::min(n, start + batch_size); ++i) ids.push_back(i);
    auto batch = task.batch(split, ids).to(device);
    auto s = lm_loss(model, batch, bf16 && device.is_cuda());
    auto hit = s.logits.argmax(-1).eq(s.targets);
    nll += s.loss.item<double>() * static_cast<double>(s.targets.numel());
    tokens += static_cast<double>(s.targets.numel());
    correct += hit.sum().item<double>();
    // per-example accuracy: scatter hits back to [B, L]
    auto hits_full = torch::zeros(s.mask.sizes(), torch::TensorOptions().dtype(torch::kFloat32).device(device));
    hits_full.index_put_({s.mask}, hit.to(torch::kFloat32));
    auto per_count = s.mask.sum(1).to(torch::kFloat32);
    auto has = per_count.gt(0);
    auto per_hits = hits_full.sum(1).index({has});
    example_acc += (per_hits / per_count.index({has})).sum().item<double>();
    example_exact += per_hits.eq(per_count.index({has})).sum().item<double>();
    examples_with_targets += has.sum().item<int64_t>();
  }
  if (was_training) model->train();
  std::map<std::string, double> m;
  m["loss"] = tokens > 0 ? nll / tokens : 0.0;
  m["perplexity"] = std::exp(m["loss"]);
  m["token_accuracy"] = tokens > 0 ? correct / tokens : 0.0;
  m["accuracy"] = examples_with_targets > 0 ? example_acc / static_cast<double>(examples_with_targets) : 0.0;
  // every target of the example right under teacher forcing == greedy decoding reproduces the target exactly
  m["sequence_accuracy"] = examples_with_targets > 0 ? example_exact / static_cast<double>(examples_with_targets) : 0.0;
  m["examples"] = static_cast<double>(n);
  return m;
}

torch::Tensor greedy_generate(models::LanguageModel& model, const torch::Tensor& prompts, int64_t max_new, bool bf16) {
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard ng;
  AutocastGuard ac(bf16);
  std::vector<layers::MixerState> states;
  auto h = model->hidden(prompts, {}, &states);
  auto next = model->logits(h.select(1, h.size(1) - 1)).argmax(-1);
  std::vector<torch::Tensor> out{next};
  for (int64_t i = 1; i < max_new; ++i) {
    h = model->hidden(next.unsqueeze(1), {}, &states);
    next = model->logits(h.select(1, 0)).argmax(-1);
    out.push_back(next);
  }
  if (was_training) model->train();
  return torch::stack(out, 1);
}

std::map<std::string, double> evaluate_task(models::LanguageModel& model, const data::Task& task, data::Split split,
                                            const EvalOptions& o, const torch::Device& device, bool bf16) {
  auto m = evaluate_lm(model, task, split, o.examples, o.batch_size, device, bf16);
  if (o.answer_examples > 0) {
    auto gen = [&](const torch::Tensor& prompts, int64_t max_new) {
      return greedy_generate(model, prompts.to(device), max_new, bf16);
    };
    for (const auto& kv : task.answer_metrics(split, o.answer_examples, o.batch_size, gen)) m[kv.first] = kv.second;
  }
  return m;
}

struct Trainer::Impl {
  models::LanguageModel model;
  std::shared_ptr<const data::Task> task;
  TrainerSetup setup;
  torch::Device device;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  TrainerState state;
  std::shared_ptr<spdlog::logger> log;
  int64_t perm_epoch = -1;
  std::vector<int64_t> perm;

  Impl(models::LanguageModel m, std::shared_ptr<const data::Task> t, TrainerSetup s, torch::Device d)
      : model(std::move(m)), task(std::move(t)), setup(std::move(s)), device(d) {}

  std::string ckpt_dir() const { return (fs::path(setup.run_dir) / "checkpoints").string(); }

  // Training example ids for positions [cursor, cursor + n): the task's order of the training split per epoch.
  std::vector<int64_t> next_ids(int64_t cursor, int64_t n) {
    const int64_t N = task->size(data::Split::kTrain);
    std::vector<int64_t> ids;
    ids.reserve(n);
    for (int64_t c = cursor; c < cursor + n; ++c) {
      const int64_t epoch = c / N;
      if (epoch != perm_epoch) {
        perm = task->epoch_order(setup.seed, epoch, setup.train.batch_size);
        DYSRA_CHECK(static_cast<int64_t>(perm.size()) == N, task->name(), ": epoch order has ", perm.size(),
                    " ids for a training split of ", N);
        perm_epoch = epoch;
      }
      ids.push_back(perm[c % N]);
    }
    return ids;
  }

  void append_metrics(const json& j) {
    if (setup.run_dir.empty()) return;
    std::ofstream out(fs::path(setup.run_dir) / "metrics.jsonl", std::ios::app);
    out << j.dump() << "\n";
  }

  // After a resume, drop metrics lines logged after the checkpoint (they will be logged again).
  void truncate_metrics(int64_t step) {
    const fs::path p = fs::path(setup.run_dir) / "metrics.jsonl";
    if (!fs::exists(p)) return;
    std::ifstream in(p);
    std::string line, kept;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto j = json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.contains("step") && j["step"].get<int64_t>() > step) continue;
      kept += line + "\n";
    }
    write_file_atomic(p.string(), kept);
  }
};

Trainer::Trainer(models::LanguageModel model, std::shared_ptr<const data::Task> task, TrainerSetup setup)
    : device_(resolve_device(setup.device)) {
  impl_ = std::make_unique<Impl>(std::move(model), std::move(task), std::move(setup), device_);
  auto& s = impl_->setup;
  if (s.train.threads > 0) torch::set_num_threads(static_cast<int>(s.train.threads));
  impl_->model->to(device_);

  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : impl_->model->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  auto base = torch::optim::AdamWOptions(s.train.lr)
                  .betas({s.train.beta1, s.train.beta2})
                  .eps(s.train.eps)
                  .weight_decay(s.train.weight_decay);
  auto nd = base;
  nd.weight_decay(0.0);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(base));
  if (!no_decay.empty()) groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(nd));
  impl_->optimizer = std::make_unique<torch::optim::AdamW>(groups, base);

  std::vector<spdlog::sink_ptr> sinks{std::make_shared<spdlog::sinks::stderr_color_sink_mt>()};
  if (!s.run_dir.empty()) {
    fs::create_directories(s.run_dir);
    sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>((fs::path(s.run_dir) / "log.txt").string()));
  }
  impl_->log = std::make_shared<spdlog::logger>("train", sinks.begin(), sinks.end());
  impl_->log->set_level(spdlog::level::from_str(s.log.level));
  impl_->log->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
}

Trainer::~Trainer() = default;

double Trainer::lr_at(int64_t step) const {
  const auto& t = impl_->setup.train;
  if (t.warmup_steps > 0 && step < t.warmup_steps) return t.lr * static_cast<double>(step + 1) / static_cast<double>(t.warmup_steps);
  const double span = std::max<int64_t>(1, t.steps - t.warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - t.warmup_steps) / span);
  const double floor = t.lr * t.min_lr_ratio;
  return floor + (t.lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

TrainResult Trainer::run(int64_t stop_at) {
  auto& I = *impl_;
  auto& s = I.setup;
  auto& st = I.state;
  const bool bf16 = s.train.bf16 && device_.is_cuda();
  st.config_yaml = s.config_yaml;

  if (!s.run_dir.empty()) {
    auto latest = latest_checkpoint(I.ckpt_dir());
    if (s.resume) {
      if (latest) {
        st = load_checkpoint(*latest, *I.model, *I.optimizer);
        I.model->to(device_);
        if (st.config_yaml != s.config_yaml)
          I.log->warn("resuming with a configuration that differs from the checkpoint's (see config.yaml)");
        st.config_yaml = s.config_yaml;
        I.truncate_metrics(st.step);
        I.log->info("resumed from {} at step {} (data position {})", *latest, st.step, st.data_cursor);
      } else {
        I.log->warn("--resume: no checkpoint in {}; starting from step 0", I.ckpt_dir());
      }
    } else if (latest) {
      throw ConfigError("run directory " + s.run_dir + " already holds checkpoints (" + *latest +
                        "); pass --resume to continue it or choose another --run-dir");
    }
    write_file_atomic((fs::path(s.run_dir) / "config.yaml").string(), s.config_yaml);
  }

  const int64_t total = s.train.steps;
  const int64_t until = stop_at >= 0 ? std::min(stop_at, total) : total;
  const bool bar = s.log.progress == "bar" || (s.log.progress == "auto" && ::isatty(STDERR_FILENO));
  I.log->info("training {} steps on {} ({} parameters, layers: {})", total, device_.str(), I.model->num_parameters(),
              fmt::join(I.model->layer_types(), ","));

  TrainResult result;
  I.model->train();
  double interval_loss = 0;
  int64_t interval_steps = 0, interval_tokens = 0;
  auto t0 = std::chrono::steady_clock::now(), t_interval = t0;
  const double elapsed_before = st.elapsed_s;
  auto elapsed = [&] {
    return elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  auto checkpoint = [&] {
    if (s.run_dir.empty()) return;
    st.elapsed_s = elapsed();
    auto path = save_checkpoint(I.ckpt_dir(), *I.model, *I.optimizer, st, s.train.keep_checkpoints);
    I.log->debug("checkpoint {}", path);
  };
  auto do_eval = [&] {
    result.eval = evaluate_task(I.model, *I.task, data::Split::kValidation, s.eval, device_, bf16);
    json j{{"step", st.step}, {"elapsed_s", elapsed()}, {"eval", result.eval}};
    I.append_metrics(j);
    std::string line;
    for (const auto& kv : result.eval) line += fmt::format(" {}={:.4f}", kv.first, kv.second);
    if (bar) std::fprintf(stderr, "\n");
    I.log->info("eval step {}:{}", st.step, line);
    const auto& m = s.eval.early_stop_metric;
    if (m.empty()) return false;
    auto it = result.eval.find(m);
    DYSRA_CHECK_T(ConfigError, it != result.eval.end(), "eval.early_stop_metric: unknown metric \"", m,
                  "\" (available: loss, perplexity, accuracy, token_accuracy, sequence_accuracy; em, f1, substring_accuracy for text tasks)");
    const bool better = !st.has_best || (s.eval.early_stop_mode == "max" ? it->second > st.best_metric : it->second < st.best_metric);
    if (better) st.best_metric = it->second, st.has_best = true;
    return s.eval.early_stop_mode == "max" ? it->second >= s.eval.early_stop_threshold
                                           : it->second <= s.eval.early_stop_threshold;
  };

  std::vector<torch::Tensor> params = I.model->parameters();
  while (st.step < until) {
    if (interrupt_requested()) {
      result.interrupted = true;
      if (bar) std::fprintf(stderr, "\n");
      I.log->warn("interrupted at step {}: writing a checkpoint", st.step);
      break;
    }
    const double lr = lr_at(st.step);
    for (auto& g : I.optimizer->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);

    auto ids = I.next_ids(st.data_cursor, s.train.batch_size);
    auto batch = I.task->batch(data::Split::kTrain, ids).to(device_);
    I.optimizer->zero_grad();
    auto ls = lm_loss(I.model, batch, bf16, /*weighted=*/true);
    ls.loss.backward();
    double gnorm = 0;
    if (s.train.grad_clip > 0) gnorm = torch::nn::utils::clip_grad_norm_(params, s.train.grad_clip);
    I.optimizer->step();
    st.step += 1;
    st.data_cursor += s.train.batch_size;
    const double loss = ls.loss.item<double>();
    DYSRA_CHECK(std::isfinite(loss), "training diverged: loss is ", loss, " at step ", st.step,
                " (lower train.lr or raise train.warmup_steps)");
    result.step_losses.push_back(loss);
    interval_loss += loss;
    interval_steps += 1;
    interval_tokens += batch.tokens.numel();

    if (st.step % s.log.every == 0 || st.step == until) {
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_interval).count();
      result.train_loss = interval_loss / static_cast<double>(interval_steps);
      json j{{"step", st.step}, {"loss", result.train_loss}, {"lr", lr}, {"grad_norm", gnorm},
             {"tokens_per_s", dt > 0 ? interval_tokens / dt : 0.0}, {"elapsed_s", elapsed()}};
      I.append_metrics(j);
      if (!bar) I.log->info("step {}/{} loss {:.4f} lr {:.3g} grad_norm {:.3f} tok/s {:.0f}", st.step, total,
                            result.train_loss, lr, gnorm, dt > 0 ? interval_tokens / dt : 0.0);
      interval_loss = 0, interval_steps = 0, interval_tokens = 0;
      t_interval = std::chrono::steady_clock::now();
    }
    if (bar) {
      const int width = 30, filled = static_cast<int>(width * st.step / std::max<int64_t>(1, total));
      std::fprintf(stderr, "\r[%s%s] %lld/%lld loss %.4f lr %.2e", std::string(filled, '#').c_str(),
                   std::string(width - filled, ' ').c_str(), static_cast<long long>(st.step),
                   static_cast<long long>(total), loss, lr);
      std::fflush(stderr);
    }
    bool stop = false;
    if ((s.eval.every > 0 && st.step % s.eval.every == 0) || st.step == total) stop = do_eval();
    if (s.train.checkpoint_every > 0 && st.step % s.train.checkpoint_every == 0) checkpoint();
    if (stop) {
      result.early_stopped = true;
      I.log->info("early stop at step {}: {} reached {}", st.step, s.eval.early_stop_metric, s.eval.early_stop_threshold);
      break;
    }
  }
  if (bar) std::fprintf(stderr, "\n");
  if (result.eval.empty()) do_eval();
  checkpoint();
  result.step = st.step;
  result.elapsed_s = elapsed();
  if (interval_steps > 0) result.train_loss = interval_loss / static_cast<double>(interval_steps);

  if (!s.run_dir.empty()) {
    const int64_t L = I.task->seq_len();
    auto cost = I.model->cost(L, 4);
    json summary{{"step", st.step},
                 {"train_loss", result.train_loss},
                 {"eval", result.eval},
                 {"early_stopped", result.early_stopped},
                 {"interrupted", result.interrupted},
                 {"elapsed_s", result.elapsed_s},
                 {"device", device_.str()},
                 {"params", I.model->num_parameters()},
                 {"layers", I.model->layer_types()},
                 {"cost", {{"seq_len", L},
                           {"forward_flops_per_sequence", cost.flops},
                           {"forward_bytes_per_sequence", cost.bytes},
                           {"state_bytes_per_sequence", cost.state_bytes}}}};
    if (st.has_best) summary["best_" + s.eval.early_stop_metric] = st.best_metric;
    write_file_atomic((fs::path(s.run_dir) / "summary.json").string(), summary.dump(2) + "\n");
  }
  return result;
}

}  // namespace dysra::train
