// Builds a small dysra model from Options, runs a forward pass and one MQAR evaluation through the public headers.
#include <dysra/config/experiment.h>
#include <dysra/data/task.h>
#include <dysra/models/lm.h>
#include <dysra/train/trainer.h>
#include <torch/torch.h>

#include <iostream>

int main() {
  dysra::config::ExperimentOptions o = dysra::config::parse_experiment(
      "model: {d_model: 32, n_layers: 1}\ndata: {task: mqar, mqar: {vocab_size: 64, seq_len: 32, num_kv_pairs: 4, eval_examples: 8}}\n",
      "consumer.yaml");
  auto task = dysra::data::make_task(o.data, 1);
  dysra::models::LanguageModel model(o.model, task->vocab_size());
  auto batch = task->batch(dysra::data::Split::kValidation, {0, 1});
  auto logits = model->forward(batch.tokens);
  auto m = dysra::train::evaluate_lm(model, *task, dysra::data::Split::kValidation, 8, 4, torch::kCPU, false);
  if (logits.size(2) != 64 || m.count("accuracy") != 1) return 1;
  std::cout << "consumer ok: logits " << logits.sizes() << " accuracy " << m["accuracy"] << "\n";
  return 0;
}
