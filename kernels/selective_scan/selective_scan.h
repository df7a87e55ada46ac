// kernels/selective_scan/selective_scan.h — torch-free params + launchers of the Mamba-1 selective scan.
//
// Semantics: include/dysra/ops/selective_scan.h. All tensors are contiguous; strides are implied:
//   u, delta, z, out, du, ddelta, dz: [B, D, L] (dtype)     A: [D, N] fp32     B, C: [B, N, L] (dtype)
//   D_skip, delta_bias: [D] fp32       initial_state, last_state, dinitial: [B, D, N] fp32
//   checkpoints: [B, D, n_chunks, N] fp32, the state *before* each chunk of kSelectiveScanChunk steps
// Backward partials (summed by the caller in a fixed order, so the result is deterministic):
//   dA_part [B, D, N], dD_part [B, D], dbias_part [B, D], dB_part / dC_part [B, n_dtiles, N, L] (fp32).
#pragma once
#include "common/kernel_common.h"

namespace dysra::kernels {

constexpr int kSelectiveScanChunk = 64;     ///< time steps between saved states (and per smem tile)
constexpr int kSelectiveScanChannels = 32;  ///< channels per dB/dC partial slice (n_dtiles = ceil(D / 32))
constexpr int kSelectiveScanMaxState = 32;  ///< largest supported N

struct SelectiveScanParams {
  DType dtype = DType::kFloat32;  // of u, delta, z, B, C, out
  int batch = 0, dim = 0, seqlen = 0, dstate = 0;
  bool delta_softplus = true;
  const void* u = nullptr;
  const void* delta = nullptr;
  const void* z = nullptr;             // optional
  const float* A = nullptr;
  const void* B = nullptr;
  const void* C = nullptr;
  const float* D = nullptr;            // optional
  const float* delta_bias = nullptr;   // optional
  const float* initial_state = nullptr;// optional
  void* out = nullptr;
  float* last_state = nullptr;
  float* checkpoints = nullptr;        // optional (forward: written when non-null; backward: read)
};

struct SelectiveScanBwdParams : SelectiveScanParams {
  const void* dout = nullptr;          // [B, D, L] dtype
  const float* dlast_state = nullptr;  // optional [B, D, N]
  void* du = nullptr;
  void* ddelta = nullptr;              // gradient w.r.t. the raw delta (before bias/softplus)
  void* dz = nullptr;                  // when z
  float* dA_part = nullptr;
  float* dD_part = nullptr;
  float* dbias_part = nullptr;
  float* dB_part = nullptr;
  float* dC_part = nullptr;
  float* dinitial = nullptr;
};

constexpr int selective_scan_n_chunks(int seqlen) { return (seqlen + kSelectiveScanChunk - 1) / kSelectiveScanChunk; }
constexpr int selective_scan_n_dtiles(int dim) { return (dim + kSelectiveScanChannels - 1) / kSelectiveScanChannels; }

cudaError_t selective_scan_fwd(const SelectiveScanParams& params, cudaStream_t stream);
cudaError_t selective_scan_bwd(const SelectiveScanBwdParams& params, cudaStream_t stream);

}  // namespace dysra::kernels
