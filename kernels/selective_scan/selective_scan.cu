// kernels/selective_scan/selective_scan.cu — Mamba-1 selective scan, forward and backward (sm_90).
//
// Design. One block = (batch b, 32 channels), 128 threads. A warp holds 8 channels × 4 "state groups": lane
// bits 0-1 pick the group (states n = group*K .. +K, K = 4 for N <= 16, 8 for N <= 32), bits 2-4 the channel.
// Each thread keeps its K states in registers and walks time sequentially (the recurrence is a chain of FMAs;
// K independent chains give the ILP). A 64-step tile of u/delta/z and of B/C is staged in shared memory with
// coalesced loads, so B/C are read once per 32 channels (not once per channel as in mamba-ssm's kNRows = 1).
// y_t = C_t·x_t is summed over the 4 groups with two shuffles.
//
// Backward: by recomputation. The forward saves the state before every 64-step chunk (when grads are needed).
// Chunks are walked in reverse; inside a chunk the state at each sub-tile start is recomputed (phase 0), then
// per sub-tile the states are recomputed into registers (phase 1) and the adjoint λ walked backwards (phase 2).
// dB/dC need a sum over channels: within a warp by a shuffle reduce-scatter, across the 4 warps in shared memory
// in a fixed order, across channel tiles by the caller (a fixed-order sum over a [B, n_dtiles, N, L] partial).
// dA/dD/d(delta_bias) are per-batch partials summed by the caller. No atomics: results are deterministic.
//
// Floor (B=8, L=4096, D=2048, N=16, bf16, with z; kernels.md §5): forward moves ~0.68 GB (+0.13 GB of fp32
// checkpoints when training) → 0.2 ms at 3.35 TB/s; it does B·D·L·N = 1.07e9 exp2 → 0.26 ms at 16 MUFU ops/clk/SM.
// Backward reads u, delta, z, dout, B, C, checkpoints and writes du, ddelta, dz + fp32 dB/dC partials
// (~1.3 GB → 0.4 ms) and does 3 exp2 per state element (recomputed twice) → ~0.8 ms MUFU floor.
#include "common/device_utils.cuh"
#include "selective_scan/selective_scan.h"

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
template <typename T, int K>
__global__ void __launch_bounds__(kThreads) selective_scan_fwd_kernel(SelectiveScanParams p) {
  constexpr int NP = 4 * K;
  extern __shared__ float4 smem_f4[];
  float* smem = reinterpret_cast<float*>(smem_f4);
  float* s_B = smem;               // [kT][NP]
  float* s_C = s_B + kT * NP;      // [kT][NP]
  float* s_dt = s_C + kT * NP;     // [kDT][kLD]
  float* s_du = s_dt + kDT * kLD;  // delta*u
  float* s_u = s_du + kDT * kLD;
  float* s_z = s_u + kDT * kLD;
  float* s_y = s_z + kDT * kLD;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int ng = lane & 3, dl = warp * 8 + (lane >> 2);
  const int b = blockIdx.y, d0 = blockIdx.x * kDT, d = d0 + dl;
  const int Dm = p.dim, L = p.seqlen, N = p.dstate;
  const bool dvalid = d < Dm;
  const int n_chunks = selective_scan_n_chunks(L);

  const T* u = static_cast<const T*>(p.u) + size_t(b) * Dm * L;
  const T* dl_ = static_cast<const T*>(p.delta) + size_t(b) * Dm * L;
  const T* z = p.z ? static_cast<const T*>(p.z) + size_t(b) * Dm * L : nullptr;
  const T* Bm = static_cast<const T*>(p.B) + size_t(b) * N * L;
  const T* Cm = static_cast<const T*>(p.C) + size_t(b) * N * L;
  T* out = static_cast<T*>(p.out) + size_t(b) * Dm * L;

  float A2[K], x[K];
#pragma unroll
  for (int j = 0; j < K; ++j) {
    const int n = ng * K + j;
    const bool v = dvalid && n < N;
    A2[j] = v ? p.A[size_t(d) * N + n] * kLog2e : 0.f;
    x[j] = (v && p.initial_state) ? p.initial_state[(size_t(b) * Dm + d) * N + n] : 0.f;
  }

  for (int t0 = 0, chunk = 0; t0 < L; t0 += kT, ++chunk) {
    if (p.checkpoints && dvalid) {
#pragma unroll
      for (int j = 0; j < K; ++j) {
        const int n = ng * K + j;
        if (n < N) p.checkpoints[((size_t(b) * Dm + d) * n_chunks + chunk) * N + n] = x[j];
      }
    }
    // tile load (unrolled by 4 so that several global loads are in flight per thread)
#pragma unroll 4
    for (int e = tid; e < kDT * kT; e += kThreads) {
      const int r = e / kT, c = e % kT, dd = d0 + r, t = t0 + c;
      const bool v = dd < Dm && t < L;
      const size_t off = size_t(dd) * L + t;
      const float uv = v ? to_float(u[off]) : 0.f;
      const float dr = v ? to_float(dl_[off]) : 0.f;
      const float zv = (v && z) ? to_float(z[off]) : 0.f;
      float dt = 0.f;
      if (v) {
        dt = dr + (p.delta_bias ? p.delta_bias[dd] : 0.f);
        if (p.delta_softplus) dt = softplus(dt);
      }
      s_dt[r * kLD + c] = dt;
      s_du[r * kLD + c] = dt * uv;
      s_u[r * kLD + c] = uv;
      s_z[r * kLD + c] = zv;
    }
#pragma unroll 4
    for (int e = tid; e < NP * kT; e += kThreads) {
      const int n = e / kT, c = e % kT, t = t0 + c;
      const bool v = n < N && t < L;
      s_B[c * NP + n] = v ? to_float(Bm[size_t(n) * L + t]) : 0.f;
      s_C[c * NP + n] = v ? to_float(Cm[size_t(n) * L + t]) : 0.f;
    }
    __syncthreads();

    // Steps past L were loaded as delta = 0, B = C = 0: x is unchanged there, so every tile runs all kT steps.
    // Four steps per iteration: their loads/exp2 are independent of x, only the FMA chain is serial.
    for (int c0 = 0; c0 < kT; c0 += 4) {
      float y[4];
#pragma unroll
      for (int s4 = 0; s4 < 4; ++s4) {
        const int c = c0 + s4;
        const float dt = s_dt[dl * kLD + c], du = s_du[dl * kLD + c];
        float Bv[K], Cv[K];
        load_k<K>(Bv, s_B + c * NP + ng * K);
        load_k<K>(Cv, s_C + c * NP + ng * K);
        y[s4] = 0.f;
#pragma unroll
        for (int j = 0; j < K; ++j) {
          x[j] = fmaf(fast_exp2(dt * A2[j]), x[j], du * Bv[j]);
          y[s4] = fmaf(x[j], Cv[j], y[s4]);
        }
      }
#pragma unroll
      for (int s4 = 0; s4 < 4; ++s4) {
        y[s4] += __shfl_xor_sync(0xffffffffu, y[s4], 1);
        y[s4] += __shfl_xor_sync(0xffffffffu, y[s4], 2);
      }
      // lane ng writes step c0 + ng (all four lanes hold all four sums)
      const float mine = ng == 0 ? y[0] : ng == 1 ? y[1] : ng == 2 ? y[2] : y[3];
      s_y[dl * kLD + c0 + ng] = mine;
    }
    __syncthreads();

    for (int e = tid; e < kDT * kT; e += kThreads) {
      const int r = e / kT, c = e % kT, dd = d0 + r, t = t0 + c;
      if (dd < Dm && t < L) {
        float y = s_y[r * kLD + c] + (p.D ? p.D[dd] : 0.f) * s_u[r * kLD + c];
        if (z) {
          const float zv = s_z[r * kLD + c];
          y *= zv * sigmoid(zv);
        }
        out[size_t(dd) * L + t] = from_float<T>(y);
      }
    }
    __syncthreads();
  }
  if (dvalid) {
#pragma unroll
    for (int j = 0; j < K; ++j) {
      const int n = ng * K + j;
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

template <typename T, int K>
cudaError_t launch_fwd(const SelectiveScanParams& p, cudaStream_t stream) {
  constexpr int NP = 4 * K;
  const size_t smem = sizeof(float) * (2 * kT * NP + 5 * kDT * kLD);
  auto kernel = selective_scan_fwd_kernel<T, K>;
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const dim3 grid(selective_scan_n_dtiles(p.dim), p.batch);
  kernel<<<grid, kThreads, smem, stream>>>(p);
  return cudaGetLastError();
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
  return dispatch(
      p, [&](bool k4) { return k4 ? launch_fwd<float, 4>(p, stream) : launch_fwd<float, 8>(p, stream); },
      [&](bool k4) {
        return k4 ? launch_fwd<__nv_bfloat16, 4>(p, stream) : launch_fwd<__nv_bfloat16, 8>(p, stream);
      },
      [&](bool k4) { return k4 ? launch_fwd<__half, 4>(p, stream) : launch_fwd<__half, 8>(p, stream); });
}

cudaError_t selective_scan_bwd(const SelectiveScanBwdParams& p, cudaStream_t stream) {
  if (p.batch == 0 || p.dim == 0 || p.seqlen == 0) return cudaSuccess;
  return dispatch(
      p, [&](bool k4) { return k4 ? launch_bwd<float, 4>(p, stream) : launch_bwd<float, 8>(p, stream); },
      [&](bool k4) {
        return k4 ? launch_bwd<__nv_bfloat16, 4>(p, stream) : launch_bwd<__nv_bfloat16, 8>(p, stream);
      },
      [&](bool k4) { return k4 ? launch_bwd<__half, 4>(p, stream) : launch_bwd<__half, 8>(p, stream); });
}

}  // namespace dysra::kernels
