// kernels/decode_attention/decode_attention.cu — split-K decode attention over a slot cache.
//
// Work: one query per row attends to N slots, so the step is bound by reading K and V once (2·N·D elements per
// row); the logits cost 2·N·D FLOPs, nothing for tensor cores. Layout of the work (flash-decoding):
//   * grid (splits, rows); a thread block of 128 threads takes ⌈N / splits⌉ consecutive slots of one row;
//   * a key is read by a group of TPK = D / EPT threads, each loading 16 bytes (EPT elements), so a warp reads
//     32 / TPK whole keys per load instruction, fully coalesced; the group's partial dots meet by warp shuffles;
//   * each group takes U = 4 keys per iteration and issues all their key, value and bias loads first (a decode
//     step is a pure stream of K and V: its speed is the bytes in flight per SM);
//   * each group keeps its own online softmax (max m, sum l, EPT accumulated output elements) over the keys it
//     took; the block merges its groups through shared memory and writes (m, l, acc[D]) of the split;
//   * the last block of a row to finish (a per-row atomic counter) merges the row's splits in split order and writes
//     the output, so a step is one kernel launch.
// Logits are taken in base 2 (q pre-scaled by scale · log2 e, bias by log2 e) with the MUFU exp2.
// The new token: every block reads slot `slot` from q-side inputs k_new/v_new instead of K/V (bias 0), and the
// block that owns the slot writes k_new, v_new and bias 0 into it; no block reads K/V/bias at that slot, so the
// write races with nothing. The only atomic is the per-row completion counter;
// the merge order is fixed, so results are bitwise reproducible.
#include "decode_attention/decode_attention.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "common/device_utils.cuh"

namespace dysra::kernels {
namespace {

constexpr int kThreads = 128;
constexpr int U = 4;  // keys per thread group per iteration

template <typename T, int N>
struct alignas(16) Vec {
  T x[N];
};

template <typename T, int D>
__global__ void __launch_bounds__(kThreads) decode_split_kernel(DecodeAttentionParams p) {
  constexpr int EPT = 16 / sizeof(T);     // elements per 16-byte load
  constexpr int TPK = D / EPT;            // threads per key
  constexpr int GROUPS = kThreads / TPK;  // keys in flight per block
  static_assert(D % EPT == 0 && TPK <= 32 && 32 % TPK == 0, "decode_attention: unsupported head size");
  using V = Vec<T, EPT>;
  const int row = blockIdx.y, split = blockIdx.x;
  const int lane = threadIdx.x % TPK, group = threadIdx.x / TPK;
  const int N = p.n_slots;
  const int per = (N + p.splits - 1) / p.splits;
  const int s0 = split * per, s1 = min(N, s0 + per);
  const size_t row_kv = static_cast<size_t>(row) * N * D;
  const T* K = static_cast<const T*>(p.k) + row_kv;
  const T* Vv = static_cast<const T*>(p.v) + row_kv;
  const T* bias = static_cast<const T*>(p.bias) + static_cast<size_t>(row) * N;
  const T* k_new = static_cast<const T*>(p.k_new) + static_cast<size_t>(row) * D;
  const T* v_new = static_cast<const T*>(p.v_new) + static_cast<size_t>(row) * D;

  float q[EPT];
  {
    const V qv = *reinterpret_cast<const V*>(static_cast<const T*>(p.q) + static_cast<size_t>(row) * D + lane * EPT);
    const float s = p.scale * kLog2e;
#pragma unroll
    for (int e = 0; e < EPT; ++e) q[e] = to_float(qv.x[e]) * s;
  }
  float m = -INFINITY, l = 0.f, acc[EPT];
#pragma unroll
  for (int e = 0; e < EPT; ++e) acc[e] = 0.f;

  // U keys per group per iteration, all their loads issued before any use: a step reads every byte once, so
  // the time is set by how many bytes are in flight per SM (latency × bandwidth), not by arithmetic.
  // Every lane runs the same trip count (the shuffles below need the whole warp).
  for (int base = s0; base < s1; base += GROUPS * U) {
    V kv[U], vv[U];
    float b[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int j = base + u * GROUPS + group;
      const bool valid = j < s1, fresh = j == p.slot;
      const int jj = valid ? j : s0;
      const T* krow = fresh ? k_new : K + static_cast<size_t>(jj) * D;
      const T* vrow = fresh ? v_new : Vv + static_cast<size_t>(jj) * D;
      kv[u] = *reinterpret_cast<const V*>(krow + lane * EPT);
      vv[u] = *reinterpret_cast<const V*>(vrow + lane * EPT);
      b[u] = !valid ? -INFINITY : fresh ? 0.f : to_float(bias[jj]);
    }
    float s[U];
    float mx = m;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float dot = 0.f;
#pragma unroll
      for (int e = 0; e < EPT; ++e) dot = fmaf(q[e], to_float(kv[u].x[e]), dot);
#pragma unroll
      for (int o = TPK / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
      s[u] = b[u] == -INFINITY ? -INFINITY : dot + b[u] * kLog2e;
      mx = fmaxf(mx, s[u]);
    }
    if (mx == -INFINITY) continue;  // nothing unmasked yet (no shuffles below: groups may part here)
    const float corr = fast_exp2(m - mx);  // m = −inf → 0
    l *= corr;
#pragma unroll
    for (int e = 0; e < EPT; ++e) acc[e] *= corr;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const float pr = fast_exp2(s[u] - mx);  // masked → 0
      l += pr;
#pragma unroll
      for (int e = 0; e < EPT; ++e) acc[e] = fmaf(pr, to_float(vv[u].x[e]), acc[e]);
    }
    m = mx;
  }

  // the owner of the slot writes the new token (nobody reads that slot from K/V/bias in this launch)
  if (p.slot >= s0 && p.slot < s1 && group == 0) {
    T* kd = static_cast<T*>(p.k) + row_kv + static_cast<size_t>(p.slot) * D;
    T* vd = static_cast<T*>(p.v) + row_kv + static_cast<size_t>(p.slot) * D;
    *reinterpret_cast<V*>(kd + lane * EPT) = *reinterpret_cast<const V*>(k_new + lane * EPT);
    *reinterpret_cast<V*>(vd + lane * EPT) = *reinterpret_cast<const V*>(v_new + lane * EPT);
    if (lane == 0) static_cast<T*>(p.bias)[static_cast<size_t>(row) * N + p.slot] = from_float<T>(0.f);
  }

  // merge the groups of this block
  __shared__ float sm_m[GROUPS], sm_l[GROUPS];
  __shared__ float sm_acc[GROUPS][D];
  if (lane == 0) sm_m[group] = m, sm_l[group] = l;
#pragma unroll
  for (int e = 0; e < EPT; ++e) sm_acc[group][lane * EPT + e] = acc[e];
  __syncthreads();
  float* ws_row = p.workspace + static_cast<size_t>(row) * p.splits * (D + 2);
  float* ws = ws_row + static_cast<size_t>(split) * (D + 2);
  float M = -INFINITY;
#pragma unroll 4
  for (int g = 0; g < GROUPS; ++g) M = fmaxf(M, sm_m[g]);
  for (int d = threadIdx.x; d < D; d += kThreads) {
    float a = 0.f;
    if (M != -INFINITY)
      for (int g = 0; g < GROUPS; ++g) a += sm_acc[g][d] * fast_exp2(sm_m[g] - M);
    ws[2 + d] = a;
  }
  if (threadIdx.x == 0) {
    float L = 0.f;
    if (M != -INFINITY)
      for (int g = 0; g < GROUPS; ++g) L += sm_l[g] * fast_exp2(sm_m[g] - M);
    ws[0] = M, ws[1] = L;
  }

  // the last block of the row to finish merges the splits (in split order: the result does not depend on which
  // block came last) and resets the row's counter for the next launch
  __shared__ bool last;
  __threadfence();  // this block's partial is visible device-wide before it is counted
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(p.counters + row, 1) == p.splits - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  float Mr = -INFINITY;
  for (int s = 0; s < p.splits; ++s) Mr = fmaxf(Mr, __ldcg(ws_row + s * (D + 2)));
  for (int d = threadIdx.x; d < D; d += kThreads) {
    float L = 0.f, a = 0.f;
    if (Mr != -INFINITY)
      for (int s = 0; s < p.splits; ++s) {
        const float w = fast_exp2(__ldcg(ws_row + s * (D + 2)) - Mr);
        L += __ldcg(ws_row + s * (D + 2) + 1) * w;
        a += __ldcg(ws_row + s * (D + 2) + 2 + d) * w;
      }
    static_cast<T*>(p.out)[static_cast<size_t>(row) * D + d] = from_float<T>(L > 0.f ? a / L : 0.f);
  }
  if (threadIdx.x == 0) p.counters[row] = 0;
}

template <typename T, int D>
cudaError_t launch(const DecodeAttentionParams& p, cudaStream_t stream) {
  decode_split_kernel<T, D><<<dim3(p.splits, p.rows), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_dim(const DecodeAttentionParams& p, cudaStream_t stream) {
  switch (p.dim) {
    case 64: return launch<T, 64>(p, stream);
    case 128: return launch<T, 128>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

bool decode_attention_supported(int dim) { return dim == 64 || dim == 128; }

int decode_attention_splits(int rows, int n_slots) {
  const int sms = current_device_sm_count();
  // ≈ 8 resident blocks of 128 threads per SM (enough loads in flight to cover HBM latency), ≥ 64 slots each
  const int want = std::max(1, (8 * sms + rows - 1) / std::max(rows, 1));
  const int most = std::max(1, (n_slots + 63) / 64);
  return std::min(want, most);
}

size_t decode_attention_workspace_floats(int rows, int splits, int dim) {
  return static_cast<size_t>(rows) + static_cast<size_t>(rows) * splits * (dim + 2);
}

cudaError_t decode_attention(const DecodeAttentionParams& params, cudaStream_t stream) {
  if (!decode_attention_supported(params.dim) || params.rows < 1 || params.n_slots < 1 || params.splits < 1 ||
      params.slot < 0 || params.slot >= params.n_slots || params.workspace == nullptr || params.counters == nullptr)
    return cudaErrorInvalidValue;
  switch (params.dtype) {
    case DType::kBFloat16: return launch_dim<__nv_bfloat16>(params, stream);
    case DType::kFloat16: return launch_dim<__half>(params, stream);
    default: return launch_dim<float>(params, stream);
  }
}

}  // namespace dysra::kernels
