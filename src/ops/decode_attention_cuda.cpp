// src/ops/decode_attention_cuda.cpp — LibTorch glue of the CUDA decode attention (kernels/decode_attention).
#include "ops/cuda_glue.h"

#ifdef DYSRA_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>

#include "decode_attention/decode_attention.h"
#include "dysra/core/error.h"
#include "ops/cuda_common.h"

namespace dysra::ops::cuda {

bool decode_supported(int64_t head_dim) { return kernels::decode_attention_supported(static_cast<int>(head_dim)); }

namespace {
int splits_for(int rows, int n_slots) {
  // DYSRA_DECODE_SPLITS=n forces n splits per row (benchmark sweeps); otherwise the launcher's choice
  static const int forced = [] {
    const char* e = std::getenv("DYSRA_DECODE_SPLITS");
    return e ? std::max(0, std::atoi(e)) : 0;
  }();
  return forced > 0 ? std::min(forced, n_slots) : kernels::decode_attention_splits(rows, n_slots);
}
}  // namespace

torch::Tensor decode_workspace(const torch::Tensor& K) {
  const int rows = static_cast<int>(K.size(0) * K.size(1)), n = static_cast<int>(K.size(2));
  const auto floats = kernels::decode_attention_workspace_floats(rows, splits_for(rows, n), static_cast<int>(K.size(3)));
  return torch::zeros({static_cast<int64_t>(floats)}, K.options().dtype(torch::kFloat32));
}

torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k_new, const torch::Tensor& v_new,
                               torch::Tensor& K, torch::Tensor& V, torch::Tensor& bias, int64_t slot, double scale,
                               const torch::Tensor& workspace) {
  constexpr const char* kOp = "decode_attention";
  const auto dev = K.device();  // every input is on it (ops::decode_attention validated them)
  c10::cuda::CUDAGuard guard(dev);
  const int64_t B = K.size(0), H = K.size(1), N = K.size(2), D = K.size(3);
  auto out = torch::empty({B, H, 1, D}, K.options());
  kernels::DecodeAttentionParams p;
  p.dtype = cuda_detail::kernel_dtype(K, kOp, "K");
  p.rows = static_cast<int>(B * H), p.n_slots = static_cast<int>(N), p.dim = static_cast<int>(D);
  p.slot = static_cast<int>(slot);
  p.splits = splits_for(p.rows, p.n_slots);
  p.scale = static_cast<float>(scale);
  p.q = q.data_ptr(), p.k_new = k_new.data_ptr(), p.v_new = v_new.data_ptr();
  p.k = K.data_ptr(), p.v = V.data_ptr(), p.bias = bias.data_ptr(), p.out = out.data_ptr();
  const auto need = static_cast<int64_t>(kernels::decode_attention_workspace_floats(p.rows, p.splits, p.dim));
  torch::Tensor ws = workspace.defined() ? workspace : torch::zeros({need}, K.options().dtype(torch::kFloat32));
  DYSRA_CHECK(ws.scalar_type() == torch::kFloat32 && ws.is_contiguous() && ws.device() == dev && ws.numel() >= need,
              "decode_attention: options.workspace must be a contiguous float32 tensor on ", dev, " of at least ", need,
              " elements (decode_attention_workspace(K)), got ", ws.scalar_type(), " ", ws.sizes(), " on ", ws.device());
  p.counters = reinterpret_cast<int*>(ws.data_ptr<float>());
  p.workspace = ws.data_ptr<float>() + p.rows;
  cuda_detail::check_launch(kernels::decode_attention(p, cuda_detail::stream_of(K)), kOp, "step");
  return out;
}

}  // namespace dysra::ops::cuda
#endif  // DYSRA_WITH_CUDA
