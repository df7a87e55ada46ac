// The task registry: one line per task.
#include "dysra/core/random.h"
#include "dysra/data/lm_task.h"
#include "dysra/data/mqar.h"
#include "dysra/data/task.h"
#include "dysra/data/text_task.h"

namespace dysra::data {

Registry<TaskFactory>& task_registry() {
  static Registry<TaskFactory> registry = [] {
    Registry<TaskFactory> r("task");
    r.add("mqar", [](const TaskOptions& o, uint64_t seed) { return std::make_unique<MqarTask>(o.mqar, seed); });
    r.add("qa", [](const TaskOptions& o, uint64_t seed) { return std::make_unique<QaTask>(o, seed); });
    r.add("lm", [](const TaskOptions& o, uint64_t seed) { return std::make_unique<LmTask>(o.lm, o.tokenizer); });
    r.add("fact_stream", [](const TaskOptions& o, uint64_t seed) { return std::make_unique<FactStreamTask>(o, seed); });
    for (const auto& name : synthetic_task_names())
      r.add(name, [name](const TaskOptions& o, uint64_t seed) { return std::make_unique<SyntheticTask>(name, o, seed); });
    return r;
  }();
  return registry;
}

std::vector<int64_t> Task::epoch_order(uint64_t seed, int64_t epoch, int64_t /*batch_size*/) const {
  std::vector<int64_t> perm(static_cast<size_t>(size(Split::kTrain)));
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
  SplitMix64 rng(mix_seed(seed, 0x5A4D50u, static_cast<uint64_t>(epoch)));
  rng.shuffle(perm);
  return perm;
}

std::unique_ptr<Task> make_task(const TaskOptions& options, uint64_t seed) {
  return task_registry().get(options.task)(options, seed);
}

}  // namespace dysra::data
