// The task registry: one line per task.
#include "dysra/data/mqar.h"
#include "dysra/data/task.h"
#include "dysra/data/text_task.h"

namespace dysra::data {

Registry<TaskFactory>& task_registry() {
  static Registry<TaskFactory> registry = [] {
    Registry<TaskFactory> r("task");
    r.add("mqar", [](const TaskOptions& o, uint64_t seed) { return std::make_unique<MqarTask>(o.mqar, seed); });
    r.add("qa", [](const TaskOptions& o, uint64_t seed) { return std::make_unique<QaTask>(o.qa, seed); });
    for (const auto& name : synthetic_task_names())
      r.add(name, [name](const TaskOptions& o, uint64_t seed) { return std::make_unique<SyntheticTask>(name, o.synthetic, seed); });
    return r;
  }();
  return registry;
}

std::unique_ptr<Task> make_task(const TaskOptions& options, uint64_t seed) {
  return task_registry().get(options.task)(options, seed);
}

}  // namespace dysra::data
