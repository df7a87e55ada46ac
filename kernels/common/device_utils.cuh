// kernels/common/device_utils.cuh — device helpers shared by the .cu files (conversions, fast exp2).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/kernel_common.h"

namespace dysra::kernels {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half(x); }

/// Loads element `i` of a tensor whose dtype is known only at run time (used in tile loads, not inner loops).
__device__ __forceinline__ float load_as_float(const void* p, DType t, size_t i) {
  switch (t) {
    case DType::kBFloat16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case DType::kFloat16: return __half2float(static_cast<const __half*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}
__device__ __forceinline__ void store_from_float(void* p, DType t, size_t i, float x) {
  switch (t) {
    case DType::kBFloat16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16(x); break;
    case DType::kFloat16: static_cast<__half*>(p)[i] = __float2half(x); break;
    default: static_cast<float*>(p)[i] = x;
  }
}

/// 2^x with the MUFU unit (ex2.approx, ~2 ulp); exp2(-inf) = 0.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

/// softplus with torch's default threshold (x > 20 → x).
__device__ __forceinline__ float softplus(float x) { return x > 20.f ? x : log1pf(__expf(x)); }
__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + __expf(-x)); }

}  // namespace dysra::kernels
