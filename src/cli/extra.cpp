// Registration of the subcommands beyond train/eval/config. Each one is a (register, run) pair.
#include <functional>
#include <vector>

#include "cli/commands.h"

namespace dysra::cli {
namespace {
struct Extra {
  CLI::App* cmd;
  std::function<int()> run;
};
std::vector<Extra>& extras() {
  static std::vector<Extra> e;
  return e;
}
}  // namespace

void register_extra_commands(CLI::App& app) { (void)app; }

int run_extra_commands(CLI::App& app) {
  for (auto& e : extras())
    if (*e.cmd) return e.run();
  return 2;
}

}  // namespace dysra::cli
