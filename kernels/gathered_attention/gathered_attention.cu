// kernels/gathered_attention/gathered_attention.cu — softmax attention over index-gathered keys (sm_90).
//
// Design (CUDA-core path). One block = 64 query rows of one (batch b, kv head g, query block j): the rows are the group's query
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
// run-to-run spread is measured by tests/gpu/test_kernels.cpp (GatheredAttentionCuda.BackwardSpread). On the
// tensor-core path, lists shared by >= 128 rows take a key-major dk/dv kernel instead (one block per 64 keys of a list
// walks all of the list's rows: one atomic add per key and d) and the row-major kernel computes dq only.
//
// Floor. FLOPs = 4·B·H·Tq·K·D forward (QKᵀ and PV), 2.5× that backward. Shape (a) of issue 6 (Tq = 4,096,
// K = 2,048, H = 16, D = 128): 68.7 GFLOP → 0.09 ms at the H200's measured 765 TFLOP/s bf16 matmul peak; bytes:
// q, out 16 MB + the 2,048 gathered rows per head 8 MB → 6 µs: compute-bound. Shape (b) (65,536 queries in
// blocks of 64, each with its own 2,048 keys): 1.1 TFLOP → 1.44 ms, but every block gathers 2,048 rows of k and
// v (1 MB): 17.6 GB in all, ≥ 4.2 ms at HBM bandwidth unless L2 serves it — hence the kv-head-major block order.
//
// Paths: bf16/fp16 with D 64 or 128 and 16-byte aligned rows run the tensor-core kernels below (forward and
// backward on mma.sync: (a) 0.34 ms forward, 203 TFLOP/s, (b) 6.5 ms, 168 TFLOP/s); D 128 forwards take the
// warp-specialised warpgroup (wgmma) kernel ((a) 0.14 ms, 476–491 TFLOP/s; (b) 2.66 ms, 414 TFLOP/s at 1,980 MHz =
// 60.5 % of dense causal SDPA's best run at that clock, 11× faster than gather + SDPA; H200, bench/RESULTS.md,
// session 13); everything else runs the fp32 CUDA-core kernels (7–8 TFLOP/s).
#include <climits>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <string>

#include "common/device_utils.cuh"
#include "common/mma.cuh"
#include "common/wgmma.cuh"
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

/// The list of query block jblk of kv head g in batch b: its entries read through listed_row.
__device__ __forceinline__ const int32_t* list_of(const GatheredAttentionParams& p, int b, int g, int jblk) {
  return p.indices + ((size_t(b) * p.kv_heads + g) * p.n_blocks + jblk) * p.topk * p.index_step;
}

/// Entry i of a list (int32 or int64 read by its low word: p.index_step words per entry) as a memory row: -1 (padding)
/// for negative entries and for entries >= N, so that no kernel reads outside the memory whether or not the caller
/// range-checked the list (GatheredAttentionOptions::check_indices).
__device__ __forceinline__ int listed_row(const GatheredAttentionParams& p, const int32_t* list, int i) {
  const int m = list[i * p.index_step];
  return m < p.n_mem ? m : -1;
}

/// Loads the list entries of key tile `kt` into s_idx (-1 = padding or past the end).
__device__ __forceinline__ void load_indices(const GatheredAttentionParams& p, int kt, int* s_idx) {
  const int jblk = blockIdx.y / p.kv_heads, g = blockIdx.y % p.kv_heads, b = blockIdx.z;
  const int tid = threadIdx.x;
  if (tid < kKeys) {
    const int e = kt * kKeys + tid;
    const int32_t* list = list_of(p, b, g, jblk);
    s_idx[tid] = e < p.topk ? listed_row(p, list, e) : -1;
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


// ------------------------------------------------------------------------------------------ tensor-core forward
// Flash-attention-2 layout on mma.sync m16n8k16: one block = 64 rows (4 warps × 16) of one (b, kv head g, query
// block j); key tiles of 64 rows are gathered through the list straight into shared memory with cp.async, the
// next tile in flight while the current one is multiplied. S = Q Kᵀ and O += P V on tensor cores (fp32
// accumulators), the online softmax in registers (base-2, running max/sum per row, 4 lanes per row). Blocks are
// ordered kv-head-major so that the blocks resident at one time read the same head's memory (32 MB for
// N = 65,536, D = 128, bf16 k and v), which the 50 MB L2 then serves.
template <int D>
struct GaMmaTile {
  static constexpr int kRows = 64, kKeys = 64, kLd = D + 8;
  static constexpr size_t smem_bytes() { return 2 * (size_t(kRows) * kLd + 4 * size_t(kKeys) * kLd) + 2 * 4 * kKeys; }
};

struct MmaRow {
  bool valid;
  int t, h;
  int64_t pos;
};

/// Row r (0 .. rows-1) of a block of `rows` rows: kv head g = blockIdx.y / n_blocks, list j = blockIdx.y % n_blocks
/// (head-major). by >= 0: row r of the first row block of list-block by instead (a block of the warp-specialised
/// forward that serves two lists).
__device__ __forceinline__ MmaRow mma_row(const GatheredAttentionParams& p, int r, int rows = 64, int by = -1) {
  const unsigned y = by < 0 ? blockIdx.y : unsigned(by), x = by < 0 ? blockIdx.x : 0u;
  const int group = p.heads / p.kv_heads, g = y / p.n_blocks, jblk = y % p.n_blocks;
  const int R = x * rows + r, hi = R / p.block_q, qi = R % p.block_q;
  MmaRow ri;
  ri.t = jblk * p.block_q + qi;
  ri.h = g * group + hi;
  ri.valid = hi < group && ri.t < p.tq;
  ri.pos = int64_t(ri.t) + p.causal_offset;
  return ri;
}

/// A lane's two accumulator rows r and r + 8 of the block: their query positions (memory rows are int32 indices: a
/// larger position sees every row) and whether they exist.
__device__ __forceinline__ void lane_rows(const GatheredAttentionParams& p, int r, int rows, int (&pos)[2],
                                          bool (&valid)[2], int by = -1) {
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const MmaRow ri = mma_row(p, r + 8 * hf, rows, by);
    pos[hf] = ri.pos < int64_t(INT_MAX) ? int(ri.pos) : INT_MAX;
    valid[hf] = ri.valid;
  }
}

/// What every tensor-core block reads: its batch, kv head and list, and k/v at that (b, g).
template <typename T>
struct MmaBlock {
  int b, g, n_tiles;
  const T *kg, *vg;
  const int32_t* list;  ///< entry i: listed_row(p, list, i)
  /// by: the list-block (kv head · n_blocks + list), blockIdx.y by default
  __device__ MmaBlock(const GatheredAttentionParams& p, int keys_per_tile, int by = -1)
      : b(blockIdx.z),
        g((by < 0 ? blockIdx.y : unsigned(by)) / p.n_blocks),
        n_tiles((p.topk + keys_per_tile - 1) / keys_per_tile) {
    const int jblk = (by < 0 ? blockIdx.y : unsigned(by)) % p.n_blocks;
    kg = static_cast<const T*>(p.k) + size_t(b) * p.kv_stride_b + size_t(g) * p.kv_stride_h;
    vg = static_cast<const T*>(p.v) + size_t(b) * p.kv_stride_b + size_t(g) * p.kv_stride_h;
    list = list_of(p, b, g, jblk);
  }
};

/// Where row `ri` of the block reads q (column c8): the row's (t, h) in q, or q's first element for a row past the
/// block's queries (its copy is zero-filled).
template <typename T>
__device__ __forceinline__ const T* q_row_src(const GatheredAttentionParams& p, int b, const MmaRow& ri, int c8) {
  return static_cast<const T*>(p.q) + size_t(b) * p.q_stride_b +
         (ri.valid ? size_t(ri.t) * p.q_stride_t + size_t(ri.h) * p.q_stride_h + c8 : 0);
}

/// cp.async of the block's `rows` query rows of q into sQ [rows][LD] and, when given, of dout ([B, Tq, H, D],
/// contiguous) into sdO; rows past the block's queries are zero-filled. Not committed.
template <typename T, int D, int LD>
__device__ __forceinline__ void load_q_rows(const GatheredAttentionParams& p, int b, int rows, T* sQ,
                                            const T* dout = nullptr, T* sdO = nullptr) {
  for (int e = threadIdx.x; e < rows * (D / 8); e += 128) {
    const int r = e / (D / 8), c8 = (e % (D / 8)) * 8;
    const MmaRow ri = mma_row(p, r, rows);
    mma::cp_async_16(sQ + r * LD + c8, q_row_src<T>(p, b, ri, c8), ri.valid);
    if (dout) {
      const T* src = dout + (ri.valid ? ((size_t(b) * p.tq + ri.t) * p.heads + ri.h) * D + c8 : 0);
      mma::cp_async_16(sdO + r * LD + c8, src, ri.valid);
    }
  }
}

/// cp.async of key tile `kt` (KT listed rows of k and v; padding → zeros) into sK/sV [KT][LD], its list entries
/// into s_idx (-1 = padding or past the end); commits the group.
template <typename T, int D, int KT, int LD>
__device__ __forceinline__ void gather_kv_tile(const GatheredAttentionParams& p, const MmaBlock<T>& blk, int kt, T* sK,
                                               T* sV, int* s_idx) {
  for (int e = threadIdx.x; e < KT * (D / 8); e += 128) {
    const int r = e / (D / 8), c8 = (e % (D / 8)) * 8, i = kt * KT + r;
    const int m = i < p.topk ? listed_row(p, blk.list, i) : -1;
    const bool ok = m >= 0;
    const size_t off = ok ? size_t(m) * p.kv_stride_n + c8 : 0;
    mma::cp_async_16(sK + r * LD + c8, blk.kg + off, ok);
    mma::cp_async_16(sV + r * LD + c8, blk.vg + off, ok);
    if (c8 == 0) s_idx[r] = m;
  }
  mma::cp_async_commit();
}

/// Writes 16 rows (row0 .. row0+15 of a block of `rows` rows) of a warp's C-fragment tile acc (× f[0] for row g8,
/// × f[1] for row g8 + 8) to the rows [b, t, h, :] of `dst` ([B, Tq, H, D], contiguous) that they map to, staged
/// through the same rows of `stage` ([rows][LD], rows only this warp reads) for 16-byte stores.
template <typename T, int D, int LD>
__device__ __forceinline__ void store_warp_rows(const GatheredAttentionParams& p, int b, void* dst, T* stage,
                                                const float (&acc)[D / 8][4], const float (&f)[2], int row0, int lane,
                                                int rows = 64, int by = -1) {
  const int g8 = lane >> 2, q4 = lane & 3;
#pragma unroll
  for (int nt = 0; nt < D / 8; ++nt) {
    const int c = nt * 8 + 2 * q4, r0 = row0 + g8;
    *reinterpret_cast<uint32_t*>(stage + r0 * LD + c) = mma::pack2<T>(acc[nt][0] * f[0], acc[nt][1] * f[0]);
    *reinterpret_cast<uint32_t*>(stage + (r0 + 8) * LD + c) = mma::pack2<T>(acc[nt][2] * f[1], acc[nt][3] * f[1]);
  }
  __syncwarp();
  for (int e = lane; e < 16 * (D / 8); e += 32) {
    const int r = row0 + e / (D / 8), c8 = (e % (D / 8)) * 8;
    const MmaRow ri = mma_row(p, r, rows, by);
    if (!ri.valid) continue;
    T* out = static_cast<T*>(dst) + ((size_t(b) * p.tq + ri.t) * p.heads + ri.h) * D + c8;
    *reinterpret_cast<uint4*>(out) = *reinterpret_cast<const uint4*>(stage + r * LD + c8);
  }
}

/// Shared memory of the mma.sync forwards: Q [R][LD] (reused for the output), K and V [2][KT][LD], indices [2][KT].
template <typename T>
struct FwdSmem {
  T *q, *k, *v;
  int* idx;
  __device__ FwdSmem(void* base, int R, int KT, int LD)
      : q(static_cast<T*>(base)), k(q + R * LD), v(k + 2 * KT * LD), idx(reinterpret_cast<int*>(v + 2 * KT * LD)) {}
};

/// End of the online softmax for a lane's two rows (row0 + g and row0 + g + 8 of a block of `rows`): the row sums
/// reduced over the row's four lanes, inv = 1 / sum (0 for a row that saw no key), and the row's lse in natural log
/// (-inf then).
__device__ __forceinline__ void finish_rows(const GatheredAttentionParams& p, int b, float (&l_run)[2],
                                            const float (&m_run)[2], const bool (&rvalid)[2], int row0, int lane,
                                            int rows, float (&inv)[2], int by = -1) {
  const int g8 = lane >> 2, q4 = lane & 3;
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    l_run[hf] += __shfl_xor_sync(0xffffffffu, l_run[hf], 1);
    l_run[hf] += __shfl_xor_sync(0xffffffffu, l_run[hf], 2);
    inv[hf] = l_run[hf] > 0.f ? 1.f / l_run[hf] : 0.f;
    if (q4 == 0 && rvalid[hf]) {
      const MmaRow ri = mma_row(p, row0 + g8 + 8 * hf, rows, by);
      p.lse[(size_t(b) * p.heads + ri.h) * p.tq + ri.t] =
          l_run[hf] > 0.f ? (m_run[hf] + __log2f(l_run[hf])) * kLn2 : -INFINITY;
    }
  }
}

/// One online-softmax step on a warp's 16 rows × 64 keys (a lane holds rows g and g + 8: index i >> 1 of its score
/// fragments) of base-2 scaled, masked scores whose per-lane row maxima are `mx`: reduces the maxima over the row's
/// four lanes, moves the running max and sum and turns sc into P = exp2(s − max) (SCALE: exp2(s·scale − max), for
/// scores not yet scaled whose maxima mx are); alpha: the factor that moves the output rows to the new max (rescale_rows).
/// LAZY: the running max moves only when the tile's max exceeds it by more than `slack` (base 2), and alpha is then
/// exactly 1: P stays <= 2^slack, the sum and the output rows share the stale max, so the result is the same while
/// the caller can skip rescaling rows whose max did not move (after the first tiles, nearly all of them).
template <int NS = 8, bool SCALE = false, bool LAZY = false>
__device__ __forceinline__ void online_softmax_p(float (&sc)[NS][4], float (&mx)[2], float (&m_run)[2],
                                                 float (&l_run)[2], float (&alpha)[2], float scale = 1.f,
                                                 float slack = 0.f) {
  float mref[2];
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    mx[hf] = fmaxf(mx[hf], __shfl_xor_sync(0xffffffffu, mx[hf], 1));
    mx[hf] = fmaxf(mx[hf], __shfl_xor_sync(0xffffffffu, mx[hf], 2));
    if (LAZY) {
      const bool move = mx[hf] > m_run[hf] + slack;  // (m_run = -inf: any finite max moves it)
      const float m_new = move ? mx[hf] : m_run[hf];
      mref[hf] = m_new == -INFINITY ? 0.f : m_new;
      alpha[hf] = move ? fast_exp2(m_run[hf] - mref[hf]) : 1.f;
      m_run[hf] = m_new;
      continue;
    }
    const float m_new = fmaxf(m_run[hf], mx[hf]);
    mref[hf] = m_new == -INFINITY ? 0.f : m_new;  // all masked so far: exp2(-inf - 0) = 0
    alpha[hf] = fast_exp2(m_run[hf] - mref[hf]);
    m_run[hf] = m_new;
  }
  float lsum[2] = {0.f, 0.f};
#pragma unroll
  for (int nt = 0; nt < NS; ++nt)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      sc[nt][i] = fast_exp2(SCALE ? fmaf(sc[nt][i], scale, -mref[i >> 1]) : sc[nt][i] - mref[i >> 1]);
      lsum[i >> 1] += sc[nt][i];
    }
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) l_run[hf] = l_run[hf] * alpha[hf] + lsum[hf];
}

/// Output rows g (fragments 0, 1) and g + 8 (2, 3) times alpha.
template <int NT>
__device__ __forceinline__ void rescale_rows(float (&o)[NT][4], const float (&alpha)[2]) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    o[nt][0] *= alpha[0];
    o[nt][1] *= alpha[0];
    o[nt][2] *= alpha[1];
    o[nt][3] *= alpha[1];
  }
}

/// online_softmax_p, then the NT output tiles rescaled.
template <int NT, int NS = 8>
__device__ __forceinline__ void online_softmax_step(float (&sc)[NS][4], float (&mx)[2], float (&m_run)[2],
                                                    float (&l_run)[2], float (&o)[NT][4]) {
  float alpha[2];
  online_softmax_p<NS>(sc, mx, m_run, l_run, alpha);
  rescale_rows<NT>(o, alpha);
}

template <typename T, int D>
__global__ void __launch_bounds__(128) gathered_attention_fwd_mma_kernel(GatheredAttentionParams p) {
  using Tile = GaMmaTile<D>;
  constexpr int R = Tile::kRows, KT = Tile::kKeys, LD = Tile::kLd, NT = D / 8;
  extern __shared__ uint4 smem_u4[];
  const FwdSmem<T> sm(smem_u4, R, KT, LD);
  T *sQ = sm.q, *sK = sm.k, *sV = sm.v;
  int* s_idx = sm.idx;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g8 = lane >> 2, q4 = lane & 3;
  const MmaBlock<T> blk(p, KT);
  const int b = blk.b, n_tiles = blk.n_tiles;

  load_q_rows<T, D, LD>(p, b, R, sQ);
  auto load_tile = [&](int kt, int buf) {
    gather_kv_tile<T, D, KT, LD>(p, blk, kt, sK + buf * KT * LD, sV + buf * KT * LD, s_idx + buf * KT);
  };
  load_tile(0, 0);

  // this thread's two rows: warp·16 + g8 and + 8
  int64_t pos[2];
  bool rvalid[2];
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const MmaRow ri = mma_row(p, warp * 16 + g8 + 8 * hf);
    pos[hf] = ri.pos;
    rvalid[hf] = ri.valid;
  }
  const float qk_scale = p.scale * kLog2e;
  float o[NT][4];
  mma::zero(o);
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};
  uint32_t qa[D / 16][4];

  for (int kt = 0; kt < n_tiles; ++kt) {
    const int buf = kt & 1;
    mma::cp_async_wait<0>();
    __syncthreads();  // tile kt (and Q) visible; every warp is done with tile kt - 1
    if (kt + 1 < n_tiles) load_tile(kt + 1, buf ^ 1);
    if (kt == 0) mma::load_a_rows<T, D / 16>(qa, sQ, LD, warp * 16, lane);
    const T* Kb = sK + buf * KT * LD;
    const T* Vb = sV + buf * KT * LD;
    const int* ib = s_idx + buf * KT;

    float sc[8][4];
    mma::zero(sc);
    mma::warp_mma_nk<T, D / 16, 4>(sc, qa, Kb, LD, lane);
    // mask (padding, causal), scale, running max
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const int2 mm = *reinterpret_cast<const int2*>(ib + nt * 8 + 2 * q4);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int m = (i & 1) ? mm.y : mm.x, hf = i >> 1;
        const bool vis = m >= 0 && (!p.causal || int64_t(m) <= pos[hf]);
        sc[nt][i] = vis ? sc[nt][i] * qk_scale : -INFINITY;
        mx[hf] = fmaxf(mx[hf], sc[nt][i]);
      }
    }
    online_softmax_step<NT>(sc, mx, m_run, l_run, o);
    // O += P V
    {
      uint32_t pa[KT / 16][4];
      mma::c_to_a<T, KT / 16>(pa, sc);
      mma::warp_mma_kn<T, KT / 16, NT / 2>(o, pa, Vb, LD, lane);
    }
  }

  mma::cp_async_wait<0>();  // (K = 0: the Q copy is still in flight; sQ is reused below)
  __syncthreads();
  // normalise; lse in natural log of the scaled logits (-inf for a row that saw no key)
  float inv[2];
  finish_rows(p, b, l_run, m_run, rvalid, warp * 16, lane, 64, inv);
  // this warp's 16 rows, staged in its own rows of sQ (only this warp read them)
  __syncwarp();
  store_warp_rows<T, D, LD>(p, b, p.out, sQ, o, inv, warp * 16, lane);
}

// Wide-list forward: lists shared by >= 128 rows (GQA groups, long query blocks, shape (a)) take blocks of 128
// rows, each warp two 16-row m-tiles that share every K/V fragment it loads (flash-attention-2's layout): half the
// shared-memory traffic per mma of the 64-row kernel and twice the independent accumulators per warp.
template <int D>
struct GaWideTile {
  static constexpr int kRows = 128, kKeys = 64, kLd = D + 8;
  static constexpr size_t smem_bytes() { return 2 * (size_t(kRows) * kLd + 4 * size_t(kKeys) * kLd) + 2 * 4 * kKeys; }
};

template <typename T, int D>
__global__ void __launch_bounds__(128) gathered_attention_fwd_wide_kernel(GatheredAttentionParams p) {
  using Tile = GaWideTile<D>;
  constexpr int R = Tile::kRows, KT = Tile::kKeys, LD = Tile::kLd, NT = D / 8, MT = 2;
  extern __shared__ uint4 smem_u4[];
  const FwdSmem<T> sm(smem_u4, R, KT, LD);
  T *sQ = sm.q, *sK = sm.k, *sV = sm.v;
  int* s_idx = sm.idx;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g8 = lane >> 2, q4 = lane & 3;
  const MmaBlock<T> blk(p, KT);
  const int b = blk.b, n_tiles = blk.n_tiles, row0 = warp * 32;

  load_q_rows<T, D, LD>(p, b, R, sQ);
  auto load_tile = [&](int kt, int buf) {
    gather_kv_tile<T, D, KT, LD>(p, blk, kt, sK + buf * KT * LD, sV + buf * KT * LD, s_idx + buf * KT);
  };
  load_tile(0, 0);

  // this thread's four rows: row0 + 16·mt + g8 (+ 8); index hr = 2·mt + hf
  int64_t pos[2 * MT];
  bool rvalid[2 * MT];
#pragma unroll
  for (int hr = 0; hr < 2 * MT; ++hr) {
    const MmaRow ri = mma_row(p, row0 + 16 * (hr >> 1) + g8 + 8 * (hr & 1), R);
    pos[hr] = ri.pos;
    rvalid[hr] = ri.valid;
  }
  const float qk_scale = p.scale * kLog2e;
  float o[MT][NT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) mma::zero(o[mt]);
  float m_run[2 * MT], l_run[2 * MT];
#pragma unroll
  for (int hr = 0; hr < 2 * MT; ++hr) {
    m_run[hr] = -INFINITY;
    l_run[hr] = 0.f;
  }

  for (int kt = 0; kt < n_tiles; ++kt) {
    const int buf = kt & 1;
    mma::cp_async_wait<0>();
    __syncthreads();  // tile kt (and Q) visible; every warp is done with tile kt - 1
    if (kt + 1 < n_tiles) load_tile(kt + 1, buf ^ 1);
    const T* Kb = sK + buf * KT * LD;
    const T* Vb = sV + buf * KT * LD;
    const int* ib = s_idx + buf * KT;

    float sc[MT][8][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) mma::zero(sc[mt]);
    mma::warp_mma_nk_mt<T, D / 16, 4, MT>(sc, sQ, LD, row0, Kb, LD, lane);
    float mx[2 * MT];
#pragma unroll
    for (int hr = 0; hr < 2 * MT; ++hr) mx[hr] = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const int2 mm = *reinterpret_cast<const int2*>(ib + nt * 8 + 2 * q4);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int m = (i & 1) ? mm.y : mm.x, hr = 2 * mt + (i >> 1);
          const bool vis = m >= 0 && (!p.causal || int64_t(m) <= pos[hr]);
          sc[mt][nt][i] = vis ? sc[mt][nt][i] * qk_scale : -INFINITY;
          mx[hr] = fmaxf(mx[hr], sc[mt][nt][i]);
        }
    }
    float alpha[2 * MT], mref[2 * MT];
#pragma unroll
    for (int hr = 0; hr < 2 * MT; ++hr) {
      mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 1));
      mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 2));
      const float m_new = fmaxf(m_run[hr], mx[hr]);
      mref[hr] = m_new == -INFINITY ? 0.f : m_new;
      alpha[hr] = fast_exp2(m_run[hr] - mref[hr]);
      m_run[hr] = m_new;
    }
    uint32_t pa[MT][KT / 16][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      float lsum[2] = {0.f, 0.f};
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          sc[mt][nt][i] = fast_exp2(sc[mt][nt][i] - mref[2 * mt + (i >> 1)]);
          lsum[i >> 1] += sc[mt][nt][i];
        }
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) l_run[2 * mt + hf] = l_run[2 * mt + hf] * alpha[2 * mt + hf] + lsum[hf];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        o[mt][nt][0] *= alpha[2 * mt];
        o[mt][nt][1] *= alpha[2 * mt];
        o[mt][nt][2] *= alpha[2 * mt + 1];
        o[mt][nt][3] *= alpha[2 * mt + 1];
      }
      mma::c_to_a<T, KT / 16>(pa[mt], sc[mt]);
    }
    mma::warp_mma_kn_mt<T, KT / 16, NT / 2, MT>(o, pa, Vb, LD, lane);
  }

  mma::cp_async_wait<0>();
  __syncthreads();
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    float inv[2];
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const int hr = 2 * mt + hf;
      l_run[hr] += __shfl_xor_sync(0xffffffffu, l_run[hr], 1);
      l_run[hr] += __shfl_xor_sync(0xffffffffu, l_run[hr], 2);
      inv[hf] = l_run[hr] > 0.f ? 1.f / l_run[hr] : 0.f;
      if (q4 == 0 && rvalid[hr]) {
        const MmaRow ri = mma_row(p, row0 + 16 * mt + g8 + 8 * hf, R);
        p.lse[(size_t(b) * p.heads + ri.h) * p.tq + ri.t] =
            l_run[hr] > 0.f ? (m_run[hr] + __log2f(l_run[hr])) * kLn2 : -INFINITY;
      }
    }
    __syncwarp();
    store_warp_rows<T, D, LD>(p, b, p.out, sQ, o[mt], inv, row0 + 16 * mt, lane, R);
  }
}

// Warpgroup forward (sm_90a wgmma), D = 128: WG warpgroups of 64 rows share each gathered key tile. Per tile of 64
// keys: S = Q Kᵀ (8 wgmma m64n64k16, Q and K from shared memory), the online softmax on the accumulators, then
// O += P V (4 wgmma m64n128k16, P from registers, V from shared memory as an MN-major operand). Q, K and V sit in
// the 128B-swizzled "SW128 rows" layout (common/wgmma.cuh), written by cp.async gathers: no copy in global memory.
// PIPE = false (default): each tile's S is waited on before its softmax; its P V runs on under the next barrier,
// gathers and S (V in three buffers).
// PIPE = true (flash-attention-3's intra-warpgroup overlap): S of tile j + 1 is issued before the softmax of tile j
// and runs under it; K keeps three buffers (tile j + 2 loads while j + 1 is read), V two.
template <int WG, bool PIPE>
struct GaWgTile {
  static constexpr int kRows = 64 * WG, kKeys = 64, kD = 128, kKBufs = PIPE ? 3 : 2, kVBufs = PIPE ? 2 : 3;
  static constexpr uint32_t kQBytes = uint32_t(kRows) * 256;     // two regions of kRows·128 bytes
  static constexpr uint32_t kTileBytes = uint32_t(kKeys) * 256;  // one K or V tile: two regions of 8 KB
  static constexpr size_t smem_bytes() {
    return 1024 + kQBytes + (kKBufs + kVBufs) * size_t(kTileBytes) + 2 * 4 * size_t(kKBufs) * kKeys;
  }
};

/// cp.async of 16-byte chunk c16 (0 .. 15) of a 128-element row into row r of an SW128-rows tile of `rows` rows.
template <typename T>
__device__ __forceinline__ void cp_row_chunk_sw128(uint8_t* tile, int rows, int r, int c16, const T* src, bool ok) {
  mma::cp_async_16(tile + (c16 >> 3) * uint32_t(rows) * 128 + wgmma::sw128_offset(r, c16 & 7), src, ok);
}

/// sc (this warpgroup's 64 rows × 64 keys) = Q Kᵀ, issued and committed (not waited): k-step s covers d 16s ..
/// 16s+15, 32 bytes at (s % 4)·32 of region s / 4 of the Q rows (Q_ROWS per region) and of the K tile. dq / dk: the
/// descriptors of the Q rows and the K tile (make_desc_sw128(·, 16, 1024)); a k-step adds its byte offset / 16 to
/// their address field (shared-memory addresses < 256 KB: no carry out of the 14-bit field).
template <typename T, int Q_ROWS, int N = 64>
__device__ __forceinline__ void issue_qk(float (&sc)[N / 2], uint64_t dq, uint64_t dk) {
  static_assert(N == 64 || N == 128, "key tiles of 64 or 128");
  wgmma::fence_operand(sc);
  wgmma::fence();
#pragma unroll
  for (int s = 0; s < 8; ++s) {
    const uint32_t off = (s % 4) * 32;
    const uint64_t a = dq + (((s / 4) * uint32_t(Q_ROWS) * 128 + off) >> 4),
                   b = dk + (((s / 4) * uint32_t(N) * 128 + off) >> 4);
    if constexpr (N == 64) {
      wgmma::mma_m64n64k16_ss<T>(sc, a, b, s > 0 ? 1 : 0);
    } else {
      wgmma::mma_m64n128k16_ss<T>(sc, a, b, s > 0 ? 1 : 0);
    }
  }
  wgmma::commit();
}

/// issue_qk with this warpgroup's Q rows in registers (qa: the A fragments of k-steps 0 .. 7, load_q_frags): only the
/// K tile (64 keys) is read from shared memory.
template <typename T>
__device__ __forceinline__ void issue_qk_rs(float (&sc)[32], const uint32_t (&qa)[8][4], uint64_t dk) {
  wgmma::fence_operand(sc);
  wgmma::fence();
#pragma unroll
  for (int s = 0; s < 8; ++s)
    wgmma::mma_m64n64k16_rs<T>(sc, qa[s], dk + (((s / 4) * 64u * 128 + (s % 4) * 32) >> 4), s > 0 ? 1 : 0);
  wgmma::commit();
}

/// A warp's 16 query rows row0 .. row0 + 15 of the block (of `rows`) as the A fragments of the 8 k-steps of S = Q Kᵀ
/// (D = 128), read straight from q (rows past the block's queries: zeros).
template <typename T>
__device__ __forceinline__ void load_q_frags(const GatheredAttentionParams& p, int b, int row0, int rows, int lane,
                                             uint32_t (&qa)[8][4]) {
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const MmaRow ri = mma_row(p, row0 + (lane >> 2) + 8 * hf, rows);
    const uint32_t* src = reinterpret_cast<const uint32_t*>(q_row_src<T>(p, b, ri, 2 * (lane & 3)));
#pragma unroll
    for (int s = 0; s < 8; ++s) {
      qa[s][hf] = ri.valid ? __ldg(src + 8 * s) : 0u;          // d 16s + 2q, + 1
      qa[s][2 + hf] = ri.valid ? __ldg(src + 8 * s + 4) : 0u;  // d 16s + 8 + 2q, + 1
    }
  }
}

/// o (64 rows × 128) += P V, issued and committed: k-step s covers keys 16s .. 16s+15 (2048 bytes at 2048·s of each
/// region of the V tile); the leading byte offset steps to the second region (d 64 .. 127). dv: the V tile's
/// descriptor (make_desc_sw128(·, 64·128, 1024)).
template <typename T, int KEYS = 64>
__device__ __forceinline__ void issue_pv(float (&o)[64], const uint32_t (&pa)[KEYS / 16][4], uint64_t dv) {
  wgmma::fence_operand(o);
  wgmma::fence();
#pragma unroll
  for (int s = 0; s < KEYS / 16; ++s) wgmma::mma_m64n128k16_rs_tb<T>(o, pa[s], dv + ((s * 2048) >> 4), 1);
  wgmma::commit();
}

/// Online softmax of one key tile on the S accumulators, masking padding and causal positions through the tile's
/// list entries `ib`: moves the running max / sum, turns sc into P (fp32) and gives the output rows' factor alpha.
/// `unmasked`: the caller knows that nothing in the tile is masked (and qk_scale > 0).
template <int NS = 8, bool LAZY = false>
__device__ __forceinline__ void softmax_scores(float (&sc)[NS][4], const int* ib, const float* bias, const int (&pos)[2],
                                               bool causal, float qk_scale, float (&m_run)[2], float (&l_run)[2],
                                               int q4, float (&alpha)[2], bool unmasked = false, float slack = 0.f) {
  float mx[2] = {-INFINITY, -INFINITY};
  if (unmasked) {  // no padding in the tile, not causal, qk_scale > 0: the max of the raw scores, scaled in the exp
#pragma unroll
    for (int nt = 0; nt < NS; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) mx[i >> 1] = fmaxf(mx[i >> 1], sc[nt][i]);
    mx[0] *= qk_scale;
    mx[1] *= qk_scale;
    online_softmax_p<NS, true, LAZY>(sc, mx, m_run, l_run, alpha, qk_scale, slack);
    return;
  }
  if (!causal) {  // one fma per score: the key's bias is 0, or -inf for padding
#pragma unroll
    for (int nt = 0; nt < NS; ++nt) {
      const float2 bb = *reinterpret_cast<const float2*>(bias + nt * 8 + 2 * q4);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        sc[nt][i] = fmaf(sc[nt][i], qk_scale, (i & 1) ? bb.y : bb.x);
        mx[i >> 1] = fmaxf(mx[i >> 1], sc[nt][i]);
      }
    }
  } else {
#pragma unroll
    for (int nt = 0; nt < NS; ++nt) {
      const int2 mm = *reinterpret_cast<const int2*>(ib + nt * 8 + 2 * q4);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int m = (i & 1) ? mm.y : mm.x, hf = i >> 1;
        const bool vis = m >= 0 && m <= pos[hf];
        sc[nt][i] = vis ? sc[nt][i] * qk_scale : -INFINITY;
        mx[hf] = fmaxf(mx[hf], sc[nt][i]);
      }
    }
  }
  online_softmax_p<NS, false, LAZY>(sc, mx, m_run, l_run, alpha, 1.f, slack);
}

/// softmax_scores, then o rescaled and P returned as A fragments.
template <typename T, int NS = 8>
__device__ __forceinline__ void softmax_tile(float (&sc)[NS][4], const int* ib, const float* bias, const int (&pos)[2],
                                             bool causal, float qk_scale, float (&m_run)[2], float (&l_run)[2],
                                             float (&o)[16][4], uint32_t (&pa)[NS / 2][4], int q4) {
  float alpha[2];
  softmax_scores<NS>(sc, ib, bias, pos, causal, qk_scale, m_run, l_run, q4, alpha);
  rescale_rows<16>(o, alpha);
  mma::c_to_a<T, NS / 2>(pa, sc);
}

template <typename T, int WG, bool PIPE>
__global__ void __launch_bounds__(128 * WG) gathered_attention_fwd_wgmma_kernel(GatheredAttentionParams p) {
  using Tile = GaWgTile<WG, PIPE>;
  constexpr int R = Tile::kRows, KT = Tile::kKeys, D = Tile::kD, NTHREADS = 128 * WG, NKB = Tile::kKBufs,
                NVB = Tile::kVBufs;
  extern __shared__ uint8_t smem_raw[];
  // 1024-byte aligned base (the swizzle pattern repeats every 1024 bytes; descriptors assume it starts there)
  uint8_t* smem = smem_raw + ((1024 - (mma::smem_addr(smem_raw) & 1023)) & 1023);
  uint8_t* sQ = smem;                                                 // SW128 rows, R rows
  uint8_t* sK = sQ + Tile::kQBytes;                                   // [NKB] SW128 rows, 64 rows each
  uint8_t* sV = sK + NKB * Tile::kTileBytes;                          // [2]
  int* s_idx = reinterpret_cast<int*>(sV + NVB * Tile::kTileBytes);   // [NKB][KT] (with K)
  float* s_bias = reinterpret_cast<float*>(s_idx + NKB * KT);         // [NKB][KT] 0, or -inf for padding

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2, g8 = lane >> 2, q4 = lane & 3;
  const int row0 = warp * 16;  // this warp's 16 rows (warpgroup wg: rows 64·wg ..)
  const MmaBlock<T> blk(p, KT);
  const int b = blk.b, n_tiles = blk.n_tiles;

  for (int e = tid; e < R * (D / 8); e += NTHREADS) {
    const int r = e / (D / 8), c16 = e % (D / 8);
    const MmaRow ri = mma_row(p, r, R);
    cp_row_chunk_sw128(sQ, R, r, c16, q_row_src<T>(p, b, ri, c16 * 8), ri.valid);
  }
  // gathers of tile kt's K (and list entries) and / or V; the caller commits. Thread tid copies the 16-byte piece
  // c16 = tid % 16 of rows tid / 16 + RSTEP·i: RSTEP is a multiple of 8, so the swizzled offset steps by RSTEP·128
  // bytes, and one list entry per row gives both of its copies.
  constexpr int RSTEP = NTHREADS / 16, NPIECE = KT / RSTEP;
  static_assert(RSTEP % 8 == 0 && KT % RSTEP == 0, "pieces must keep the swizzle phase");
  const int lc16 = tid % 16, lr0 = tid / 16;
  const uint32_t piece0 = (lc16 >> 3) * uint32_t(KT) * 128 + wgmma::sw128_offset(lr0, lc16 & 7);
  const uint32_t sK_addr = mma::smem_addr(sK) + piece0, sV_addr = mma::smem_addr(sV) + piece0;
  // list entries of this thread's rows of the next tile whose K is gathered, read one tile ahead (their latency
  // is not waited on where the copies are issued); a V-only gather reads them back from s_idx
  int lnext[NPIECE];
  auto fetch_list = [&](int kt) {
    const int i0 = kt * KT + lr0;
    const bool full = (kt + 1) * KT <= p.topk;
#pragma unroll
    for (int i = 0; i < NPIECE; ++i)
      lnext[i] = kt < n_tiles && (full || i0 + i * RSTEP < p.topk) ? listed_row(p, blk.list, i0 + i * RSTEP) : -1;
  };
  fetch_list(0);
  auto load = [&](int kt, bool k, bool v) {
    if (kt >= n_tiles) return;
    const uint32_t kd = sK_addr + (kt % NKB) * Tile::kTileBytes, vd = sV_addr + (kt % NVB) * Tile::kTileBytes;
    int mrow[NPIECE];
#pragma unroll
    for (int i = 0; i < NPIECE; ++i) mrow[i] = k ? lnext[i] : s_idx[(kt % NKB) * KT + lr0 + i * RSTEP];
    if (k) fetch_list(kt + 1);
#pragma unroll
    for (int i = 0; i < NPIECE; ++i) {
      const int m = mrow[i];
      const bool ok = m >= 0;
      const size_t off = size_t(ok ? m : 0) * p.kv_stride_n + lc16 * 8;
      if (k) mma::cp_async_16(kd + i * RSTEP * 128, blk.kg + off, ok);
      if (v) mma::cp_async_16(vd + i * RSTEP * 128, blk.vg + off, ok);
      if (k && lc16 == 0) {
        s_idx[(kt % NKB) * KT + lr0 + i * RSTEP] = m;
        s_bias[(kt % NKB) * KT + lr0 + i * RSTEP] = ok ? 0.f : -INFINITY;
      }
    }
  };
  auto publish = [&]() {  // this thread's copies done → visible to every thread and to wgmma
    mma::cp_async_wait<0>();
    wgmma::fence_proxy_async_smem();
    __syncthreads();
  };

  int pos[2];
  bool rvalid[2];
  lane_rows(p, row0 + g8, R, pos, rvalid);
  const float qk_scale = p.scale * kLog2e;
  float o[16][4];
  mma::zero(o);
  float (&o_flat)[64] = reinterpret_cast<float (&)[64]>(o);
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};
  const uint8_t* q_wg = sQ + wg * 64 * 128;  // this warpgroup's 64 rows inside each region of sQ
  // operand descriptors, made once: a tile's buffer adds its byte offset / 16 (see issue_qk)
  const uint64_t dq = wgmma::make_desc_sw128(q_wg, 16, 1024), dk0 = wgmma::make_desc_sw128(sK, 16, 1024),
                 dv0 = wgmma::make_desc_sw128(sV, 64u * 128, 1024);
  auto dk_tile = [&](int kt) { return dk0 + (((kt % NKB) * Tile::kTileBytes) >> 4); };
  auto dv_tile = [&](int kt) { return dv0 + (((kt % NVB) * Tile::kTileBytes) >> 4); };
  float sc[8][4];
  float (&sc_flat)[32] = reinterpret_cast<float (&)[32]>(sc);
  uint32_t pa[4][4];

  if (!PIPE) {
    // O += P V of tile kt is left running across the next barrier, the next gathers and S of tile kt + 1 (waited
    // before the softmax that rescales o); V keeps three buffers so that the gather of tile kt + 1 never lands in
    // the one P V of tile kt - 1 may still be reading
    load(0, true, true);
    mma::cp_async_commit();
    for (int kt = 0; kt < n_tiles; ++kt) {
      // tile kt (and Q) visible; every warpgroup has waited on its S of tile kt - 1 and P V of tile kt - 2, so K
      // buffer (kt + 1) % 2 and V buffer (kt + 1) % 3 are free
      publish();
      load(kt + 1, true, true);
      mma::cp_async_commit();
      mma::zero(sc);
      issue_qk<T, R>(sc_flat, dq, dk_tile(kt));
      wgmma::wait<0>();  // S of tile kt and P V of tile kt - 1
      wgmma::fence_operand(sc_flat);
      wgmma::fence_operand(o_flat);
      softmax_tile<T>(sc, s_idx + (kt % NKB) * KT, s_bias + (kt % NKB) * KT, pos, p.causal, qk_scale, m_run, l_run, o, pa, q4);
      issue_pv<T>(o_flat, pa, dv_tile(kt));
    }
    wgmma::wait<0>();
    wgmma::fence_operand(o_flat);
  } else {
    // prologue: Q, K0, V0, K1; S0
    load(0, true, true);
    load(1, true, false);
    mma::cp_async_commit();
    publish();
    if (n_tiles > 0) {
      mma::zero(sc);
      issue_qk<T, R>(sc_flat, dq, dk_tile(0));
      wgmma::wait<0>();
      wgmma::fence_operand(sc_flat);
    }
    float sn[8][4];
    float (&sn_flat)[32] = reinterpret_cast<float (&)[32]>(sn);
    for (int kt = 0; kt < n_tiles; ++kt) {
      // K of tile kt + 1 and V of tile kt are visible; K buffer (kt + 2) % 3 and V buffer (kt + 1) % 2 were last
      // read in iteration kt - 1, which every warpgroup has finished
      if (kt > 0) publish();
      load(kt + 2, true, false);
      load(kt + 1, false, true);
      mma::cp_async_commit();
      const bool next = kt + 1 < n_tiles;
      if (next) {
        mma::zero(sn);
        issue_qk<T, R>(sn_flat, dq, dk_tile(kt + 1));  // runs under the softmax below
      }
      softmax_tile<T>(sc, s_idx + (kt % NKB) * KT, s_bias + (kt % NKB) * KT, pos, p.causal, qk_scale, m_run, l_run, o, pa, q4);
      issue_pv<T>(o_flat, pa, dv_tile(kt));
      wgmma::wait<0>();
      wgmma::fence_operand(o_flat);
      if (next) {
        wgmma::fence_operand(sn_flat);
#pragma unroll
        for (int i = 0; i < 32; ++i) sc_flat[i] = sn_flat[i];
      }
    }
  }

  mma::cp_async_wait<0>();  // (K = 0: the Q copy is still in flight)
  __syncthreads();          // every warpgroup is done with sK / sV: they become the output stage
  float inv[2];
  finish_rows(p, b, l_run, m_run, rvalid, row0, lane, R, inv);
  constexpr int LD = D + 8;
  static_assert(size_t(R) * LD * 2 <= (NKB + NVB) * size_t(Tile::kTileBytes), "the output stage fits in K/V buffers");
  store_warp_rows<T, D, LD>(p, b, p.out, reinterpret_cast<T*>(sK), o, inv, row0, lane, R);
}

// Warp-specialised warpgroup forward (mode 3, the default for D = 128): warpgroup 0 of the block only gathers (cp.async
// into NSK stages of a K tile and NSV of a V tile of KT keys each, SW128 layout), the C consumer warpgroups (64 rows each) only
// compute. K and V of a stage are handed over by their own mbarriers: fullK[s] completes when the producer's K
// copies have landed (each producer thread's cp.async.mbarrier.arrive.noinc) and its list entries are written (a
// plain arrive), fullV[s] when its V copies have; emptyK[s] when every consumer thread has waited on its S reading the
// stage's K and read the stage's list entries (softmax), emptyV[s] when it has waited on its P V reading the stage's
// V, so the gather of K of a later tile never waits for P V. With two
// consumers their matrix-product issues take turns through two named barriers (flash-attention-3's ping-pong), so one
// warpgroup's softmax runs under the other's products.
// Consumer loops: plain (OVL = false): S of tile kt, wait, softmax, P V of tile kt left running until the next S
// has been waited. Overlapped (OVL, flash-attention-3's intra-warpgroup overlap): S of tile kt and P V of tile kt - 1
// are issued together; the softmax of tile kt runs under that P V, and o is rescaled (and P of tile kt written over
// the registers P V of tile kt - 1 read) only after it has been waited: no more registers than the plain loop.
// Registers: the producer hands most of its registers to the consumers (setmaxnreg); one consumer per block (lists
// of 64 rows) keeps two blocks per SM.
// PAIR (opt-in, DYSRA_GATHERED_ATTENTION_WS_PAIR=1): lists of at most 64 rows (one per consumer) — two list-blocks
// per block, each consumer its own list and its own K/V rings, one producer feeding both; instead of two one-consumer
// blocks per SM, each with a producer.
template <int C, int KT, bool PAIR = false>
struct GaWsTile {
  static_assert((C == 1 || C == 2) && (KT == 64 || KT == 128), "one or two consumers, key tiles of 64 or 128");
  static_assert(!PAIR || (C == 2 && KT == 64), "paired lists: two consumers, 64-key tiles");
  static constexpr int kRows = 64 * C, kKeys = KT, kThreads = 128 * (C + 1), kMinBlocks = C == 1 ? 2 : 1;
  static constexpr int kRings = PAIR ? 2 : 1;  // K/V stage rings (one per list)
  // K stages outnumber V stages: the K of a tile is needed a whole tile before its V (the overlapped loop issues
  // P V of tile j with S of tile j + 1), so the extra K stages let the producer gather two tiles ahead; what fits:
  // two consumers (one block per SM): 3 K + 2 V stages of 128 keys or 6 + 4 of 64 (paired lists: 3 + 2 per list);
  // one consumer (two blocks per SM): 3 + 3 of 64, the sixth in the room of Q, which stays in registers
  static constexpr int kStagesK = KT == 128 || PAIR ? 3 : (C == 2 ? 6 : 3);
  static constexpr int kStagesV = KT == 128 || PAIR ? 2 : (C == 2 ? 4 : 3);
  // per-thread registers: launch cap 65536 / (threads · blocks), rounded down to 8; the producer keeps 64 and its
  // share goes to the consumers
  static constexpr int kCap = (65536 / (kThreads * kMinBlocks)) / 8 * 8, kProducerRegs = 64;
  static constexpr int kConsumerRegs = ((kCap * (C + 1) - kProducerRegs) / C) / 8 * 8;
  // one consumer: its Q rows stay in registers (S = Q Kᵀ reads only K from shared memory)
  static constexpr bool kQRegs = C == 1;
  static constexpr uint32_t kQBytes = kQRegs ? 0u : uint32_t(kRows) * 256, kTileBytes = uint32_t(kKeys) * 256;
  static constexpr size_t smem_bytes() {
    return 1024 + kQBytes +
           kRings * (size_t(kStagesK + kStagesV) * kTileBytes + 2 * 4 * size_t(kStagesK) * kKeys +
                     2 * 8 * (kStagesK + kStagesV) + 4 * 4 * kStagesK);
  }
};

template <typename T, int C, int KT, bool OVL = false, bool PAIR = false>
__global__ void __launch_bounds__(GaWsTile<C, KT, PAIR>::kThreads, GaWsTile<C, KT, PAIR>::kMinBlocks)
    gathered_attention_fwd_ws_kernel(GatheredAttentionParams p, float slack) {
  using Tile = GaWsTile<C, KT, PAIR>;
  constexpr int R = Tile::kRows, D = 128, NSK = Tile::kStagesK, NSV = Tile::kStagesV, NS = KT / 8, NR = Tile::kRings;
  extern __shared__ uint8_t smem_raw[];
  uint8_t* smem = smem_raw + ((1024 - (mma::smem_addr(smem_raw) & 1023)) & 1023);
  uint8_t* sQ = smem;                                                     // SW128 rows, R rows
  uint8_t* sK = sQ + Tile::kQBytes;                                       // [NR][NSK] SW128 rows, KT rows each
  uint8_t* sV = sK + NR * NSK * Tile::kTileBytes;                         // [NR][NSV]
  int* s_idx = reinterpret_cast<int*>(sV + NR * NSV * Tile::kTileBytes);  // [NR][NSK][KT] (with K)
  float* s_bias = reinterpret_cast<float*>(s_idx + NR * NSK * KT);        // [NR][NSK][KT] 0, or -inf for padding
  uint64_t* full_k = reinterpret_cast<uint64_t*>(s_bias + NR * NSK * KT);  // [NR][NSK]
  uint64_t *empty_k = full_k + NR * NSK, *full_v = empty_k + NR * NSK, *empty_v = full_v + NR * NSV;  // [NR][NSV]
  int* s_whole = reinterpret_cast<int*>(empty_v + NR * NSV);  // [NR][NSK][4]: producer warp w's rows unpadded

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2;
  // list-block of ring r: blockIdx.y, or (paired) 2·blockIdx.y + r
  auto list_block = [&](int r) { return PAIR ? int(2 * blockIdx.y) + r : -1; };
  const MmaBlock<T> blk(p, KT, list_block(0));
  const int b = blk.b, n_tiles = blk.n_tiles;  // (the same for every list)

  if (tid == 0) {
    for (int st = 0; st < NR * NSK; ++st) {
      wgmma::mbar::init(full_k + st, 2 * 128);           // 128 copy arrivals + 128 plain ones (list entries)
      wgmma::mbar::init(empty_k + st, 128 * (C / NR));  // every consumer thread reading the ring
    }
    for (int st = 0; st < NR * NSV; ++st) {
      wgmma::mbar::init(full_v + st, 128);  // copy arrivals
      wgmma::mbar::init(empty_v + st, 128 * (C / NR));
    }
  }
  __syncthreads();  // the initialised barriers are visible (Q is copied by its consumers after the roles split)

  if (wg == 0) {
    // ---- producer: four threads per key row (rows tid / 4 + 32·i of the tile): thread q = tid % 4 copies the 16-byte
    // pieces 4j + q (j < 4) of its rows, so one copy instruction of a warp reads 64 contiguous bytes of each of its 8
    // rows, and each row's address is made once. The swizzled destination of piece 4j + q of row r is region j / 2,
    // chunk (4 (j % 2) + q) ^ (r % 8): two per-thread offsets plus constants.
    wgmma::setmaxnreg_dec<Tile::kProducerRegs>();
    constexpr int NROW = KT / 32;
    const int q = tid % 4, lr = tid / 4;
    const uint32_t o_even = lr * 128 + ((q ^ (lr & 7)) << 4), o_odd = lr * 128 + (((4 + q) ^ (lr & 7)) << 4);
    const uint32_t sK_addr = mma::smem_addr(sK), sV_addr = mma::smem_addr(sV);
    const int32_t* list[NR];
    const T *kq[NR], *vq[NR];
#pragma unroll
    for (int r = 0; r < NR; ++r) {
      const MmaBlock<T> br(p, KT, list_block(r));
      list[r] = br.list;
      kq[r] = br.kg + q * 8;
      vq[r] = br.vg + q * 8;
    }
    // this thread's pieces of the tile's rows m (padding entries: zeros) from kq or vq into the stage at `stage`
    auto copy_rows = [&](const int (&m)[NROW], const T* base, uint32_t stage) {
#pragma unroll
      for (int i = 0; i < NROW; ++i) {
        const bool ok = m[i] >= 0;
        const T* src = base + size_t(ok ? m[i] : 0) * p.kv_stride_n;
#pragma unroll
        for (int j = 0; j < 4; ++j)
          mma::cp_async_16(stage + ((j & 1) ? o_odd : o_even) + (j >> 1) * KT * 128 + i * 32 * 128, src + j * 32, ok);
      }
    };
    // V of tile kt into ring r, once every P V that read the stage is done
    auto copy_v = [&](int kt, int r, const int (&m)[NROW]) {
      const int sv = r * NSV + kt % NSV;
      if (kt >= NSV) wgmma::mbar::wait(empty_v + sv, uint32_t((kt / NSV - 1) & 1));
      copy_rows(m, vq[r], sV_addr + sv * Tile::kTileBytes);
      wgmma::mbar::arrive_cp_async(full_v + sv);
    };
    // order: K of tile j, then V of tile j - 1 (P V of a tile is issued with S of the next), so waiting for a V stage
    // never holds back the K gathers the extra K stages allow ahead
    int mv[NR][NROW];  // the list entries of the tile whose V comes next
    for (int kt = 0; kt <= n_tiles; ++kt) {
      if (kt < n_tiles) {
        const int i0 = kt * KT + lr;
        const bool whole = (kt + 1) * KT <= p.topk;
        int m[NR][NROW];
#pragma unroll
        for (int r = 0; r < NR; ++r)
#pragma unroll
          for (int i = 0; i < NROW; ++i)
            m[r][i] = whole || i0 + 32 * i < p.topk ? listed_row(p, list[r], i0 + 32 * i) : -1;
#pragma unroll
        for (int r = 0; r < NR; ++r) {
          const int st = r * NSK + kt % NSK;
          // (the parity of the phase that released the stage, when it was used before)
          if (kt >= NSK) wgmma::mbar::wait(empty_k + st, uint32_t((kt / NSK - 1) & 1));  // S and softmax done with it
          copy_rows(m[r], kq[r], sK_addr + st * Tile::kTileBytes);
          if (q == 0) {
#pragma unroll
            for (int i = 0; i < NROW; ++i) {
              s_idx[st * KT + lr + 32 * i] = m[r][i];
              s_bias[st * KT + lr + 32 * i] = m[r][i] >= 0 ? 0.f : -INFINITY;
            }
          }
          bool unpadded = true;
#pragma unroll
          for (int i = 0; i < NROW; ++i) unpadded = unpadded && m[r][i] >= 0;
          unpadded = __all_sync(0xffffffffu, unpadded);
          if (lane == 0) s_whole[st * 4 + warp] = unpadded;
          wgmma::mbar::arrive(full_k + st);
          wgmma::mbar::arrive_cp_async(full_k + st);
        }
        if (kt > 0) {
#pragma unroll
          for (int r = 0; r < NR; ++r) copy_v(kt - 1, r, mv[r]);
        }
#pragma unroll
        for (int r = 0; r < NR; ++r)
#pragma unroll
          for (int i = 0; i < NROW; ++i) mv[r][i] = m[r][i];
      } else if (kt > 0) {
#pragma unroll
        for (int r = 0; r < NR; ++r) copy_v(kt - 1, r, mv[r]);
      }
    }
    mma::cp_async_wait<0>();  // (no copy outlives its thread)
    return;
  }

  // ---- consumers: warpgroup c = wg - 1 owns rows 64c .. 64c + 63 of the block (warp cw: 16 of them); paired: rows
  // 0 .. 63 of its own list (ring c)
  wgmma::setmaxnreg_inc<Tile::kConsumerRegs>();
  const int c = wg - 1, cw = warp - 4, g8 = lane >> 2, q4 = lane & 3, row0 = cw * 16;
  // Q: one consumer holds its rows as A fragments in registers (loaded under the producer's first gathers); two copy
  // theirs (rows 64c .. 64c + 63) into sQ while the producer already gathers the first tiles (the first product waits
  // for the later of the two, not for both in turn); named barrier 4 + c: all of them landed
  uint32_t qa[Tile::kQRegs ? 8 : 1][4];
  if constexpr (Tile::kQRegs) {
    load_q_frags<T>(p, b, row0, R, lane, qa);
  } else {
    for (int e = 64 * c * (D / 8) + (tid - 128 * wg); e < 64 * (c + 1) * (D / 8); e += 128) {
      const int r = e / (D / 8), c16 = e % (D / 8);
      const MmaRow ri = PAIR ? mma_row(p, r % 64, 64, list_block(r / 64)) : mma_row(p, r, R);
      cp_row_chunk_sw128(sQ, R, r, c16, q_row_src<T>(p, b, ri, c16 * 8), ri.valid);
    }
    mma::cp_async_commit();
    mma::cp_async_wait<0>();
    wgmma::fence_proxy_async_smem();
    wgmma::named_sync(4 + c, 128);
  }
  const int rc = PAIR ? c : 0, by = list_block(c), rows = PAIR ? 64 : R, lrow0 = PAIR ? row0 - 64 * c : row0;
  int pos[2];
  bool rvalid[2];
  lane_rows(p, lrow0 + g8, rows, pos, rvalid, by);
  const float qk_scale = p.scale * kLog2e;
  const int* r_idx = s_idx + rc * NSK * KT;
  const float* r_bias = s_bias + rc * NSK * KT;
  const int* r_whole = s_whole + rc * NSK * 4;
  uint64_t *r_full_k = full_k + rc * NSK, *r_empty_k = empty_k + rc * NSK, *r_full_v = full_v + rc * NSV,
           *r_empty_v = empty_v + rc * NSV;
  // a tile whose list entries are all valid needs no mask unless causal (the unmasked softmax needs qk_scale > 0)
  auto unmasked = [&](int st) {
    const int4 w = *reinterpret_cast<const int4*>(r_whole + st * 4);
    return !p.causal && qk_scale > 0.f && (w.x & w.y & w.z & w.w);
  };
  float o[16][4];
  mma::zero(o);
  float (&o_flat)[64] = reinterpret_cast<float (&)[64]>(o);
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};
  float sc[NS][4];
  float (&sc_flat)[NS * 4] = reinterpret_cast<float (&)[NS * 4]>(sc);
  uint32_t pa[NS / 2][4];
  const uint64_t dq = wgmma::make_desc_sw128(sQ + c * 64 * 128, 16, 1024),
                 dk0 = wgmma::make_desc_sw128(sK + rc * NSK * Tile::kTileBytes, 16, 1024),
                 dv0 = wgmma::make_desc_sw128(sV + rc * NSV * Tile::kTileBytes, uint32_t(KT) * 128, 1024);
  auto dk = [&](int st) { return dk0 + ((st * Tile::kTileBytes) >> 4); };
  auto dv = [&](int st) { return dv0 + ((st * Tile::kTileBytes) >> 4); };
  auto issue_s = [&](int st) {  // S of the K tile in stage st, issued and committed
    if constexpr (Tile::kQRegs) {
      issue_qk_rs<T>(sc_flat, qa, dk(st));
    } else {
      issue_qk<T, R, KT>(sc_flat, dq, dk(st));
    }
  };
  auto phase_k = [&](int kt) { return uint32_t((kt / NSK) & 1); };
  auto phase_v = [&](int kt) { return uint32_t((kt / NSV) & 1); };
  // ping-pong: consumer c issues after named barrier 1 + c, then lets the other one go (barrier 2 - c); consumer 1
  // lets consumer 0 start, and skips its last hand-over (every arrive has its sync)
  if (C == 2 && c == 1 && n_tiles > 0) wgmma::named_arrive(1, 256);
  auto turn_begin = [&]() {
    if (C == 2) wgmma::named_sync(1 + c, 256);
  };
  auto turn_end = [&](int kt) {
    if (C == 2 && !(c == 1 && kt == n_tiles - 1)) wgmma::named_arrive(2 - c, 256);
  };
  // rows whose running max did not move have alpha exactly 1 (lazy max): skip the multiply when the whole warp's do
  auto rescale_if_moved = [&](float (&acc)[16][4], const float (&a)[2]) {
    if (__any_sync(0xffffffffu, a[0] != 1.f || a[1] != 1.f)) rescale_rows<16>(acc, a);
  };
  if (!OVL) {
    for (int kt = 0; kt < n_tiles; ++kt) {
      const int st = kt % NSK, sv = kt % NSV;
      wgmma::mbar::wait(r_full_k + st, phase_k(kt));
      wgmma::fence_proxy_async_smem();
      turn_begin();
      issue_s(st);
      turn_end(kt);
      wgmma::wait<0>();  // S of tile kt and P V of tile kt - 1
      wgmma::fence_operand(sc_flat);
      wgmma::fence_operand(o_flat);
      if (kt > 0) wgmma::mbar::arrive(r_empty_v + (kt - 1) % NSV);
      float alpha[2];
      softmax_scores<NS, true>(sc, r_idx + st * KT, r_bias + st * KT, pos, p.causal, qk_scale, m_run, l_run, q4, alpha,
                               unmasked(st), slack);
      wgmma::mbar::arrive(r_empty_k + st);  // (after the softmax: it reads the stage's list entries)
      rescale_if_moved(o, alpha);
      mma::c_to_a<T, NS / 2>(pa, sc);
      wgmma::mbar::wait(r_full_v + sv, phase_v(kt));
      wgmma::fence_proxy_async_smem();
      issue_pv<T, KT>(o_flat, pa, dv(sv));
    }
  } else if (n_tiles > 0) {
    float alpha[2];
    wgmma::mbar::wait(r_full_k, 0);
    wgmma::fence_proxy_async_smem();
    turn_begin();
    issue_s(0);
    turn_end(0);
    wgmma::wait<0>();
    wgmma::fence_operand(sc_flat);
    softmax_scores<NS, true>(sc, r_idx, r_bias, pos, p.causal, qk_scale, m_run, l_run, q4, alpha, unmasked(0),
                             slack);  // (o = 0)
    wgmma::mbar::arrive(r_empty_k);
    mma::c_to_a<T, NS / 2>(pa, sc);
    for (int kt = 1; kt < n_tiles; ++kt) {
      const int st = kt % NSK, sp = (kt - 1) % NSV;
      wgmma::mbar::wait(r_full_k + st, phase_k(kt));
      wgmma::mbar::wait(r_full_v + sp, phase_v(kt - 1));
      wgmma::fence_proxy_async_smem();
      turn_begin();
      issue_s(st);
      issue_pv<T, KT>(o_flat, pa, dv(sp));
      turn_end(kt);
      wgmma::wait<1>();  // S of tile kt; P V of tile kt - 1 runs on under the softmax
      wgmma::fence_operand(sc_flat);
      softmax_scores<NS, true>(sc, r_idx + st * KT, r_bias + st * KT, pos, p.causal, qk_scale, m_run, l_run, q4, alpha,
                               unmasked(st), slack);
      wgmma::mbar::arrive(r_empty_k + st);  // (after the softmax: it reads the stage's list entries)
      wgmma::wait<0>();
      wgmma::fence_operand(o_flat);
      wgmma::mbar::arrive(r_empty_v + sp);
      rescale_if_moved(o, alpha);
      mma::c_to_a<T, NS / 2>(pa, sc);
    }
    const int sl = (n_tiles - 1) % NSV;
    wgmma::mbar::wait(r_full_v + sl, phase_v(n_tiles - 1));
    wgmma::fence_proxy_async_smem();
    issue_pv<T, KT>(o_flat, pa, dv(sl));
  }
  wgmma::wait<0>();
  wgmma::fence_operand(o_flat);
  wgmma::named_sync(3, 128 * C);  // every consumer warp is done reading sK / sV: they become the output stage

  float inv[2];
  finish_rows(p, b, l_run, m_run, rvalid, lrow0, lane, rows, inv, by);
  constexpr int LD = D + 8;
  static_assert(size_t(R) * LD * 2 <= NR * (NSK + NSV) * size_t(Tile::kTileBytes), "the output stage fits in K/V stages");
  store_warp_rows<T, D, LD>(p, b, p.out, reinterpret_cast<T*>(sK) + (PAIR ? c * 64 * LD : 0), o, inv, lrow0, lane, rows,
                            by);
}

/// The tensor-core path: bf16 or fp16, D of 64 or 128, 16-byte aligned rows (strides multiples of 8 elements).
bool use_mma_path(const GatheredAttentionParams& p) {
  if (const char* e = std::getenv("DYSRA_GATHERED_ATTENTION_KERNEL")) {
    if (std::string(e) == "simt") return false;
  }
  return (p.dtype == DType::kBFloat16 || p.dtype == DType::kFloat16) && (p.dim == 64 || p.dim == 128) &&
         aligned16(p.q) && aligned16(p.k) && aligned16(p.v) && aligned16(p.out) && p.q_stride_b % 8 == 0 &&
         p.q_stride_t % 8 == 0 && p.q_stride_h % 8 == 0 && p.kv_stride_b % 8 == 0 && p.kv_stride_n % 8 == 0 &&
         p.kv_stride_h % 8 == 0;
}

/// Launches a tensor-core kernel over the blocks of 64 rows (kv-head-major, see mma_row).
template <class Kernel, class Params>
cudaError_t launch_rows(Kernel kernel, size_t smem, const Params& p, cudaStream_t stream) {
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const int group = p.heads / p.kv_heads;
  const dim3 grid((group * p.block_q + 63) / 64, p.n_blocks * p.kv_heads, p.batch);
  kernel<<<grid, 128, smem, stream>>>(p);
  return cudaGetLastError();
}
template <typename T, int D>
cudaError_t launch_fwd_mma(const GatheredAttentionParams& p, cudaStream_t stream) {
  return launch_rows(gathered_attention_fwd_mma_kernel<T, D>, GaMmaTile<D>::smem_bytes(), p, stream);
}

template <typename T, int D>
cudaError_t launch_fwd_wide(const GatheredAttentionParams& p, cudaStream_t stream) {
  auto kernel = gathered_attention_fwd_wide_kernel<T, D>;
  const size_t smem = GaWideTile<D>::smem_bytes();
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const int group = p.heads / p.kv_heads, rows = GaWideTile<D>::kRows;
  const dim3 grid((group * p.block_q + rows - 1) / rows, p.n_blocks * p.kv_heads, p.batch);
  kernel<<<grid, 128, smem, stream>>>(p);
  return cudaGetLastError();
}

/// Lists shared by >= 128 rows take the wide (128-row) kernel unless DYSRA_GATHERED_ATTENTION_WIDE=0.
bool use_wide(const GatheredAttentionParams& p) {
  if (const char* e = std::getenv("DYSRA_GATHERED_ATTENTION_WIDE")) {
    if (std::string(e) == "0") return false;
  }
  return (p.heads / p.kv_heads) * p.block_q >= 128;
}

template <typename T, int WG, bool PIPE>
cudaError_t launch_fwd_wgmma(const GatheredAttentionParams& p, cudaStream_t stream) {
  auto kernel = gathered_attention_fwd_wgmma_kernel<T, WG, PIPE>;
  const size_t smem = GaWgTile<WG, PIPE>::smem_bytes();
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const int group = p.heads / p.kv_heads, rows = GaWgTile<WG, PIPE>::kRows;
  const dim3 grid((group * p.block_q + rows - 1) / rows, p.n_blocks * p.kv_heads, p.batch);
  kernel<<<grid, 128 * WG, smem, stream>>>(p);
  return cudaGetLastError();
}

/// D = 128 takes a warpgroup (wgmma) forward: by default (3) the warp-specialised one;
/// DYSRA_GATHERED_ATTENTION_WGMMA=1 the one without a producer warpgroup (=2: with flash-attention-3's intra-warpgroup
/// overlap), =0 the mma.sync kernels. Lists shared by >= 128 rows run two consumer (or compute) warpgroups per block
/// (DYSRA_GATHERED_ATTENTION_WG=1: one, for A/B).
int wgmma_mode(const GatheredAttentionParams& p) {
  if (p.dim != 128) return 0;
  if (const char* e = std::getenv("DYSRA_GATHERED_ATTENTION_WGMMA")) {
    if (std::string(e) == "0") return 0;
    if (std::string(e) == "1") return 1;
    if (std::string(e) == "2") return 2;
  }
  return 3;
}

/// How far (base 2) a row's running max may lag the scores before the warp-specialised forward moves it and rescales
/// the row's output (flash-attention-4's lazy rescaling): 8 by default (P <= 256);
/// DYSRA_GATHERED_ATTENTION_WS_MAX_SLACK sets it within [0, 15] (0: the exact running max, rows rescaled only when it
/// moves; 15 keeps P = 2^15 within fp16).
float ws_max_slack() {
  const char* e = std::getenv("DYSRA_GATHERED_ATTENTION_WS_MAX_SLACK");
  return e ? std::min(15.f, std::max(0.f, std::strtof(e, nullptr))) : 8.f;
}

template <typename T, int C, int KT, bool OVL = false, bool PAIR = false>
cudaError_t launch_fwd_ws(const GatheredAttentionParams& p, cudaStream_t stream) {
  using Tile = GaWsTile<C, KT, PAIR>;
  auto kernel = gathered_attention_fwd_ws_kernel<T, C, KT, OVL, PAIR>;
  const size_t smem = Tile::smem_bytes();
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const int group = p.heads / p.kv_heads;
  const dim3 grid = PAIR ? dim3(1, p.n_blocks * p.kv_heads / 2, p.batch)
                         : dim3((group * p.block_q + Tile::kRows - 1) / Tile::kRows, p.n_blocks * p.kv_heads, p.batch);
  kernel<<<grid, Tile::kThreads, smem, stream>>>(p, ws_max_slack());
  return cudaGetLastError();
}

/// DYSRA_GATHERED_ATTENTION_WS_PAIR=1: lists of at most 64 rows, an even number of them, run two per block (one per
/// consumer) instead of one per one-consumer block.
bool ws_pair(const GatheredAttentionParams& p) {
  const char* e = std::getenv("DYSRA_GATHERED_ATTENTION_WS_PAIR");
  return e && std::string(e) == "1" && (p.heads / p.kv_heads) * p.block_q <= 64 && (p.n_blocks * p.kv_heads) % 2 == 0;
}

/// Key tile of the warp-specialised forward for two consumers: 128, or 64 with DYSRA_GATHERED_ATTENTION_WS_KEYS=64
/// (one consumer: always 64).
bool ws_keys_128() {
  const char* e = std::getenv("DYSRA_GATHERED_ATTENTION_WS_KEYS");
  return !(e && std::string(e) == "64");
}
/// The consumers issue S of a tile with P V of the one before and run the softmax under that P V (flash-attention-3's
/// intra-warpgroup overlap; with two consumers, on top of the ping-pong); DYSRA_GATHERED_ATTENTION_WS_OVERLAP=0: S,
/// softmax, P V in turn.
bool ws_overlap() {
  const char* e = std::getenv("DYSRA_GATHERED_ATTENTION_WS_OVERLAP");
  return !(e && std::string(e) == "0");
}

template <typename T>
cudaError_t fwd_wgmma(const GatheredAttentionParams& p, int mode, cudaStream_t stream) {
  bool two = (p.heads / p.kv_heads) * p.block_q >= 128;
  if (const char* e = std::getenv("DYSRA_GATHERED_ATTENTION_WG")) two = two && std::string(e) != "1";  // (A/B)
  if (mode == 3) {
    const bool ovl = ws_overlap();
    if (!two && ws_pair(p))
      return ovl ? launch_fwd_ws<T, 2, 64, true, true>(p, stream) : launch_fwd_ws<T, 2, 64, false, true>(p, stream);
    if (!two) return ovl ? launch_fwd_ws<T, 1, 64, true>(p, stream) : launch_fwd_ws<T, 1, 64>(p, stream);
    if (ws_keys_128()) return ovl ? launch_fwd_ws<T, 2, 128, true>(p, stream) : launch_fwd_ws<T, 2, 128>(p, stream);
    return ovl ? launch_fwd_ws<T, 2, 64, true>(p, stream) : launch_fwd_ws<T, 2, 64>(p, stream);
  }
  if (mode == 1) return two ? launch_fwd_wgmma<T, 2, false>(p, stream) : launch_fwd_wgmma<T, 1, false>(p, stream);
  return two ? launch_fwd_wgmma<T, 2, true>(p, stream) : launch_fwd_wgmma<T, 1, true>(p, stream);
}

cudaError_t fwd_mma(const GatheredAttentionParams& p, cudaStream_t stream) {
  if (const int mode = wgmma_mode(p))
    return p.dtype == DType::kBFloat16 ? fwd_wgmma<__nv_bfloat16>(p, mode, stream) : fwd_wgmma<__half>(p, mode, stream);
  const bool wide = use_wide(p);
  if (p.dtype == DType::kBFloat16) {
    if (wide)
      return p.dim == 64 ? launch_fwd_wide<__nv_bfloat16, 64>(p, stream) : launch_fwd_wide<__nv_bfloat16, 128>(p, stream);
    return p.dim == 64 ? launch_fwd_mma<__nv_bfloat16, 64>(p, stream) : launch_fwd_mma<__nv_bfloat16, 128>(p, stream);
  }
  if (wide) return p.dim == 64 ? launch_fwd_wide<__half, 64>(p, stream) : launch_fwd_wide<__half, 128>(p, stream);
  return p.dim == 64 ? launch_fwd_mma<__half, 64>(p, stream) : launch_fwd_mma<__half, 128>(p, stream);
}


// ----------------------------------------------------------------------------------------- tensor-core backward
/// The backward's two side-by-side products of a warp (S and dP): c1 = A1 B1ᵀ and c2 = A2 B2ᵀ for rows a_row0 ..
/// a_row0 + 15 of the shared [m][LD] tiles A1, A2 against the 64 rows of the shared [n][LD] tiles B1, B2, contracting
/// over D (c1 and c2 are overwritten).
template <typename T, int D, int LD>
__device__ __forceinline__ void warp_two_products(float (&c1)[8][4], float (&c2)[8][4], const T* a1, const T* a2,
                                                  const T* b1, const T* b2, int a_row0, int lane) {
#pragma unroll
  for (int nt = 0; nt < 8; ++nt)
#pragma unroll
    for (int i = 0; i < 4; ++i) c1[nt][i] = c2[nt][i] = 0.f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t f1[4], f2[4];
    mma::ldmatrix_x4(f1, a1 + (a_row0 + (lane % 16)) * LD + kk * 16 + (lane / 16) * 8);
    mma::ldmatrix_x4(f2, a2 + (a_row0 + (lane % 16)) * LD + kk * 16 + (lane / 16) * 8);
#pragma unroll
    for (int np = 0; np < 4; ++np) {
      uint32_t r[4];
      const int off = (np * 16 + (lane % 8) + (lane / 16) * 8) * LD + kk * 16 + ((lane / 8) % 2) * 8;
      mma::ldmatrix_x4(r, b1 + off);
      mma::mma_16816<T>(c1[2 * np], f1, r[0], r[1]);
      mma::mma_16816<T>(c1[2 * np + 1], f1, r[2], r[3]);
      mma::ldmatrix_x4(r, b2 + off);
      mma::mma_16816<T>(c2[2 * np], f2, r[0], r[1]);
      mma::mma_16816<T>(c2[2 * np + 1], f2, r[2], r[3]);
    }
  }
}

// Same blocks as the forward. Q and dO of the block's 64 rows sit in shared memory for the whole walk; per key
// tile (gathered with cp.async like the forward):
//   S = Q Kᵀ, P = exp2(S·scale·log2e − lse·log2e) (masked → 0)      dP = dO Vᵀ       dS = P ⊙ (dP − rowsum(dO⊙O))
//   dQ_w += dS K  (registers, one owner per row)
//   P and dS go to shared memory as 16-bit; then warp w forms the tile's keys 16w..16w+15:
//   dV = Pᵀ dO, dK = scale·dSᵀ Q, added to the fp32 dk/dv rows with float2 atomics (see the header for why).
template <int D>
struct GaMmaBwdTile {
  static constexpr int kRows = 64, kKeys = 64, kLd = D + 8, kLdp = kKeys + 8;
  static constexpr size_t smem_bytes() {
    return 2 * (4 * size_t(kRows) * kLd + 2 * size_t(kRows) * kLdp) + 4 * size_t(kKeys);
  }
};

/// DKV = false: dq only (lists shared by many rows: their dk / dv come from gathered_attention_bwd_kv_mma_kernel).
template <typename T, int D, bool DKV = true>
__global__ void __launch_bounds__(128) gathered_attention_bwd_mma_kernel(GatheredAttentionBwdParams p) {
  using Tile = GaMmaBwdTile<D>;
  constexpr int R = Tile::kRows, KT = Tile::kKeys, LD = Tile::kLd, LDP = Tile::kLdp, NT = D / 8;
  extern __shared__ uint4 smem_u4[];
  T* sQ = reinterpret_cast<T*>(smem_u4);  // [R][LD]
  T* sdO = sQ + R * LD;                   // [R][LD]
  T* sK = sdO + R * LD;                   // [KT][LD]
  T* sV = sK + KT * LD;                   // [KT][LD]
  T* sP = sV + KT * LD;                   // [R][LDP]
  T* sdS = sP + R * LDP;                  // [R][LDP]
  int* s_idx = reinterpret_cast<int*>(sdS + R * LDP);  // [KT]

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g8 = lane >> 2, q4 = lane & 3;
  const MmaBlock<T> blk(p, KT);
  const int b = blk.b, n_tiles = blk.n_tiles;

  load_q_rows<T, D, LD>(p, b, R, sQ, static_cast<const T*>(p.dout), sdO);
  mma::cp_async_commit();

  int64_t pos[2];
  float lse2[2], dsum[2];
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const MmaRow ri = mma_row(p, warp * 16 + g8 + 8 * hf);
    pos[hf] = ri.pos;
    const size_t li = (size_t(b) * p.heads + ri.h) * p.tq + ri.t;
    const float l = ri.valid ? p.lse[li] : -INFINITY;
    lse2[hf] = l == -INFINITY ? INFINITY : l * kLog2e;  // a row that saw no key: P = 0
    dsum[hf] = ri.valid ? p.dsum[li] : 0.f;
  }
  const float qk_scale = p.scale * kLog2e;
  float dq[NT][4];
  mma::zero(dq);

  for (int kt = 0; kt < n_tiles; ++kt) {
    __syncthreads();  // every warp is done with the previous tile's K, V, P, dS
    gather_kv_tile<T, D, KT, LD>(p, blk, kt, sK, sV, s_idx);
    mma::cp_async_wait<0>();
    __syncthreads();

    // S = Q_w Kᵀ and dP = dO_w Vᵀ
    float sc[8][4], dp[8][4];
    warp_two_products<T, D, LD>(sc, dp, sQ, sdO, sK, sV, warp * 16, lane);
    // P, dS; both to shared memory (16-bit)
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const int2 mm = *reinterpret_cast<const int2*>(s_idx + nt * 8 + 2 * q4);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int m = (i & 1) ? mm.y : mm.x, hf = i >> 1;
        const bool vis = m >= 0 && (!p.causal || int64_t(m) <= pos[hf]);
        const float pr = vis ? fast_exp2(sc[nt][i] * qk_scale - lse2[hf]) : 0.f;
        sc[nt][i] = pr;
        dp[nt][i] = pr * (dp[nt][i] - dsum[hf]);
      }
      if (!DKV) continue;
      const int r0 = warp * 16 + g8, c = nt * 8 + 2 * q4;
      *reinterpret_cast<uint32_t*>(sP + r0 * LDP + c) = mma::pack2<T>(sc[nt][0], sc[nt][1]);
      *reinterpret_cast<uint32_t*>(sP + (r0 + 8) * LDP + c) = mma::pack2<T>(sc[nt][2], sc[nt][3]);
      *reinterpret_cast<uint32_t*>(sdS + r0 * LDP + c) = mma::pack2<T>(dp[nt][0], dp[nt][1]);
      *reinterpret_cast<uint32_t*>(sdS + (r0 + 8) * LDP + c) = mma::pack2<T>(dp[nt][2], dp[nt][3]);
    }
    // dQ_w += dS K
    {
      uint32_t da[KT / 16][4];
      mma::c_to_a<T, KT / 16>(da, dp);
      mma::warp_mma_kn<T, KT / 16, NT / 2>(dq, da, sK, LD, lane);
    }
    if (!DKV) continue;
    __syncthreads();  // P and dS of all rows are in shared memory

    // keys 16w .. 16w+15 of the tile, contracting over the block's 64 rows: pass 0 dV = Pᵀ dO, pass 1
    // dK = scale·dSᵀ Q (one accumulator at a time keeps the kernel within 255 registers)
    const int mrow[2] = {s_idx[warp * 16 + g8], s_idx[warp * 16 + g8 + 8]};
#pragma unroll 1
    for (int pass = 0; pass < 2; ++pass) {
      const T* A = pass == 0 ? sP : sdS;
      const T* Bm = pass == 0 ? sdO : sQ;
      float* dst = pass == 0 ? p.dv_acc : p.dk_acc;
      const float f = pass == 0 ? 1.f : p.scale;
      float acc[NT][4];
      mma::zero(acc);
#pragma unroll
      for (int j = 0; j < R / 16; ++j) {
        uint32_t a[4];
        mma::ldmatrix_x4_trans(a, A + (j * 16 + (lane % 8) + (lane / 16) * 8) * LDP + warp * 16 + ((lane / 8) % 2) * 8);
#pragma unroll
        for (int np = 0; np < NT / 2; ++np) {
          uint32_t r[4];
          mma::ldmatrix_x4_trans(r, Bm + (j * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * LD + np * 16 + (lane / 16) * 8);
          mma::mma_16816<T>(acc[2 * np], a, r[0], r[1]);
          mma::mma_16816<T>(acc[2 * np + 1], a, r[2], r[3]);
        }
      }
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        if (mrow[hf] < 0) continue;
        float* row = dst + ((size_t(b) * p.n_mem + mrow[hf]) * p.kv_heads + blk.g) * D;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
          atomicAdd(reinterpret_cast<float2*>(row + nt * 8 + 2 * q4),
                    make_float2(f * acc[nt][2 * hf], f * acc[nt][2 * hf + 1]));
      }
    }
  }

  // dq = scale · dQ, staged in sQ (every warp reads all rows of sQ in the dK pass: barrier first; with K = 0 the
  // Q/dO copy was never waited for)
  mma::cp_async_wait<0>();
  __syncthreads();
  const float sc2[2] = {p.scale, p.scale};
  store_warp_rows<T, D, LD>(p, b, p.dq, sQ, dq, sc2, warp * 16, lane);
}

// Key-major backward for lists shared by many rows (shape (a): 4,096 rows, one list per kv head). The row-major
// kernel above adds every row block's dk/dv partials with atomics: 2·K·D per 64 rows, all on the list's K rows. Here
// one block owns 64 keys of one list (gathered once) and walks all the list's rows, 64 at a time (double-buffered
// cp.async of Q and dO, with each row's lse, rowsum(dO⊙O) and position), warp w forming keys 16w .. 16w+15:
//   Sᵀ = K_w Qᵀ, dPᵀ = V_w dOᵀ, Pᵀ = exp2(Sᵀ·scale·log2e − lse·log2e) (masked → 0), dSᵀ = Pᵀ ⊙ (dPᵀ − rowsum)
//   dV_w += Pᵀ dO, dK_w += dSᵀ Q   (fp32 registers for the whole walk)
// then one atomic add per (key, d) of dk and dv. dq comes from the row-major kernel without its dk/dv part.
template <int D>
struct GaMmaBwdKvTile {
  static constexpr int kRows = 64, kKeys = 64, kLd = D + 8;
  // sK, sV; sQ, sdO twice; per buffer and row: lse·log2e, rowsum, position (int64); the keys' list entries
  static constexpr size_t smem_bytes() {
    return 2 * (2 * size_t(kKeys) * kLd + 4 * size_t(kRows) * kLd) + 2 * size_t(kRows) * (4 + 4 + 8) + 4 * kKeys;
  }
};

template <typename T, int D>
__global__ void __launch_bounds__(128) gathered_attention_bwd_kv_mma_kernel(GatheredAttentionBwdParams p) {
  using Tile = GaMmaBwdKvTile<D>;
  constexpr int R = Tile::kRows, KT = Tile::kKeys, LD = Tile::kLd, NT = D / 8;
  extern __shared__ uint4 smem_u4[];
  T* sK = reinterpret_cast<T*>(smem_u4);  // [KT][LD]
  T* sV = sK + KT * LD;                   // [KT][LD]
  T* sQ = sV + KT * LD;                   // [2][R][LD]
  T* sdO = sQ + 2 * R * LD;               // [2][R][LD]
  int64_t* s_pos = reinterpret_cast<int64_t*>(sdO + 2 * R * LD);  // [2][R]
  float* s_lse2 = reinterpret_cast<float*>(s_pos + 2 * R);        // [2][R]
  float* s_dsum = s_lse2 + 2 * R;                                 // [2][R]
  int* s_idx = reinterpret_cast<int*>(s_dsum + 2 * R);            // [KT]

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g8 = lane >> 2, q4 = lane & 3;
  const int by = blockIdx.y, kt = blockIdx.x;
  const MmaBlock<T> blk(p, KT, by);
  const int b = blk.b, rows = (p.heads / p.kv_heads) * p.block_q, n_rt = (rows + R - 1) / R;
  const T* dout = static_cast<const T*>(p.dout);
  gather_kv_tile<T, D, KT, LD>(p, blk, kt, sK, sV, s_idx);  // (committed: group 0)

  // row tile rt of the list into buffer rt % 2: q and dout rows (zero-filled past the list's rows), lse, rowsum, pos
  auto load_rows = [&](int rt) {
    const int buf = rt & 1;
    for (int e = tid; e < R * (D / 8); e += 128) {
      const int r = e / (D / 8), c8 = (e % (D / 8)) * 8;
      const MmaRow ri = mma_row(p, rt * R + r, R, by);
      const bool ok = ri.valid && rt * R + r < rows;
      mma::cp_async_16(sQ + (buf * R + r) * LD + c8, q_row_src<T>(p, b, ri, c8), ok);
      mma::cp_async_16(sdO + (buf * R + r) * LD + c8,
                       dout + (ok ? ((size_t(b) * p.tq + ri.t) * p.heads + ri.h) * D + c8 : 0), ok);
    }
    if (tid < R) {
      const MmaRow ri = mma_row(p, rt * R + tid, R, by);
      const bool ok = ri.valid && rt * R + tid < rows;
      const size_t li = (size_t(b) * p.heads + ri.h) * p.tq + ri.t;
      const float l = ok ? p.lse[li] : -INFINITY;
      s_lse2[buf * R + tid] = l == -INFINITY ? INFINITY : l * kLog2e;  // a row that saw no key: P = 0
      s_dsum[buf * R + tid] = ok ? p.dsum[li] : 0.f;
      s_pos[buf * R + tid] = ri.pos;
    }
    mma::cp_async_commit();
  };
  if (n_rt > 0) load_rows(0);

  const float qk_scale = p.scale * kLog2e;
  float dk[NT][4], dv[NT][4];
  mma::zero(dk);
  mma::zero(dv);
  int mkey[2];  // the list entries of this lane's two keys (accumulator rows g8, g8 + 8 of the warp's 16)

  for (int rt = 0; rt < n_rt; ++rt) {
    const int buf = rt & 1;
    __syncthreads();  // every warp is done with buffer (rt + 1) % 2 (row tile rt - 1)
    if (rt + 1 < n_rt) {
      load_rows(rt + 1);
      mma::cp_async_wait<1>();  // the K/V tile and row tile rt landed
    } else {
      mma::cp_async_wait<0>();
    }
    __syncthreads();
    if (rt == 0) {
      mkey[0] = s_idx[warp * 16 + g8];
      mkey[1] = s_idx[warp * 16 + g8 + 8];
    }
    const T* q = sQ + buf * R * LD;
    const T* o = sdO + buf * R * LD;

    // Sᵀ = K_w Qᵀ and dPᵀ = V_w dOᵀ (16 keys × 64 rows)
    float st[8][4], dpt[8][4];
    warp_two_products<T, D, LD>(st, dpt, sK, sV, q, o, warp * 16, lane);
    // Pᵀ and dSᵀ: accumulator (key g8 + 8·(i / 2), row nt·8 + 2·q4 + i % 2)
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const int c = nt * 8 + 2 * q4;
      const float2 l2 = *reinterpret_cast<const float2*>(s_lse2 + buf * R + c);
      const float2 ds = *reinterpret_cast<const float2*>(s_dsum + buf * R + c);
      const int64_t pc[2] = {s_pos[buf * R + c], s_pos[buf * R + c + 1]};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int m = mkey[i >> 1];
        const bool vis = m >= 0 && (!p.causal || int64_t(m) <= pc[i & 1]);
        const float pr = vis ? fast_exp2(st[nt][i] * qk_scale - ((i & 1) ? l2.y : l2.x)) : 0.f;
        st[nt][i] = pr;
        dpt[nt][i] = pr * (dpt[nt][i] - ((i & 1) ? ds.y : ds.x));
      }
    }
    // dV_w += Pᵀ dO, dK_w += dSᵀ Q (contracting over the 64 rows; dO and Q read as [k = row][n = d])
    {
      uint32_t a[R / 16][4];
      mma::c_to_a<T, R / 16>(a, st);
      mma::warp_mma_kn<T, R / 16, NT / 2>(dv, a, o, LD, lane);
      mma::c_to_a<T, R / 16>(a, dpt);
      mma::warp_mma_kn<T, R / 16, NT / 2>(dk, a, q, LD, lane);
    }
  }
  if (n_rt == 0) return;

  // one add per (key, d): dk = scale · dK, dv = dV
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    if (mkey[hf] < 0) continue;
    const size_t row = ((size_t(b) * p.n_mem + mkey[hf]) * p.kv_heads + blk.g) * D;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      atomicAdd(reinterpret_cast<float2*>(p.dk_acc + row + nt * 8 + 2 * q4),
                make_float2(p.scale * dk[nt][2 * hf], p.scale * dk[nt][2 * hf + 1]));
      atomicAdd(reinterpret_cast<float2*>(p.dv_acc + row + nt * 8 + 2 * q4),
                make_float2(dv[nt][2 * hf], dv[nt][2 * hf + 1]));
    }
  }
}

/// Lists shared by >= 128 rows take the key-major dk/dv kernel (and the row-major one for dq only) unless
/// DYSRA_GATHERED_ATTENTION_BWD_KEYS=0; =1 takes it for any list.
bool use_bwd_key_major(const GatheredAttentionBwdParams& p) {
  if (const char* e = std::getenv("DYSRA_GATHERED_ATTENTION_BWD_KEYS")) {
    if (std::string(e) == "0") return false;
    if (std::string(e) == "1") return true;
  }
  return (p.heads / p.kv_heads) * p.block_q >= 128;
}

template <typename T, int D>
cudaError_t launch_bwd_mma(const GatheredAttentionBwdParams& p, cudaStream_t stream) {
  if (!use_bwd_key_major(p))
    return launch_rows(gathered_attention_bwd_mma_kernel<T, D>, GaMmaBwdTile<D>::smem_bytes(), p, stream);
  DYSRA_CUDA_TRY(launch_rows(gathered_attention_bwd_mma_kernel<T, D, false>, GaMmaBwdTile<D>::smem_bytes(), p, stream));
  auto kernel = gathered_attention_bwd_kv_mma_kernel<T, D>;
  const size_t smem = GaMmaBwdKvTile<D>::smem_bytes();
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const dim3 grid((p.topk + GaMmaBwdKvTile<D>::kKeys - 1) / GaMmaBwdKvTile<D>::kKeys, p.n_blocks * p.kv_heads, p.batch);
  kernel<<<grid, 128, smem, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t bwd_mma(const GatheredAttentionBwdParams& p, cudaStream_t stream) {
  if (p.dtype == DType::kBFloat16)
    return p.dim == 64 ? launch_bwd_mma<__nv_bfloat16, 64>(p, stream) : launch_bwd_mma<__nv_bfloat16, 128>(p, stream);
  return p.dim == 64 ? launch_bwd_mma<__half, 64>(p, stream) : launch_bwd_mma<__half, 128>(p, stream);
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
  if (use_mma_path(p)) return fwd_mma(p, stream);
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
  if (use_mma_path(p) && aligned16(p.dout) && aligned16(p.dq)) return bwd_mma(p, stream);
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
