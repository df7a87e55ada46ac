// kernels/linear_attention/linear_attention.cu — chunked causal linear-attention core (sm_90), fp32 accumulation.
//
// Two paths behind one launcher:
//  * tensor cores (bf16 q, k, v; d_k 64 or 128; d_v % 8 == 0; 16-byte aligned rows): mma.sync m16n8k16, the
//    sequence cut into segments for parallelism — see "tensor-core path" below. This is what bf16 models run.
//  * fp32 CUDA cores (every other case: fp32, fp16, odd head sizes, unaligned views): one block = (32 output
//    columns of v, head h, batch b), 256 threads, walking the chunks of 64 tokens in order (reverse order for
//    the backward passes). Per chunk A = mask(Q Kᵀ) (64×64, inclusive causal mask, 4×4 register tiles),
//    O = scale (A V + Q S) (64×32), S += Kᵀ V (dk×32, in registers, mirrored in smem for the next Q S).
// Neither path writes a per-chunk state to global memory (fla materialises a per-chunk h); the tensor-core path
// writes one fp32 K^T V sum per segment (P per head, P ≈ 2 blocks per SM / blocks without segments).
//
// Floor (B=4, T=4096, H=16, D=128, bf16): q, k, v, o = 4 × 67 MB = 0.27 GB → 0.065 ms at the H200's measured
// 4.2 TB/s; the tensor-core path issues 2·(2·64·D + 64·D + 2·D·D)·B·H·T ≈ 30 GFLOP of mma (scores recomputed per
// 64-column v tile, the masked half included) → 0.04 ms at the measured 765 TFLOP/s bf16 matmul peak.
// Measured (H200, bench/RESULTS.md): 0.30 ms forward (the CUDA-core path: 3.3 ms; fla-core in the same run
// 0.54 ms), i.e. ~5× the floor: per chunk each warp's ldmatrix → mma chain runs with only two warps per SM
// sub-partition (shared memory holds two blocks per SM).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/device_utils.cuh"
#include "common/mma.cuh"
#include "linear_attention/linear_attention.h"

namespace dysra::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kC = kLinearAttentionChunk;
constexpr int kVT = 32;       // v columns per block
constexpr int kLDT = kC + 4;  // row of a transposed [d][token] tile (16-byte aligned rows)
constexpr int kMaxRowsPerThread = kLinearAttentionMaxDk / 32;

__device__ __forceinline__ float4 ld4(const float* p) { return *reinterpret_cast<const float4*>(p); }

__global__ void __launch_bounds__(kThreads) linear_attention_core_kernel(LinearAttentionParams p) {
  extern __shared__ float4 smem_f4[];
  float* smem = reinterpret_cast<float*>(smem_f4);
  const int dk = p.dk;
  float* qT = smem;               // [dk][kLDT]
  float* kT = qT + dk * kLDT;     // [dk][kLDT]
  float* sA = kT + dk * kLDT;     // [kC][kLDT]
  float* sv = sA + kC * kLDT;     // [kC][kVT]
  float* sS = sv + kC * kVT;      // [dk][kVT]

  const int tid = threadIdx.x;
  const int v0 = blockIdx.x * kVT, h = blockIdx.y, b = blockIdx.z;
  const int T = p.seqlen, dv = p.dv;
  const int n_chunks = (T + kC - 1) / kC;

  // S in registers: rows d = drow + 32·m, columns c4*4 .. +4 of this block's tile
  const int c4 = tid % 8, drow = tid / 8;
  float Sr[kMaxRowsPerThread][4];
#pragma unroll
  for (int m = 0; m < kMaxRowsPerThread; ++m) {
    const int d = drow + 32 * m;
#pragma unroll
    for (int cc = 0; cc < 4; ++cc) {
      const int c = v0 + c4 * 4 + cc;
      float s0 = 0.f;
      if (p.S0 && d < dk && c < dv) s0 = p.S0[((size_t(b) * p.heads + h) * dk + d) * dv + c];
      Sr[m][cc] = s0;
      if (d < dk) sS[d * kVT + c4 * 4 + cc] = s0;
    }
  }

  const size_t qbase = size_t(b) * p.q.stride_b + size_t(h) * p.q.stride_h;
  const size_t kbase = size_t(b) * p.k.stride_b + size_t(h) * p.k.stride_h;
  const size_t vbase = size_t(b) * p.v.stride_b + size_t(h) * p.v.stride_h;

  for (int it = 0; it < n_chunks; ++it) {
    const int chunk = p.reverse ? n_chunks - 1 - it : it;
    const int t0 = chunk * kC;
    // load Q, K (transposed) and the V column tile
    for (int e = tid; e < kC * dk; e += kThreads) {
      const int i = e / dk, d = e % dk, t = t0 + i;
      float qv = 0.f, kv = 0.f;
      if (t < T) {
        qv = load_as_float(p.q.ptr, p.q.dtype, qbase + size_t(t) * p.q.stride_t + d);
        kv = load_as_float(p.k.ptr, p.k.dtype, kbase + size_t(t) * p.k.stride_t + d);
      }
      qT[d * kLDT + i] = qv;
      kT[d * kLDT + i] = kv;
    }
    for (int e = tid; e < kC * kVT; e += kThreads) {
      const int j = e / kVT, c = e % kVT, t = t0 + j;
      sv[j * kVT + c] = (t < T && v0 + c < dv)
                            ? load_as_float(p.v.ptr, p.v.dtype, vbase + size_t(t) * p.v.stride_t + v0 + c)
                            : 0.f;
    }
    __syncthreads();

    // A = mask(Q Kᵀ): rows ty*4.., cols tx*4..
    {
      const int ty = tid / 16, tx = tid % 16;
      float acc[4][4] = {};
      for (int d = 0; d < dk; ++d) {
        const float4 q4 = ld4(qT + d * kLDT + ty * 4), k4 = ld4(kT + d * kLDT + tx * 4);
        const float qa[4] = {q4.x, q4.y, q4.z, q4.w}, ka[4] = {k4.x, k4.y, k4.z, k4.w};
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
          for (int c = 0; c < 4; ++c) acc[r][c] = fmaf(qa[r], ka[c], acc[r][c]);
      }
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int i = ty * 4 + r;
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int j = tx * 4 + c;
          const bool keep = p.reverse ? j >= i : j <= i;
          sA[i * kLDT + j] = keep ? acc[r][c] : 0.f;
        }
      }
    }
    __syncthreads();

    // O = scale (A V + Q S): rows ty*2, ty*2+1; cols tx*4..
    {
      const int ty = tid / 8, tx = tid % 8, r0 = ty * 2, r1 = r0 + 1;
      float o0[4] = {}, o1[4] = {};
      for (int j = 0; j < kC; ++j) {
        const float a0 = sA[r0 * kLDT + j], a1 = sA[r1 * kLDT + j];
        const float4 v4 = ld4(sv + j * kVT + tx * 4);
        o0[0] = fmaf(a0, v4.x, o0[0]); o0[1] = fmaf(a0, v4.y, o0[1]);
        o0[2] = fmaf(a0, v4.z, o0[2]); o0[3] = fmaf(a0, v4.w, o0[3]);
        o1[0] = fmaf(a1, v4.x, o1[0]); o1[1] = fmaf(a1, v4.y, o1[1]);
        o1[2] = fmaf(a1, v4.z, o1[2]); o1[3] = fmaf(a1, v4.w, o1[3]);
      }
      for (int d = 0; d < dk; ++d) {
        const float2 q2 = *reinterpret_cast<const float2*>(qT + d * kLDT + r0);
        const float4 s4 = ld4(sS + d * kVT + tx * 4);
        o0[0] = fmaf(q2.x, s4.x, o0[0]); o0[1] = fmaf(q2.x, s4.y, o0[1]);
        o0[2] = fmaf(q2.x, s4.z, o0[2]); o0[3] = fmaf(q2.x, s4.w, o0[3]);
        o1[0] = fmaf(q2.y, s4.x, o1[0]); o1[1] = fmaf(q2.y, s4.y, o1[1]);
        o1[2] = fmaf(q2.y, s4.z, o1[2]); o1[3] = fmaf(q2.y, s4.w, o1[3]);
      }
      const size_t obase = size_t(b) * p.out_stride_b + size_t(h) * p.out_stride_h;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int col = v0 + tx * 4 + c;
        if (col >= dv) continue;
        if (t0 + r0 < T) store_from_float(p.out, p.out_dtype, obase + size_t(t0 + r0) * p.out_stride_t + col, p.scale * o0[c]);
        if (t0 + r1 < T) store_from_float(p.out, p.out_dtype, obase + size_t(t0 + r1) * p.out_stride_t + col, p.scale * o1[c]);
      }
    }
    __syncthreads();

    // S += Kᵀ V
    for (int j = 0; j < kC; ++j) {
      const float4 v4 = ld4(sv + j * kVT + c4 * 4);
#pragma unroll
      for (int m = 0; m < kMaxRowsPerThread; ++m) {
        const int d = drow + 32 * m;
        if (d < dk) {
          const float kv = kT[d * kLDT + j];
          Sr[m][0] = fmaf(kv, v4.x, Sr[m][0]); Sr[m][1] = fmaf(kv, v4.y, Sr[m][1]);
          Sr[m][2] = fmaf(kv, v4.z, Sr[m][2]); Sr[m][3] = fmaf(kv, v4.w, Sr[m][3]);
        }
      }
    }
#pragma unroll
    for (int m = 0; m < kMaxRowsPerThread; ++m) {
      const int d = drow + 32 * m;
      if (d < dk) *reinterpret_cast<float4*>(sS + d * kVT + c4 * 4) = make_float4(Sr[m][0], Sr[m][1], Sr[m][2], Sr[m][3]);
    }
    __syncthreads();
  }

  if (p.S_final) {
#pragma unroll
    for (int m = 0; m < kMaxRowsPerThread; ++m) {
      const int d = drow + 32 * m;
      if (d >= dk) continue;
#pragma unroll
      for (int cc = 0; cc < 4; ++cc) {
        const int c = v0 + c4 * 4 + cc;
        if (c < dv) p.S_final[((size_t(b) * p.heads + h) * dk + d) * dv + c] = Sr[m][cc];
      }
    }
  }
}


// ------------------------------------------------------------------------------------------ tensor-core path
// One block = (64 output columns of v, head h, batch b, sequence segment), 4 warps, walking the segment's chunks
// in order (reverse order for the backward passes) with the next chunk's Q, K, V tile loaded by cp.async while
// the current one is computed. Warp w owns chunk rows 16w .. 16w+15 of the scores and the output, and state rows
// w·DK/4 .. of S:
//   scores  = mask(Q_w Kᵀ)             mma m16n8k16, fp32 accumulators; packed to bf16 they are the A operand of
//   O_w     = scale (scores V + Q_w S)   S read from shared memory in bf16 (fla rounds its state the same way)
//   S_w    += (Kᵀ)_w V                  fp32 accumulators in registers for the whole segment
// After every chunk the bf16 copy of S in shared memory is refreshed for the next chunk's Q S.
// Segments: with only B·H·(d_v/64) blocks the card is under-filled (128 blocks of 4 warps at B4 H16 d_v 128) and
// every block walks T/64 chunks one after another. The sequence is therefore cut into P segments
// (P·B·H·d_v/64 ≈ 2 blocks per SM): a first kernel sums each segment's Kᵀ V (fp32, the workspace), and each block of
// the main kernel starts from S0 plus the sums of the segments before its own (after, in reverse mode).
template <typename T, int DK>
struct LinMmaTile {
  static constexpr int kRows = kC, kVCols = 64, kLdq = DK + 8, kLdv = kVCols + 8, kWarps = 4;
  static constexpr int kMt = DK / 16 / kWarps;  // 16-row m-tiles of S per warp
  static constexpr size_t smem_bytes() {
    return sizeof(T) * (2 * 2 * size_t(kRows) * kLdq + 2 * size_t(kRows) * kLdv + size_t(DK) * kLdv);
  }
};

/// Segment `seg` of P: chunks [first, end).
__device__ __forceinline__ void segment_chunks(int n_chunks, int P, int seg, int& first, int& end) {
  const int per = (n_chunks + P - 1) / P;
  first = min(n_chunks, seg * per);
  end = min(n_chunks, first + per);
}

/// cp.async of chunk `chunk` (rows t0 .. t0+63) of q (when sQ), k and the block's 64 columns of v.
template <typename T, int DK>
__device__ __forceinline__ void load_chunk_async(const LinearAttentionParams& p, const T* qg, const T* kg,
                                                 const T* vg, int chunk, int v0, T* sQ, T* sK, T* sV) {
  using Tile = LinMmaTile<T, DK>;
  constexpr int LDQ = Tile::kLdq, LDV = Tile::kLdv, VT = Tile::kVCols;
  const int tid = threadIdx.x, t0 = chunk * kC;
  for (int e = tid; e < kC * DK / 8; e += 128) {
    const int r = e / (DK / 8), c8 = (e % (DK / 8)) * 8, t = t0 + r;
    const bool ok = t < p.seqlen;
    const size_t tt = ok ? size_t(t) : 0;
    if (sQ) mma::cp_async_16(sQ + r * LDQ + c8, qg + tt * p.q.stride_t + c8, ok);
    mma::cp_async_16(sK + r * LDQ + c8, kg + tt * p.k.stride_t + c8, ok);
  }
  for (int e = tid; e < kC * VT / 8; e += 128) {
    const int r = e / (VT / 8), c8 = (e % (VT / 8)) * 8, t = t0 + r, col = v0 + c8;
    const bool ok = t < p.seqlen && col < p.dv;  // d_v % 8 == 0: a piece is wholly inside or outside
    mma::cp_async_16(sV + r * LDV + c8, vg + (ok ? size_t(t) * p.v.stride_t + col : 0), ok);
  }
  mma::cp_async_commit();
}

/// accS (this warp's rows of S) += Kᵀ V over the 64 tokens of the chunk in sK / sV.
template <typename T, int DK>
__device__ __forceinline__ void accumulate_state(float (&accS)[LinMmaTile<T, DK>::kMt][8][4], const T* Kb,
                                                 const T* Vb, int lane, int srow0) {
  using Tile = LinMmaTile<T, DK>;
  constexpr int LDQ = Tile::kLdq, LDV = Tile::kLdv, MT = Tile::kMt;
#pragma unroll
  for (int j = 0; j < kC / 16; ++j) {
    uint32_t vb[4][4];
#pragma unroll
    for (int np = 0; np < 4; ++np)
      mma::ldmatrix_x4_trans(vb[np], Vb + (j * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * LDV + np * 16 + (lane / 16) * 8);
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      uint32_t ka[4];
      mma::ldmatrix_x4_trans(ka, Kb + (j * 16 + (lane % 8) + (lane / 16) * 8) * LDQ + srow0 + 16 * mt + ((lane / 8) % 2) * 8);
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        mma::mma_16816<T>(accS[mt][2 * np], ka, vb[np][0], vb[np][1]);
        mma::mma_16816<T>(accS[mt][2 * np + 1], ka, vb[np][2], vb[np][3]);
      }
    }
  }
}

/// Element (mt, nt, i) of a warp's S fragment → (state row, column within the 64-column tile).
__device__ __forceinline__ int frag_row(int srow0, int mt, int g, int i) { return srow0 + 16 * mt + g + (i >= 2 ? 8 : 0); }
__device__ __forceinline__ int frag_col(int nt, int q4, int i) { return nt * 8 + 2 * q4 + (i & 1); }

/// f(mt, nt, i, state row, column within the tile) for every element of a warp's S fragments.
template <int MT, typename F>
__device__ __forceinline__ void for_state_frag(int srow0, int g, int q4, F&& f) {
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) f(mt, nt, i, frag_row(srow0, mt, g, i), frag_col(nt, q4, i));
}

/// Workspace of the segment sums: [B, H, P, DK, dv] fp32.
__device__ __forceinline__ size_t segment_offset(const LinearAttentionParams& p, int b, int h, int seg) {
  return ((size_t(b) * p.heads + h) * p.n_segments + seg) * size_t(p.dk) * p.dv;
}

template <typename T, int DK>
__global__ void __launch_bounds__(128) linear_attention_segment_sum_kernel(LinearAttentionParams p) {
  using Tile = LinMmaTile<T, DK>;
  constexpr int LDQ = Tile::kLdq, LDV = Tile::kLdv, MT = Tile::kMt;
  extern __shared__ uint4 smem_u4[];
  T* sK = reinterpret_cast<T*>(smem_u4);  // [2][C][LDQ]
  T* sV = sK + 2 * kC * LDQ;              // [2][C][LDV]
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, q4 = lane & 3;
  const int v0 = blockIdx.x * Tile::kVCols, h = blockIdx.y, b = blockIdx.z / p.n_segments,
            seg = blockIdx.z % p.n_segments;
  const T* kg = static_cast<const T*>(p.k.ptr) + size_t(b) * p.k.stride_b + size_t(h) * p.k.stride_h;
  const T* vg = static_cast<const T*>(p.v.ptr) + size_t(b) * p.v.stride_b + size_t(h) * p.v.stride_h;
  int first, end;
  segment_chunks((p.seqlen + kC - 1) / kC, p.n_segments, seg, first, end);
  const int srow0 = warp * 16 * MT;
  float accS[MT][8][4] = {};
  if (first < end) load_chunk_async<T, DK>(p, nullptr, kg, vg, first, v0, nullptr, sK, sV);
  for (int c = first; c < end; ++c) {
    const int buf = (c - first) & 1;
    if (c + 1 < end) {
      load_chunk_async<T, DK>(p, nullptr, kg, vg, c + 1, v0, nullptr, sK + (buf ^ 1) * kC * LDQ, sV + (buf ^ 1) * kC * LDV);
      mma::cp_async_wait<1>();
    } else {
      mma::cp_async_wait<0>();
    }
    __syncthreads();
    accumulate_state<T, DK>(accS, sK + buf * kC * LDQ, sV + buf * kC * LDV, lane, srow0);
    __syncthreads();  // the next load overwrites this buffer
  }
  float* dst = p.workspace + segment_offset(p, b, h, seg);
  for_state_frag<MT>(srow0, g, q4, [&](int mt, int nt, int i, int d, int c) {
    if (v0 + c < p.dv) dst[size_t(d) * p.dv + v0 + c] = accS[mt][nt][i];
  });
}

template <typename T, int DK>
__global__ void __launch_bounds__(128) linear_attention_mma_kernel(LinearAttentionParams p) {
  using Tile = LinMmaTile<T, DK>;
  constexpr int C = Tile::kRows, LDQ = Tile::kLdq, LDV = Tile::kLdv, MT = Tile::kMt;
  static_assert(MT >= 1, "DK must be a multiple of 64");
  extern __shared__ uint4 smem_u4[];
  T* sQ = reinterpret_cast<T*>(smem_u4);  // [2][C][LDQ]
  T* sK = sQ + 2 * C * LDQ;               // [2][C][LDQ]
  T* sV = sK + 2 * C * LDQ;               // [2][C][LDV]
  T* sS = sV + 2 * C * LDV;               // [DK][LDV]  (k = state row d, n = column)

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, q4 = lane & 3;
  const int P = p.n_segments;
  const int v0 = blockIdx.x * Tile::kVCols, h = blockIdx.y, b = blockIdx.z / P, seg = blockIdx.z % P;
  const int T_ = p.seqlen, dv = p.dv;
  int first, end;
  segment_chunks((T_ + C - 1) / C, P, seg, first, end);
  const int n_chunks = end - first;
  const T* qg = static_cast<const T*>(p.q.ptr) + size_t(b) * p.q.stride_b + size_t(h) * p.q.stride_h;
  const T* kg = static_cast<const T*>(p.k.ptr) + size_t(b) * p.k.stride_b + size_t(h) * p.k.stride_h;
  const T* vg = static_cast<const T*>(p.v.ptr) + size_t(b) * p.v.stride_b + size_t(h) * p.v.stride_h;
  const size_t state_base = (size_t(b) * p.heads + h) * DK * size_t(dv);
  const int srow0 = warp * 16 * MT;  // first state row of this warp
  auto load = [&](int chunk, int buf) {
    load_chunk_async<T, DK>(p, qg, kg, vg, chunk, v0, sQ + buf * C * LDQ, sK + buf * C * LDQ, sV + buf * C * LDV);
  };
  if (n_chunks > 0) load(p.reverse ? end - 1 : first, 0);

  // S in registers; starts at S0 plus the sums of the segments that come before this one in walking order
  float accS[MT][8][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int d = frag_row(srow0, mt, g, i), col = v0 + frag_col(nt, q4, i);
        float s0 = 0.f;
        if (col < dv) {
          if (p.S0) s0 = p.S0[state_base + size_t(d) * dv + col];
          for (int sp = p.reverse ? seg + 1 : 0; sp < (p.reverse ? P : seg); ++sp)
            s0 += p.workspace[segment_offset(p, b, h, sp) + size_t(d) * dv + col];
        }
        accS[mt][nt][i] = s0;
      }
  auto store_S_smem = [&]() {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        const int d = srow0 + 16 * mt + g, c = nt * 8 + 2 * q4;
        *reinterpret_cast<uint32_t*>(sS + d * LDV + c) = mma::pack2<T>(accS[mt][nt][0], accS[mt][nt][1]);
        *reinterpret_cast<uint32_t*>(sS + (d + 8) * LDV + c) = mma::pack2<T>(accS[mt][nt][2], accS[mt][nt][3]);
      }
  };
  store_S_smem();

  const size_t obase = size_t(b) * p.out_stride_b + size_t(h) * p.out_stride_h;
  for (int it = 0; it < n_chunks; ++it) {
    const int chunk = p.reverse ? end - 1 - it : first + it, buf = it & 1, t0 = chunk * C;
    if (it + 1 < n_chunks) {
      load(p.reverse ? chunk - 1 : chunk + 1, buf ^ 1);
      mma::cp_async_wait<1>();
    } else {
      mma::cp_async_wait<0>();
    }
    __syncthreads();  // this chunk's tiles and the previous chunk's S are visible
    const T* Qb = sQ + buf * C * LDQ;
    const T* Kb = sK + buf * C * LDQ;
    const T* Vb = sV + buf * C * LDV;

    // scores = mask(Q_w Kᵀ)
    uint32_t qa[DK / 16][4];
    mma::load_a_rows<T, DK / 16>(qa, Qb, LDQ, warp * 16, lane);
    float sc[8][4];
    mma::zero(sc);
    mma::warp_mma_nk<T, DK / 16, 4>(sc, qa, Kb, LDQ, lane);
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int row = warp * 16 + g + (i >= 2 ? 8 : 0), col = frag_col(nt, q4, i);
        const bool keep = p.reverse ? col >= row : col <= row;
        if (!keep) sc[nt][i] = 0.f;
      }

    // O_w = scores V + Q_w S
    float o[8][4];
    mma::zero(o);
    mma::warp_mma_kn_c<T, C / 16, 4>(o, sc, Vb, LDV, lane);
    mma::warp_mma_kn<T, DK / 16, 4>(o, qa, sS, LDV, lane);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int t = t0 + warp * 16 + g + half * 8;
      if (t >= T_) continue;
      const size_t rowoff = obase + size_t(t) * p.out_stride_t;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        const int col = v0 + nt * 8 + 2 * q4;
        if (col >= dv) continue;
        const float x = p.scale * o[nt][2 * half], y = p.scale * o[nt][2 * half + 1];
        if (p.out_dtype == DType::kFloat32) {
          *reinterpret_cast<float2*>(static_cast<float*>(p.out) + rowoff + col) = make_float2(x, y);
        } else {
          *reinterpret_cast<uint32_t*>(static_cast<T*>(p.out) + rowoff + col) = mma::pack2<T>(x, y);
        }
      }
    }

    accumulate_state<T, DK>(accS, Kb, Vb, lane, srow0);
    __syncthreads();  // every warp is done reading S (and this chunk's buffers)
    store_S_smem();
  }

  const bool last_segment = p.reverse ? seg == 0 : seg == P - 1;
  if (p.S_final && last_segment) {
    for_state_frag<MT>(srow0, g, q4, [&](int mt, int nt, int i, int d, int c) {
      if (v0 + c < dv) p.S_final[state_base + size_t(d) * dv + v0 + c] = accS[mt][nt][i];
    });
  }
}

bool rows_of_8(const LinearAttentionTensor& t) {
  return t.dtype == DType::kBFloat16 && aligned16(t.ptr) && t.stride_b % 8 == 0 && t.stride_t % 8 == 0 &&
         t.stride_h % 8 == 0;
}

/// The tensor-core path takes bf16 q, k, v with d_k of 64 or 128, d_v a multiple of 8 and 16-byte aligned rows.
/// (fp16 stays on the fp32 path: its range would not hold the bf16-rounded state of a long sequence.)
bool use_mma_path(const LinearAttentionParams& p) {
  if (const char* e = std::getenv("DYSRA_LINEAR_ATTENTION_KERNEL")) {
    if (std::string(e) == "simt") return false;
  }
  const bool out_ok = (p.out_dtype == DType::kFloat32 || p.out_dtype == DType::kBFloat16) &&
                      reinterpret_cast<uintptr_t>(p.out) % 8 == 0 && p.out_stride_b % 2 == 0 &&
                      p.out_stride_t % 2 == 0 && p.out_stride_h % 2 == 0;
  return (p.dk == 64 || p.dk == 128) && p.dv % 8 == 0 && rows_of_8(p.q) && rows_of_8(p.k) && rows_of_8(p.v) &&
         out_ok;
}

/// Segments of the tensor-core path: enough blocks for about two per SM (the kernel's shared memory allows two),
/// at least 4 chunks per segment.
int n_segments(const LinearAttentionParams& p) {
  const int64_t base = int64_t((p.dv + 63) / 64) * p.heads * p.batch;
  const int n_chunks = (p.seqlen + kC - 1) / kC;
  int64_t P = (2 * int64_t(current_device_sm_count())) / std::max<int64_t>(base, 1);
  P = std::min<int64_t>(P, n_chunks / 4);
  P = std::min<int64_t>(P, 65535 / std::max(p.batch, 1));
  return int(std::max<int64_t>(P, 1));
}

template <int DK>
cudaError_t launch_mma(LinearAttentionParams p, cudaStream_t stream) {
  using Tile = LinMmaTile<__nv_bfloat16, DK>;
  p.n_segments = n_segments(p);
  if (p.n_segments > 1 && p.workspace == nullptr) return cudaErrorInvalidValue;
  const dim3 grid((p.dv + Tile::kVCols - 1) / Tile::kVCols, p.heads, p.batch * p.n_segments);
  if (p.n_segments > 1) {
    const size_t smem = sizeof(__nv_bfloat16) * 2 * size_t(kC) * (Tile::kLdq + Tile::kLdv);
    auto kernel = linear_attention_segment_sum_kernel<__nv_bfloat16, DK>;
    DYSRA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    kernel<<<grid, 128, smem, stream>>>(p);
    DYSRA_CUDA_TRY(cudaGetLastError());
  }
  const size_t smem = Tile::smem_bytes();
  auto kernel = linear_attention_mma_kernel<__nv_bfloat16, DK>;
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  kernel<<<grid, 128, smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t linear_attention_core(const LinearAttentionParams& p, cudaStream_t stream) {
  if (p.dk < 1 || p.dk > kLinearAttentionMaxDk || p.dv < 1) return cudaErrorInvalidValue;
  if (p.batch == 0 || p.heads == 0) return cudaSuccess;
  if (use_mma_path(p)) return p.dk == 64 ? launch_mma<64>(p, stream) : launch_mma<128>(p, stream);
  const size_t smem = sizeof(float) * (2 * size_t(p.dk) * kLDT + kC * kLDT + kC * kVT + size_t(p.dk) * kVT);
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(linear_attention_core_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      int(smem)));
  const dim3 grid((p.dv + kVT - 1) / kVT, p.heads, p.batch);
  linear_attention_core_kernel<<<grid, kThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace dysra::kernels

namespace dysra::kernels {
size_t linear_attention_workspace_bytes(const LinearAttentionParams& p) {
  if (p.batch == 0 || p.heads == 0 || !use_mma_path(p)) return 0;
  const int P = n_segments(p);
  return P > 1 ? sizeof(float) * size_t(p.batch) * p.heads * P * size_t(p.dk) * p.dv : 0;
}
}  // namespace dysra::kernels
