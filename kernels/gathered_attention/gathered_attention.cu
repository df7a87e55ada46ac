// kernels/gathered_attention/gathered_attention.cu — softmax attention over index-gathered keys (sm_90).
//
// Design. One block = 64 query rows of one (batch b, kv head g, query block j): the rows are the group's query
// heads × the block's queries, all sharing the list indices[b, g, j, :]. Keys are walked in tiles of 32 read
// straight from k/v through the list into shared memory (no gathered copy in global memory), with a
// flash-attention online softmax (base-2 exponent, fp32 running max/sum/accumulator). Two threads per row split
// the head dimension. Padding (negative) indices and causal positions are masked; fully masked rows give 0 and
// lse = -inf.
//
// Backward (flash-attention-2 style, recomputing P from lse): per key tile each block forms P and
// dS = P ⊙ (dO·v − rowsum(dO⊙O)); dq accumulates in registers (one owner per row: deterministic); the tile's
// dk = scale·dSᵀQ and dv = Pᵀ dO are reduced over the block's 64 rows in registers and then added to fp32
// dk/dv buffers with atomicAdd. Why atomics: a memory row may be listed by any number of (query block, kv head)
// lists, and a deterministic alternative needs either a per-list buffer of B·Hkv·n_blocks·K·D floats (17 GB at
// N = 65,536 with 1,024 blocks of 2,048 keys) or an inverted index whose per-row walk loses the tile reuse. The
// run-to-run spread is measured by tests/gpu/test_kernels.cpp (GatheredAttention.BackwardSpread).
//
// Floor. FLOPs = 4·B·H·Tq·K·D forward (QKᵀ and PV), 2.5× that backward. Shape (a) of issue 6 (Tq = 4,096,
// K = 2,048, H = 16, D = 128): 68.7 GFLOP → 0.11 ms at 600 TFLOP/s (dense bf16 SDPA on an H100); bytes: q, out
// 16 MB + the 2,048 gathered rows per head 8 MB → 7 µs. It is compute-bound. This version multiplies on fp32
// CUDA cores (≤ 67 TFLOP/s), not tensor cores: measured 9.4 ms forward at shape (a) on an H200 (7 TFLOP/s),
// ~50× slower than gather + SDPA. Correct, but the tensor-core (wgmma/mma.sync) rewrite is still to do.
#include "common/device_utils.cuh"
#include "gathered_attention/gathered_attention.h"

namespace dysra::kernels {
namespace {

constexpr int kThreads = 128;
constexpr int kRows = 64;
constexpr int kKeys = 32;
constexpr int kMaxD4 = kGatheredAttentionMaxDim / 4;

struct Layout {
  int D, D4, ldq, ldv;
  __host__ __device__ explicit Layout(int d)
      : D(d), D4((d + 3) / 4 * 4), ldq(d % 2 == 0 ? d + 2 : d + 1), ldv((d + 3) / 4 * 4 + 4) {}
};

struct RowInfo {
  bool valid;
  int t, h;
  int64_t pos;
};

__device__ __forceinline__ RowInfo row_info(const GatheredAttentionParams& p, int r) {
  const int group = p.heads / p.kv_heads;
  const int jblk = blockIdx.y / p.kv_heads, g = blockIdx.y % p.kv_heads;
  const int R = blockIdx.x * kRows + r;
  const int hi = R / p.block_q, qi = R % p.block_q;
  RowInfo ri;
  ri.t = jblk * p.block_q + qi;
  ri.h = g * group + hi;
  ri.valid = hi < group && ri.t < p.tq;
  ri.pos = int64_t(ri.t) + p.causal_offset;
  return ri;
}

/// Loads the list entries of key tile `kt` into s_idx (-1 = padding or past the end).
__device__ __forceinline__ void load_indices(const GatheredAttentionParams& p, int kt, int* s_idx) {
  const int jblk = blockIdx.y / p.kv_heads, g = blockIdx.y % p.kv_heads, b = blockIdx.z;
  const int tid = threadIdx.x;
  if (tid < kKeys) {
    const int e = kt * kKeys + tid;
    s_idx[tid] = e < p.topk ? p.indices[((size_t(b) * p.kv_heads + g) * p.n_blocks + jblk) * p.topk + e] : -1;
  }
}

/// Gathers rows of `src` (k or v) listed in s_idx: transposed into dstT[d][kKeys] and/or row-major into
/// dst[j][ldv]. Each thread moves 4 consecutive elements of one row (coalesced across the block's 4 warps).
__device__ __forceinline__ void gather_rows(const GatheredAttentionParams& p, const void* src, const int* s_idx,
                                            const Layout& lay, float* dstT, float* dst) {
  const int g = blockIdx.y % p.kv_heads, b = blockIdx.z;
  const size_t base = size_t(b) * p.kv_stride_b + size_t(g) * p.kv_stride_h;
  for (int e = threadIdx.x; e < kKeys * (lay.D4 / 4); e += kThreads) {
    const int j = e % kKeys, d0 = (e / kKeys) * 4;
    const int m = s_idx[j];
    float vals[4];
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int d = d0 + c;
      vals[c] = (m >= 0 && d < lay.D) ? load_as_float(src, p.dtype, base + size_t(m) * p.kv_stride_n + d) : 0.f;
      if (dstT) dstT[d * kKeys + j] = vals[c];
    }
    if (dst) *reinterpret_cast<float4*>(dst + j * lay.ldv + d0) = make_float4(vals[0], vals[1], vals[2], vals[3]);
  }
}

/// s[j] = Σ_d a[row][d] · bT[d][j] for the 32 keys; the two threads of a row split d and combine by shuffle.
__device__ __forceinline__ void row_dot_keys(const float* a_row, const float* bT, int D, int hf, float (&s)[kKeys]) {
#pragma unroll
  for (int j = 0; j < kKeys; ++j) s[j] = 0.f;
  for (int d = hf; d < D; d += 2) {
    const float a = a_row[d];
    const float4* b4 = reinterpret_cast<const float4*>(bT + d * kKeys);
#pragma unroll
    for (int j4 = 0; j4 < kKeys / 4; ++j4) {
      const float4 v = b4[j4];
      s[4 * j4] = fmaf(a, v.x, s[4 * j4]);
      s[4 * j4 + 1] = fmaf(a, v.y, s[4 * j4 + 1]);
      s[4 * j4 + 2] = fmaf(a, v.z, s[4 * j4 + 2]);
      s[4 * j4 + 3] = fmaf(a, v.w, s[4 * j4 + 3]);
    }
  }
#pragma unroll
  for (int j = 0; j < kKeys; ++j) s[j] += __shfl_xor_sync(0xffffffffu, s[j], 1);
}

/// acc[d] += Σ_j w[j] · src[j][d] over this thread's columns d = 4m + 2·hf + {0, 1}.
__device__ __forceinline__ void accumulate_rows(const float* src, int ldv, int D4, int hf, const float (&w)[kKeys],
                                                float (&acc)[kMaxD4][2]) {
#pragma unroll 4
  for (int j = 0; j < kKeys; ++j) {
    const float wj = w[j];
    if (wj == 0.f) continue;
    const float* row = src + j * ldv + 2 * hf;
#pragma unroll
    for (int m = 0; m < kMaxD4; ++m) {
      if (4 * m < D4) {
        const float2 v = *reinterpret_cast<const float2*>(row + 4 * m);
        acc[m][0] = fmaf(wj, v.x, acc[m][0]);
        acc[m][1] = fmaf(wj, v.y, acc[m][1]);
      }
    }
  }
}

__device__ __forceinline__ bool key_visible(int m, const RowInfo& ri, bool causal) {
  return m >= 0 && ri.valid && (!causal || int64_t(m) <= ri.pos);
}

template <typename F>
__device__ __forceinline__ void for_row_elements(const GatheredAttentionParams& p, int D, F f) {
  // every (row, d) of the block's 64 rows, d fastest
  for (int e = threadIdx.x; e < kRows * D; e += kThreads) f(e / D, e % D);
}

// ---------------------------------------------------------------------------------------------- forward
__global__ void __launch_bounds__(kThreads) gathered_attention_fwd_kernel(GatheredAttentionParams p) {
  extern __shared__ float4 smem_f4[];
  float* smem = reinterpret_cast<float*>(smem_f4);
  const Layout lay(p.dim);
  float* sQ = smem;                     // [kRows][ldq]
  float* sKT = sQ + kRows * lay.ldq;    // [D4][kKeys]
  float* sV = sKT + lay.D4 * kKeys;     // [kKeys][ldv]
  int* s_idx = reinterpret_cast<int*>(sV + kKeys * lay.ldv);

  const int tid = threadIdx.x, i = tid / 2, hf = tid & 1, b = blockIdx.z;
  const RowInfo me = row_info(p, i);

  for_row_elements(p, lay.D, [&](int r, int d) {
    const RowInfo ri = row_info(p, r);
    sQ[r * lay.ldq + d] =
        ri.valid ? load_as_float(p.q, p.dtype, size_t(b) * p.q_stride_b + size_t(ri.t) * p.q_stride_t +
                                                    size_t(ri.h) * p.q_stride_h + d)
                 : 0.f;
  });

  float acc[kMaxD4][2] = {};
  float m_run = -INFINITY, l_run = 0.f;
  const float qk_scale = p.scale * kLog2e;
  const int n_tiles = (p.topk + kKeys - 1) / kKeys;
  for (int kt = 0; kt < n_tiles; ++kt) {
    load_indices(p, kt, s_idx);
    __syncthreads();
    gather_rows(p, p.k, s_idx, lay, sKT, nullptr);
    gather_rows(p, p.v, s_idx, lay, nullptr, sV);
    __syncthreads();

    float s[kKeys];
    row_dot_keys(sQ + i * lay.ldq, sKT, lay.D, hf, s);
    float mt = -INFINITY;
#pragma unroll
    for (int j = 0; j < kKeys; ++j) {
      s[j] = key_visible(s_idx[j], me, p.causal) ? s[j] * qk_scale : -INFINITY;
      mt = fmaxf(mt, s[j]);
    }
    const float m_new = fmaxf(m_run, mt);
    if (m_new != -INFINITY) {
      const float alpha = fast_exp2(m_run - m_new);
      float lsum = 0.f;
#pragma unroll
      for (int j = 0; j < kKeys; ++j) {
        s[j] = fast_exp2(s[j] - m_new);
        lsum += s[j];
      }
      l_run = l_run * alpha + lsum;
#pragma unroll
      for (int m = 0; m < kMaxD4; ++m) {
        acc[m][0] *= alpha;
        acc[m][1] *= alpha;
      }
      accumulate_rows(sV, lay.ldv, lay.D4, hf, s, acc);
      m_run = m_new;
    }
    __syncthreads();
  }

  if (me.valid) {
    const float inv = l_run > 0.f ? 1.f / l_run : 0.f;
    const size_t obase = ((size_t(b) * p.tq + me.t) * p.heads + me.h) * p.dim;
#pragma unroll
    for (int m = 0; m < kMaxD4; ++m) {
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int d = 4 * m + 2 * hf + c;
        if (d < p.dim) store_from_float(p.out, p.dtype, obase + d, acc[m][c] * inv);
      }
    }
    if (hf == 0)
      p.lse[(size_t(b) * p.heads + me.h) * p.tq + me.t] = l_run > 0.f ? (m_run + log2f(l_run)) * kLn2 : -INFINITY;
  }
}

// --------------------------------------------------------------------------------------------- backward
__global__ void __launch_bounds__(kThreads) gathered_attention_bwd_kernel(GatheredAttentionBwdParams p) {
  extern __shared__ float4 smem_f4[];
  float* smem = reinterpret_cast<float*>(smem_f4);
  const Layout lay(p.dim);
  constexpr int kLDP = kKeys + 1;
  float* sQ = smem;                      // [kRows][ldq]
  float* sdO = sQ + kRows * lay.ldq;     // [kRows][ldq]
  float* sKT = sdO + kRows * lay.ldq;    // [D4][kKeys]
  float* sVT = sKT + lay.D4 * kKeys;     // [D4][kKeys]
  float* sK = sVT + lay.D4 * kKeys;      // [kKeys][ldv]
  float* sP = sK + kKeys * lay.ldv;      // [kRows][kLDP]
  float* sdS = sP + kRows * kLDP;        // [kRows][kLDP]
  int* s_idx = reinterpret_cast<int*>(sdS + kRows * kLDP);

  const int tid = threadIdx.x, i = tid / 2, hf = tid & 1, b = blockIdx.z;
  const int g = blockIdx.y % p.kv_heads;
  const RowInfo me = row_info(p, i);

  for_row_elements(p, lay.D, [&](int r, int d) {
    const RowInfo ri = row_info(p, r);
    float qv = 0.f, gv = 0.f;
    if (ri.valid) {
      qv = load_as_float(p.q, p.dtype, size_t(b) * p.q_stride_b + size_t(ri.t) * p.q_stride_t +
                                           size_t(ri.h) * p.q_stride_h + d);
      gv = load_as_float(p.dout, p.dtype, ((size_t(b) * p.tq + ri.t) * p.heads + ri.h) * p.dim + d);
    }
    sQ[r * lay.ldq + d] = qv;
    sdO[r * lay.ldq + d] = gv;
  });

  float lse2 = -INFINITY, dsum = 0.f;
  if (me.valid) {
    const size_t o = (size_t(b) * p.heads + me.h) * p.tq + me.t;
    lse2 = p.lse[o] * kLog2e;
    dsum = p.dsum[o];
  }
  const bool row_live = lse2 != -INFINITY;
  const float qk_scale = p.scale * kLog2e;

  float dq[kMaxD4][2] = {};
  const int n_tiles = (p.topk + kKeys - 1) / kKeys;
  const int kj = tid / 4, dsub = tid % 4;  // dk/dv tile mapping: key kj, columns d = 4m + dsub
  for (int kt = 0; kt < n_tiles; ++kt) {
    load_indices(p, kt, s_idx);
    __syncthreads();
    gather_rows(p, p.k, s_idx, lay, sKT, sK);
    gather_rows(p, p.v, s_idx, lay, sVT, nullptr);
    __syncthreads();

    float s[kKeys], dp[kKeys];
    row_dot_keys(sQ + i * lay.ldq, sKT, lay.D, hf, s);
    row_dot_keys(sdO + i * lay.ldq, sVT, lay.D, hf, dp);
#pragma unroll
    for (int j = 0; j < kKeys; ++j) {
      const float pj = (row_live && key_visible(s_idx[j], me, p.causal)) ? fast_exp2(s[j] * qk_scale - lse2) : 0.f;
      s[j] = pj;
      dp[j] = pj * (dp[j] - dsum);  // dS
    }
#pragma unroll
    for (int j = 0; j < kKeys; ++j) {
      if ((j >> 4) == hf) {
        sP[i * kLDP + j] = s[j];
        sdS[i * kLDP + j] = dp[j];
      }
    }
    accumulate_rows(sK, lay.ldv, lay.D4, hf, dp, dq);
    __syncthreads();

    // dk, dv of this tile: sums over the block's 64 rows, then one atomic add per element
    const int m_row = s_idx[kj];
    if (m_row >= 0) {
      float dkv[kMaxD4][2] = {};
      for (int r = 0; r < kRows; ++r) {
        const float pr = sP[r * kLDP + kj], dsr = sdS[r * kLDP + kj];
        if (pr == 0.f && dsr == 0.f) continue;
        const float* qrow = sQ + r * lay.ldq;
        const float* grow = sdO + r * lay.ldq;
#pragma unroll
        for (int m = 0; m < kMaxD4; ++m) {
          const int d = 4 * m + dsub;
          if (d < lay.D) {
            dkv[m][0] = fmaf(dsr, qrow[d], dkv[m][0]);
            dkv[m][1] = fmaf(pr, grow[d], dkv[m][1]);
          }
        }
      }
      const size_t rbase = size_t(b) * p.n_mem * p.kv_heads + size_t(m_row) * p.kv_heads + g;
#pragma unroll
      for (int m = 0; m < kMaxD4; ++m) {
        const int d = 4 * m + dsub;
        if (d < lay.D) {
          atomicAdd(p.dk_acc + rbase * p.dim + d, p.scale * dkv[m][0]);
          atomicAdd(p.dv_acc + rbase * p.dim + d, dkv[m][1]);
        }
      }
    }
    __syncthreads();
  }

  if (me.valid) {
    const size_t obase = ((size_t(b) * p.tq + me.t) * p.heads + me.h) * p.dim;
#pragma unroll
    for (int m = 0; m < kMaxD4; ++m) {
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int d = 4 * m + 2 * hf + c;
        if (d < p.dim) store_from_float(p.dq, p.dtype, obase + d, p.scale * dq[m][c]);
      }
    }
  }
}

dim3 grid_of(const GatheredAttentionParams& p) {
  const int group = p.heads / p.kv_heads;
  return dim3((group * p.block_q + kRows - 1) / kRows, p.n_blocks * p.kv_heads, p.batch);
}

bool valid(const GatheredAttentionParams& p) {
  return p.dim >= 1 && p.dim <= kGatheredAttentionMaxDim && p.kv_heads >= 1 && p.heads % p.kv_heads == 0 &&
         p.block_q >= 1 && p.n_blocks * p.kv_heads <= 65535 && p.batch <= 65535;
}

}  // namespace

cudaError_t gathered_attention_fwd(const GatheredAttentionParams& p, cudaStream_t stream) {
  if (!valid(p)) return cudaErrorInvalidValue;
  if (p.batch == 0 || p.tq == 0 || p.heads == 0) return cudaSuccess;
  const Layout lay(p.dim);
  const size_t smem = sizeof(float) * (kRows * lay.ldq + lay.D4 * kKeys + kKeys * lay.ldv) + sizeof(int) * kKeys;
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(gathered_attention_fwd_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      int(smem)));
  gathered_attention_fwd_kernel<<<grid_of(p), kThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t gathered_attention_bwd(const GatheredAttentionBwdParams& p, cudaStream_t stream) {
  if (!valid(p)) return cudaErrorInvalidValue;
  if (p.batch == 0 || p.tq == 0 || p.heads == 0) return cudaSuccess;
  const Layout lay(p.dim);
  const size_t smem = sizeof(float) * (2 * kRows * lay.ldq + 2 * lay.D4 * kKeys + kKeys * lay.ldv +
                                       2 * kRows * (kKeys + 1)) +
                      sizeof(int) * kKeys;
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(gathered_attention_bwd_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      int(smem)));
  gathered_attention_bwd_kernel<<<grid_of(p), kThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace dysra::kernels
