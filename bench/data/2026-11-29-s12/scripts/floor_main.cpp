// session 12 driver: gathered (b) against its data-movement floor (.gpu/floor.cu) and the card's L2 / HBM read
// bandwidth, alternated, each after a rest and in steady state, with timestamps for the SM clock log
#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/torch.h>
#include <chrono>
#include <cstdio>
#include <sys/time.h>
#include <thread>
#include "bench/timing.h"
#include "dysra/ops/gathered_attention.h"
void launch_gather_floor(const void*, const void*, const int*, int, int, int, unsigned*, cudaStream_t);
void launch_stream(const void*, size_t, int, unsigned*, cudaStream_t);
using dysra::bench::Timing;
static void stamp(const char* what, const Timing& t, double bytes, double flops) {
  timeval tv; gettimeofday(&tv, nullptr); tm lt; localtime_r(&tv.tv_sec, &lt);
  std::printf("%02d:%02d:%02d.%03d %-28s median %.4f min %.4f ms  %.2f TB/s  %.1f TFLOP/s (median)\n", lt.tm_hour,
              lt.tm_min, lt.tm_sec, int(tv.tv_usec / 1000), what, t.median_ms, t.min_ms, bytes / t.median_ms * 1e-9,
              flops / t.median_ms * 1e-9);
  std::fflush(stdout);
}
int main() {
  const int64_t B = 1, H = 16, D = 128, K = 2048, N = 65536, bq = 64, nb = N / bq;
  auto bf = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  auto idx = std::get<0>(std::get<1>(torch::rand({B, H, nb, N}, bf.dtype(torch::kFloat32)).topk(K, -1)).sort(-1));
  auto idx32 = idx.to(torch::kInt32).contiguous();
  auto q = torch::randn({B, N, H, D}, bf), k = torch::randn({B, N, H, D}, bf), v = torch::randn({B, N, H, D}, bf);
  auto out = torch::zeros({4}, bf.dtype(torch::kInt32));
  auto l2buf = torch::randn({int64_t(16) << 20}, bf);   // 32 MiB
  auto l2small = torch::randn({int64_t(8) << 20}, bf);  // 16 MiB
  auto big = torch::randn({int64_t(1) << 30}, bf);      // 2 GiB
  torch::NoGradGuard ng;
  dysra::ops::GatheredAttentionOptions go;
  go.block_q = bq;
  go.check_indices = false;
  auto s = c10::cuda::getCurrentCUDAStream().stream();
  const double gbytes = double(B) * H * nb * K * D * 2 * 2, fl = 4.0 * B * H * N * K * D;
  auto dy = [&](int) { dysra::ops::gathered_attention(q, k, v, idx, go); };
  auto fl_ = [&](int) { launch_gather_floor(k.data_ptr(), v.data_ptr(), idx32.data_ptr<int>(), H, nb, K, (unsigned*)out.data_ptr(), s); };
  auto l2s = [&](int) { launch_stream(l2small.data_ptr(), l2small.numel() * 2, 64, (unsigned*)out.data_ptr(), s); };
  auto l2 = [&](int) { launch_stream(l2buf.data_ptr(), l2buf.numel() * 2, 32, (unsigned*)out.data_ptr(), s); };
  auto hbm = [&](int) { launch_stream(big.data_ptr(), big.numel() * 2, 1, (unsigned*)out.data_ptr(), s); };
  auto rest = [] { std::this_thread::sleep_for(std::chrono::milliseconds(2500)); };
  for (int round = 0; round < 2; ++round) {
    rest(); stamp("floor (b) gather, cool", dysra::bench::time_cuda(fl_, 1, 10), gbytes, fl);
    rest(); stamp("dysra (b), cool", dysra::bench::time_cuda(dy, 1, 10), gbytes, fl);
    rest(); stamp("L2 read 16 MiB x64, cool", dysra::bench::time_cuda(l2s, 1, 10), 64.0 * l2small.numel() * 2, 0);
    rest(); stamp("L2 read 32 MiB x32, cool", dysra::bench::time_cuda(l2, 1, 10), 32.0 * l2buf.numel() * 2, 0);
    rest(); stamp("HBM read 2 GiB, cool", dysra::bench::time_cuda(hbm, 1, 10), double(big.numel()) * 2, 0);
    // steady state: one after another, each for ~0.5 s
    stamp("floor (b) gather, steady", dysra::bench::time_cuda(fl_, 100, 40), gbytes, fl);
    stamp("dysra (b), steady", dysra::bench::time_cuda(dy, 100, 40), gbytes, fl);
    stamp("floor (b) gather, steady", dysra::bench::time_cuda(fl_, 3, 40), gbytes, fl);
    stamp("L2 read 16 MiB x64, steady", dysra::bench::time_cuda(l2s, 3, 40), 64.0 * l2small.numel() * 2, 0);
    stamp("dysra (b), steady", dysra::bench::time_cuda(dy, 3, 40), gbytes, fl);
  }
}
