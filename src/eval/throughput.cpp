#include "dysra/eval/throughput.h"

#include "dysra/train/autocast.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

namespace dysra::eval {
namespace {
void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}
}  // namespace

ThroughputResult measure_throughput(models::LanguageModel& model, const ThroughputOptions& o, const torch::Device& device) {
  model->to(device);
  model->train(o.backward);
  auto tokens = torch::randint(0, model->vocab_size(), {o.batch_size, o.seq_len},
                               torch::TensorOptions().dtype(torch::kInt64).device(device));
  const bool ac = o.bf16 && device.is_cuda();
  auto step = [&] {
    train::AutocastGuard guard(ac);
    if (o.backward) {
      model->zero_grad();
      auto h = model->hidden(tokens);
      // next-token loss over every position
      auto loss = torch::nn::functional::cross_entropy(model->logits(h.narrow(1, 0, o.seq_len - 1)).flatten(0, 1).to(torch::kFloat32),
                                                       tokens.narrow(1, 1, o.seq_len - 1).flatten());
      loss.backward();
    } else {
      torch::NoGradGuard ng;
      model->logits(model->hidden(tokens));
    }
  };
  for (int64_t i = 0; i < o.warmup; ++i) step();
  sync(device);
  ThroughputResult r;
  for (int64_t i = 0; i < o.runs; ++i) {
    sync(device);
    auto t0 = std::chrono::steady_clock::now();
    step();
    sync(device);
    r.times_s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  auto sorted = r.times_s;
  std::sort(sorted.begin(), sorted.end());
  r.median_s = sorted[sorted.size() / 2];
  r.tokens_per_s = static_cast<double>(o.batch_size * o.seq_len) / r.median_s;
  return r;
}

}  // namespace dysra::eval
