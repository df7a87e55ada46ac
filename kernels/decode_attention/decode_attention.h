// kernels/decode_attention/decode_attention.h — torch-free params + launcher of one decode step over a slot cache.
//
// Semantics: include/dysra/ops/decode_attention.h. All tensors contiguous, one dtype (K's) for q, k_new, v_new, K,
// V, bias and out: q, k_new, v_new, out [rows, D]; K, V [rows, N, D]; bias [rows, N]; rows = batch · heads.
// workspace: fp32, rows · splits · (D + 2) floats (the splits' partial max, sum and weighted values); counters: rows
// ints that are 0 before a launch and 0 again after it (the kernel resets them), so a caller keeps one zeroed buffer
// for all its steps.
#pragma once
#include <cstdint>

#include "common/kernel_common.h"

namespace dysra::kernels {

struct DecodeAttentionParams {
  DType dtype = DType::kFloat32;
  int rows = 0, n_slots = 0, dim = 0, slot = 0;
  int splits = 0;  ///< 0 → chosen by decode_attention_splits
  float scale = 1.f;
  const void* q = nullptr;
  const void* k_new = nullptr;
  const void* v_new = nullptr;
  void* k = nullptr;
  void* v = nullptr;
  void* bias = nullptr;
  void* out = nullptr;
  float* workspace = nullptr;
  int* counters = nullptr;
};

/// Floats a caller's buffer needs for `rows` counters (as int) followed by the workspace (see above).
size_t decode_attention_workspace_floats(int rows, int splits, int dim);

/// Head sizes with a compiled kernel.
bool decode_attention_supported(int dim);
/// Splits per row for `rows` rows of `n_slots` slots on the current device (≈ 8 thread blocks per SM, ≥ 64 slots
/// per split).
int decode_attention_splits(int rows, int n_slots);
cudaError_t decode_attention(const DecodeAttentionParams& params, cudaStream_t stream);

}  // namespace dysra::kernels
