// kernels/selective_scan/selective_scan.cu — Mamba-1 selective scan, forward and backward (sm_90).
//
// Forward (all N <= 32, every dtype). Thread = (channel, state group g of G lanes, K states); N <= 8: G = 2,
// K = 4; N <= 16: G = 2, K = 8; N <= 32: G = 2, K = 16. Block = 128 channels (64 for fp32) = 8 warps, one block
// per SM at the benchmark shape (2 warps per scheduler). 64-step tiles are copied with cp.async (16-byte chunks,
// coalesced rows) into double-buffered shared memory, so the copy of tile i+1 overlaps the recurrence over tile i:
// u/delta/z rows per warp (warp-private, __syncwarp only), B/C rows per block, transposed once per tile to fp32
// [t][B | C] so that a step's B_t/C_t for a thread's K states are K/2 broadcast 16-byte loads. Each thread walks its
// K states sequentially (x = exp2(dt·A·log2e)·x + dt·u·B: one FMUL + one MUFU ex2 + FMUL + 2 FFMA per state-step).
// The per-channel work is split over the G lanes of a channel: lane g computes softplus (ex2 + lg2) for E = 8/G
// steps of each 8-step group and shuffles them to the others; the partial y_t of the G lanes are reduce-scattered
// so that lane g finishes (D·u, silu(z) = h + h·tanh(h), h = z/2) and writes E outputs into the consumed delta row;
// the warp then stores its rows with coalesced 16-byte stores. 16-bit dtypes use MUFU-cheap softplus/sigmoid
// (ex2/lg2/tanh.approx, errors ~1e-6 resp. ~5e-4 relative, below the storage precision); fp32 keeps the accurate
// forms. Rows whose length is not a multiple of 16 bytes take the same kernel with synchronous element loads.
// Measured on an H200 (bf16, B=8 L=4096 D=2048 N=16, z): 0.51 ms (G=1/K=16 with one warp per scheduler: 0.59 ms,
// G=4/K=4: 0.52 ms; offloading one exp2 per thread-step to an FMA-pipe polynomial (kFwdPoly = 1): 0.54 ms).
//
// Backward: by recomputation. The forward saves the state before every 64-step chunk (when grads are needed).
// Chunks are walked in reverse; inside a chunk the state at each sub-tile start is recomputed (phase 0), then
// per sub-tile the states are recomputed into registers (phase 1) and the adjoint λ walked backwards (phase 2).
// Fast path (N <= 16, 16-byte-aligned rows; kernel selective_scan_bwd_fast_kernel): 4 lanes × 4 states per
// channel, 8 channels per warp, 8 warps per block; cp.async double-buffered 64-step tiles; dt/dy precomputed per
// tile; phase 0 also yields y (→ dz) and the dC partials; 8-step sub-tiles whose states and decays phase 1 keeps in
// registers for phase 2. Every cross-lane sum (dB/dC over channels, y / d(delta) / du over states) is batched over
// the 8 steps of a sub-tile and done after its recurrence, off the recurrence's dependence chain.
// Generic path (N <= 32, any alignment): 4 lanes per channel, 32 channels per block, synchronous tile loads.
// dB/dC need a sum over channels: within a warp by a shuffle reduce-scatter, across the warps of a 32-channel slice
// in shared memory in a fixed order, across slices by the caller (a fixed-order sum over a [B, n_dtiles, N, L]
// partial). dA/dD/d(delta_bias) are per-batch partials summed by the caller. No atomics: results are deterministic.
//
// Floor (B=8, L=4096, D=2048, N=16, bf16, with z; kernels.md §5): forward moves ~0.68 GB (+0.13 GB of fp32
// checkpoints when training) → 0.16 ms at 4.3 TB/s; it does B·D·L·N = 1.07e9 exp2 plus ~3 MUFU ops per (channel,
// step) for softplus and silu → ~0.31 ms at 16 MUFU ops/clk/SM, 1.98 GHz. Measured 0.51 ms: one block per SM with
// 2 warps per scheduler leaves the recurrence partly latency-bound (IPC, not MUFU, is the limit).
// Backward reads u, delta, z, dout, B, C, checkpoints and writes du, ddelta, dz + fp32 dB/dC partials
// (~1.3 GB → 0.3 ms) and does 2 exp2 per state element (the states are recomputed twice, the decays of the second
// pass kept for the adjoint) + ~1.3 MUFU ops per (channel, step) → ~0.55 ms MUFU floor; ~125 warp instructions per
// (warp, step) (estimated) → ~1.0 ms at one instruction per cycle per scheduler. Measured (fast path, H200): 2.03 ms, was
// 4.37 ms with per-step shuffle chains (same run); still latency-bound: 2 warps per scheduler (smem ~219 KB/block).
#include "common/device_utils.cuh"
#include "selective_scan/selective_scan.h"

#include <cstdint>
#include <type_traits>

namespace dysra::kernels {
namespace {

constexpr int kThreads = 128;
constexpr int kT = kSelectiveScanChunk;
constexpr int kDT = kSelectiveScanChannels;
constexpr int kLD = kT + 1;  // padded row of a [channel][time] smem tile

/// Reduce-scatter over the 8 channels of a warp (lane bits 2-4) of K values per lane. Afterwards lane l holds the
/// channel sum of value j = scatter_index<K>(l) (for K = 4 lanes l and l^16 hold the same one).
template <int K>
__device__ __forceinline__ float reduce_scatter_channels(float (&v)[K], int lane) {
  static_assert(K == 4 || K == 8, "K must be 4 or 8");
  constexpr int kSteps = K == 4 ? 2 : 3;
#pragma unroll
  for (int s = 0; s < kSteps; ++s) {
    const int bit = 4 << s;
    const int half = (K >> s) / 2;
    const bool hi = lane & bit;
#pragma unroll
    for (int i = 0; i < half; ++i) {
      const float send = hi ? v[i] : v[i + half];
      const float keep = hi ? v[i + half] : v[i];
      v[i] = keep + __shfl_xor_sync(0xffffffffu, send, bit);
    }
  }
  if (K == 4) v[0] += __shfl_xor_sync(0xffffffffu, v[0], 16);
  return v[0];
}
template <int K>
__device__ __forceinline__ int scatter_index(int lane) {
  return K == 4 ? (((lane >> 2) & 1) << 1) | ((lane >> 3) & 1)
                : (((lane >> 2) & 1) << 2) | (((lane >> 3) & 1) << 1) | ((lane >> 4) & 1);
}

template <int K>
__device__ __forceinline__ void load_k(float (&dst)[K], const float* src) {
#pragma unroll
  for (int i = 0; i < K; i += 4) {
    const float4 t = *reinterpret_cast<const float4*>(src + i);
    dst[i] = t.x; dst[i + 1] = t.y; dst[i + 2] = t.z; dst[i + 3] = t.w;
  }
}

// ---------------------------------------------------------------------------------------------- forward
// Thread = (channel, state group g of G); warps are independent (warp-private shared memory, __syncwarp only).
namespace fwd {

constexpr int kSub = 8;  // steps per register group (one 16-byte smem load of a 16-bit row)

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_1() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }

__device__ __forceinline__ float mufu_lg2(float x) {
  float y;
  asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ float mufu_tanh(float x) {
  float y;
  asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
/// 2^x for x <= 0 on the FMA pipe (FlashAttention-4 trick: balances the MUFU and issue budgets). Rel. err ~2e-7.
__device__ __forceinline__ float poly_exp2(float x) {
  x = fmaxf(x, -126.f);
  const float r = x + 12582912.f;  // round to nearest integer (1.5·2^23)
  const float j = r - 12582912.f;
  const float f = x - j;  // [-0.5, 0.5]
  float p = 1.8775767e-3f;
  p = fmaf(p, f, 8.9893397e-3f);
  p = fmaf(p, f, 5.5826318e-2f);
  p = fmaf(p, f, 2.4015361e-1f);
  p = fmaf(p, f, 6.9315308e-1f);
  p = fmaf(p, f, 9.9999994e-1f);
  return __int_as_float(__float_as_int(p) + (__float_as_int(r) << 23));
}

// softplus / silu: MUFU-cheap forms for 16-bit data (errors ~1e-6 relative, far below the storage precision),
// the accurate ones for fp32.
template <typename T>
__device__ __forceinline__ float softplus_t(float x) {
  if constexpr (sizeof(T) == 4) {
    return softplus(x);
  } else {
    const float r = mufu_lg2(1.f + fast_exp2(x * kLog2e)) * kLn2;
    return x > 20.f ? x : r;
  }
}
template <typename T>
__device__ __forceinline__ float sigmoid_t(float z) {
  if constexpr (sizeof(T) == 4) {
    return sigmoid(z);
  } else {
    return fmaf(0.5f, mufu_tanh(0.5f * z), 0.5f);
  }
}
template <typename T>
__device__ __forceinline__ float silu_t(float z) {
  if constexpr (sizeof(T) == 4) {
    return z * sigmoid(z);
  } else {
    const float h = 0.5f * z;
    return fmaf(h, mufu_tanh(h), h);
  }
}

/// 8 consecutive elements of a 16-byte-aligned shared row as fp32.
template <typename T>
__device__ __forceinline__ void lds8(float (&v)[kSub], const T* p) {
  if constexpr (sizeof(T) == 4) {
    const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
  } else {
    const uint4 a = *reinterpret_cast<const uint4*>(p);
    const unsigned w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if constexpr (std::is_same_v<T, __nv_bfloat16>) {
        v[2 * i] = __uint_as_float(w[i] << 16);
        v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
      } else {
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
        v[2 * i] = f.x;
        v[2 * i + 1] = f.y;
      }
    }
  }
}
template <typename T>
__device__ __forceinline__ void sts8(T* p, const float (&v)[kSub]) {
  if constexpr (sizeof(T) == 4) {
    reinterpret_cast<float4*>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
  } else {
    unsigned w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if constexpr (std::is_same_v<T, __nv_bfloat16>) {
        const __nv_bfloat162 h = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
        w[i] = *reinterpret_cast<const unsigned*>(&h);
      } else {
        const __half2 h = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
        w[i] = *reinterpret_cast<const unsigned*>(&h);
      }
    }
    *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
  }
}

/// E consecutive elements (E = 8, 4 or 2; 16-, 8- or 4-byte aligned for 16-bit T) of a shared row as fp32.
template <typename T, int E>
__device__ __forceinline__ void lds_n(float (&v)[E], const T* p) {
  if constexpr (E == 8) {
    lds8<T>(v, p);
  } else if constexpr (sizeof(T) == 4) {
#pragma unroll
    for (int i = 0; i < E; i += 2) {
      const float2 f = *reinterpret_cast<const float2*>(p + i);
      v[i] = f.x; v[i + 1] = f.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < E; i += 2) {
      const unsigned w = *reinterpret_cast<const unsigned*>(p + i);
      if constexpr (std::is_same_v<T, __nv_bfloat16>) {
        v[i] = __uint_as_float(w << 16);
        v[i + 1] = __uint_as_float(w & 0xffff0000u);
      } else {
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w));
        v[i] = f.x; v[i + 1] = f.y;
      }
    }
  }
}
template <typename T, int E>
__device__ __forceinline__ void sts_n(T* p, const float (&v)[E]) {
  if constexpr (E == 8) {
    sts8<T>(p, v);
  } else if constexpr (sizeof(T) == 4) {
#pragma unroll
    for (int i = 0; i < E; i += 2) *reinterpret_cast<float2*>(p + i) = make_float2(v[i], v[i + 1]);
  } else {
    unsigned w[E / 2];
#pragma unroll
    for (int i = 0; i < E / 2; ++i) {
      if constexpr (std::is_same_v<T, __nv_bfloat16>) {
        const __nv_bfloat162 h = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
        w[i] = *reinterpret_cast<const unsigned*>(&h);
      } else {
        const __half2 h = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
        w[i] = *reinterpret_cast<const unsigned*>(&h);
      }
    }
    if constexpr (E == 4) *reinterpret_cast<uint2*>(p) = make_uint2(w[0], w[1]);
    else *reinterpret_cast<unsigned*>(p) = w[0];
  }
}

template <typename T, int K, int G>
struct Cfg {
  static constexpr int kWarps = 4 * G / (sizeof(T) == 4 ? 2 : 1);  // 128 (64 for fp32) channels per block
  static constexpr int R = 32 / G;                             // channels per warp
  static constexpr int NP = G * K;                             // padded state count
  static constexpr int E = kSub / G;                           // steps of a sub-group owned by each lane
  static constexpr int VEC = 16 / int(sizeof(T));              // elements per 16-byte chunk
  static constexpr int CPR = kT / VEC;                         // chunks per tile row
  static constexpr int RS = kT + VEC;                          // row stride in elements (+16 bytes: no bank conflicts)
  static constexpr int kStageElems = 3 * R * RS;               // per warp: u, delta (then y), z rows
  static constexpr size_t kSharedBytes = 2 * 2 * NP * RS * sizeof(T) + sizeof(float) * kT * 2 * NP;
  static constexpr size_t kWarpBytes = 2 * kStageElems * sizeof(T);
  static constexpr size_t kSmem = kSharedBytes + kWarps * kWarpBytes;
};

}  // namespace fwd

/// Forward. Thread = (channel, state group g of G lanes; K states each); block = kWarps warps × R = 32/G channels,
/// grid (ceil(D / channels per block), batch). 64-step tiles are copied with cp.async into double-buffered shared
/// memory (the copy of tile i+1 overlaps the recurrence over tile i): u/delta/z rows per warp (warp-private,
/// __syncwarp only), B/C rows per block, transposed once per tile to fp32 [t][2][NP] so that a step's B_t/C_t for a
/// thread's K states are K/2 broadcast 16-byte loads. Per-channel work is split over the G lanes of a channel:
/// lane g computes softplus for steps g·E.. of each 8-step group (shuffled to the others) and, after a
/// reduce-scatter of the partial y over the G lanes, finishes (D·u, silu(z)) and writes those E outputs.
template <typename T, int K, int G, int kPoly, bool kAsync>
__global__ void __launch_bounds__(fwd::Cfg<T, K, G>::kWarps * 32, 1) selective_scan_fwd_kernel(SelectiveScanParams p) {
  using Cf = fwd::Cfg<T, K, G>;
  constexpr int R = Cf::R, NP = Cf::NP, VEC = Cf::VEC, CPR = Cf::CPR, RS = Cf::RS, E = Cf::E;
  constexpr int kSub = fwd::kSub, NT = Cf::kWarps * 32;
  extern __shared__ float4 smem_f4[];
  char* base = reinterpret_cast<char*>(smem_f4);
  T* s_bcraw = reinterpret_cast<T*>(base);                                     // [2][2NP][RS]
  float* s_bc = reinterpret_cast<float*>(base + 2 * 2 * NP * RS * sizeof(T));  // [kT][2NP]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  T* const stage0 = reinterpret_cast<T*>(base + Cf::kSharedBytes + warp * Cf::kWarpBytes);  // [2][3R][RS]

  const int g = lane % G, r_own = lane / G, lane0 = lane - g;
  const int b = blockIdx.y, dw = (blockIdx.x * Cf::kWarps + warp) * R, d = dw + r_own;
  const int Dm = p.dim, L = p.seqlen, N = p.dstate;
  const bool dvalid = d < Dm;
  const int n_tiles = selective_scan_n_chunks(L);
  const bool has_z = p.z != nullptr;

  const T* u = static_cast<const T*>(p.u) + size_t(b) * Dm * L;
  const T* dl_ = static_cast<const T*>(p.delta) + size_t(b) * Dm * L;
  const T* z = has_z ? static_cast<const T*>(p.z) + size_t(b) * Dm * L : nullptr;
  const T* Bm = static_cast<const T*>(p.B) + size_t(b) * N * L;
  const T* Cm = static_cast<const T*>(p.C) + size_t(b) * N * L;
  T* out = static_cast<T*>(p.out) + size_t(b) * Dm * L;

  // warp stage rows [0,R) u, [R,2R) delta (then y), [2R,3R) z; block B/C rows [0,NP) B, [NP,2NP) C
  auto issue = [&](int buf, int tile) {
    T* st = stage0 + buf * Cf::kStageElems;
    T* bcr = s_bcraw + buf * 2 * NP * RS;
    const int t0 = tile * kT;
    if constexpr (kAsync) {
#pragma unroll
      for (int a = 0; a < 3; ++a) {
        if (a == 2 && !has_z) break;
        const T* src = a == 0 ? u : a == 1 ? dl_ : z;
#pragma unroll
        for (int c = lane; c < R * CPR; c += 32) {
          const int r = c / CPR, col = c % CPR, dd = dw + r, t = t0 + col * VEC;
          const bool v = dd < Dm && t < L;
          fwd::cp_async16(st + (a * R + r) * RS + col * VEC, v ? src + size_t(dd) * L + t : src, v);
        }
      }
      for (int c = tid; c < 2 * N * CPR; c += NT) {
        const int r = c / CPR, col = c % CPR, t = t0 + col * VEC;
        const bool isC = r >= N;
        const int n = isC ? r - N : r;
        const T* src = isC ? Cm : Bm;
        const bool v = t < L;
        fwd::cp_async16(bcr + ((isC ? NP : 0) + n) * RS + col * VEC, v ? src + size_t(n) * L + t : src, v);
      }
    } else {
      const T zero = from_float<T>(0.f);
      for (int a = 0; a < 3; ++a) {
        if (a == 2 && !has_z) break;
        const T* src = a == 0 ? u : a == 1 ? dl_ : z;
        for (int e = lane; e < R * kT; e += 32) {
          const int r = e / kT, c = e % kT, dd = dw + r, t = t0 + c;
          st[(a * R + r) * RS + c] = (dd < Dm && t < L) ? src[size_t(dd) * L + t] : zero;
        }
      }
      for (int e = tid; e < 2 * N * kT; e += NT) {
        const int r = e / kT, c = e % kT, t = t0 + c;
        const bool isC = r >= N;
        const int n = isC ? r - N : r;
        bcr[((isC ? NP : 0) + n) * RS + c] = t < L ? (isC ? Cm : Bm)[size_t(n) * L + t] : zero;
      }
    }
  };

  float A2[K], x[K];
#pragma unroll
  for (int j = 0; j < K; ++j) {
    const int n = g * K + j;
    const bool v = dvalid && n < N;
    A2[j] = v ? p.A[size_t(d) * N + n] * kLog2e : 0.f;
    x[j] = (v && p.initial_state) ? p.initial_state[(size_t(b) * Dm + d) * N + n] : 0.f;
  }
  const float Dd = (dvalid && p.D) ? p.D[d] : 0.f;
  const float bias = (dvalid && p.delta_bias) ? p.delta_bias[d] : 0.f;
  const bool full_state = (g + 1) * K <= N && K % 4 == 0 && N % 4 == 0;

  issue(0, 0);
  fwd::cp_async_commit();
  for (int tile = 0; tile < n_tiles; ++tile) {
    const int buf = tile & 1, t0 = tile * kT;
    if (tile + 1 < n_tiles) issue(buf ^ 1, tile + 1);
    fwd::cp_async_commit();
    fwd::cp_async_wait_1();
    __syncthreads();
    {  // B/C rows → fp32 [t][B 0..NP | C 0..NP]
      const T* bcr = s_bcraw + buf * 2 * NP * RS;
#pragma unroll 4
      for (int e = tid; e < 2 * NP * kT; e += NT) {
        const int c = e / (2 * NP), k = e % (2 * NP), n = k % NP;
        s_bc[e] = n < N ? to_float(bcr[k * RS + c]) : 0.f;
      }
    }
    __syncthreads();

    if (p.checkpoints && dvalid) {
      float* ck = p.checkpoints + ((size_t(b) * Dm + d) * n_tiles + tile) * N + g * K;
      if (full_state) {
#pragma unroll
        for (int j = 0; j < K; j += 4) *reinterpret_cast<float4*>(ck + j) = make_float4(x[j], x[j + 1], x[j + 2], x[j + 3]);
      } else {
#pragma unroll
        for (int j = 0; j < K; ++j)
          if (g * K + j < N) ck[j] = x[j];
      }
    }

    const int n_valid = L - t0;  // steps past L: dt = 0 keeps x unchanged (B = C = 0 there)
    const T* st = stage0 + buf * Cf::kStageElems;
    const T* row_u = st + r_own * RS;
    T* row_y = const_cast<T*>(st) + (R + r_own) * RS;
    const T* row_z = st + (2 * R + r_own) * RS;
#pragma unroll 1
    for (int c0 = 0; c0 < kT; c0 += kSub) {
      const int cg = c0 + g * E;  // first step owned by this lane
      float uu[kSub], dt[kSub], y[kSub];
      fwd::lds8<T>(uu, row_u + c0);
      {
        float mine[E];
        fwd::lds_n<T, E>(mine, row_y + cg);
#pragma unroll
        for (int i = 0; i < E; ++i) {
          float v = mine[i] + bias;
          if (p.delta_softplus) v = fwd::softplus_t<T>(v);
          mine[i] = cg + i < n_valid ? v : 0.f;
        }
#pragma unroll
        for (int s = 0; s < kSub; ++s) {
          if constexpr (G == 1) dt[s] = mine[s];
          else dt[s] = __shfl_sync(0xffffffffu, mine[s % E], lane0 + s / E);
        }
      }
#pragma unroll
      for (int s = 0; s < kSub; ++s) {
        const float* bc = s_bc + (c0 + s) * 2 * NP + g * K;
        float Bv[K], Cv[K];
        load_k<K>(Bv, bc);
        load_k<K>(Cv, bc + NP);
        const float du = dt[s] * uu[s];
        float ya[2] = {0.f, 0.f};
#pragma unroll
        for (int j = 0; j < K; ++j) {
          const float arg = dt[s] * A2[j];
          const float a = j < kPoly ? fwd::poly_exp2(arg) : fast_exp2(arg);
          x[j] = fmaf(a, x[j], du * Bv[j]);
          ya[j & 1] = fmaf(x[j], Cv[j], ya[j & 1]);
        }
        y[s] = ya[0] + ya[1];
      }
      // reduce-scatter y over the G lanes: lane g ends with the sums of steps g·E .. g·E+E-1
#pragma unroll
      for (int bit = G / 2, half = kSub / 2; bit >= 1; bit /= 2, half /= 2) {
        const bool hi = lane & bit;
#pragma unroll
        for (int i = 0; i < half; ++i) {
          const float send = hi ? y[i] : y[i + half];
          const float keep = hi ? y[i + half] : y[i];
          y[i] = keep + __shfl_xor_sync(0xffffffffu, send, bit);
        }
      }
      float yo[E], uo[E];
      fwd::lds_n<T, E>(uo, row_u + cg);
#pragma unroll
      for (int i = 0; i < E; ++i) yo[i] = fmaf(Dd, uo[i], y[i]);
      if (has_z) {
        float zz[E];
        fwd::lds_n<T, E>(zz, row_z + cg);
#pragma unroll
        for (int i = 0; i < E; ++i) yo[i] *= fwd::silu_t<T>(zz[i]);
      }
      fwd::sts_n<T, E>(row_y + cg, yo);
    }
    __syncwarp();
    // coalesced store of the tile's y rows
    if constexpr (kAsync) {
#pragma unroll
      for (int c = lane; c < R * CPR; c += 32) {
        const int r = c / CPR, col = c % CPR, dd = dw + r, t = t0 + col * VEC;
        if (dd < Dm && t < L)
          *reinterpret_cast<uint4*>(out + size_t(dd) * L + t) =
              *reinterpret_cast<const uint4*>(st + (R + r) * RS + col * VEC);
      }
    } else {
      for (int e = lane; e < R * kT; e += 32) {
        const int r = e / kT, c = e % kT, dd = dw + r, t = t0 + c;
        if (dd < Dm && t < L) out[size_t(dd) * L + t] = st[(R + r) * RS + c];
      }
    }
    __syncwarp();
  }
  if (dvalid) {
#pragma unroll
    for (int j = 0; j < K; ++j) {
      const int n = g * K + j;
      if (n < N) p.last_state[(size_t(b) * Dm + d) * N + n] = x[j];
    }
  }
}

// --------------------------------------------------------------------------------------------- backward
template <typename T, int K>
__global__ void __launch_bounds__(kThreads) selective_scan_bwd_kernel(SelectiveScanBwdParams p) {
  constexpr int NP = 4 * K;
  constexpr int kTS = 64 / K;   // sub-tile length (its states live in registers)
  constexpr int kNS = kT / kTS; // sub-tiles per chunk
  extern __shared__ float4 smem_f4[];
  float* smem = reinterpret_cast<float*>(smem_f4);
  float* s_bnd = smem;                        // [kNS][kThreads][K] states at sub-tile starts
  float* s_B = s_bnd + kNS * kThreads * K;    // [kT][NP]
  float* s_C = s_B + kT * NP;
  float* s_pB = s_C + kT * NP;                // [4 warps][kTS][NP]
  float* s_pC = s_pB + 4 * kTS * NP;
  float* s_dt = s_pC + 4 * kTS * NP;          // [kDT][kLD]
  float* s_u = s_dt + kDT * kLD;              // u, then du
  float* s_dy = s_u + kDT * kLD;              // dout * silu(z)
  float* s_zg = s_dy + kDT * kLD;             // dout * silu'(z), then dz
  float* s_sig = s_zg + kDT * kLD;            // softplus'(delta raw), then d(delta raw)

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int ng = lane & 3, dl = warp * 8 + (lane >> 2);
  const int b = blockIdx.y, dtile = blockIdx.x, d0 = dtile * kDT, d = d0 + dl;
  const int Dm = p.dim, L = p.seqlen, N = p.dstate;
  const bool dvalid = d < Dm;
  const int n_chunks = selective_scan_n_chunks(L), n_dtiles = gridDim.x;

  const size_t bdl = size_t(b) * Dm * L;
  const T* u = static_cast<const T*>(p.u) + bdl;
  const T* dlr = static_cast<const T*>(p.delta) + bdl;
  const T* z = p.z ? static_cast<const T*>(p.z) + bdl : nullptr;
  const T* dout = static_cast<const T*>(p.dout) + bdl;
  const T* Bm = static_cast<const T*>(p.B) + size_t(b) * N * L;
  const T* Cm = static_cast<const T*>(p.C) + size_t(b) * N * L;
  T* du_g = static_cast<T*>(p.du) + bdl;
  T* ddelta_g = static_cast<T*>(p.ddelta) + bdl;
  T* dz_g = p.dz ? static_cast<T*>(p.dz) + bdl : nullptr;
  const float Dd = (dvalid && p.D) ? p.D[d] : 0.f;

  float A2[K], Av[K], lam[K], anext[K], dA[K];
#pragma unroll
  for (int j = 0; j < K; ++j) {
    const int n = ng * K + j;
    const bool v = dvalid && n < N;
    Av[j] = v ? p.A[size_t(d) * N + n] : 0.f;
    A2[j] = Av[j] * kLog2e;
    lam[j] = (v && p.dlast_state) ? p.dlast_state[(size_t(b) * Dm + d) * N + n] : 0.f;
    anext[j] = 1.f;
    dA[j] = 0.f;
  }
  float dD_acc = 0.f, dbias_acc = 0.f;
  const int sel = scatter_index<K>(lane);
  const bool writes_partial = (K == 8) || lane < 16;

  for (int chunk = n_chunks - 1; chunk >= 0; --chunk) {
    const int t0 = chunk * kT;
    for (int e = tid; e < kDT * kT; e += kThreads) {
      const int r = e / kT, c = e % kT, dd = d0 + r, t = t0 + c;
      float uv = 0.f, dt = 0.f, dy = 0.f, zg = 0.f, sg = 0.f;
      if (dd < Dm && t < L) {
        const size_t off = size_t(dd) * L + t;
        uv = to_float(u[off]);
        dt = to_float(dlr[off]) + (p.delta_bias ? p.delta_bias[dd] : 0.f);
        if (p.delta_softplus) {
          sg = sigmoid(dt);
          dt = softplus(dt);
        } else {
          sg = 1.f;
        }
        const float go = to_float(dout[off]);
        if (z) {
          const float zv = to_float(z[off]), sz = sigmoid(zv);
          dy = go * zv * sz;
          zg = go * sz * (1.f + zv * (1.f - sz));
        } else {
          dy = go;
        }
      }
      s_dt[r * kLD + c] = dt;
      s_u[r * kLD + c] = uv;
      s_dy[r * kLD + c] = dy;
      s_zg[r * kLD + c] = zg;
      s_sig[r * kLD + c] = sg;
    }
    for (int e = tid; e < NP * kT; e += kThreads) {
      const int n = e / kT, c = e % kT, t = t0 + c;
      const bool v = n < N && t < L;
      s_B[c * NP + n] = v ? to_float(Bm[size_t(n) * L + t]) : 0.f;
      s_C[c * NP + n] = v ? to_float(Cm[size_t(n) * L + t]) : 0.f;
    }
    __syncthreads();

    // phase 0: states at the start of each sub-tile (thread-private rows of s_bnd)
    {
      float xs[K];
#pragma unroll
      for (int j = 0; j < K; ++j) {
        const int n = ng * K + j;
        xs[j] = (dvalid && n < N) ? p.checkpoints[((size_t(b) * Dm + d) * n_chunks + chunk) * N + n] : 0.f;
      }
      for (int s = 0; s < kNS; ++s) {
#pragma unroll
        for (int j = 0; j < K; ++j) s_bnd[(s * kThreads + tid) * K + j] = xs[j];
        if (s == kNS - 1) break;
        for (int c = s * kTS; c < (s + 1) * kTS; ++c) {
          const float dt = s_dt[dl * kLD + c], du = dt * s_u[dl * kLD + c];
          float Bv[K];
          load_k<K>(Bv, s_B + c * NP + ng * K);
#pragma unroll
          for (int j = 0; j < K; ++j) xs[j] = fmaf(fast_exp2(dt * A2[j]), xs[j], du * Bv[j]);
        }
      }
    }

    for (int s = kNS - 1; s >= 0; --s) {
      const int cb = s * kTS;
      float x0[K], hist[kTS][K];
#pragma unroll
      for (int j = 0; j < K; ++j) x0[j] = s_bnd[(s * kThreads + tid) * K + j];
      // phase 1: recompute the sub-tile's states; dC partials; dz
      {
        float xr[K];
#pragma unroll
        for (int j = 0; j < K; ++j) xr[j] = x0[j];
#pragma unroll
        for (int c = 0; c < kTS; ++c) {
          const int ci = dl * kLD + cb + c;
          const float dt = s_dt[ci], uv = s_u[ci], dy = s_dy[ci], du = dt * uv;
          float Bv[K], Cv[K], v[K];
          load_k<K>(Bv, s_B + (cb + c) * NP + ng * K);
          load_k<K>(Cv, s_C + (cb + c) * NP + ng * K);
          float y = 0.f;
#pragma unroll
          for (int j = 0; j < K; ++j) {
            xr[j] = fmaf(fast_exp2(dt * A2[j]), xr[j], du * Bv[j]);
            hist[c][j] = xr[j];
            y = fmaf(xr[j], Cv[j], y);
            v[j] = dy * xr[j];
          }
          const float r = reduce_scatter_channels<K>(v, lane);
          if (writes_partial) s_pC[(warp * kTS + c) * NP + ng * K + sel] = r;
          y += __shfl_xor_sync(0xffffffffu, y, 1);
          y += __shfl_xor_sync(0xffffffffu, y, 2);
          if (ng == 0) s_zg[ci] *= y + Dd * uv;
        }
      }
      // phase 2: walk the adjoint backwards through the sub-tile
#pragma unroll
      for (int c = kTS - 1; c >= 0; --c) {
        const int ci = dl * kLD + cb + c;
        const float dt = s_dt[ci], uv = s_u[ci], dy = s_dy[ci];
        float Bv[K], Cv[K], v[K];
        load_k<K>(Bv, s_B + (cb + c) * NP + ng * K);
        load_k<K>(Cv, s_C + (cb + c) * NP + ng * K);
        float dd = 0.f, duu = 0.f;
#pragma unroll
        for (int j = 0; j < K; ++j) {
          lam[j] = fmaf(lam[j], anext[j], dy * Cv[j]);
          const float xp = c > 0 ? hist[c > 0 ? c - 1 : 0][j] : x0[j];
          const float a = fast_exp2(dt * A2[j]);
          const float g = lam[j] * xp * a;
          dA[j] = fmaf(g, dt, dA[j]);
          dd += g * Av[j] + lam[j] * uv * Bv[j];
          duu = fmaf(lam[j] * dt, Bv[j], duu);
          v[j] = lam[j] * dt * uv;
          anext[j] = a;
        }
        const float r = reduce_scatter_channels<K>(v, lane);
        if (writes_partial) s_pB[(warp * kTS + c) * NP + ng * K + sel] = r;
        dd += __shfl_xor_sync(0xffffffffu, dd, 1);
        dd += __shfl_xor_sync(0xffffffffu, dd, 2);
        duu += __shfl_xor_sync(0xffffffffu, duu, 1);
        duu += __shfl_xor_sync(0xffffffffu, duu, 2);
        __syncwarp();  // the 4 lanes of this channel have read s_u/s_sig[ci] before lane ng == 0 overwrites them
        if (ng == 0) {
          const float ddraw = dd * s_sig[ci];
          dbias_acc += ddraw;
          dD_acc = fmaf(dy, uv, dD_acc);
          s_sig[ci] = ddraw;
          s_u[ci] = duu + dy * Dd;
        }
      }
      __syncthreads();
      // flush the sub-tile's dB/dC partials (sum of the 4 warps, fixed order)
      for (int e = tid; e < N * kTS; e += kThreads) {
        const int n = e / kTS, c = e % kTS, t = t0 + cb + c;
        if (t < L) {
          float sb = 0.f, sc = 0.f;
#pragma unroll
          for (int w = 0; w < 4; ++w) {
            sb += s_pB[(w * kTS + c) * NP + n];
            sc += s_pC[(w * kTS + c) * NP + n];
          }
          const size_t o = ((size_t(b) * n_dtiles + dtile) * N + n) * L + t;
          p.dB_part[o] = sb;
          p.dC_part[o] = sc;
        }
      }
      __syncthreads();
    }

    for (int e = tid; e < kDT * kT; e += kThreads) {
      const int r = e / kT, c = e % kT, dd = d0 + r, t = t0 + c;
      if (dd < Dm && t < L) {
        const size_t off = size_t(dd) * L + t;
        du_g[off] = from_float<T>(s_u[r * kLD + c]);
        ddelta_g[off] = from_float<T>(s_sig[r * kLD + c]);
        if (dz_g) dz_g[off] = from_float<T>(s_zg[r * kLD + c]);
      }
    }
    __syncthreads();
  }

  if (dvalid) {
#pragma unroll
    for (int j = 0; j < K; ++j) {
      const int n = ng * K + j;
      if (n < N) {
        const size_t o = (size_t(b) * Dm + d) * N + n;
        p.dA_part[o] = dA[j];
        if (p.dinitial) p.dinitial[o] = lam[j] * anext[j];
      }
    }
    if (ng == 0) {
      p.dD_part[size_t(b) * Dm + d] = dD_acc;
      p.dbias_part[size_t(b) * Dm + d] = dbias_acc;
    }
  }
}

// ------------------------------------------------------------------------------------- backward (fast path)
// N <= 16, 16-byte-aligned rows. Warp = 8 channels × 4 lanes (lane = 4·channel + g, states 4g .. 4g+3); block =
// kWarps warps (64 channels, 32 for fp32); B/C tiles are block-shared. Per 64-step chunk (walked in reverse, the
// previous chunk's tiles prefetched with cp.async):
//   prep:    lane g of a channel converts steps 8g.. and 32+8g..: dt = softplus(delta + bias) (0 past L),
//            dy = dout·silu(z) → fp32 rows (16-byte vector loads/stores);
//   phase 0: forward from the checkpoint over the chunk in 8-step sub-tiles: sub-tile start states → smem, y → dz,
//            dC partials;
//   per sub-tile (reverse): phase 1 recomputes its 8 states, keeping the decays a_t and a_t·x_{t-1} in registers
//            (kKeep; with kKeep = 0 the compiler merges phase 2's identical exp2 with phase 1's anyway); phase 2 walks
//            the adjoint λ back: dA, dB partials and per step Σ_n λ·a·x·A, Σ_n λ·B (→ d(delta), du).
// Every cross-lane sum is batched over the 8 steps of a sub-tile, after the sub-tile's recurrence, so the shuffles
// are independent of each other and of the recurrence (the old per-step shuffle chains serialised each step):
//   over the 4 lanes of a channel (y, Σλ·a·x·A, Σλ·B: 8 values): reduce-scatter, lane g finishes steps 2g, 2g+1
//   (dz, d(delta), du: one MUFU op per (channel, step) instead of 4 lanes × redundant work);
//   over the 8 channels of a warp (dB, dC: 32 values per lane): reduce-scatter, lane ends with the 4 states of one
//   step, stored as one float4 into the warp's per-chunk partial [t][16] (quads swizzled: conflict-free both ways);
//   at the chunk end a fixed-order sum over the 4 warps of each 32-channel slice → [B, n_dtiles, N, L] partials
//   (n_dtiles = ceil(D / 32), as the generic path).
namespace bwdf {
constexpr int NP = 16, K = 4, R = 8, kTS = 8, kNS = kT / kTS, FS = kT + 4;
template <typename T>
struct Cfg {
  static constexpr int kWarps = sizeof(T) == 4 ? 4 : 8;  // 64 (32 for fp32) channels per block
  static constexpr int kWarpsPerSlice = 32 / R;           // a dB/dC partial slice: 32 channels
  static constexpr int VEC = 16 / int(sizeof(T));
  static constexpr int CPR = kT / VEC;
  static constexpr int RS = kT + VEC;
  // block-shared: B/C raw [2 bufs][2 NP rows][RS] T, bc [kT][2 NP] fp32
  static constexpr size_t kSharedBytes = 2 * 2 * NP * RS * sizeof(T) + sizeof(float) * kT * 2 * NP;
  // per warp: stage [2 bufs][4 R rows][RS] T (u, delta, z → dz, dout); dt → d(delta), dy → du [R][FS] fp32;
  // sub-tile start states [kNS][32][K] fp32; dB/dC partials [2][kT][NP] fp32
  static constexpr size_t kStageElems = 4 * R * RS;
  static constexpr size_t kPartOffset = 2 * kStageElems * sizeof(T) + sizeof(float) * (2 * R * FS + kNS * 32 * K);
  static constexpr size_t kWarpBytes = kPartOffset + sizeof(float) * 2 * kT * NP;
  static constexpr size_t kWarpBytesAligned = (kWarpBytes + 15) / 16 * 16;
  static constexpr size_t kSmem = kSharedBytes + kWarps * kWarpBytesAligned;
};

/// m ? a : b for a mask m of all ones or zeros, as bit operations (one LOP3): a ternary on array elements lets the
/// compiler turn it into a select of addresses, which puts the whole array into local memory.
__device__ __forceinline__ float mask_sel(unsigned m, float a, float b) {
  return __uint_as_float((__float_as_uint(a) & m) | (__float_as_uint(b) & ~m));
}
/// One butterfly round of a reduce-scatter: lanes with `bit` set keep (and receive) the upper HALF values.
template <int BIT, int HALF, int NV>
__device__ __forceinline__ void rs_round(float (&v)[NV], int lane) {
  const unsigned m = (lane & BIT) ? 0xffffffffu : 0u;
#pragma unroll
  for (int i = 0; i < HALF; ++i) {
    const float send = mask_sel(m, v[i], v[i + HALF]);
    const float keep = mask_sel(m, v[i + HALF], v[i]);
    v[i] = keep + __shfl_xor_sync(0xffffffffu, send, BIT);
  }
}
/// Reduce-scatter of v[8] over the 4 lanes of a channel (lane bits 0, 1): lane g ends with the sums of v[2g] and
/// v[2g+1] in v[0], v[1].
__device__ __forceinline__ void reduce_lanes8(float (&v)[8], int lane) {
  rs_round<2, 4>(v, lane);
  rs_round<1, 2>(v, lane);
}
/// Index of (step i, state j) in the 32 per-lane values of a sub-tile's channel reduction.
__host__ __device__ constexpr int vidx(int i, int j) { return (i & 1) * 16 + (i >> 1) * 4 + j; }
/// Reduce-scatter of v[32] over the 8 channels of a warp (lane bits 2-4): the lane ends with the channel sums of
/// v[vidx(own_step(lane), j)], j = 0..3, in v[0..3].
__device__ __forceinline__ void reduce_channels32(float (&v)[32], int lane) {
  rs_round<16, 16>(v, lane);
  rs_round<8, 8>(v, lane);
  rs_round<4, 4>(v, lane);
}
__device__ __forceinline__ int own_step(int lane) { return ((lane >> 1) & 6) | ((lane >> 4) & 1); }
/// Float offset of quad q (states 4q..4q+3) of step c in a [kT][NP] partial; quads swizzled by step so that both
/// the per-sub-tile float4 stores (8 steps × 4 quads) and the flush's loads (32 steps × one quad) are conflict-free.
__device__ __forceinline__ int part_index(int c, int q) { return c * NP + ((q ^ ((c >> 1) & 3)) << 2); }
template <int G>
__device__ __forceinline__ float sum_group(float v) {
  if constexpr (G >= 2) v += __shfl_xor_sync(0xffffffffu, v, 1);
  if constexpr (G >= 4) v += __shfl_xor_sync(0xffffffffu, v, 2);
  return v;
}
}  // namespace bwdf

template <typename T, int kKeep>
__global__ void __launch_bounds__(bwdf::Cfg<T>::kWarps * 32, 1) selective_scan_bwd_fast_kernel(SelectiveScanBwdParams p) {
  using Cf = bwdf::Cfg<T>;
  using namespace bwdf;
  constexpr int VEC = Cf::VEC, CPR = Cf::CPR, RS = Cf::RS, kWarps = Cf::kWarps, NT = kWarps * 32;
  extern __shared__ float4 smem_f4[];
  char* base = reinterpret_cast<char*>(smem_f4);
  T* s_bcraw = reinterpret_cast<T*>(base);                                     // [2][2NP][RS]
  float* s_bc = reinterpret_cast<float*>(base + 2 * 2 * NP * RS * sizeof(T));  // [kT][2NP]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  char* wb = base + Cf::kSharedBytes + warp * Cf::kWarpBytesAligned;
  T* s_stage = reinterpret_cast<T*>(wb);                                         // [2][4R][RS]
  float* s_dt = reinterpret_cast<float*>(wb + 2 * Cf::kStageElems * sizeof(T));  // [R][FS]
  float* s_dy = s_dt + R * FS;                                                   // [R][FS]
  float* s_sub = s_dy + R * FS;                                                  // [kNS][32][K]
  float* part_B = s_sub + kNS * 32 * K;                                          // [kT][NP]
  float* part_C = part_B + kT * NP;                                              // [kT][NP]

  const int g = lane & 3, ch = lane >> 2, own = own_step(lane);
  const int b = blockIdx.y, d0 = blockIdx.x * kWarps * R, dw = d0 + warp * R, d = dw + ch;
  const int Dm = p.dim, L = p.seqlen, N = p.dstate;
  const bool dvalid = d < Dm;
  const int n_chunks = selective_scan_n_chunks(L), n_dtiles = selective_scan_n_dtiles(Dm);
  const bool has_z = p.z != nullptr;
  const size_t bdl = size_t(b) * Dm * L;
  const T* u = static_cast<const T*>(p.u) + bdl;
  const T* dlr = static_cast<const T*>(p.delta) + bdl;
  const T* z = has_z ? static_cast<const T*>(p.z) + bdl : nullptr;
  const T* dout = static_cast<const T*>(p.dout) + bdl;
  const T* Bm = static_cast<const T*>(p.B) + size_t(b) * N * L;
  const T* Cm = static_cast<const T*>(p.C) + size_t(b) * N * L;
  T* du_g = static_cast<T*>(p.du) + bdl;
  T* ddelta_g = static_cast<T*>(p.ddelta) + bdl;
  T* dz_g = has_z ? static_cast<T*>(p.dz) + bdl : nullptr;

  const float Dd = (dvalid && p.D) ? p.D[d] : 0.f;
  const float bias = (dvalid && p.delta_bias) ? p.delta_bias[d] : 0.f;
  float A2[K], Av[K], lam[K], anext[K], dA[K];
#pragma unroll
  for (int j = 0; j < K; ++j) {
    const int n = g * K + j;
    const bool v = dvalid && n < N;
    Av[j] = v ? p.A[size_t(d) * N + n] : 0.f;
    A2[j] = Av[j] * kLog2e;
    lam[j] = (v && p.dlast_state) ? p.dlast_state[(size_t(b) * Dm + d) * N + n] : 0.f;
    anext[j] = 1.f;
    dA[j] = 0.f;
  }
  float dD_acc = 0.f, dbias_acc = 0.f;

  auto issue = [&](int buf, int chunk) {
    const int t0 = chunk * kT;
    T* st = s_stage + buf * Cf::kStageElems;
#pragma unroll
    for (int a = 0; a < 4; ++a) {
      if (a == 2 && !has_z) continue;
      const T* src = a == 0 ? u : a == 1 ? dlr : a == 2 ? z : dout;
#pragma unroll
      for (int c = lane; c < R * CPR; c += 32) {
        const int r = c / CPR, col = c % CPR, dd = dw + r, t = t0 + col * VEC;
        const bool v = dd < Dm && t < L;
        fwd::cp_async16(st + (a * R + r) * RS + col * VEC, v ? src + size_t(dd) * L + t : src, v);
      }
    }
    T* bc = s_bcraw + buf * 2 * NP * RS;
    for (int c = tid; c < 2 * N * CPR; c += NT) {
      const int r = c / CPR, col = c % CPR, t = t0 + col * VEC;
      const bool isC = r >= N;
      const int n = isC ? r - N : r;
      const T* src = isC ? Cm : Bm;
      const bool v = t < L;
      fwd::cp_async16(bc + ((isC ? NP : 0) + n) * RS + col * VEC, v ? src + size_t(n) * L + t : src, v);
    }
  };

  issue((n_chunks - 1) & 1, n_chunks - 1);
  fwd::cp_async_commit();
  for (int chunk = n_chunks - 1; chunk >= 0; --chunk) {
    const int buf = chunk & 1, t0 = chunk * kT, n_valid = L - t0;
    if (chunk > 0) issue(buf ^ 1, chunk - 1);
    fwd::cp_async_commit();
    // the checkpoint (state before this chunk) is needed right after the barrier
    float xs[K];
    {
      const float* ck = p.checkpoints + ((size_t(b) * Dm + d) * n_chunks + chunk) * N + g * K;
      if (dvalid && (g + 1) * K <= N && N % 4 == 0) {
        load_k<K>(xs, ck);
      } else {
#pragma unroll
        for (int j = 0; j < K; ++j) xs[j] = (dvalid && g * K + j < N) ? ck[j] : 0.f;
      }
    }
    fwd::cp_async_wait_1();
    __syncthreads();
    T* st = s_stage + buf * Cf::kStageElems;
    const T* row_u = st + ch * RS;  // this lane's channel rows
    const T* row_dl = st + (R + ch) * RS;
    T* row_z = st + (2 * R + ch) * RS;  // after phase 0: dz
    const T* row_do = st + (3 * R + ch) * RS;
    float* row_dt = s_dt + ch * FS;  // after phase 2: d(delta)
    float* row_dy = s_dy + ch * FS;  // after phase 2: du
    {  // B/C → fp32 [t][B 0..NP | C 0..NP] (block)
      const T* bcr = s_bcraw + buf * 2 * NP * RS;
      for (int e = tid; e < 2 * NP * kT; e += NT) {
        const int c = e / (2 * NP), k = e % (2 * NP), n = k % NP;
        s_bc[e] = n < N ? to_float(bcr[k * RS + c]) : 0.f;
      }
    }
    // prep: lane g converts steps 8g .. 8g+7 and 32+8g .. of its channel
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int c = 8 * g + 32 * h;
      float dl8[8], go8[8], zz8[8] = {}, dt8[8], dy8[8];
      fwd::lds8<T>(dl8, row_dl + c);
      fwd::lds8<T>(go8, row_do + c);
      if (has_z) fwd::lds8<T>(zz8, row_z + c);
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        float dt = dl8[k] + bias;
        if (p.delta_softplus) dt = fwd::softplus_t<T>(dt);
        dt8[k] = c + k < n_valid ? dt : 0.f;
        dy8[k] = has_z ? go8[k] * fwd::silu_t<T>(zz8[k]) : go8[k];
      }
#pragma unroll
      for (int k = 0; k < 8; k += 4) {
        *reinterpret_cast<float4*>(row_dt + c + k) = make_float4(dt8[k], dt8[k + 1], dt8[k + 2], dt8[k + 3]);
        *reinterpret_cast<float4*>(row_dy + c + k) = make_float4(dy8[k], dy8[k + 1], dy8[k + 2], dy8[k + 3]);
      }
    }
    __syncthreads();

    // phase 0: forward over the chunk
#pragma unroll 1
    for (int s = 0; s < kNS; ++s) {
      const int cs = s * kTS;
      *reinterpret_cast<float4*>(s_sub + (s * 32 + lane) * K) = make_float4(xs[0], xs[1], xs[2], xs[3]);
      float dt8[kTS], dy8[kTS], u8[kTS], y[kTS], v[32];
      load_k<kTS>(dt8, row_dt + cs);
      load_k<kTS>(dy8, row_dy + cs);
      fwd::lds8<T>(u8, row_u + cs);
#pragma unroll
      for (int i = 0; i < kTS; ++i) {
        const float* bc = s_bc + (cs + i) * 2 * NP + g * K;
        float Bv[K], Cv[K];
        load_k<K>(Bv, bc);
        load_k<K>(Cv, bc + NP);
        const float du = dt8[i] * u8[i];
        float y0 = 0.f, y1 = 0.f;
#pragma unroll
        for (int j = 0; j < K; ++j) {
          xs[j] = fmaf(fast_exp2(dt8[i] * A2[j]), xs[j], du * Bv[j]);
          if (j & 1) y1 = fmaf(xs[j], Cv[j], y1); else y0 = fmaf(xs[j], Cv[j], y0);
          v[vidx(i, j)] = dy8[i] * xs[j];
        }
        y[i] = y0 + y1;
      }
      reduce_channels32(v, lane);
      *reinterpret_cast<float4*>(part_C + part_index(cs + own, g)) = make_float4(v[0], v[1], v[2], v[3]);
      if (has_z) {
        reduce_lanes8(y, lane);
        const int c = cs + 2 * g;
        float zz[2], go[2], uu[2], dz[2];
        fwd::lds_n<T, 2>(zz, row_z + c);
        fwd::lds_n<T, 2>(go, row_do + c);
        fwd::lds_n<T, 2>(uu, row_u + c);
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float sz = fwd::sigmoid_t<T>(zz[e]);
          dz[e] = go[e] * sz * (1.f + zz[e] * (1.f - sz)) * fmaf(Dd, uu[e], y[e]);
        }
        fwd::sts_n<T, 2>(row_z + c, dz);
      }
    }

    // sub-tiles in reverse: phase 1 (recompute into registers), phase 2 (adjoint)
#pragma unroll 1
    for (int s = kNS - 1; s >= 0; --s) {
      const int cs = s * kTS;
      float dt8[kTS], dy8[kTS], u8[kTS], xr[K];
      load_k<kTS>(dt8, row_dt + cs);
      load_k<kTS>(dy8, row_dy + cs);
      fwd::lds8<T>(u8, row_u + cs);
      load_k<K>(xr, s_sub + (s * 32 + lane) * K);
      float ax[kTS][K], dec[kTS][K];
#pragma unroll
      for (int i = 0; i < kTS; ++i) {
        float Bv[K];
        load_k<K>(Bv, s_bc + (cs + i) * 2 * NP + g * K);
        const float du = dt8[i] * u8[i];
#pragma unroll
        for (int j = 0; j < K; ++j) {
          const float a = fast_exp2(dt8[i] * A2[j]);
          ax[i][j] = a * xr[j];
          xr[j] = fmaf(du, Bv[j], ax[i][j]);
          dec[i][j] = a;
        }
      }
      float s1[kTS], s2[kTS], v[32];
#pragma unroll
      for (int i = kTS - 1; i >= 0; --i) {
        const float* bc = s_bc + (cs + i) * 2 * NP + g * K;
        float Bv[K], Cv[K];
        load_k<K>(Bv, bc);
        load_k<K>(Cv, bc + NP);
        const float du = dt8[i] * u8[i];
        float t1 = 0.f, t2 = 0.f;
#pragma unroll
        for (int j = 0; j < K; ++j) {
          lam[j] = fmaf(lam[j], anext[j], dy8[i] * Cv[j]);
          const float w = lam[j] * ax[i][j];
          dA[j] = fmaf(w, dt8[i], dA[j]);
          t1 = fmaf(w, Av[j], t1);
          t2 = fmaf(lam[j], Bv[j], t2);
          v[vidx(i, j)] = lam[j] * du;
          anext[j] = kKeep ? dec[i][j] : fast_exp2(dt8[i] * A2[j]);
        }
        s1[i] = t1;
        s2[i] = t2;
      }
      reduce_channels32(v, lane);
      *reinterpret_cast<float4*>(part_B + part_index(cs + own, g)) = make_float4(v[0], v[1], v[2], v[3]);
      reduce_lanes8(s1, lane);
      reduce_lanes8(s2, lane);
      __syncwarp();  // all lanes of the channel have read row_dt / row_dy of this sub-tile (and phase 0's reads)
      const int c = cs + 2 * g;
      const float2 dtp = *reinterpret_cast<const float2*>(row_dt + c);
      const float2 dyp = *reinterpret_cast<const float2*>(row_dy + c);
      float uu[2], raw[2], ddo[2], duo[2];
      fwd::lds_n<T, 2>(uu, row_u + c);
      fwd::lds_n<T, 2>(raw, row_dl + c);
      const float dts[2] = {dtp.x, dtp.y}, dys[2] = {dyp.x, dyp.y};
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float dd = fmaf(uu[e], s2[e], s1[e]);  // d/d(dt)
        if (p.delta_softplus) dd *= fwd::sigmoid_t<T>(raw[e] + bias);
        if (c + e < n_valid) {
          dbias_acc += dd;
          dD_acc = fmaf(dys[e], uu[e], dD_acc);
        }
        ddo[e] = dd;
        duo[e] = fmaf(dts[e], s2[e], Dd * dys[e]);
      }
      *reinterpret_cast<float2*>(row_dt + c) = make_float2(ddo[0], ddo[1]);
      *reinterpret_cast<float2*>(row_dy + c) = make_float2(duo[0], duo[1]);
    }
    __syncthreads();
    // dB/dC partials: 4 states of one step per item, summed over the warps of each 32-channel slice (fixed order)
    {
      constexpr int kSlices = kWarps / Cf::kWarpsPerSlice;
      for (int e = tid; e < kSlices * 2 * 4 * kT; e += NT) {
        const int c = e % kT, q = (e / kT) % 4, which = (e / (4 * kT)) % 2, sl = e / (8 * kT);
        const int t = t0 + c, dtile = blockIdx.x * kSlices + sl;
        if (t < L && dtile < n_dtiles && q * 4 < N) {
          float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
          for (int w2 = 0; w2 < Cf::kWarpsPerSlice; ++w2) {
            const float* pw = reinterpret_cast<const float*>(
                base + Cf::kSharedBytes + (sl * Cf::kWarpsPerSlice + w2) * Cf::kWarpBytesAligned + Cf::kPartOffset);
            const float4 pv = *reinterpret_cast<const float4*>(pw + which * kT * NP + part_index(c, q));
            acc[0] += pv.x; acc[1] += pv.y; acc[2] += pv.z; acc[3] += pv.w;
          }
          float* dst = (which ? p.dC_part : p.dB_part) + ((size_t(b) * n_dtiles + dtile) * N + q * 4) * L + t;
#pragma unroll
          for (int k = 0; k < 4; ++k)
            if (q * 4 + k < N) dst[size_t(k) * L] = acc[k];
        }
      }
    }
    // du, ddelta, dz rows → global (warp, coalesced 16-byte stores)
#pragma unroll
    for (int c = lane; c < R * CPR; c += 32) {
      const int r = c / CPR, col = c % CPR, dd = dw + r, t = t0 + col * VEC;
      if (dd < Dm && t < L) {
        float a[VEC], bq[VEC];
        load_k<VEC>(a, s_dy + r * FS + col * VEC);
        load_k<VEC>(bq, s_dt + r * FS + col * VEC);
        if constexpr (VEC == 8) {
          fwd::sts8<T>(du_g + size_t(dd) * L + t, a);
          fwd::sts8<T>(ddelta_g + size_t(dd) * L + t, bq);
        } else {
          *reinterpret_cast<float4*>(du_g + size_t(dd) * L + t) = make_float4(a[0], a[1], a[2], a[3]);
          *reinterpret_cast<float4*>(ddelta_g + size_t(dd) * L + t) = make_float4(bq[0], bq[1], bq[2], bq[3]);
        }
        if (has_z)
          *reinterpret_cast<uint4*>(dz_g + size_t(dd) * L + t) =
              *reinterpret_cast<const uint4*>(st + (2 * R + r) * RS + col * VEC);
      }
    }
    __syncthreads();  // stage / partial buffers are reused by the next chunk's prefetch and phases
  }

  dD_acc = sum_group<4>(dD_acc);
  dbias_acc = sum_group<4>(dbias_acc);
  if (dvalid) {
#pragma unroll
    for (int j = 0; j < K; ++j) {
      const int n = g * K + j;
      if (n < N) {
        const size_t o = (size_t(b) * Dm + d) * N + n;
        p.dA_part[o] = dA[j];
        if (p.dinitial) p.dinitial[o] = lam[j] * anext[j];
      }
    }
    if (g == 0) {
      p.dD_part[size_t(b) * Dm + d] = dD_acc;
      p.dbias_part[size_t(b) * Dm + d] = dbias_acc;
    }
  }
}

constexpr int kFwdPoly = 0;  // exp2s per step (of K) evaluated on the FMA pipe instead of MUFU

template <typename T, int K, int G, int kPoly>
cudaError_t launch_fwd_variant(const SelectiveScanParams& p, cudaStream_t stream) {
  using Cf = fwd::Cfg<T, K, G>;
  const bool aligned = p.seqlen % Cf::VEC == 0 &&
                       ((reinterpret_cast<uintptr_t>(p.u) | reinterpret_cast<uintptr_t>(p.delta) |
                         reinterpret_cast<uintptr_t>(p.z) | reinterpret_cast<uintptr_t>(p.B) |
                         reinterpret_cast<uintptr_t>(p.C) | reinterpret_cast<uintptr_t>(p.out)) & 15) == 0;
  auto kernel = aligned ? selective_scan_fwd_kernel<T, K, G, kPoly, true> : selective_scan_fwd_kernel<T, K, G, kPoly, false>;
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(Cf::kSmem)));
  const int per_block = Cf::kWarps * Cf::R;
  const dim3 grid((p.dim + per_block - 1) / per_block, p.batch);
  kernel<<<grid, Cf::kWarps * 32, Cf::kSmem, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_fwd(const SelectiveScanParams& p, cudaStream_t stream) {
  if (p.dstate <= 8) return launch_fwd_variant<T, 4, 2, kFwdPoly>(p, stream);
  if (p.dstate <= 16) return launch_fwd_variant<T, 8, 2, kFwdPoly>(p, stream);
  return launch_fwd_variant<T, 16, 2, kFwdPoly>(p, stream);
}

template <typename T, int K>
cudaError_t launch_bwd(const SelectiveScanBwdParams& p, cudaStream_t stream) {
  constexpr int NP = 4 * K, kTS = 64 / K, kNS = kT / kTS;
  const size_t smem =
      sizeof(float) * (kNS * kThreads * K + 2 * kT * NP + 2 * 4 * kTS * NP + 5 * kDT * kLD);
  auto kernel = selective_scan_bwd_kernel<T, K>;
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const dim3 grid(selective_scan_n_dtiles(p.dim), p.batch);
  kernel<<<grid, kThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

constexpr int kBwdKeep = 1;  // fast backward: keep phase 1's decays for phase 2 (0: recompute them)

template <typename T, int kKeep = kBwdKeep>
cudaError_t launch_bwd_fast(const SelectiveScanBwdParams& p, cudaStream_t stream) {
  using Cf = bwdf::Cfg<T>;
  auto kernel = selective_scan_bwd_fast_kernel<T, kKeep>;
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(Cf::kSmem)));
  const int per_block = Cf::kWarps * bwdf::R;
  const dim3 grid((p.dim + per_block - 1) / per_block, p.batch);
  kernel<<<grid, Cf::kWarps * 32, Cf::kSmem, stream>>>(p);
  return cudaGetLastError();
}

template <class P, class F32, class BF16, class F16>
cudaError_t dispatch(const P& p, F32 f32, BF16 bf16, F16 f16) {
  if (p.dstate < 1 || p.dstate > kSelectiveScanMaxState) return cudaErrorInvalidValue;
  switch (p.dtype) {
    case DType::kFloat32: return f32(p.dstate <= 16);
    case DType::kBFloat16: return bf16(p.dstate <= 16);
    case DType::kFloat16: return f16(p.dstate <= 16);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t selective_scan_fwd(const SelectiveScanParams& p, cudaStream_t stream) {
  if (p.batch == 0 || p.dim == 0 || p.seqlen == 0) return cudaSuccess;
  if (p.dstate < 1 || p.dstate > kSelectiveScanMaxState) return cudaErrorInvalidValue;
  switch (p.dtype) {
    case DType::kFloat32: return launch_fwd<float>(p, stream);
    case DType::kBFloat16: return launch_fwd<__nv_bfloat16>(p, stream);
    case DType::kFloat16: return launch_fwd<__half>(p, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t selective_scan_bwd(const SelectiveScanBwdParams& p, cudaStream_t stream) {
  if (p.batch == 0 || p.dim == 0 || p.seqlen == 0) return cudaSuccess;
  if (p.dstate <= 16) {
    const int vec = p.dtype == DType::kFloat32 ? 4 : 8;
    const uintptr_t ptrs = reinterpret_cast<uintptr_t>(p.u) | reinterpret_cast<uintptr_t>(p.delta) |
                           reinterpret_cast<uintptr_t>(p.z) | reinterpret_cast<uintptr_t>(p.dout) |
                           reinterpret_cast<uintptr_t>(p.B) | reinterpret_cast<uintptr_t>(p.C) |
                           reinterpret_cast<uintptr_t>(p.du) | reinterpret_cast<uintptr_t>(p.ddelta) |
                           reinterpret_cast<uintptr_t>(p.dz) | reinterpret_cast<uintptr_t>(p.checkpoints);
    if (p.seqlen % vec == 0 && (ptrs & 15) == 0 && p.dstate >= 1) {
      switch (p.dtype) {
        case DType::kFloat32: return launch_bwd_fast<float>(p, stream);
        case DType::kBFloat16: return launch_bwd_fast<__nv_bfloat16>(p, stream);
        case DType::kFloat16: return launch_bwd_fast<__half>(p, stream);
      }
    }
  }
  return dispatch(
      p, [&](bool k4) { return k4 ? launch_bwd<float, 4>(p, stream) : launch_bwd<float, 8>(p, stream); },
      [&](bool k4) {
        return k4 ? launch_bwd<__nv_bfloat16, 4>(p, stream) : launch_bwd<__nv_bfloat16, 8>(p, stream);
      },
      [&](bool k4) { return k4 ? launch_bwd<__half, 4>(p, stream) : launch_bwd<__half, 8>(p, stream); });
}

}  // namespace dysra::kernels
