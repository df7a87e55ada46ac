// kernels/linear_attention/linear_attention.cu — chunked causal linear-attention core (sm_90), fp32 accumulation.
//
// Design. One block = (32 output columns of v, head h, batch b), 256 threads, walking the chunks of 64 tokens
// in order (reverse order for the backward passes). Per chunk:
//   A  = mask(Q Kᵀ)              64×64, causal (inclusive) mask, fp32 CUDA-core 4×4 register tiles
//   O  = scale (A V + Q S)       64×32
//   S += Kᵀ V                    dk×32, S kept in registers (and mirrored in smem for the next Q S)
// The state never goes to global memory between chunks (fla materialises a per-chunk h), so HBM traffic is
// q, k, v read (k, q once per 32-column tile) and o written.
//
// Floor (B=4, T=4096, H=16, D=128, bf16): q, k, v, o = 4 × 67 MB = 0.27 GB → 0.08 ms at 3.35 TB/s;
// 2·B·H·T·(64·D + 64·D + 2·D·D)... ≈ 2·4·16·4096·(64·128·2 + 2·128·128) ≈ 34 GFLOP (with the 64-token intra-chunk
// products) → 0.05 ms on bf16 tensor cores, 0.5 ms on fp32 CUDA cores (67 TFLOP/s). This version uses fp32 CUDA
// cores (no tensor cores yet): measured 3.3 ms forward at the shape above on an H200 (~8 TFLOP/s), slower than
// the chunked torch-op path (2.5 ms, cuBLAS tensor cores). Correct; the mma.sync rewrite is still to do.
#include "common/device_utils.cuh"
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

}  // namespace

cudaError_t linear_attention_core(const LinearAttentionParams& p, cudaStream_t stream) {
  if (p.dk < 1 || p.dk > kLinearAttentionMaxDk || p.dv < 1) return cudaErrorInvalidValue;
  if (p.batch == 0 || p.heads == 0) return cudaSuccess;
  const size_t smem = sizeof(float) * (2 * size_t(p.dk) * kLDT + kC * kLDT + kC * kVT + size_t(p.dk) * kVT);
  DYSRA_CUDA_TRY(cudaFuncSetAttribute(linear_attention_core_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      int(smem)));
  const dim3 grid((p.dv + kVT - 1) / kVT, p.heads, p.batch);
  linear_attention_core_kernel<<<grid, kThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace dysra::kernels
