// kernels/gathered_attention/gathered_attention.h — torch-free params + launchers of gathered sparse attention.
//
// Semantics: include/dysra/ops/gathered_attention.h. q [B, Tq, H, D] and k, v [B, N, Hkv, D] are read through
// element strides (last dim contiguous); indices [B, Hkv, n_blocks, K] int32 or int64 (index_step) contiguous,
// negative = padding, entries >= N are padding too (the kernels never read outside the memory; the op range-checks
// by default); a row listed twice in one list counts twice, as in the reference. out [B, Tq, H, D] (q's dtype) and
// lse [B, H, Tq] fp32 are contiguous.
// Backward: dout [B, Tq, H, D] contiguous (dtype), dsum [B, H, Tq] fp32 = rowsum(dout ⊙ out); writes dq
// [B, Tq, H, D] (dtype, contiguous) and *adds* into dk_acc / dv_acc [B, N, Hkv, D] fp32 (zeroed by the caller)
// with float atomics: a memory row may be listed by many (query block, kv head) pairs, so the order of the
// additions — and the last bits of dk/dv — can change from run to run (see gathered_attention.cu).
#pragma once
#include <cstdint>

#include "common/kernel_common.h"

namespace dysra::kernels {

constexpr int kGatheredAttentionMaxDim = 128;

struct GatheredAttentionParams {
  DType dtype = DType::kFloat32;  // of q, k, v, out (and dout, dq)
  int batch = 0, tq = 0, heads = 0, n_mem = 0, kv_heads = 0, dim = 0;
  int n_blocks = 0, topk = 0, block_q = 0;  // block_q = queries per index list (already clamped to <= tq)
  bool causal = false;
  int64_t causal_offset = 0;
  float scale = 1.f;
  const void* q = nullptr;
  int64_t q_stride_b = 0, q_stride_t = 0, q_stride_h = 0;
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t kv_stride_b = 0, kv_stride_n = 0, kv_stride_h = 0;  // shared by k and v (the glue makes them equal)
  const int32_t* indices = nullptr;
  /// int32 words per entry: 1 for int32 indices, 2 for int64 ones read in place (the low word: the entries that
  /// matter lie in [-1, N) with N < 2^31), so the glue needs no conversion pass
  int index_step = 1;
  void* out = nullptr;
  float* lse = nullptr;
};

struct GatheredAttentionBwdParams : GatheredAttentionParams {
  const void* dout = nullptr;
  const float* dsum = nullptr;
  void* dq = nullptr;
  float* dk_acc = nullptr;
  float* dv_acc = nullptr;
};

cudaError_t gathered_attention_fwd(const GatheredAttentionParams& params, cudaStream_t stream);
cudaError_t gathered_attention_bwd(const GatheredAttentionBwdParams& params, cudaStream_t stream);

}  // namespace dysra::kernels
