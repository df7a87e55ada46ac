// session 12: the data-movement floor of gathered attention's shape (b): the same blocks as the kernel (one per
// (kv head, list), head-major), each reading its K rows and V rows (256 B each) at its listed positions and nothing
// else; plus plain streaming reads of an L2-resident buffer (L2 -> SM bandwidth) and of a large one (HBM).
#include <cuda_runtime.h>
#include <cstdint>
__global__ void gather_floor_kernel(const uint4* __restrict__ k, const uint4* __restrict__ v, const int* __restrict__ idx,
                                    int H, int nb, int K, unsigned* out) {
  const int g = blockIdx.x / nb, j = blockIdx.x % nb;
  const int* list = idx + (size_t(g) * nb + j) * K;
  const int lane = threadIdx.x & 15, row0 = threadIdx.x >> 4, rows_per = blockDim.x >> 4;  // 16 lanes x 16 B = a row
  uint4 acc = make_uint4(0, 0, 0, 0);
#pragma unroll 4
  for (int r = row0; r < K; r += rows_per) {
    const size_t base = (size_t(list[r]) * H + g) * 16 + lane;
    const uint4 a = __ldcg(k + base), b = __ldcg(v + base);
    acc.x ^= a.x ^ b.x; acc.y ^= a.y ^ b.y; acc.z ^= a.z ^ b.z; acc.w ^= a.w ^ b.w;
  }
  if ((acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x12345678u) out[0] = 1;  // keeps the loads
}
__global__ void stream_kernel(const uint4* __restrict__ p, size_t n, int passes, unsigned* out) {
  uint4 acc = make_uint4(0, 0, 0, 0);
  for (int s = 0; s < passes; ++s)
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
      const uint4 a = __ldcg(p + i);
      acc.x ^= a.x; acc.y ^= a.y; acc.z ^= a.z; acc.w ^= a.w;
    }
  if ((acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x12345678u) out[0] = 1;
}
void launch_gather_floor(const void* k, const void* v, const int* idx, int H, int nb, int K, unsigned* out,
                         cudaStream_t s) {
  gather_floor_kernel<<<H * nb, 512, 0, s>>>(static_cast<const uint4*>(k), static_cast<const uint4*>(v), idx, H, nb, K, out);
}
void launch_stream(const void* p, size_t bytes, int passes, unsigned* out, cudaStream_t s) {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  stream_kernel<<<sms * 4, 512, 0, s>>>(static_cast<const uint4*>(p), bytes / 16, passes, out);
}
