// kernels/common/tma.cuh — Hopper tensor memory accelerator (TMA): host-side tensor maps of 4-d bf16 tensors with a
// 128-byte swizzle (the layout the wgmma descriptors of common/wgmma.cuh read), and the device-side bulk tensor copies.
//
// A map describes a [B, T, H, C] tensor (C contiguous, the other strides in elements, multiples of 8) as the 4-d box
// source {C, T, H, B}; a box of 64 columns × R rows lands in shared memory as R rows of 128 bytes whose 16-byte chunk
// c sits at c ^ (row % 8) — wgmma::sw128_offset — when the destination is 1024-byte aligned. Elements outside the
// tensor (rows past T, columns past C) are read as zeros and never written.
#pragma once
#include <cuda.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/mma.cuh"

namespace dysra::kernels::tma {

/// Fills `map` for a [B, T, H, C] bf16 tensor at `ptr` (strides in elements) with boxes of 64 columns × `box_rows`
/// rows. False when the driver lacks the encoder or rejects the tensor (16-byte aligned base and strides needed).
bool encode_bf16_4d(CUtensorMap* map, const void* ptr, int64_t B, int64_t T, int64_t H, int64_t C, int64_t stride_b,
                    int64_t stride_t, int64_t stride_h, int box_rows);

/// Issues the copy of box {c, t, h, b} of `map` into `smem_dst`; its bytes complete a transaction on `bar`.
__device__ __forceinline__ void load_4d(uint32_t smem_dst, const CUtensorMap* map, int c, int t, int h, int b,
                                        uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], "
      "[%6];\n" ::"r"(smem_dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c), "r"(t), "r"(h), "r"(b), "r"(bar)
      : "memory");
}
/// Issues the copy of `smem_src` to box {c, t, h, b} of `map` (one bulk group per commit_group).
__device__ __forceinline__ void store_4d(const CUtensorMap* map, int c, int t, int h, int b, uint32_t smem_src) {
  asm volatile("cp.async.bulk.tensor.4d.global.shared::cta.tile.bulk_group [%0, {%1, %2, %3, %4}], [%5];\n" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(c), "r"(t), "r"(h), "r"(b), "r"(smem_src)
               : "memory");
}
__device__ __forceinline__ void commit_group() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
/// Waits until at most N of this thread's bulk groups still read their shared-memory source.
template <int N>
__device__ __forceinline__ void wait_group_read() {
  asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
}
/// Waits until at most N of this thread's bulk groups are outstanding (writes done).
template <int N>
__device__ __forceinline__ void wait_group() {
  asm volatile("cp.async.bulk.wait_group %0;\n" ::"n"(N) : "memory");
}
/// This thread's arrival on `bar`, announcing `bytes` more bytes of transactions in the current phase.
__device__ __forceinline__ void arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
/// Makes initialised mbarriers visible to the async proxy (the TMA unit's transactions).
__device__ __forceinline__ void fence_barrier_init() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }
/// Brings a tensor map held in kernel parameters into the constant cache before its first use.
__device__ __forceinline__ void prefetch_map(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

}  // namespace dysra::kernels::tma
