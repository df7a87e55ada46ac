// kernels/common/wgmma.cuh — sm_90a warpgroup MMA (wgmma.mma_async): shared-memory matrix descriptors of the
// 128-byte swizzled layout, the fences, and the m64nNk16 16-bit instructions the attention kernels use.
//
// Layout "SW128 rows" (PTX ISA, "Shared Memory Matrix Layout", 128B swizzling, 16-bit elements): a tile of R rows
// whose columns are cut into groups of 64 elements (128 bytes); group h is a region of R·128 bytes (1024-byte
// aligned), row r at byte r·128 of it, the row's 16-byte chunk c (elements 8c .. 8c+7 of the group) stored at chunk
// c ^ (r % 8). The same bytes serve as
//   * a K-major operand (rows = M or N, columns = K): descriptor start = region of k / 64 + 32 bytes per k-step
//     of 16 within it, stride byte offset (SBO) = 1024 (the next 8 rows), leading byte offset unused (16);
//   * an MN-major operand (rows = K, columns = N; B of O = P·V with V stored by key): start = 2048 bytes per
//     k-step (16 rows), LBO = R·128 (the next group of 64 columns), SBO = 1024 (the next 8 rows).
// Accumulators (m64nNk16, fp32): warp w of the warpgroup holds rows 16w .. 16w+15, N/8 tiles of the mma.m16n8
// C layout (lane 4g + q: rows g and g + 8, columns 8j + 2q, + 1). A from registers: the mma.m16n8k16 A fragment
// of the warp's 16 rows.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>

#include "common/mma.cuh"

namespace dysra::kernels::wgmma {

/// Byte offset of 16-byte chunk c (0..7) of row r inside one 128-byte-wide region of the SW128 rows layout.
__host__ __device__ constexpr uint32_t sw128_offset(int r, int c) { return uint32_t(r) * 128u + (uint32_t(c ^ (r & 7)) << 4); }

__device__ __forceinline__ uint64_t desc_field(uint32_t bytes) { return uint64_t((bytes & 0x3FFFFu) >> 4); }
/// Matrix descriptor of a 128B-swizzled shared-memory operand starting at `smem`.
__device__ __forceinline__ uint64_t make_desc_sw128(const void* smem, uint32_t lbo, uint32_t sbo) {
  return desc_field(mma::smem_addr(smem)) | (desc_field(lbo) << 16) | (desc_field(sbo) << 32) | (uint64_t(1) << 62);
}

/// Before the first wgmma that reads registers (accumulators, A) written by ordinary instructions.
__device__ __forceinline__ void fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
/// Waits until at most N committed groups of this warpgroup are pending.
template <int N>
__device__ __forceinline__ void wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/// Makes shared memory written through the generic proxy (st.shared, cp.async) visible to wgmma's reads (the async
/// proxy); each writing thread calls it before the barrier that publishes the data.
__device__ __forceinline__ void fence_proxy_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
/// mbarrier (shared-memory transaction barrier) and named-barrier helpers of the warp-specialised kernels.
namespace mbar {
__device__ __forceinline__ void init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(mma::smem_addr(bar)), "r"(count) : "memory");
}
/// Arrival of this thread (release: its earlier shared-memory writes are visible to the waiters).
__device__ __forceinline__ void arrive(uint64_t* bar) {
  asm volatile("{\n .reg .b64 st;\n mbarrier.arrive.shared::cta.b64 st, [%0];\n}\n" ::"r"(mma::smem_addr(bar))
               : "memory");
}
/// Arrival once every cp.async this thread issued so far has landed (counted in the barrier's init count).
__device__ __forceinline__ void arrive_cp_async(uint64_t* bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(mma::smem_addr(bar)) : "memory");
}
/// Waits until the phase of parity `parity` has completed (acquire).
__device__ __forceinline__ void wait(uint64_t* bar, uint32_t parity) {
  asm volatile(
      "{\n .reg .pred p;\n"
      "WAIT:\n mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n @!p bra WAIT;\n}\n" ::"r"(mma::smem_addr(bar)),
      "r"(parity)
      : "memory");
}
}  // namespace mbar
/// Sets this warpgroup's registers per thread to N (every warp of the warpgroup executes it): dec hands registers
/// back to the block's pool, inc waits until the pool has them.
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N)); }
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N)); }
/// Named barrier `id` (1 .. 15) over `n` threads: sync waits for all n, arrive counts without waiting.
__device__ __forceinline__ void named_sync(int id, int n) { asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(n) : "memory"); }
__device__ __forceinline__ void named_arrive(int id, int n) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}

/// Pins the accumulator registers at this point of the program (no read or write of them moves across it).
template <int N>
__device__ __forceinline__ void fence_operand(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

/// acc (64×64, fp32 fragments) (+)= A·B, A and B in shared memory, K-major or MN-major ("transposed": TA / TB =
/// imm-trans-a / imm-trans-b); scale_d = 0 overwrites acc.
template <typename T, int TA, int TB>
__device__ __forceinline__ void mma_m64n64k16_ss_t(float (&d)[32], uint64_t desc_a, uint64_t desc_b, int scale_d);
/// The same with A and B both K-major.
template <typename T>
__device__ __forceinline__ void mma_m64n64k16_ss(float (&d)[32], uint64_t desc_a, uint64_t desc_b, int scale_d) {
  mma_m64n64k16_ss_t<T, 0, 0>(d, desc_a, desc_b, scale_d);
}
/// acc (64×64) (+)= A·B, A in registers, B MN-major in shared memory.
template <typename T>
__device__ __forceinline__ void mma_m64n64k16_rs_tb(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b,
                                                    int scale_d);
/// acc (64×64) (+)= A·B, A in registers, B K-major in shared memory (S = Q Kᵀ with Q held in registers).
template <typename T>
__device__ __forceinline__ void mma_m64n64k16_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b, int scale_d);
/// acc (64×128) (+)= A·B, A in registers, B MN-major in shared memory ("transposed": imm-trans-b = 1).
template <typename T>
__device__ __forceinline__ void mma_m64n128k16_rs_tb(float (&d)[64], const uint32_t (&a)[4], uint64_t desc_b,
                                                     int scale_d);
/// d (64×128) (+)= A·B, A and B both K-major in shared memory.
template <typename T>
__device__ __forceinline__ void mma_m64n128k16_ss(float (&d)[64], uint64_t desc_a, uint64_t desc_b, int scale_d);
/// m64n8k16 with A and B from shared memory (TA / TB: MN-major A / B); 4 accumulators per lane (rows g and g + 8 of
/// the warp's 16, columns 2q, 2q + 1).
template <typename T, int TA, int TB>
__device__ __forceinline__ void mma_m64n8k16_ss_t(float (&d)[4], uint64_t desc_a, uint64_t desc_b, int scale_d);

// the 32 fp32 accumulators of an m64n64 product: their registers in the instruction, and the asm outputs
#define DYSRA_WGMMA_ACC32_REGS                                                                \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "                   \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define DYSRA_WGMMA_ACC32_OUT                                                                                   \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),     \
      "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),      \
      "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),     \
      "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])

#define DYSRA_WGMMA_SS_M64N64K16_T(T, PTX, TA, TB, TAS, TBS)                                                   \
  template <>                                                                                                  \
  __device__ __forceinline__ void mma_m64n64k16_ss_t<T, TA, TB>(float (&d)[32], uint64_t desc_a,             \
                                                                 uint64_t desc_b, int scale_d) {              \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                                  \
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX "." PTX " " DYSRA_WGMMA_ACC32_REGS           \
                 ", %32, %33, p, 1, 1, " TAS ", " TBS ";\n}\n"                                                   \
                 : DYSRA_WGMMA_ACC32_OUT                                                                       \
                 : "l"(desc_a), "l"(desc_b), "r"(scale_d));                                                    \
  }
#define DYSRA_WGMMA_RS_M64N64K16(T, PTX, NAME, TBS)                                                            \
  template <>                                                                                                  \
  __device__ __forceinline__ void NAME<T>(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b, int scale_d) { \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                                  \
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX "." PTX " " DYSRA_WGMMA_ACC32_REGS          \
                 ", {%32, %33, %34, %35}, %36, p, 1, 1, " TBS ";\n}\n"                                         \
                 : DYSRA_WGMMA_ACC32_OUT                                                                       \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d));                     \
  }
#define DYSRA_WGMMA_SS_M64N8K16_T(T, PTX, TA, TB, TAS, TBS)                                                    \
  template <>                                                                                                  \
  __device__ __forceinline__ void mma_m64n8k16_ss_t<T, TA, TB>(float (&d)[4], uint64_t desc_a, uint64_t desc_b, \
                                                                int scale_d) {                                 \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %6, 0;\n"                                                    \
                 "wgmma.mma_async.sync.aligned.m64n8k16.f32." PTX "." PTX " {%0, %1, %2, %3}, %4, %5, p, 1, 1, " \
                 TAS ", " TBS ";\n}\n"                                                                          \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])                                              \
                 : "l"(desc_a), "l"(desc_b), "r"(scale_d));                                                    \
  }
DYSRA_WGMMA_SS_M64N8K16_T(__nv_bfloat16, "bf16", 1, 0, "1", "0")
#undef DYSRA_WGMMA_SS_M64N8K16_T
DYSRA_WGMMA_SS_M64N64K16_T(__nv_bfloat16, "bf16", 0, 0, "0", "0")
DYSRA_WGMMA_SS_M64N64K16_T(__half, "f16", 0, 0, "0", "0")
DYSRA_WGMMA_SS_M64N64K16_T(__nv_bfloat16, "bf16", 0, 1, "0", "1")
DYSRA_WGMMA_SS_M64N64K16_T(__nv_bfloat16, "bf16", 1, 1, "1", "1")
DYSRA_WGMMA_RS_M64N64K16(__nv_bfloat16, "bf16", mma_m64n64k16_rs_tb, "1")
DYSRA_WGMMA_RS_M64N64K16(__nv_bfloat16, "bf16", mma_m64n64k16_rs, "0")
DYSRA_WGMMA_RS_M64N64K16(__half, "f16", mma_m64n64k16_rs, "0")
#undef DYSRA_WGMMA_SS_M64N64K16_T
#undef DYSRA_WGMMA_RS_M64N64K16
#undef DYSRA_WGMMA_ACC32_OUT
#undef DYSRA_WGMMA_ACC32_REGS

// the 64 fp32 accumulators of an m64n128 product: their registers in the instruction, and the asm outputs
#define DYSRA_WGMMA_ACC64_REGS                                                                \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "                   \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "          \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "          \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define DYSRA_WGMMA_ACC64_OUT                                                                                   \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),     \
      "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),      \
      "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),     \
      "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]),     \
      "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]),     \
      "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),     \
      "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),     \
      "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

#define DYSRA_WGMMA_RS_M64N128K16_TB(T, PTX)                                                                   \
  template <>                                                                                                  \
  __device__ __forceinline__ void mma_m64n128k16_rs_tb<T>(float (&d)[64], const uint32_t (&a)[4], uint64_t desc_b, \
                                                        int scale_d) {                                         \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                                  \
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32." PTX "." PTX " " DYSRA_WGMMA_ACC64_REGS          \
                 ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"                                               \
                 : DYSRA_WGMMA_ACC64_OUT                                                                       \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d));                     \
  }

#define DYSRA_WGMMA_SS_M64N128K16(T, PTX)                                                                      \
  template <>                                                                                                  \
  __device__ __forceinline__ void mma_m64n128k16_ss<T>(float (&d)[64], uint64_t desc_a, uint64_t desc_b,     \
                                                       int scale_d) {                                          \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                                  \
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32." PTX "." PTX " " DYSRA_WGMMA_ACC64_REGS          \
                 ", %64, %65, p, 1, 1, 0, 0;\n}\n"                                                              \
                 : DYSRA_WGMMA_ACC64_OUT                                                                       \
                 : "l"(desc_a), "l"(desc_b), "r"(scale_d));                                                    \
  }

DYSRA_WGMMA_SS_M64N128K16(__nv_bfloat16, "bf16")
DYSRA_WGMMA_SS_M64N128K16(__half, "f16")
DYSRA_WGMMA_RS_M64N128K16_TB(__nv_bfloat16, "bf16")
DYSRA_WGMMA_RS_M64N128K16_TB(__half, "f16")
#undef DYSRA_WGMMA_SS_M64N128K16
#undef DYSRA_WGMMA_RS_M64N128K16_TB
#undef DYSRA_WGMMA_ACC64_OUT
#undef DYSRA_WGMMA_ACC64_REGS

}  // namespace dysra::kernels::wgmma
