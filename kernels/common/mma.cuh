// kernels/common/mma.cuh — warp-level tensor-core helpers (sm_80+ mma.sync m16n8k16, ldmatrix, cp.async).
//
// Fragment layouts (PTX ISA, "mma.m16n8k16" with .bf16/.f16 inputs and f32 accumulators), lane = 4·g + q:
//   A (16×16, row):  a0 = (row g,   k 2q..2q+1)   a1 = (row g+8, k 2q..)   a2 = (row g, k 2q+8..)   a3 = (row g+8, k 2q+8..)
//   B (16×8, col):   b0 = (k 2q..2q+1, col g)     b1 = (k 2q+8.., col g)
//   C (16×8, f32):   c0,c1 = (row g, col 2q, 2q+1)  c2,c3 = (row g+8, col 2q, 2q+1)
// Two C tiles side by side (cols 0-7, 8-15) are, once packed to 16-bit pairs, exactly one A fragment of 16×16:
// a0 = pack(c[0].0, c[0].1), a1 = pack(c[0].2, c[0].3), a2 = pack(c[1].0, c[1].1), a3 = pack(c[1].2, c[1].3).
//
// Shared-memory operand loads (ldmatrix.x4, four 8×8 matrices, lanes 8j..8j+7 give the row addresses of matrix j):
//   A from a row-major [m][k] tile:          lane row m = l % 16,                      col k = (l / 16)·8
//   A from a [k][m] tile (transposed load):  row k = (l % 8) + (l / 16)·8,             col m = ((l / 8) % 2)·8
//   B pair (n 0-7, n 8-15) from [n][k]:      row n = (l % 8) + (l / 16)·8,             col k = ((l / 8) % 2)·8
//   B pair from a [k][n] tile (transposed):  row k = (l % 8) + ((l / 8) % 2)·8,       col n = (l / 16)·8
// (the B pair gives b0, b1 of the first 8 columns in r0, r1 and of the next 8 in r2, r3).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace dysra::kernels::mma {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

/// Stores four 8×8 b16 matrices (the inverse of ldmatrix_x4): lanes 8j..8j+7 give the row addresses of matrix j,
/// r[j] is this lane's pair (row lane / 4, columns 2·(lane % 4), +1) of matrix j — an m16n8 accumulator packed. sm_90.
__device__ __forceinline__ void stmatrix_x4(uint32_t addr, const uint32_t (&r)[4]) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r[0]), "r"(r[1]),
               "r"(r[2]), "r"(r[3])
               : "memory");
}

/// c += a·b, bf16 (T = __nv_bfloat16) or fp16 (T = __half) inputs, fp32 accumulators.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
// (mma reads only registers: without `volatile` the compiler may interleave independent mma chains)
#ifdef DYSRA_MMA_VOLATILE
#define DYSRA_MMA_ASM asm volatile
#else
#define DYSRA_MMA_ASM asm
#endif
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                         uint32_t b1) {
  DYSRA_MMA_ASM(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma_16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  DYSRA_MMA_ASM(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// Two floats → one register of two 16-bit values (x in the low half).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float x, float y);
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float x, float y) {
  __nv_bfloat162 v = __floats2bfloat162_rn(x, y);
  return *reinterpret_cast<uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float x, float y) {
  __half2 v = __floats2half2_rn(x, y);
  return *reinterpret_cast<uint32_t*>(&v);
}

template <int N>
__device__ __forceinline__ void zero(float (&acc)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
}

/// fp32 C fragments of a 16 × 16·KS tile (2·KS n-tiles) → the 16-bit A fragments of the same tile.
template <typename T, int KS>
__device__ __forceinline__ void c_to_a(uint32_t (&a)[KS][4], const float (&c)[2 * KS][4]) {
#pragma unroll
  for (int j = 0; j < KS; ++j) {
    a[j][0] = pack2<T>(c[2 * j][0], c[2 * j][1]);
    a[j][1] = pack2<T>(c[2 * j][2], c[2 * j][3]);
    a[j][2] = pack2<T>(c[2 * j + 1][0], c[2 * j + 1][1]);
    a[j][3] = pack2<T>(c[2 * j + 1][2], c[2 * j + 1][3]);
  }
}

/// acc (16 × 16·NP) += A · B for a warp: A = KS k-steps of A fragments, B read from a shared [k][n] tile with
/// `ld` elements per row (transposed ldmatrix).
template <typename T, int KS, int NP, int MT>
__device__ __forceinline__ void warp_mma_kn_mt(float (&acc)[MT][2 * NP][4], const uint32_t (&a)[MT][KS][4], const T* b,
                                               int ld, int lane);
template <typename T, int KS, int NP>
__device__ __forceinline__ void warp_mma_kn(float (&acc)[2 * NP][4], const uint32_t (&a)[KS][4], const T* b, int ld,
                                            int lane) {
  warp_mma_kn_mt<T, KS, NP, 1>(reinterpret_cast<float (&)[1][2 * NP][4]>(acc),
                               reinterpret_cast<const uint32_t (&)[1][KS][4]>(a), b, ld, lane);
}

/// acc (16 × 16·NP) += A · Bᵀ for a warp: B read from a shared [n][k] tile (e.g. S = Q Kᵀ with K stored by row).
template <typename T, int KS, int NP>
__device__ __forceinline__ void warp_mma_nk(float (&acc)[2 * NP][4], const uint32_t (&a)[KS][4], const T* b, int ld,
                                            int lane) {
#pragma unroll
  for (int kk = 0; kk < KS; ++kk)
#pragma unroll
    for (int np = 0; np < NP; ++np) {
      uint32_t r[4];
      ldmatrix_x4(r, b + (np * 16 + (lane % 8) + (lane / 16) * 8) * ld + kk * 16 + ((lane / 8) % 2) * 8);
      mma_16816<T>(acc[2 * np], a[kk], r[0], r[1]);
      mma_16816<T>(acc[2 * np + 1], a[kk], r[2], r[3]);
    }
}

/// acc[mt] (16 × 16·NP, m-tile mt = rows a_row0 + 16·mt of a shared [m][k] tile) += A_mt · Bᵀ with B read from a
/// shared [n][k] tile: each B fragment is loaded once and used for all MT m-tiles; A is loaded per k-step.
template <typename T, int KS, int NP, int MT>
__device__ __forceinline__ void warp_mma_nk_mt(float (&acc)[MT][2 * NP][4], const T* a, int lda, int a_row0,
                                               const T* b, int ldb, int lane) {
#pragma unroll
  for (int kk = 0; kk < KS; ++kk) {
    uint32_t af[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
      ldmatrix_x4(af[mt], a + (a_row0 + 16 * mt + (lane % 16)) * lda + kk * 16 + (lane / 16) * 8);
#pragma unroll
    for (int np = 0; np < NP; ++np) {
      uint32_t r[4];
      ldmatrix_x4(r, b + (np * 16 + (lane % 8) + (lane / 16) * 8) * ldb + kk * 16 + ((lane / 8) % 2) * 8);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        mma_16816<T>(acc[mt][2 * np], af[mt], r[0], r[1]);
        mma_16816<T>(acc[mt][2 * np + 1], af[mt], r[2], r[3]);
      }
    }
  }
}

/// acc[mt] (16 × 16·NP) += A_mt · B for MT m-tiles whose A fragments are given, B from a shared [k][n] tile, each B
/// fragment loaded once for all m-tiles.
template <typename T, int KS, int NP, int MT>
__device__ __forceinline__ void warp_mma_kn_mt(float (&acc)[MT][2 * NP][4], const uint32_t (&a)[MT][KS][4], const T* b,
                                               int ld, int lane) {
#pragma unroll
  for (int kk = 0; kk < KS; ++kk)
#pragma unroll
    for (int np = 0; np < NP; ++np) {
      uint32_t r[4];
      ldmatrix_x4_trans(r, b + (kk * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * ld + np * 16 + (lane / 16) * 8);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        mma_16816<T>(acc[mt][2 * np], a[mt][kk], r[0], r[1]);
        mma_16816<T>(acc[mt][2 * np + 1], a[mt][kk], r[2], r[3]);
      }
    }
}

/// The A fragments of rows row0 .. row0+15 of a row-major shared [m][k] tile, KS k-steps.
template <typename T, int KS>
__device__ __forceinline__ void load_a_rows(uint32_t (&a)[KS][4], const T* src, int ld, int row0, int lane) {
#pragma unroll
  for (int kk = 0; kk < KS; ++kk) ldmatrix_x4(a[kk], src + (row0 + (lane % 16)) * ld + kk * 16 + (lane / 16) * 8);
}

/// 16-byte global → shared copy; `valid == false` writes zeros (nothing is read).
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem),
               "r"(valid ? 16 : 0));
}
/// 16-byte global → shared copy to a shared-memory address (smem_addr), always valid.
__device__ __forceinline__ void cp_async_16(uint32_t saddr, const void* gmem) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(saddr), "l"(gmem));
}
/// The same to a shared-memory address; `valid == false` writes zeros (nothing is read).
__device__ __forceinline__ void cp_async_16(uint32_t saddr, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(saddr), "l"(gmem), "r"(valid ? 16 : 0));
}
/// 4-byte global → shared copy; `valid == false` writes a zero.
__device__ __forceinline__ void cp_async_4(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem),
               "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

}  // namespace dysra::kernels::mma
