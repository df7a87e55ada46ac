#include "bench/kernels_bench.h"
#include <cstdlib>
#include <string>
int main(int argc, char** argv) {
  dysra::bench::KernelBenchOptions o;
  if (argc > 1) o.ops = argv[1];
  if (argc > 2) o.quick = std::string(argv[2]) == "quick";
  o.graphs = std::getenv("BENCH_GRAPHS") != nullptr;
  o.peers = std::getenv("BENCH_NO_PEERS") == nullptr;
  o.json_path = std::getenv("BENCH_JSON") ? std::getenv("BENCH_JSON") : "";
  o.cooldown_ms = std::getenv("BENCH_COOLDOWN_MS") ? std::atoi(std::getenv("BENCH_COOLDOWN_MS")) : 0;
  return dysra::bench::run_kernel_bench(o);
}
