// session 12: gathered (b) forward variants (existing env switches) A/B'd fairly: each after a 2.5 s rest (cool card,
// 1980 MHz), order rotated per round; then all interleaved back to back under the power cap (steady)
#include <ATen/ATen.h>
#include <torch/torch.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/time.h>
#include <thread>
#include <vector>
#include "bench/timing.h"
#include "dysra/ops/gathered_attention.h"
using dysra::bench::Timing;
struct Variant { const char* name; std::vector<std::pair<const char*, const char*>> env; };
int main() {
  const int64_t B = 1, H = 16, D = 128, K = 2048, N = 65536, bq = 64, nb = N / bq;
  auto bf = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  std::vector<std::vector<at::Tensor>> sets;
  for (int r = 0; r < 2; ++r) {
    auto idx = std::get<1>(torch::rand({B, H, nb, N}, bf.dtype(torch::kFloat32)).topk(K, -1));
    sets.push_back({torch::randn({B, N, H, D}, bf), torch::randn({B, N, H, D}, bf), torch::randn({B, N, H, D}, bf),
                    std::get<0>(idx.sort(-1))});
  }
  torch::NoGradGuard ng;
  dysra::ops::GatheredAttentionOptions go;
  go.block_q = bq;
  go.check_indices = false;
  auto f = [&](int i) { auto& s = sets[i % 2]; dysra::ops::gathered_attention(s[0], s[1], s[2], s[3], go); };
  const char* vars[] = {"DYSRA_GATHERED_ATTENTION_WS_OVERLAP", "DYSRA_GATHERED_ATTENTION_WS_PAIR", "DYSRA_GATHERED_ATTENTION_WGMMA"};
  std::vector<Variant> vs{{"default (ws, 1 consumer, ovl)", {}},
                          {"ws no-overlap", {{vars[0], "0"}}},
                          {"ws paired lists", {{vars[1], "1"}}},
                          {"ws paired, no-overlap", {{vars[1], "1"}, {vars[0], "0"}}},
                          {"wgmma mode 2 (no producer)", {{vars[2], "2"}}}};
  auto use = [&](const Variant& v) { for (auto* e : vars) ::unsetenv(e); for (auto& [k, x] : v.env) ::setenv(k, x, 1); };
  const double fl = 4.0 * B * H * N * K * D;
  auto stamp = [&](const char* tag, const Variant& v, const Timing& t) {
    timeval tv; gettimeofday(&tv, nullptr); tm lt; localtime_r(&tv.tv_sec, &lt);
    std::printf("%02d:%02d:%02d.%03d %-6s %-32s median %.4f min %.4f ms %.1f TFLOP/s\n", lt.tm_hour, lt.tm_min, lt.tm_sec,
                int(tv.tv_usec / 1000), tag, v.name, t.median_ms, t.min_ms, fl / t.median_ms * 1e-9);
    std::fflush(stdout);
  };
  for (auto& v : vs) { use(v); dysra::bench::time_cuda(f, 1, 2); }  // first launches (attributes) out of the way
  for (int round = 0; round < 3; ++round)
    for (size_t i = 0; i < vs.size(); ++i) {
      const auto& v = vs[(i + round) % vs.size()];
      use(v);
      std::this_thread::sleep_for(std::chrono::milliseconds(2500));
      stamp("cool", v, dysra::bench::time_cuda(f, 1, 10));
    }
  use(vs[0]);
  dysra::bench::time_cuda(f, 150, 1);  // into the power cap
  for (int round = 0; round < 3; ++round)
    for (size_t i = 0; i < vs.size(); ++i) {
      const auto& v = vs[(i + round) % vs.size()];
      use(v);
      stamp("steady", v, dysra::bench::time_cuda(f, 2, 30));
    }
}
