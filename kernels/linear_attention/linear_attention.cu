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
// writes one fp32 K^T V sum per part of a segment (see "Segments" below).
//
// Floor (B=4, T=4096, H=16, D=128, bf16): q, k, v, o = 4 × 67 MB = 0.27 GB → 0.065 ms at the H200's measured
// 4.2 TB/s; the tensor-core path issues 2·(2·64·D + 64·D + 2·D·D)·B·H·T ≈ 30 GFLOP of mma (scores recomputed per
// 64-column v tile, the masked half included) → 0.04 ms at the measured 765 TFLOP/s bf16 matmul peak.
// Measured (H200, bench/RESULTS.md, session 5): 0.25–0.30 ms forward, normalised or not (fla-core's default,
// normalised, 0.79 ms in the same run; the CUDA-core path 3.3 ms), i.e. ~4× the floor: the main kernel is
// latency-bound (255 registers, two blocks of 4 warps per SM, an instruction every ~6 cycles per warp).
// At T16384 (1.07 GB of q, k, v, o: 0.26 ms floor) the warpgroup core below (TMA, the default from T = 8192 with d_k
// 128) runs the unnormalised forward in 0.54–0.56 ms and forward+backward in 1.70–1.75 ms, against 0.67–0.69 /
// 2.30–2.42 ms for the mma.sync kernel (H200, session 9).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/device_utils.cuh"
#include "common/mma.cuh"
#include "common/tma.cuh"
#include "common/wgmma.cuh"
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
//   scores  = mask(Q_w Kᵀ)             mma m16n8k16, fp32 accumulators, interleaved with O_w = Q_w S (independent
//                                       chains); packed to bf16 the scores are the A operand of
//   O_w    += scores V                  S read from shared memory in bf16 (fla rounds its state the same way)
//   S_w    += (Kᵀ)_w V                  fp32 accumulators in registers for the whole segment; same V fragments
// After every chunk the bf16 copy of S in shared memory is refreshed for the next chunk's Q S.
// Segments: with only B·H·(d_v/64) blocks the card is under-filled (128 blocks of 4 warps at B4 H16 d_v 128) and
// every block walks T/64 chunks one after another. The sequence is therefore cut into P segments
// (P·B·H·d_v/64 ≈ 2 blocks per SM): a first kernel sums the Kᵀ V of the segments that precede another (fp32, the
// workspace; each segment in n_sub parts, so that this lighter kernel fills the card in one wave; unaugmented calls
// with d_k 128 take the warpgroup sum kernel further below), and each block of the main kernel starts from S0 plus
// the sums of the parts before its segment (after, in reverse mode).
// Augmentations (the normalised op and its gradients, linear_attention.h): their per-token vectors enter as bf16
// hi + lo fragments of one extra mma tile (hilo_frag), so the extra state (σ or ζ) and output column stay
// fp32-accurate; with aug.normalize the value augmentation's column divides the output before it is stored.
template <typename T, int DK>
struct LinMmaTile {
  static constexpr int kRows = kC, kVCols = 64, kLdq = DK + 8, kLdv = kVCols + 8, kWarps = 4;
  static constexpr int kMt = DK / 16 / kWarps;  // 16-row m-tiles of S per warp
  static constexpr size_t smem_bytes() {
    return sizeof(T) * (2 * 2 * size_t(kRows) * kLdq + 2 * size_t(kRows) * kLdv + size_t(DK) * kLdv);
  }
  /// fp32 area of the augmentations: two double-buffered per-token vectors, σ (64 columns), ζ (DK rows) and ζ's
  /// bf16 hi and lo rows (DK floats' worth)
  static constexpr int kAugFloats = 2 * 2 * kRows + kVCols + 2 * DK;
};

enum LinAug : int { kAugNone = 0, kAugContract = 1, kAugValue = 2 };

/// The per-token vectors an augmentation reads per chunk: contract α (q side) and β (k side); value γ.
__device__ __forceinline__ const float* aug_vec(const LinearAttentionParams& p, int aug, int which) {
  if (aug == kAugContract) return which == 0 ? p.aug.alpha : p.aug.beta;
  if (aug == kAugValue) return which == 0 ? p.aug.gamma : nullptr;
  return nullptr;
}

/// Segment `seg` of P: chunks [first, end).
__device__ __forceinline__ void segment_chunks(int n_chunks, int P, int seg, int& first, int& end) {
  const int per = (n_chunks + P - 1) / P;
  first = min(n_chunks, seg * per);
  end = min(n_chunks, first + per);
}

/// cp.async of chunk `chunk` (rows t0 .. t0+63) of q (when sQ), k, the block's 64 columns of v and, when given, two
/// per-token fp32 vectors of this (b, h) (vec[i] → svec[i], 64 floats; zeros past T).
/// Thread tid copies the 16-byte pieces of column c8 = (tid % pieces per row)·8 in rows tid / (pieces per row) + a
/// multiple of 128 / (pieces per row): one base address per tensor, then constant steps. Chunks wholly inside the
/// sequence (and a v tile wholly inside d_v) take the unchecked copies; the last chunk checks every row.
template <typename T, int DK>
__device__ __forceinline__ void load_chunk_async(const LinearAttentionParams& p, const T* qg, const T* kg,
                                                 const T* vg, int chunk, int v0, T* sQ, T* sK, T* sV,
                                                 const float* vec0 = nullptr, float* svec0 = nullptr,
                                                 const float* vec1 = nullptr, float* svec1 = nullptr) {
  using Tile = LinMmaTile<T, DK>;
  constexpr int LDQ = Tile::kLdq, LDV = Tile::kLdv, VT = Tile::kVCols;
  constexpr int QP = DK / 8, QR = 128 / QP;  // q/k: pieces per row, rows per pass
  constexpr int VP = VT / 8, VR = 128 / VP;  // v
  static_assert(128 % QP == 0 && kC % QR == 0 && kC % VR == 0, "pieces must tile the chunk");
  const int tid = threadIdx.x, t0 = chunk * kC;
  const int qr = tid / QP, qc = (tid % QP) * 8, vr = tid / VP, vc = (tid % VP) * 8;
  const bool v_ok = v0 + vc < p.dv;  // d_v % 8 == 0: a piece is wholly inside or outside
  const T* gq = sQ ? qg + size_t(t0 + qr) * p.q.stride_t + qc : nullptr;
  const T* gk = kg + size_t(t0 + qr) * p.k.stride_t + qc;
  const T* gv = vg + size_t(t0 + vr) * p.v.stride_t + v0 + vc;
  const uint32_t aq = sQ ? mma::smem_addr(sQ + qr * LDQ + qc) : 0u, ak = mma::smem_addr(sK + qr * LDQ + qc),
                 av = mma::smem_addr(sV + vr * LDV + vc);
  if (t0 + kC <= p.seqlen) {
#pragma unroll
    for (int i = 0; i < kC / QR; ++i) {
      if (sQ) mma::cp_async_16(aq + i * QR * LDQ * sizeof(T), gq + size_t(i * QR) * p.q.stride_t);
      mma::cp_async_16(ak + i * QR * LDQ * sizeof(T), gk + size_t(i * QR) * p.k.stride_t);
    }
    if (v_ok) {
#pragma unroll
      for (int i = 0; i < kC / VR; ++i)
        mma::cp_async_16(av + i * VR * LDV * sizeof(T), gv + size_t(i * VR) * p.v.stride_t);
    } else {
#pragma unroll
      for (int i = 0; i < kC / VR; ++i) mma::cp_async_16(sV + (vr + i * VR) * LDV + vc, vg, false);
    }
  } else {  // the last chunk: rows past T are zero-filled (nothing is read)
#pragma unroll
    for (int i = 0; i < kC / QR; ++i) {
      const bool ok = t0 + qr + i * QR < p.seqlen;
      if (sQ) mma::cp_async_16(sQ + (qr + i * QR) * LDQ + qc, ok ? gq + size_t(i * QR) * p.q.stride_t : qg, ok);
      mma::cp_async_16(sK + (qr + i * QR) * LDQ + qc, ok ? gk + size_t(i * QR) * p.k.stride_t : kg, ok);
    }
#pragma unroll
    for (int i = 0; i < kC / VR; ++i) {
      const bool ok = v_ok && t0 + vr + i * VR < p.seqlen;
      mma::cp_async_16(sV + (vr + i * VR) * LDV + vc, ok ? gv + size_t(i * VR) * p.v.stride_t : vg, ok);
    }
  }
  if (tid < kC) {
    const bool ok = t0 + tid < p.seqlen;
    if (vec0) mma::cp_async_4(svec0 + tid, vec0 + (ok ? t0 + tid : 0), ok);
    if (vec1) mma::cp_async_4(svec1 + tid, vec1 + (ok ? t0 + tid : 0), ok);
  }
  mma::cp_async_commit();
}

/// The split x = hi + lo behind the augmentations: hi = x rounded to bf16, lo = x − hi (rounded to bf16 where it is
/// stored; together ~16 significant bits).
__device__ __forceinline__ float bf16_hi(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

/// The bf16 fragment pair of a per-token (or per-state-row) fp32 vector x[k0 .. k0+15] split as x = hi + lo
/// (hi = bf16(x), lo = bf16(x − hi): ~16 significant bits): as a B fragment (k16×n8) it is the tile whose column 0
/// is hi(x) and column 1 lo(x) (other columns 0); {f[0], 0, f[1], 0} is the A fragment (m16×k16) whose row 0 is
/// hi(x) and row 1 lo(x). One mma against it gives the product with x in two accumulator columns (rows) whose sum
/// is fp32-accurate. x null stands for ones.
__device__ __forceinline__ void hilo_frag(uint32_t (&f)[2], const float* x, int k0, int lane) {
  const int g = lane >> 2, q = lane & 3;
  float2 a = make_float2(1.f, 1.f), b = make_float2(1.f, 1.f);
  if (x) {
    a = *reinterpret_cast<const float2*>(x + k0 + 2 * q);
    b = *reinterpret_cast<const float2*>(x + k0 + 2 * q + 8);
  }
  auto part = [g](float v) {
    const float hi = bf16_hi(v);
    return g == 0 ? hi : g == 1 ? v - hi : 0.f;
  };
  f[0] = mma::pack2<__nv_bfloat16>(part(a.x), part(a.y));
  f[1] = mma::pack2<__nv_bfloat16>(part(b.x), part(b.y));
}

/// accS (this warp's rows of S) += Kᵀ V over the 64 tokens of the chunk in sK / sV, and, when `aug_on`, the
/// augmentation's extra state through the same fragments (`vec`: the chunk's per-token vector in shared memory,
/// null = ones):
///   value:    accX[mt] += Kᵀ_mt [hi(γ) lo(γ)]   (ζ of this warp's state rows = columns 0 + 1)
///   contract: accX[n]  += [hi(β); lo(β)] V_n   (σ of v columns 8·(2·warp + n) .. = rows 0 + 1)
///   none:     accX[mt] += Kᵀ_mt [1 0]          (the column sums of K, LinearAttentionParams::k_sum; read like ζ)
/// With WITH_O, also o += scores V (scores: the warp's masked fp32 scores, packed to bf16 one k-step at a time) from
/// the same V fragments: two independent accumulator chains per fragment, and V read once per chunk.
template <typename T, int DK, int AUG, bool WITH_O = false>
__device__ __forceinline__ void accumulate_state(float (&accS)[LinMmaTile<T, DK>::kMt][8][4], float (&accX)[2][4],
                                                 const T* Kb, const T* Vb, const float* vec, bool aug_on, int lane,
                                                 int warp, int srow0, float (*o)[4] = nullptr,
                                                 const float (*sc)[4] = nullptr) {
  using Tile = LinMmaTile<T, DK>;
  constexpr int LDQ = Tile::kLdq, LDV = Tile::kLdv, MT = Tile::kMt;
  static_assert(MT <= 2, "accX holds at most two m-tiles");
#pragma unroll
  for (int j = 0; j < kC / 16; ++j) {
    uint32_t vb[4][4];
#pragma unroll
    for (int np = 0; np < 4; ++np)
      mma::ldmatrix_x4_trans(vb[np], Vb + (j * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * LDV + np * 16 + (lane / 16) * 8);
    if (WITH_O) {
      const uint32_t a[4] = {mma::pack2<T>(sc[2 * j][0], sc[2 * j][1]), mma::pack2<T>(sc[2 * j][2], sc[2 * j][3]),
                             mma::pack2<T>(sc[2 * j + 1][0], sc[2 * j + 1][1]),
                             mma::pack2<T>(sc[2 * j + 1][2], sc[2 * j + 1][3])};
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        mma::mma_16816<T>(o[2 * np], a, vb[np][0], vb[np][1]);
        mma::mma_16816<T>(o[2 * np + 1], a, vb[np][2], vb[np][3]);
      }
    }
    uint32_t hl[2] = {0u, 0u};
    if (aug_on) hilo_frag(hl, vec, j * 16, lane);
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      uint32_t ka[4];
      mma::ldmatrix_x4_trans(ka, Kb + (j * 16 + (lane % 8) + (lane / 16) * 8) * LDQ + srow0 + 16 * mt + ((lane / 8) % 2) * 8);
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        mma::mma_16816<T>(accS[mt][2 * np], ka, vb[np][0], vb[np][1]);
        mma::mma_16816<T>(accS[mt][2 * np + 1], ka, vb[np][2], vb[np][3]);
      }
      if ((AUG == kAugValue || AUG == kAugNone) && aug_on) mma::mma_16816<T>(accX[mt], ka, hl[0], hl[1]);
    }
    if (AUG == kAugContract && aug_on) {
      const uint32_t a[4] = {hl[0], 0u, hl[1], 0u};
#pragma unroll
      for (int np = 0; np < 4; ++np)
        if (np == warp) {
          mma::mma_16816<T>(accX[0], a, vb[np][0], vb[np][1]);
          mma::mma_16816<T>(accX[1], a, vb[np][2], vb[np][3]);
        }
    }
  }
}

/// The augmentation's state from accX (see accumulate_state): f(index, value) for every element this lane owns.
///   value: f(state row d, ζ_d)  — lanes with q4 == 0;   contract: f(column c of the tile, σ_c) — lanes 0 .. 3.
/// (Every lane must call it: the contract form shuffles.)
template <int AUG, int MT, typename F>
__device__ __forceinline__ void for_aug_state(const float (&accX)[2][4], int lane, int warp, int srow0, F&& f) {
  const int g = lane >> 2, q4 = lane & 3;
  if (AUG == kAugValue) {
    if (q4 == 0)
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        f(srow0 + 16 * mt + g, accX[mt][0] + accX[mt][1]);
        f(srow0 + 16 * mt + g + 8, accX[mt][2] + accX[mt][3]);
      }
  } else if (AUG == kAugContract) {
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float s = accX[n][e] + __shfl_down_sync(0xffffffffu, accX[n][e], 4);
        if (g == 0) f((2 * warp + n) * 8 + 2 * q4 + e, s);
      }
  }
}

/// Element (mt, nt, i) of a warp's S fragment → (state row, column within the 64-column tile).
/// The causal mask on a warp's 16 × 64 scores in m16n8 fragments sc[nt][i] (query rows 16·warp + g, + 8; key columns
/// 8·nt + 2·q4, + 1): keep key ≤ query (reverse walk: key ≥ query). Element (nt, i) has col − row = base + 8·nt +
/// (i & 1) − 8·(i ≥ 2) with base = 2·q4 − g − 16·warp, so one compare with an immediate per element (the walking
/// direction picks the loop, not the compare).
__device__ __forceinline__ void causal_mask_frags(float (&sc)[8][4], int g, int q4, int warp, bool reverse) {
  const int base = 2 * q4 - g - warp * 16;
  if (!reverse) {
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i)
        if (base > (i >= 2 ? 8 : 0) - nt * 8 - (i & 1)) sc[nt][i] = 0.f;
  } else {
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i)
        if (base < (i >= 2 ? 8 : 0) - nt * 8 - (i & 1)) sc[nt][i] = 0.f;
  }
}

/// Writes a warp's 16 output rows t0 + 16·warp + g, + 8 over the 64 columns from v0: o[nt][i] (m16n8 fragments) times
/// its row's factor rs[half], as p.out_dtype (T or fp32). Rows past T and columns past d_v are not written (the dtype
/// and the tile's d_v check are decided once per call, not per element).
template <typename T>
__device__ __forceinline__ void store_out_frags(const LinearAttentionParams& p, size_t obase, int t0, int warp, int g,
                                                int q4, int v0, const float (&o)[8][4], const float (&rs)[2]) {
  const int n_cols = min(64, p.dv - v0);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int t = t0 + warp * 16 + g + half * 8;
    if (t >= p.seqlen) continue;
    const size_t rowoff = obase + size_t(t) * p.out_stride_t + v0 + 2 * q4;
    if (p.out_dtype == DType::kFloat32) {
      float* dst = static_cast<float*>(p.out) + rowoff;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
        if (n_cols == 64 || nt * 8 + 2 * q4 < n_cols)
          *reinterpret_cast<float2*>(dst + nt * 8) = make_float2(rs[half] * o[nt][2 * half], rs[half] * o[nt][2 * half + 1]);
    } else {
      T* dst = static_cast<T*>(p.out) + rowoff;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
        if (n_cols == 64 || nt * 8 + 2 * q4 < n_cols)
          *reinterpret_cast<uint32_t*>(dst + nt * 8) = mma::pack2<T>(rs[half] * o[nt][2 * half], rs[half] * o[nt][2 * half + 1]);
    }
  }
}

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

/// f(mt, nt, hf, state row, column within the tile) for every pair of adjacent elements (2·hf, 2·hf + 1) of a warp's
/// S fragments: the pair's columns are c and c + 1.
template <int MT, typename F>
__device__ __forceinline__ void for_state_pairs(int srow0, int g, int q4, F&& f) {
  for_state_frag<MT>(srow0, g, q4, [&](int mt, int nt, int i, int d, int c) {
    if ((i & 1) == 0) f(mt, nt, i / 2, d, c);
  });
}

/// Workspace of the segment sums, one per part u = seg·n_sub + sub of a segment: [B, H, P·n_sub, DK, dv] fp32, then
/// the augmentation's [B, H, P·n_sub, aug_len] (σ: dv, ζ: DK). (The parts of the segment that comes last in walking
/// order are never needed and not computed.)
__device__ __forceinline__ size_t segment_offset(const LinearAttentionParams& p, int b, int h, int u) {
  return ((size_t(b) * p.heads + h) * p.n_segments * p.n_sub + u) * size_t(p.dk) * p.dv;
}
__device__ __forceinline__ size_t segment_aug_offset(const LinearAttentionParams& p, int b, int h, int u) {
  const size_t len = p.aug.contract ? p.dv : p.dk;
  const size_t n_parts = size_t(p.n_segments) * p.n_sub;
  return size_t(p.batch) * p.heads * n_parts * size_t(p.dk) * p.dv + ((size_t(b) * p.heads + h) * n_parts + u) * len;
}
/// The parts [u_first, u_end) whose sums precede segment `seg` in walking order.
__device__ __forceinline__ void preceding_parts(const LinearAttentionParams& p, int seg, int& u_first, int& u_end) {
  u_first = p.reverse ? (seg + 1) * p.n_sub : 0;
  u_end = p.reverse ? p.n_segments * p.n_sub : seg * p.n_sub;
}

template <typename T, int DK, int AUG>
__global__ void __launch_bounds__(128, 4) linear_attention_segment_sum_kernel(LinearAttentionParams p) {
  using Tile = LinMmaTile<T, DK>;
  constexpr int LDQ = Tile::kLdq, LDV = Tile::kLdv, MT = Tile::kMt;
  extern __shared__ uint4 smem_u4[];
  T* sK = reinterpret_cast<T*>(smem_u4);  // [2][C][LDQ]
  T* sV = sK + 2 * kC * LDQ;              // [2][C][LDV]
  float* sVec = reinterpret_cast<float*>(sV + 2 * kC * LDV);  // [2][C] (augmentations: β or γ)
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, q4 = lane & 3;
  // blockIdx.z = (b, needed segment, part); the segment that comes last in walking order is skipped
  const int n_need = p.n_segments - 1, sub = blockIdx.z % p.n_sub, sn = (blockIdx.z / p.n_sub) % n_need;
  const int v0 = blockIdx.x * Tile::kVCols, h = blockIdx.y, b = blockIdx.z / (p.n_sub * n_need),
            seg = p.reverse ? sn + 1 : sn, u = seg * p.n_sub + sub;
  const T* kg = static_cast<const T*>(p.k.ptr) + size_t(b) * p.k.stride_b + size_t(h) * p.k.stride_h;
  const T* vg = static_cast<const T*>(p.v.ptr) + size_t(b) * p.v.stride_b + size_t(h) * p.v.stride_h;
  // the augmentation's per-token vector (β for contract, γ for value; null = ones); ζ only in the first v tile
  const float* vec = AUG == kAugNone ? nullptr : aug_vec(p, AUG, AUG == kAugContract ? 1 : 0);
  if (vec) vec += (size_t(b) * p.heads + h) * p.seqlen;
  const bool aug_here = AUG == kAugContract || (AUG == kAugValue && blockIdx.x == 0);
  int first, end;
  segment_chunks((p.seqlen + kC - 1) / kC, p.n_segments, seg, first, end);
  {
    const int per = (end - first + p.n_sub - 1) / p.n_sub;
    first = min(end, first + sub * per);
    end = min(end, first + per);
  }
  const int srow0 = warp * 16 * MT;
  float accS[MT][8][4] = {};
  float accX[2][4] = {};  // the augmentation's state (see accumulate_state)
  auto load = [&](int c, int buf) {
    load_chunk_async<T, DK>(p, nullptr, kg, vg, c, v0, nullptr, sK + buf * kC * LDQ, sV + buf * kC * LDV, vec,
                            sVec + buf * kC);
  };
  if (first < end) load(first, 0);
  for (int c = first; c < end; ++c) {
    const int buf = (c - first) & 1;
    if (c + 1 < end) {
      load(c + 1, buf ^ 1);
      mma::cp_async_wait<1>();
    } else {
      mma::cp_async_wait<0>();
    }
    __syncthreads();
    accumulate_state<T, DK, AUG>(accS, accX, sK + buf * kC * LDQ, sV + buf * kC * LDV, vec ? sVec + buf * kC : nullptr,
                                 aug_here, lane, warp, srow0);
    __syncthreads();  // the next load overwrites this buffer
  }
  float* dst = p.workspace + segment_offset(p, b, h, u);
  if (v0 + Tile::kVCols <= p.dv) {  // pairs of columns as float2
    for_state_pairs<MT>(srow0, g, q4, [&](int mt, int nt, int hf, int d, int c) {
      *reinterpret_cast<float2*>(dst + size_t(d) * p.dv + v0 + c) =
          make_float2(accS[mt][nt][2 * hf], accS[mt][nt][2 * hf + 1]);
    });
  } else {
    for_state_frag<MT>(srow0, g, q4, [&](int mt, int nt, int i, int d, int c) {
      if (v0 + c < p.dv) dst[size_t(d) * p.dv + v0 + c] = accS[mt][nt][i];
    });
  }
  if (AUG != kAugNone && aug_here) {
    float* aug_dst = p.workspace + segment_aug_offset(p, b, h, u) + (AUG == kAugContract ? v0 : 0);
    const int lim = AUG == kAugContract ? p.dv - v0 : DK;
    for_aug_state<AUG, MT>(accX, lane, warp, srow0, [&](int i, float x) {
      if (i < lim) aug_dst[i] = x;
    });
  }
}

template <typename T, int DK, int AUG>
__global__ void __launch_bounds__(128) linear_attention_mma_kernel(LinearAttentionParams p) {
  using Tile = LinMmaTile<T, DK>;
  constexpr int C = Tile::kRows, LDQ = Tile::kLdq, LDV = Tile::kLdv, MT = Tile::kMt;
  static_assert(MT >= 1, "DK must be a multiple of 64");
  extern __shared__ uint4 smem_u4[];
  T* sQ = reinterpret_cast<T*>(smem_u4);  // [2][C][LDQ]
  T* sK = sQ + 2 * C * LDQ;               // [2][C][LDQ]
  T* sV = sK + 2 * C * LDQ;               // [2][C][LDV]
  T* sS = sV + 2 * C * LDV;               // [DK][LDV]  (k = state row d, n = column)
  float* sVec0 = reinterpret_cast<float*>(sS + DK * LDV);  // [2][C]  α (contract) or γ (value)
  float* sVec1 = sVec0 + 2 * C;                            // [2][C]  β (contract)
  float* sSig = sVec1 + 2 * C;                             // [64]    σ of this v tile (contract)
  float* sZeta = sSig + Tile::kVCols;                      // [DK]    ζ (value)
  // [2][DK] bf16: hi(ζ), lo(ζ) — the B fragments of q·ζ (column 0 hi, column 1 lo) read as pairs of rows
  __nv_bfloat16* sZhl = reinterpret_cast<__nv_bfloat16*>(sZeta + DK);

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
  // augmentations (see linear_attention.h): the value one in the first v tile only (its output is one column),
  // unless the output is normalised by it (every tile then needs it)
  const bool aug_here = AUG == kAugContract || (AUG == kAugValue && (blockIdx.x == 0 || p.aug.normalize));
  const bool aug_writer = AUG == kAugContract || blockIdx.x == 0;  // writes the augmentation's outputs
  // the column sums of this segment's K tiles (p.k_sum, unaugmented calls), by the first v tile's block
  const bool ksum_here = AUG == kAugNone && p.k_sum && blockIdx.x == 0;
  float accK[2][4] = {};
  const size_t bh = size_t(b) * p.heads + h;
  const float* vec0 = aug_here ? aug_vec(p, AUG, 0) : nullptr;
  const float* vec1 = aug_here ? aug_vec(p, AUG, 1) : nullptr;
  if (vec0) vec0 += bh * T_;
  if (vec1) vec1 += bh * T_;
  auto load = [&](int chunk, int buf) {
    load_chunk_async<T, DK>(p, qg, kg, vg, chunk, v0, sQ + buf * C * LDQ, sK + buf * C * LDQ, sV + buf * C * LDV,
                            vec0, sVec0 + buf * C, vec1, sVec1 + buf * C);
  };
  if (n_chunks > 0) load(p.reverse ? end - 1 : first, 0);

  // S in registers; starts at S0 plus the sums of the segments that come before this one in walking order
  float accS[MT][8][4];
  for_state_frag<MT>(srow0, g, q4, [&](int mt, int nt, int i, int d, int c) {
    const int col = v0 + c;
    accS[mt][nt][i] = (p.S0 && col < dv) ? p.S0[state_base + size_t(d) * dv + col] : 0.f;
  });
  {
    int u_first, u_end;
    preceding_parts(p, seg, u_first, u_end);
    if (!p.workspace_transposed && v0 + Tile::kVCols <= dv) {  // pairs of columns as float2
      for (int u = u_first; u < u_end; ++u) {  // (parts outer: each pass issues all its loads at once)
        // (the lane's column 2·q4 folded into the base: per pair a constant offset nt·8)
        const float* w = p.workspace + segment_offset(p, b, h, u) + v0 + 2 * q4;
        for_state_pairs<MT>(srow0, g, q4, [&](int mt, int nt, int hf, int d, int) {
          const float2 x = *reinterpret_cast<const float2*>(w + size_t(d) * dv + nt * 8);
          accS[mt][nt][2 * hf] += x.x;
          accS[mt][nt][2 * hf + 1] += x.y;
        });
      }
    } else {
      for (int u = u_first; u < u_end; ++u) {
        const float* w = p.workspace + segment_offset(p, b, h, u);
        // (the stored sums of the transposed state: [dv][DK] blocks)
        const int ld_d = p.workspace_transposed ? 1 : dv, ld_c = p.workspace_transposed ? DK : 1;
        for_state_frag<MT>(srow0, g, q4, [&](int mt, int nt, int i, int d, int c) {
          if (v0 + c < dv) accS[mt][nt][i] += w[d * ld_d + (v0 + c) * ld_c];
        });
      }
    }
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
  // the augmentation's state, fp32 in shared memory: σ (contract, the v columns of this tile) or ζ (value, the
  // state rows); each chunk's contribution comes from accumulate_state's extra mma (accX) and is added by the lane
  // that holds it (for_aug_state), so every element has one owner lane
  float* sAug = AUG == kAugContract ? sSig : sZeta;
  auto set_aug = [&](int i, float x) {  // σ_i / ζ_i (and ζ's hi/lo copy)
    sAug[i] = x;
    if (AUG == kAugValue) {
      const float hi = bf16_hi(x);
      sZhl[i] = __float2bfloat16_rn(hi);
      sZhl[DK + i] = __float2bfloat16_rn(x - hi);
    }
  };
  if (AUG != kAugNone && aug_here) {
    const int n_aug = AUG == kAugContract ? Tile::kVCols : DK;
    int u_first, u_end;
    preceding_parts(p, seg, u_first, u_end);
    for (int i = tid; i < n_aug; i += 128) {
      float x0 = 0.f;
      if (AUG == kAugContract) {
        if (v0 + i < dv) {
          if (p.aug.sigma0) x0 = p.aug.sigma0[bh * dv + v0 + i];
          for (int u = u_first; u < u_end; ++u) x0 += p.workspace[segment_aug_offset(p, b, h, u) + v0 + i];
        }
      } else {
        if (p.aug.zeta0) x0 = p.aug.zeta0[bh * DK + i];
        for (int u = u_first; u < u_end; ++u) x0 += p.workspace[segment_aug_offset(p, b, h, u) + i];
      }
      set_aug(i, x0);
    }
  }

  const size_t obase = size_t(b) * p.out_stride_b + size_t(h) * p.out_stride_h;
  for (int it = 0; it < n_chunks; ++it) {
    const int chunk = p.reverse ? end - 1 - it : first + it, buf = it & 1, t0 = chunk * C;
    if (it + 1 < n_chunks) {
      load(p.reverse ? chunk - 1 : chunk + 1, buf ^ 1);
      mma::cp_async_wait<1>();
    } else {
      mma::cp_async_wait<0>();
    }
    __syncthreads();  // this chunk's tiles and the previous chunk's S, σ, ζ are visible
    const T* Qb = sQ + buf * C * LDQ;
    const T* Kb = sK + buf * C * LDQ;
    const T* Vb = sV + buf * C * LDV;

    // scores = mask(Q_w Kᵀ)
    uint32_t qa[DK / 16][4];
    mma::load_a_rows<T, DK / 16>(qa, Qb, LDQ, warp * 16, lane);
    // scores = Q_w Kᵀ and o = Q_w S, interleaved (independent accumulator chains)
    float sc[8][4], o[8][4];
    mma::zero(sc);
    mma::zero(o);
#pragma unroll
    for (int kk = 0; kk < DK / 16; ++kk)
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        uint32_t kf[4], sf[4];
        mma::ldmatrix_x4(kf, Kb + (np * 16 + (lane % 8) + (lane / 16) * 8) * LDQ + kk * 16 + ((lane / 8) % 2) * 8);
        mma::ldmatrix_x4_trans(sf, sS + (kk * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * LDV + np * 16 + (lane / 16) * 8);
        mma::mma_16816<T>(sc[2 * np], qa[kk], kf[0], kf[1]);
        mma::mma_16816<T>(o[2 * np], qa[kk], sf[0], sf[1]);
        mma::mma_16816<T>(sc[2 * np + 1], qa[kk], kf[2], kf[3]);
        mma::mma_16816<T>(o[2 * np + 1], qa[kk], sf[2], sf[3]);
      }
    const float* va = sVec0 + buf * C;  // α (contract) or γ (value) of this chunk
    const float* vb = sVec1 + buf * C;  // β (contract)
    float alpha_r[2] = {1.f, 1.f};
    if (AUG == kAugContract && vec0) {
      alpha_r[0] = va[warp * 16 + g];
      alpha_r[1] = va[warp * 16 + g + 8];
    }
    if (AUG == kAugContract) {
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) sc[nt][i] += alpha_r[i >> 1] * (vec1 ? vb[frag_col(nt, q4, i)] : 1.f);
    }
    causal_mask_frags(sc, g, q4, warp, p.reverse);
    if (AUG == kAugContract) {  // o += α_t σ
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) o[nt][i] = fmaf(alpha_r[i >> 1], sSig[frag_col(nt, q4, i)], o[nt][i]);
    }
    // value augmentation: ô_t = Σ_s scores_ts γ_s (fp32; the quad of lanes of a row splits the columns) + q_t·ζ
    // (one mma per k-step against ζ's hi/lo tile; row g in lane 4g's columns 0 + 1)
    float den[2] = {0.f, 0.f};
    if (AUG == kAugValue && aug_here) {
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) den[i >> 1] = fmaf(sc[nt][i], vec0 ? va[frag_col(nt, q4, i)] : 1.f, den[i >> 1]);
      float oz[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int kk = 0; kk < DK / 16; ++kk) {
        uint32_t zf[2];
        const __nv_bfloat16* zr = sZhl + (g == 1 ? DK : 0) + kk * 16 + 2 * q4;
        zf[0] = g < 2 ? *reinterpret_cast<const uint32_t*>(zr) : 0u;
        zf[1] = g < 2 ? *reinterpret_cast<const uint32_t*>(zr + 8) : 0u;
        mma::mma_16816<T>(oz, qa[kk], zf[0], zf[1]);
      }
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        den[hf] += __shfl_xor_sync(0xffffffffu, den[hf], 1);
        den[hf] += __shfl_xor_sync(0xffffffffu, den[hf], 2);
        den[hf] = p.scale * (den[hf] + __shfl_sync(0xffffffffu, oz[2 * hf] + oz[2 * hf + 1], lane & ~3));
        const int t = t0 + warp * 16 + g + 8 * hf;
        if (aug_writer && q4 == 0 && t < T_ && p.aug.out) p.aug.out[bh * T_ + t] = den[hf];
      }
    }

    // O_w += scores V, and S_w += (Kᵀ)_w V (+ the augmentation's state), from the same V fragments
    float accX[2][4] = {};  // this chunk's contribution to σ / ζ
    accumulate_state<T, DK, AUG, true>(accS, AUG == kAugNone ? accK : accX, Kb, Vb,
                                       AUG == kAugContract ? (vec1 ? vb : nullptr) : (vec0 ? va : nullptr),
                                       AUG == kAugNone ? ksum_here : aug_here,
                                       lane, warp, srow0, o, sc);
    const bool normalize = AUG == kAugValue && p.aug.normalize;
    float rs[2] = {p.scale, p.scale};  // per-row output factor: scale, or scale / (ô + eps) when normalised
    if (normalize) {
      rs[0] = p.scale / (den[0] + p.aug.eps);
      rs[1] = p.scale / (den[1] + p.aug.eps);
    }
    static_assert(Tile::kVCols == 64, "store_out_frags writes 64 columns");
    store_out_frags<T>(p, obase, t0, warp, g, q4, v0, o, rs);

    __syncthreads();  // every warp is done reading S, σ, ζ (and this chunk's buffers)
    store_S_smem();
    if (AUG != kAugNone && aug_here) for_aug_state<AUG, MT>(accX, lane, warp, srow0, [&](int i, float x) { set_aug(i, sAug[i] + x); });
  }
  if (AUG != kAugNone) __syncthreads();  // the last chunk's σ / ζ (written by their owner lanes) are visible

  const bool last_segment = p.reverse ? seg == 0 : seg == P - 1;
  if (AUG == kAugContract && last_segment && p.aug.sigma_final)
    for (int i = tid; i < Tile::kVCols && v0 + i < dv; i += 128) p.aug.sigma_final[bh * dv + v0 + i] = sSig[i];
  if (AUG == kAugValue && aug_here && aug_writer && last_segment && p.aug.zeta_final)
    for (int i = tid; i < DK; i += 128) p.aug.zeta_final[bh * DK + i] = sZeta[i];
  if (ksum_here)
    for_aug_state<kAugValue, MT>(accK, lane, warp, srow0, [&](int d, float x) { p.k_sum[(bh * P + seg) * DK + d] = x; });
  if (p.S_final && last_segment) {
    for_state_frag<MT>(srow0, g, q4, [&](int mt, int nt, int i, int d, int c) {
      if (v0 + c < dv) p.S_final[state_base + size_t(d) * dv + v0 + c] = accS[mt][nt][i];
    });
  }
}

// ---- warpgroup (wgmma, sm_90a) core (the default from T = 8192, see linear_wgmma_mode): bf16, d_k 128, no augmentation (the
// unnormalised forward and the three core calls of its backward). One warpgroup per block of (b, h, 64-column v tile, segment),
// the same blocks, walking order and segment sums as the mma.sync kernel. Per chunk of 64 tokens (q, k and the v tile
// brought into 128B-swizzled shared memory by TMA, one thread issuing, an mbarrier per stage):
//   scores = Q Kᵀ and o = Q S (S as bf16 in shared memory, MN-major) issued together, then waited;
//   the causal mask (keep key ≤ query) on the scores, turned into A fragments P;
//   S += Kᵀ V (Kᵀ read MN-major from the K tile, one m64 product per half of the state rows), then o += P V (P from
//   registers) as a second group; S (fp32 registers) goes back to shared memory as bf16 (stmatrix) while P V runs;
//   out = scale·o.
// NWG = 1 (DYSRA_LINEAR_ATTENTION_WGMMA=1): one warpgroup per block, two blocks per SM (one block's mask, stores and
// state write-back run under the other's matrix products), tiles double-buffered.
// NWG = 2 (DYSRA_LINEAR_ATTENTION_WGMMA=2): one block per (b, h, 128 v columns, segment), warpgroup w owns v columns
// 64w .. 64w + 63 (its own state); the two share the q and k tiles (half the q/k reads of NWG = 1) and the freed
// shared memory holds three stages (tiles of chunk c + 2 are read while chunk c is computed); one block per SM.
// (Four stages measured no faster than three (H200, session 9): the walk is not bound by its reads' latency.)
// Output (bf16): each warp packs its 16 rows into staging rows by stmatrix and a TMA store writes them out (the direct
// 4-byte stores stalled the walk on the store queue). With the TMA loads, the walk's address arithmetic is gone: its
// instructions per chunk were the limit (H200 profile, session 9: ~700 per warp per chunk, ~6 cycles each).
/// The start of a TMA ring of NST stages (thread 0): one mbarrier per stage, the tensor maps prefetched, and the first
/// NST − 1 of n_chunks chunks' loads issued (load(it, stage it)).
template <int NST, typename Load, typename... Maps>
__device__ __forceinline__ void start_tma_ring(uint64_t* full, int n_chunks, Load&& load, const Maps*... maps) {
#pragma unroll
  for (int s = 0; s < NST; ++s) wgmma::mbar::init(&full[s], 1);
  tma::fence_barrier_init();
  (tma::prefetch_map(maps), ...);
#pragma unroll
  for (int it = 0; it < NST - 1; ++it)
    if (it < n_chunks) load(it, it);
}

/// S += Kᵀ V of one chunk for a warpgroup's 64 v columns: acc[hh] holds state rows 64·hh .. 64·hh + 63; dkt reads the
/// K tile MN-major (region hh: d 64·hh ..), dvb the warpgroup's V tile; one m64n64k16 product per 16 keys.
__device__ __forceinline__ void kt_v_products(float (&acc)[2][32], uint64_t dkt, uint64_t dvb) {
#pragma unroll
  for (int hh = 0; hh < 2; ++hh)
#pragma unroll
    for (int s = 0; s < 4; ++s)
      wgmma::mma_m64n64k16_ss_t<__nv_bfloat16, 1, 1>(acc[hh], dkt + ((hh * kC * 128 + s * 2048) >> 4),
                                                     dvb + ((s * 2048) >> 4), 1);
}

template <int NWG, int NST>
struct LinWgTile {
  static_assert((NWG == 1 && NST == 2) || (NWG == 2 && NST == 3), "the configurations that fit");
  static constexpr int kStages = NST, kThreads = 128 * NWG, kMinBlocks = NWG == 1 ? 2 : 1;
  // per warpgroup: its state (128 × 64 bf16) and its staged output chunk (64 × 64 bf16)
  static constexpr uint32_t kQBytes = 64 * 256, kKBytes = 64 * 256, kVBytes = NWG * 64 * 128, kSBytes = 128 * 128,
                            kOBytes = 64 * 128, kOnesBytes = 1024;
  static constexpr size_t smem_bytes() {  // + a tile of ones (k sums) and one mbarrier per stage
    return 1024 + kStages * (kQBytes + kKBytes + kVBytes) + NWG * (kSBytes + kOBytes) + kOnesBytes + 8 * kStages;
  }
};

template <int NWG, int NST>
__global__ void __launch_bounds__(LinWgTile<NWG, NST>::kThreads, LinWgTile<NWG, NST>::kMinBlocks)
    linear_attention_wgmma_kernel(LinearAttentionParams p, const __grid_constant__ CUtensorMap tm_q,
                                  const __grid_constant__ CUtensorMap tm_k, const __grid_constant__ CUtensorMap tm_v,
                                  const __grid_constant__ CUtensorMap tm_o) {
  using T = __nv_bfloat16;
  using Tile = LinWgTile<NWG, NST>;
  constexpr int C = kC, DK = 128, VC = 64;
  static_assert(C == 64, "chunks of 64 tokens");
  extern __shared__ uint8_t smem_raw[];
  uint8_t* smem = smem_raw + ((1024 - (mma::smem_addr(smem_raw) & 1023)) & 1023);
  uint8_t* sQ = smem;                       // [NST] 64 rows × 128 d: regions d 0..63, 64..127
  uint8_t* sK = sQ + NST * Tile::kQBytes;   // [NST] the same
  uint8_t* sV = sK + NST * Tile::kKBytes;   // [NST] 64 rows × 64 columns per warpgroup: NWG regions
  const int tid = threadIdx.x, lane = tid & 31, wg = tid >> 7, warp = (tid >> 5) & 3, g8 = lane >> 2, q4 = lane & 3;
  // the state of this warpgroup as bf16: 128 rows (d) × 64 columns, one region
  uint8_t* sS = sV + NST * Tile::kVBytes + wg * Tile::kSBytes;
  // this warp's staged output rows (16 rows × 64 columns bf16, 128B-swizzled), a tile of bf16 ones (8 rows × 64, the
  // B operand of the k sums), then the stages' mbarriers
  uint8_t* sO = sV + NST * Tile::kVBytes + NWG * Tile::kSBytes;
  const uint32_t sOw = mma::smem_addr(sO) + (4 * wg + warp) * 2048;
  uint8_t* sOnes = sO + NWG * Tile::kOBytes;
  uint64_t* full = reinterpret_cast<uint64_t*>(sOnes + Tile::kOnesBytes);
  const int P = p.n_segments, vb0 = blockIdx.x * VC * NWG, v0 = vb0 + VC * wg, h = blockIdx.y, b = blockIdx.z / P,
            seg = blockIdx.z % P;
  const int T_ = p.seqlen, dv = p.dv;
  int first, end;
  segment_chunks((T_ + C - 1) / C, P, seg, first, end);
  const size_t state_base = (size_t(b) * p.heads + h) * DK * size_t(dv);

  // a chunk's q and k tiles (two boxes of 64 d each) and v tiles (one box of 64 columns per warpgroup) come by TMA,
  // issued by thread 0, landing 128B-swizzled; rows past T and columns past d_v arrive as zeros. full[s] completes
  // when stage s has landed.
  const uint32_t sQa = mma::smem_addr(sQ), sKa = mma::smem_addr(sK), sVa = mma::smem_addr(sV),
                 full_a = mma::smem_addr(full);
  auto load = [&](int chunk, int buf) {
    const int t0 = chunk * C;
    const uint32_t bar = full_a + 8 * buf;
    tma::arrive_expect_tx(bar, Tile::kQBytes + Tile::kKBytes + Tile::kVBytes);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      tma::load_4d(sQa + buf * Tile::kQBytes + r * C * 128, &tm_q, 64 * r, t0, h, b, bar);
      tma::load_4d(sKa + buf * Tile::kKBytes + r * C * 128, &tm_k, 64 * r, t0, h, b, bar);
    }
#pragma unroll
    for (int w = 0; w < NWG; ++w) tma::load_4d(sVa + buf * Tile::kVBytes + w * C * 128, &tm_v, vb0 + 64 * w, t0, h, b, bar);
  };
  const int n_chunks = end - first;
  auto chunk_at = [&](int it) { return p.reverse ? end - 1 - it : first + it; };
  // stages 0 .. NST - 2 in flight before the walk
  if (tid == 0) start_tma_ring<NST>(full, n_chunks, [&](int it, int s) { load(chunk_at(it), s); }, &tm_q, &tm_k, &tm_v);
  // the column sums of this segment's K tiles (p.k_sum), written by the first warpgroup of the first v tile's block: Kᵀ
  // times an 8-column tile of ones (every column of acc_k holds the sum of its state row d); made visible to the async
  // proxy by the walk's first fence and barrier
  const bool ksum_on = p.k_sum && blockIdx.x == 0 && wg == 0;
  for (int i = tid; i < int(Tile::kOnesBytes / 16); i += Tile::kThreads)
    reinterpret_cast<uint4*>(sOnes)[i] = make_uint4(0x3F803F80u, 0x3F803F80u, 0x3F803F80u, 0x3F803F80u);
  float acc_k[2][4] = {};
  __syncthreads();  // the barriers are initialised

  // the state's accumulator fragments: half hh holds state rows 64·hh .. 64·hh + 63; element 4·nt + i of a lane is
  // row 16·warp + g8 + 8·(i / 2) of the half, column 8·nt + 2·q4 + i % 2
  float acc_s[2][32] = {};
  // visits the state's elements inside d_v: f(row d, column col, element)
  auto for_state = [&](auto&& f) {
#pragma unroll
    for (int hh = 0; hh < 2; ++hh)
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int col = v0 + nt * 8 + 2 * q4 + (i & 1);
          if (col < dv) f(64 * hh + 16 * warp + g8 + 8 * (i >> 1), col, acc_s[hh][4 * nt + i]);
        }
  };
  int u_first, u_end;
  preceding_parts(p, seg, u_first, u_end);
  // (segment sums of the transposed state: [d_v][d_k] blocks)
  const size_t ld_d = p.workspace_transposed ? 1 : size_t(dv), ld_c = p.workspace_transposed ? DK : 1;
  for_state([&](int d, int col, float& x) {
    if (p.S0) x = p.S0[state_base + size_t(d) * dv + col];
    for (int u = u_first; u < u_end; ++u) x += p.workspace[segment_offset(p, b, h, u) + d * ld_d + col * ld_c];
  });
  // S → sS as bf16: row d, columns c, c + 1 at the swizzled 16-byte chunk c / 8 of row d. stmatrix: the 8×8 matrices
  // (nt, hf) of rows 16·warp + 8·hf + 0..7 and columns 8·nt + 0..7 of half hh; lane l gives row (l & 7) + 8·((l >> 3) & 1)
  // of column chunk 2·np + (l >> 4)
  const int st_r = 16 * warp + (lane & 7) + 8 * ((lane >> 3) & 1), st_c = lane >> 4;
  const uint32_t sSa = mma::smem_addr(sS);
  // packs an accumulator tile's matrices (2·np, hf 0), (2·np, 1), (2·np + 1, 0), (2·np + 1, 1) for stmatrix_x4
  auto pack_pairs = [](const float (&a)[32], int np, float sc, uint32_t (&r)[4]) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int e = 4 * (2 * np + (j >> 1)) + 2 * (j & 1);
      r[j] = mma::pack2<T>(sc * a[e], sc * a[e + 1]);
    }
  };
  auto store_state = [&]() {
#pragma unroll
    for (int hh = 0; hh < 2; ++hh)
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        uint32_t r[4];
        pack_pairs(acc_s[hh], np, 1.f, r);
        mma::stmatrix_x4(sSa + wgmma::sw128_offset(64 * hh + st_r, 2 * np + st_c), r);
      }
  };
  store_state();

  // descriptors (buffer 0); a buffer adds its byte offset / 16
  const uint64_t dq0 = wgmma::make_desc_sw128(sQ, 16, 1024), dk0 = wgmma::make_desc_sw128(sK, 16, 1024),
                 dkt0 = wgmma::make_desc_sw128(sK, 8192, 1024), dv0 = wgmma::make_desc_sw128(sV, 8192, 1024),
                 ds = wgmma::make_desc_sw128(sS, 8192, 1024), d_ones = wgmma::make_desc_sw128(sOnes, 16, 1024);
  const size_t obase = size_t(b) * p.out_stride_b + size_t(h) * p.out_stride_h;
  const bool out_f32 = p.out_dtype == DType::kFloat32;
  const float out_rs[2] = {p.scale, p.scale};  // fp32 output: the rows' factors for store_out_frags
  // bf16 output goes through this warp's staging rows: scaled, packed and stored by stmatrix after a chunk's products,
  // then written out by a TMA store of the 16 × 64 box (rows past T and columns past d_v are not written)
  int buf = 0, ld_buf = NST - 1;
  uint32_t phase = 0;
  for (int it = 0; it < n_chunks; ++it) {
    const int chunk = chunk_at(it), t0 = chunk * C;
    wgmma::mbar::wait(&full[buf], phase);  // chunk it's tiles have landed
    wgmma::fence_proxy_async_smem();        // this thread's state writes → the async proxy
    __syncthreads();  // the states are complete; every warp is done with chunk it − 1's stage
    if (tid == 0 && it + NST - 1 < n_chunks) load(chunk_at(it + NST - 1), ld_buf);
    const uint64_t dq = dq0 + ((buf * Tile::kQBytes) >> 4), dk = dk0 + ((buf * Tile::kKBytes) >> 4),
                   dkt = dkt0 + ((buf * Tile::kKBytes) >> 4), dvb = dv0 + ((buf * Tile::kVBytes + wg * C * 128) >> 4);
    float sc[32], o[32];
    wgmma::fence_operand(sc);
    wgmma::fence_operand(o);
    wgmma::fence();
#pragma unroll
    for (int s = 0; s < 8; ++s) {  // k-step s: d 16s .. 16s + 15
      const uint32_t off = (s / 4) * C * 128 + (s % 4) * 32;
      wgmma::mma_m64n64k16_ss<T>(sc, dq + (off >> 4), dk + (off >> 4), s > 0 ? 1 : 0);
    }
#pragma unroll
    for (int s = 0; s < 8; ++s) {
      const uint32_t off = (s / 4) * C * 128 + (s % 4) * 32;
      wgmma::mma_m64n64k16_ss_t<T, 0, 1>(o, dq + (off >> 4), ds + ((s * 2048) >> 4), s > 0 ? 1 : 0);
    }
    wgmma::commit();
    wgmma::wait<0>();
    wgmma::fence_operand(sc);
    wgmma::fence_operand(o);
    // the causal mask (element 4·nt + i: query row 16·warp + g8 + 8·(i / 2), key column 8·nt + 2·q4 + i % 2, the
    // m16n8 layout per 8 columns), then the scores as A fragments P
    float (&sc4)[8][4] = reinterpret_cast<float (&)[8][4]>(sc);
    causal_mask_frags(sc4, g8, q4, warp, p.reverse);
    uint32_t pa[4][4];
    mma::c_to_a<T, 4>(pa, sc4);
    wgmma::fence_operand(acc_s[0]);
    wgmma::fence_operand(acc_s[1]);
    wgmma::fence_operand(acc_k[0]);
    wgmma::fence_operand(acc_k[1]);
    wgmma::fence();
    // S += Kᵀ V first (its own group, so that the state goes back to shared memory while P V runs), then o += P V
    kt_v_products(acc_s, dkt, dvb);
    // (issued by every warpgroup, used by one: a wgmma under a branch makes ptxas serialise all of them, C7520)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh)
#pragma unroll
      for (int s = 0; s < 4; ++s)  // the ones tile as K-major B: keys 16s .. at 32 bytes per step
        wgmma::mma_m64n8k16_ss_t<T, 1, 0>(acc_k[hh], dkt + ((hh * C * 128 + s * 2048) >> 4), d_ones + ((s * 32) >> 4), 1);
    wgmma::commit();
#pragma unroll
    for (int s = 0; s < 4; ++s) wgmma::mma_m64n64k16_rs_tb<T>(o, pa[s], dvb + ((s * 2048) >> 4), 1);  // keys 16s ..
    wgmma::commit();
    wgmma::wait<1>();
    wgmma::fence_operand(acc_s[0]);
    wgmma::fence_operand(acc_s[1]);
    wgmma::fence_operand(acc_k[0]);
    wgmma::fence_operand(acc_k[1]);
    // (S += Kᵀ V has completed for the whole warpgroup, and with it chunk it's Q S: sS is free)
    store_state();
    wgmma::wait<0>();
    wgmma::fence_operand(o);
    if (!out_f32) {  // out = scale · o
      if (lane == 0) tma::wait_group_read<0>();  // the last chunk's store has read the staging rows
      __syncwarp();
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        uint32_t r[4];
        pack_pairs(o, np, p.scale, r);
        mma::stmatrix_x4(sOw + wgmma::sw128_offset(st_r - 16 * warp, 2 * np + st_c), r);
      }
      wgmma::fence_proxy_async_smem();
      __syncwarp();
      if (lane == 0) {
        tma::store_4d(&tm_o, v0, t0 + 16 * warp, h, b, sOw);
        tma::commit_group();
      }
    } else {
      store_out_frags<T>(p, obase, t0, warp, g8, q4, v0, reinterpret_cast<const float (&)[8][4]>(o), out_rs);
    }
    if (++buf == NST) buf = 0, phase ^= 1;
    if (++ld_buf == NST) ld_buf = 0;
  }
  if (!out_f32 && lane == 0) tma::wait_group<0>();
  if (p.S_final && (p.reverse ? seg == 0 : seg == P - 1))
    for_state([&](int d, int col, float& x) { p.S_final[state_base + size_t(d) * dv + col] = x; });
  if (ksum_on && q4 == 0) {  // rows g8, g8 + 8 of the warp's 16 in each half
    float* dst = p.k_sum + ((size_t(b) * p.heads + h) * P + seg) * DK + 16 * warp + g8;
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      dst[64 * hh] = acc_k[hh][0];
      dst[64 * hh + 8] = acc_k[hh][2];
    }
  }
}

// ---- warpgroup segment sums (sm_90a): bf16, d_k 128 (see wgmma_sums). The sums of the mma.sync sum kernel above —
// one fp32 Kᵀ V per part of a segment, the same parts and workspace — from a pure stream: per chunk the K tile and two
// 64-column V tiles come by TMA (NST stages, one thread issuing, an mbarrier per stage) and each warpgroup adds Kᵀ V of
// its 64 columns (Kᵀ read MN-major from the K tile, one m64 product per half of the state rows). One block per (b, h,
// 128 v columns, part): K is read once for both column halves (the mma.sync kernel's two 64-column blocks read it
// twice), two blocks per SM.
// The augmentations' vectors (σ = Σ β_t v_t of a contraction, ζ = Σ γ_t k_t of a value augmentation) are summed on the
// CUDA cores in fp32 from the same shared-memory tiles while the wgmmas run: for σ each warp takes 16 tokens and each
// lane a pair of the warpgroup's columns; for ζ (block column 0 only) a pair of d per thread, 16 tokens per two warps.
// The four token groups' partials are added in a fixed order at the end (no atomics).
struct LinSumTile {
  static constexpr int kStages = 3, kThreads = 256, kMinBlocks = 2;
  static constexpr uint32_t kKBytes = 64 * 256, kVBytes = 2 * 64 * 128;
  static constexpr uint32_t kAugBytes = 4 * 128 * sizeof(float);  // partials of σ or ζ: [4 token groups][128]
  static constexpr size_t smem_bytes() { return 1024 + kStages * (kKBytes + kVBytes) + 8 * kStages + kAugBytes; }
};

/// x += w_t · (element pair `cp` of row r) for the 16 rows 16·tg .. of a 128B-swizzled tile of 64-element rows (the
/// pair's bytes 4·cp; weights vec[t0 + r], or ones when vec is null; rows past T weigh 0).
__device__ __forceinline__ void add_weighted_pairs(float (&x)[2], const uint8_t* tile, int cp, int tg, const float* vec,
                                                   int t0, int seqlen) {
#pragma unroll 4
  for (int i = 0; i < 16; ++i) {
    const int r = 16 * tg + i;
    const float w = vec ? (t0 + r < seqlen ? __ldg(vec + t0 + r) : 0.f) : 1.f;
    const __nv_bfloat162 e =
        *reinterpret_cast<const __nv_bfloat162*>(tile + wgmma::sw128_offset(r, cp >> 2) + 4 * (cp & 3));
    x[0] = fmaf(w, __low2float(e), x[0]);
    x[1] = fmaf(w, __high2float(e), x[1]);
  }
}

__global__ void __launch_bounds__(LinSumTile::kThreads, LinSumTile::kMinBlocks)
    linear_attention_wgmma_sum_kernel(LinearAttentionParams p, const __grid_constant__ CUtensorMap tm_k,
                                      const __grid_constant__ CUtensorMap tm_v) {
  using T = __nv_bfloat16;
  using Tile = LinSumTile;
  constexpr int C = kC, NST = Tile::kStages;
  extern __shared__ uint8_t smem_raw[];
  uint8_t* smem = smem_raw + ((1024 - (mma::smem_addr(smem_raw) & 1023)) & 1023);
  uint8_t* sK = smem;                       // [NST] 64 rows × 128 d: regions d 0..63, 64..127
  uint8_t* sV = sK + NST * Tile::kKBytes;   // [NST] 64 rows × 64 columns per warpgroup: two regions
  uint64_t* full = reinterpret_cast<uint64_t*>(sV + NST * Tile::kVBytes);
  float* sAug = reinterpret_cast<float*>(full + NST);  // [4][128] partials of σ or ζ
  const int tid = threadIdx.x, lane = tid & 31, wg = tid >> 7, warp = (tid >> 5) & 3, g8 = lane >> 2, q4 = lane & 3;
  // blockIdx.z = (b, needed segment, part), as in the mma.sync sum kernel
  const int n_need = p.n_segments - 1, sub = blockIdx.z % p.n_sub, sn = (blockIdx.z / p.n_sub) % n_need;
  const int vb0 = blockIdx.x * 128, v0 = vb0 + 64 * wg, h = blockIdx.y, b = blockIdx.z / (p.n_sub * n_need),
            seg = p.reverse ? sn + 1 : sn, u = seg * p.n_sub + sub;
  int first, end;
  segment_chunks((p.seqlen + C - 1) / C, p.n_segments, seg, first, end);
  {
    const int per = (end - first + p.n_sub - 1) / p.n_sub;
    first = min(end, first + sub * per);
    end = min(end, first + per);
  }
  const int n_chunks = end - first;
  // the augmentation's vector (β of a contraction, γ of a value augmentation; null = ones) and this thread's partial
  const bool sigma_on = p.aug.contract, zeta_on = p.aug.value && blockIdx.x == 0;
  const float* vec = sigma_on ? p.aug.beta : zeta_on ? p.aug.gamma : nullptr;
  if (vec) vec += (size_t(b) * p.heads + h) * p.seqlen;
  float xa[2] = {0.f, 0.f};
  const uint32_t sKa = mma::smem_addr(sK), sVa = mma::smem_addr(sV), full_a = mma::smem_addr(full);
  auto load = [&](int chunk, int buf) {  // rows past T and columns past d_v arrive as zeros
    const int t0 = chunk * C;
    const uint32_t bar = full_a + 8 * buf;
    tma::arrive_expect_tx(bar, Tile::kKBytes + Tile::kVBytes);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      tma::load_4d(sKa + buf * Tile::kKBytes + r * C * 128, &tm_k, 64 * r, t0, h, b, bar);
      tma::load_4d(sVa + buf * Tile::kVBytes + r * C * 128, &tm_v, vb0 + 64 * r, t0, h, b, bar);
    }
  };
  if (tid == 0) start_tma_ring<NST>(full, n_chunks, [&](int it, int s) { load(first + it, s); }, &tm_k, &tm_v);
  __syncthreads();  // the barriers are initialised

  // acc[hh]: state rows 64·hh .. of this warpgroup's 64 columns (the m64n64 accumulator layout, see the core above)
  float acc[2][32] = {};
  const uint64_t dkt0 = wgmma::make_desc_sw128(sK, 8192, 1024), dv0 = wgmma::make_desc_sw128(sV, 8192, 1024);
  int buf = 0, ld_buf = NST - 1;
  uint32_t phase = 0;
  for (int it = 0; it < n_chunks; ++it) {
    wgmma::mbar::wait(&full[buf], phase);  // chunk it's tiles have landed
    __syncthreads();                        // every warpgroup is done with chunk it − 1's stage
    if (tid == 0 && it + NST - 1 < n_chunks) load(first + it + NST - 1, ld_buf);
    const uint64_t dkt = dkt0 + ((buf * Tile::kKBytes) >> 4), dvb = dv0 + ((buf * Tile::kVBytes + wg * C * 128) >> 4);
    wgmma::fence_operand(acc[0]);
    wgmma::fence_operand(acc[1]);
    wgmma::fence();
    kt_v_products(acc, dkt, dvb);
    wgmma::commit();
    if (sigma_on)  // columns 2·lane, + 1 of this warpgroup's 64; tokens 16·warp ..
      add_weighted_pairs(xa, sV + buf * Tile::kVBytes + wg * C * 128, lane, warp, vec, (first + it) * C, p.seqlen);
    else if (zeta_on)  // d = 2·(tid % 64), + 1 (region tid % 64 / 32); tokens 16·(tid / 64) ..
      add_weighted_pairs(xa, sK + buf * Tile::kKBytes + ((tid >> 5) & 1) * C * 128, lane, tid >> 6, vec,
                         (first + it) * C, p.seqlen);
    wgmma::wait<0>();
    wgmma::fence_operand(acc[0]);
    wgmma::fence_operand(acc[1]);
    if (++buf == NST) buf = 0, phase ^= 1;
    if (++ld_buf == NST) ld_buf = 0;
  }
  if (sigma_on || zeta_on) {  // (uniform per block) the token groups' partials, added in order
    const int group = sigma_on ? warp : tid >> 6, col = sigma_on ? 64 * wg + 2 * lane : 2 * (tid & 63);
    sAug[group * 128 + col] = xa[0];
    sAug[group * 128 + col + 1] = xa[1];
    __syncthreads();
    if (tid < 128) {
      const float x = ((sAug[tid] + sAug[128 + tid]) + sAug[256 + tid]) + sAug[384 + tid];
      float* aug_dst = p.workspace + segment_aug_offset(p, b, h, u);
      if (sigma_on && vb0 + tid < p.dv) aug_dst[vb0 + tid] = x;  // σ: d_v entries, this block's 128
      if (zeta_on) aug_dst[tid] = x;                             // ζ: d_k = 128 entries
    }
  }
  // element 4·nt + i of half hh: row 64·hh + 16·warp + g8 + 8·(i / 2), column 8·nt + 2·q4 + i % 2 (pairs as float2;
  // d_v % 8 == 0, so a pair is wholly inside or outside d_v)
  float* dst = p.workspace + segment_offset(p, b, h, u);
#pragma unroll
  for (int hh = 0; hh < 2; ++hh)
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const int col = v0 + nt * 8 + 2 * q4;
      if (col >= p.dv) continue;
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        const int d = 64 * hh + 16 * warp + g8 + 8 * hf;
        *reinterpret_cast<float2*>(dst + size_t(d) * p.dv + col) =
            make_float2(acc[hh][4 * nt + 2 * hf], acc[hh][4 * nt + 2 * hf + 1]);
      }
    }
}

/// Which warpgroup core runs a core call: 0 none (the mma.sync kernel), 1 one warpgroup per block, 2 two. It applies to
/// d_k 128 without augmentation (and 16-byte aligned output rows when bf16). Default: two warpgroups from T = 8192 on
/// (H200, session 9, B4 H16 D128: T16384 unnormalised forward 0.54 ms against the mma.sync kernel's 0.67–0.68,
/// forward+backward 1.70–1.75 against 2.30–2.35; at T4096 the mma.sync forward is 5–9 % faster).
/// DYSRA_LINEAR_ATTENTION_WGMMA=0 / 1 / 2 forces it off / one / two warpgroups.
int linear_wgmma_mode(const LinearAttentionParams& p) {
  if (p.dk != 128 || p.aug.contract || p.aug.value || p.aug.normalize) return 0;
  if (p.out_dtype != DType::kFloat32 &&
      (!aligned16(p.out) || p.out_stride_b % 8 != 0 || p.out_stride_t % 8 != 0 || p.out_stride_h % 8 != 0))
    return 0;
  const char* e = std::getenv("DYSRA_LINEAR_ATTENTION_WGMMA");
  if (!e || !*e) return p.seqlen >= 8192 ? 2 : 0;
  const std::string m(e);
  return m == "1" ? 1 : m == "2" ? 2 : 0;
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

/// Segments of the tensor-core path: enough blocks for about two per SM (the kernel's shared memory allows two; the
/// two-warpgroup core: one per SM, of 128 v columns), at least 4 chunks per segment.
int n_segments(const LinearAttentionParams& p) {
  const bool wide = linear_wgmma_mode(p) >= 2;
  const int64_t base = int64_t(wide ? (p.dv + 127) / 128 : (p.dv + 63) / 64) * p.heads * p.batch;
  const int n_chunks = (p.seqlen + kC - 1) / kC;
  int64_t P = ((wide ? 1 : 2) * int64_t(current_device_sm_count())) / std::max<int64_t>(base, 1);
  P = std::min<int64_t>(P, n_chunks / 4);
  P = std::min<int64_t>(P, 65535 / std::max(p.batch, 1));
  return int(std::max<int64_t>(P, 1));
}

/// Whether the segment sums of a call come from the warpgroup sum kernel (calls with d_k 128 on the tensor-core path,
/// augmented or not; DYSRA_LINEAR_ATTENTION_WGMMA_SUMS=0 keeps the mma.sync sum kernel, for A/B timing).
bool wgmma_sums(const LinearAttentionParams& p) {
  if (p.dk != 128) return false;
  const char* e = std::getenv("DYSRA_LINEAR_ATTENTION_WGMMA_SUMS");
  return !(e && std::string(e) == "0");
}

/// Parts per segment of the segment sums: as many as fill one wave of the sum kernel's blocks (a second, partial wave
/// costs as much as the first), at least 2 chunks per part. The mma.sync sum kernel (at most 128 registers) holds four
/// blocks of 64 v columns per SM, the warpgroup one two blocks of 128.
int n_sub_parts(const LinearAttentionParams& p, int P) {
  if (P <= 1) return 1;
  const bool wide = wgmma_sums(p);
  const int64_t base = int64_t(wide ? (p.dv + 127) / 128 : (p.dv + 63) / 64) * p.heads * p.batch * (P - 1);
  const int n_chunks = (p.seqlen + kC - 1) / kC, per_segment = (n_chunks + P - 1) / P;
  int64_t S = ((wide ? 2 : 4) * int64_t(current_device_sm_count())) / std::max<int64_t>(base, 1);
  S = std::min<int64_t>(S, per_segment / 2);
  S = std::min<int64_t>(S, 65535 / (std::max(p.batch, 1) * int64_t(P - 1)));
  return int(std::max<int64_t>(S, 1));
}

/// The tensor map of an operand [B, T, H, cols] in boxes of 64 columns × 64 tokens (false if the driver cannot make it).
bool operand_map(CUtensorMap* map, const LinearAttentionParams& p, const LinearAttentionTensor& t, int64_t cols) {
  return tma::encode_bf16_4d(map, t.ptr, p.batch, p.seqlen, p.heads, cols, t.stride_b, t.stride_t, t.stride_h, 64);
}
/// The tensor maps of the warpgroup core: q, k (boxes of 64 d × 64 tokens), v (64 columns × 64 tokens) and a bf16
/// output (64 columns × 16 rows). False if the driver cannot encode one of them.
bool wgmma_tensor_maps(const LinearAttentionParams& p, CUtensorMap (&m)[4]) {
  if (!operand_map(&m[0], p, p.q, p.dk) || !operand_map(&m[1], p, p.k, p.dk) || !operand_map(&m[2], p, p.v, p.dv))
    return false;
  if (p.out_dtype == DType::kFloat32) {
    m[3] = m[0];  // unused
    return true;
  }
  return tma::encode_bf16_4d(&m[3], p.out, p.batch, p.seqlen, p.heads, p.dv, p.out_stride_b, p.out_stride_t,
                             p.out_stride_h, 16);
}

/// Launches the warpgroup core; `launched` is false (and nothing runs) when its tensor maps cannot be made.
template <int NWG, int NST>
cudaError_t launch_wgmma(const LinearAttentionParams& p, dim3 grid, cudaStream_t stream, bool& launched) {
  using Tile = LinWgTile<NWG, NST>;
  CUtensorMap maps[4];
  launched = wgmma_tensor_maps(p, maps);
  if (!launched) return cudaSuccess;
  auto kernel = linear_attention_wgmma_kernel<NWG, NST>;
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(Tile::smem_bytes())));
  grid.x = (p.dv + 64 * NWG - 1) / (64 * NWG);
  kernel<<<grid, Tile::kThreads, Tile::smem_bytes(), stream>>>(p, maps[0], maps[1], maps[2], maps[3]);
  return cudaGetLastError();
}

int aug_kind(const LinearAttentionParams& p) {
  return p.aug.contract ? kAugContract : p.aug.value ? kAugValue : kAugNone;
}

template <int DK, int AUG>
cudaError_t launch_mma_aug(LinearAttentionParams p, cudaStream_t stream) {
  using Tile = LinMmaTile<__nv_bfloat16, DK>;
  p.n_segments = n_segments(p);
  p.n_sub = n_sub_parts(p, p.n_segments);
  if (p.n_segments > 1 && p.workspace == nullptr) return cudaErrorInvalidValue;
  const size_t aug_bytes = AUG == kAugNone ? 0 : sizeof(float) * Tile::kAugFloats;
  const dim3 grid((p.dv + Tile::kVCols - 1) / Tile::kVCols, p.heads, p.batch * p.n_segments);
  bool summed = false;
  if (DK == 128 && p.n_segments > 1 && !p.workspace_ready && wgmma_sums(p)) {
    CUtensorMap mk, mv;  // (the mma.sync sum kernel below if a map cannot be made)
    if (operand_map(&mk, p, p.k, p.dk) && operand_map(&mv, p, p.v, p.dv)) {
      const dim3 sum_grid((p.dv + 127) / 128, p.heads, p.batch * (p.n_segments - 1) * p.n_sub);
      DYSRA_CUDA_TRY(cudaFuncSetAttribute(linear_attention_wgmma_sum_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          int(LinSumTile::smem_bytes())));
      linear_attention_wgmma_sum_kernel<<<sum_grid, LinSumTile::kThreads, LinSumTile::smem_bytes(), stream>>>(p, mk, mv);
      DYSRA_CUDA_TRY(cudaGetLastError());
      summed = true;
    }
  }
  if (p.n_segments > 1 && !p.workspace_ready && !summed) {  // the mma.sync sum kernel (any case; any n_sub)
    const dim3 sum_grid(grid.x, grid.y, p.batch * (p.n_segments - 1) * p.n_sub);
    const size_t smem = sizeof(__nv_bfloat16) * 2 * size_t(kC) * (Tile::kLdq + Tile::kLdv) +
                        (AUG == kAugNone ? 0 : sizeof(float) * 2 * kC);
    auto kernel = linear_attention_segment_sum_kernel<__nv_bfloat16, DK, AUG>;
    DYSRA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    kernel<<<sum_grid, 128, smem, stream>>>(p);
    DYSRA_CUDA_TRY(cudaGetLastError());
  }
  if (const int wg = AUG == kAugNone && DK == 128 ? linear_wgmma_mode(p) : 0) {
    bool launched = false;
    const cudaError_t e = wg == 1 ? launch_wgmma<1, 2>(p, grid, stream, launched)
                                  : launch_wgmma<2, 3>(p, grid, stream, launched);
    if (launched || e != cudaSuccess) return e;  // otherwise the mma.sync kernel below (any number of segments)
  }
  const size_t smem = Tile::smem_bytes() + aug_bytes;
  auto kernel = linear_attention_mma_kernel<__nv_bfloat16, DK, AUG>;
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  kernel<<<grid, 128, smem, stream>>>(p);
  return cudaGetLastError();
}

template <int DK>
cudaError_t launch_mma(const LinearAttentionParams& p, cudaStream_t stream) {
  switch (aug_kind(p)) {
    case kAugContract: return launch_mma_aug<DK, kAugContract>(p, stream);
    case kAugValue: return launch_mma_aug<DK, kAugValue>(p, stream);
    default: return launch_mma_aug<DK, kAugNone>(p, stream);
  }
}

}  // namespace

cudaError_t linear_attention_core(const LinearAttentionParams& p, cudaStream_t stream) {
  if (p.dk < 1 || p.dk > kLinearAttentionMaxDk || p.dv < 1) return cudaErrorInvalidValue;
  if (p.batch == 0 || p.heads == 0) return cudaSuccess;
  if ((p.aug.contract && p.aug.value) || (p.aug.normalize && !p.aug.value)) return cudaErrorInvalidValue;
  if (p.k_sum && (p.aug.contract || p.aug.value || !use_mma_path(p))) return cudaErrorInvalidValue;
  if (use_mma_path(p)) return p.dk == 64 ? launch_mma<64>(p, stream) : launch_mma<128>(p, stream);
  if (p.aug.contract || p.aug.value) return cudaErrorInvalidValue;  // augmentations: tensor-core path only
  const size_t smem = sizeof(float) * (2 * size_t(p.dk) * kLDT + kC * kLDT + kC * kVT + size_t(p.dk) * kVT);
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(linear_attention_core_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      int(smem)));
  const dim3 grid((p.dv + kVT - 1) / kVT, p.heads, p.batch);
  linear_attention_core_kernel<<<grid, kThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace dysra::kernels

namespace dysra::kernels {
namespace {
__device__ __forceinline__ void norm_grad_row(const LinearAttentionNormGradParams& p, int64_t row, size_t& go,
                                              size_t& oo, size_t& dn) {
  const int h = int(row % p.heads), t = int((row / p.heads) % p.seqlen), b = int(row / (int64_t(p.heads) * p.seqlen));
  go = size_t(b) * p.g_out.stride_b + size_t(t) * p.g_out.stride_t + size_t(h) * p.g_out.stride_h;
  oo = size_t(b) * p.out.stride_b + size_t(t) * p.out.stride_t + size_t(h) * p.out.stride_h;
  dn = (size_t(b) * p.heads + h) * p.seqlen + t;
}

/// bf16 rows of d_v = 8·L elements (L a power of two <= 32), 16-byte aligned: L lanes per row, 8 elements each.
template <int L>
__global__ void __launch_bounds__(256) linear_attention_norm_grad_bf16_kernel(LinearAttentionNormGradParams p) {
  const int lane = threadIdx.x & 31, part = lane % L;
  const int64_t row = (int64_t(blockIdx.x) * 256 + threadIdx.x) / L;
  const bool ok = row < int64_t(p.batch) * p.seqlen * p.heads;
  size_t go = 0, oo = 0, dn = 0;
  if (ok) norm_grad_row(p, row, go, oo, dn);
  float gv[8] = {}, dot = 0.f, inv = 0.f;
  if (ok) {
    const uint4 g4 = *reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(p.g_out.ptr) + go + 8 * part);
    const uint4 o4 = *reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(p.out.ptr) + oo + 8 * part);
    const __nv_bfloat16* gb = reinterpret_cast<const __nv_bfloat16*>(&g4);
    const __nv_bfloat16* ob = reinterpret_cast<const __nv_bfloat16*>(&o4);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      gv[i] = __bfloat162float(gb[i]);
      dot = fmaf(gv[i], __bfloat162float(ob[i]), dot);
    }
    inv = 1.f / (p.den[dn] + p.eps);
  }
#pragma unroll
  for (int m = L / 2; m >= 1; m >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, m);
  if (!ok) return;
  uint4 r;
  uint32_t* rw = reinterpret_cast<uint32_t*>(&r);
#pragma unroll
  for (int i = 0; i < 4; ++i) rw[i] = mma::pack2<__nv_bfloat16>(gv[2 * i] * inv, gv[2 * i + 1] * inv);
  *reinterpret_cast<uint4*>(static_cast<__nv_bfloat16*>(p.g_num) + size_t(row) * p.dv + 8 * part) = r;
  if (part == 0) p.g_den[dn] = -dot * inv;
}

/// Any dtype and d_v: one warp per row, 8 rows per block.
__global__ void __launch_bounds__(256) linear_attention_norm_grad_kernel(LinearAttentionNormGradParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * 8 + (threadIdx.x >> 5);
  if (row >= int64_t(p.batch) * p.seqlen * p.heads) return;
  size_t go, oo, dn;
  norm_grad_row(p, row, go, oo, dn);
  const float inv = 1.f / (p.den[dn] + p.eps);
  float dot = 0.f;
  for (int c = lane; c < p.dv; c += 32) {
    const float gv = load_as_float(p.g_out.ptr, p.g_out.dtype, go + c);
    dot = fmaf(gv, load_as_float(p.out.ptr, p.out.dtype, oo + c), dot);
    store_from_float(p.g_num, p.g_num_dtype, size_t(row) * p.dv + c, gv * inv);
  }
#pragma unroll
  for (int m = 16; m >= 1; m >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, m);
  if (lane == 0) p.g_den[dn] = -dot * inv;
}

template <int L>
cudaError_t launch_norm_grad_bf16(const LinearAttentionNormGradParams& p, int64_t n_rows, cudaStream_t stream) {
  linear_attention_norm_grad_bf16_kernel<L><<<unsigned((n_rows * L + 255) / 256), 256, 0, stream>>>(p);
  return cudaGetLastError();
}
}  // namespace

cudaError_t linear_attention_norm_grad(const LinearAttentionNormGradParams& p, cudaStream_t stream) {
  const int64_t n_rows = int64_t(p.batch) * p.seqlen * p.heads;
  if (n_rows == 0) return cudaSuccess;
  if (p.dv < 1 || !p.den || !p.g_num || !p.g_den || n_rows > int64_t(8) * 0x7fffffff) return cudaErrorInvalidValue;
  const bool vec = p.g_out.dtype == DType::kBFloat16 && p.out.dtype == DType::kBFloat16 &&
                   p.g_num_dtype == DType::kBFloat16 && rows_of_8(p.g_out) && rows_of_8(p.out) && aligned16(p.g_num) &&
                   p.dv % 8 == 0 && n_rows * (p.dv / 8) < int64_t(256) * 0x7fffffff;
  if (vec) {
    switch (p.dv / 8) {
      case 8: return launch_norm_grad_bf16<8>(p, n_rows, stream);
      case 16: return launch_norm_grad_bf16<16>(p, n_rows, stream);
      case 32: return launch_norm_grad_bf16<32>(p, n_rows, stream);
      default: break;
    }
  }
  linear_attention_norm_grad_kernel<<<unsigned((n_rows + 7) / 8), 256, 0, stream>>>(p);
  return cudaGetLastError();
}

size_t linear_attention_workspace_bytes(const LinearAttentionParams& p) {
  if (p.batch == 0 || p.heads == 0 || !use_mma_path(p)) return 0;
  const int P = n_segments(p), parts = P * n_sub_parts(p, P);
  const size_t aug_len = p.aug.contract ? size_t(p.dv) : p.aug.value ? size_t(p.dk) : 0;
  return P > 1 ? sizeof(float) * size_t(p.batch) * p.heads * parts * (size_t(p.dk) * p.dv + aug_len) : 0;
}
bool linear_attention_tensor_core_path(const LinearAttentionParams& p) { return use_mma_path(p); }
void linear_attention_segments(const LinearAttentionParams& p, int& n_seg, int& n_sub) {
  n_seg = n_sub = 1;
  if (p.batch == 0 || p.heads == 0 || !use_mma_path(p)) return;
  n_seg = n_segments(p);
  n_sub = n_sub_parts(p, n_seg);
}
}  // namespace dysra::kernels
