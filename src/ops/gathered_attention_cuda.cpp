// src/ops/gathered_attention_cuda.cpp — LibTorch glue of the CUDA gathered sparse attention.
//
// Takes int32 or int64 lists as they are (the kernels read int64 entries by their low words and ignore entries >= N;
// the range check, a device sync, is the dispatcher's, see GatheredAttentionOptions::check_indices), runs the
// flash-style kernels and wraps forward + backward in an autograd Function.
// dk/dv are accumulated in fp32 with atomics (see kernels/gathered_attention/gathered_attention.cu for why).
#include "ops/cuda_glue.h"

#ifdef DYSRA_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "dysra/core/error.h"
#include "gathered_attention/gathered_attention.h"
#include "ops/cuda_common.h"

namespace dysra::ops::cuda {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
namespace kd = dysra::kernels;
constexpr const char* kOp = "gathered_attention";

struct Shape {
  int64_t block_q, n_blocks;
  double scale;
  bool causal;
  int64_t causal_offset;
};

void fill_params(kd::GatheredAttentionParams& p, const Tensor& q, const Tensor& k, const Tensor& v,
                 const Tensor& idx, const Shape& s) {
  p.dtype = cuda_detail::kernel_dtype(q, kOp, "q");
  p.batch = int(q.size(0));
  p.tq = int(q.size(1));
  p.heads = int(q.size(2));
  p.dim = int(q.size(3));
  p.n_mem = int(k.size(1));
  p.kv_heads = int(k.size(2));
  p.n_blocks = int(s.n_blocks);
  p.topk = int(idx.size(3));
  p.block_q = int(s.block_q);
  p.causal = s.causal;
  p.causal_offset = s.causal_offset;
  p.scale = float(s.scale);
  p.q = q.data_ptr();
  p.q_stride_b = q.stride(0);
  p.q_stride_t = q.stride(1);
  p.q_stride_h = q.stride(2);
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.kv_stride_b = k.stride(0);
  p.kv_stride_n = k.stride(1);
  p.kv_stride_h = k.stride(2);
  p.indices = static_cast<const int32_t*>(idx.data_ptr());  // int32, or int64 read through its low words
  p.index_step = idx.scalar_type() == torch::kInt64 ? 2 : 1;
}

class GatheredAttentionFn : public torch::autograd::Function<GatheredAttentionFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                               const Tensor& idx, int64_t block_q, int64_t n_blocks, double scale, bool causal,
                               int64_t causal_offset) {
    c10::cuda::CUDAGuard guard(q.device());
    const Shape s{block_q, n_blocks, scale, causal, causal_offset};
    auto out = torch::empty(q.sizes(), q.options());
    auto lse = torch::empty({q.size(0), q.size(2), q.size(1)}, q.options().dtype(torch::kFloat32));
    kd::GatheredAttentionParams p;
    fill_params(p, q, k, v, idx, s);
    p.out = out.data_ptr();
    p.lse = lse.data_ptr<float>();
    cuda_detail::check_launch(kd::gathered_attention_fwd(p, cuda_detail::stream_of(q)), kOp, "forward");
    ctx->save_for_backward({q, k, v, idx, out, lse});
    ctx->saved_data["block_q"] = block_q;
    ctx->saved_data["n_blocks"] = n_blocks;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["causal"] = causal;
    ctx->saved_data["causal_offset"] = causal_offset;
    ctx->mark_non_differentiable({lse});
    return {out, lse};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto sv = ctx->get_saved_variables();
    const Tensor &q = sv[0], &k = sv[1], &v = sv[2], &idx = sv[3], &out = sv[4], &lse = sv[5];
    c10::cuda::CUDAGuard guard(q.device());
    const Shape s{ctx->saved_data["block_q"].toInt(), ctx->saved_data["n_blocks"].toInt(),
                  ctx->saved_data["scale"].toDouble(), ctx->saved_data["causal"].toBool(),
                  ctx->saved_data["causal_offset"].toInt()};
    Tensor gout = grads[0].defined() ? grads[0].to(q.scalar_type()).contiguous() : torch::zeros_like(out);
    // rowsum(dO ⊙ O) → [B, H, Tq]
    auto dsum = (gout.to(torch::kFloat32) * out.to(torch::kFloat32)).sum(-1).transpose(1, 2).contiguous();
    auto dq = torch::empty(q.sizes(), q.options());
    auto f32 = k.options().dtype(torch::kFloat32);
    auto dk = torch::zeros(k.sizes(), f32), dv = torch::zeros(v.sizes(), f32);
    kd::GatheredAttentionBwdParams p;
    fill_params(p, q, k, v, idx, s);
    p.out = nullptr;
    p.lse = lse.data_ptr<float>();
    p.dout = gout.data_ptr();
    p.dsum = dsum.data_ptr<float>();
    p.dq = dq.data_ptr();
    p.dk_acc = dk.data_ptr<float>();
    p.dv_acc = dv.data_ptr<float>();
    cuda_detail::check_launch(kd::gathered_attention_bwd(p, cuda_detail::stream_of(q)), kOp, "backward");
    return {dq, dk.to(k.scalar_type()), dv.to(v.scalar_type()), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(),
            Tensor()};
  }
};

}  // namespace

GatheredAttentionResult gathered_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                           const torch::Tensor& indices, const GatheredAttentionOptions& options) {
  using cuda_detail::check_device;
  const auto dev = q.device();
  check_device(q, dev, kOp, "q");
  check_device(k, dev, kOp, "k");
  check_device(v, dev, kOp, "v");
  check_device(indices, dev, kOp, "indices");
  DYSRA_CHECK(q.dim() == 4 && k.dim() == 4 && v.sizes() == k.sizes(),
              "gathered_attention: q must be [batch, Tq, heads, D] and k, v [batch, N, kv_heads, D]; got q ",
              q.sizes(), ", k ", k.sizes(), ", v ", v.sizes());
  const int64_t b = q.size(0), tq = q.size(1), h = q.size(2), d = q.size(3), n = k.size(1), hkv = k.size(2);
  DYSRA_CHECK(k.size(0) == b && k.size(3) == d && hkv >= 1 && h % hkv == 0,
              "gathered_attention: k must be [", b, ", N, kv_heads, ", d, "] with heads (", h,
              ") a multiple of kv_heads; got ", k.sizes());
  DYSRA_CHECK(d <= kd::kGatheredAttentionMaxDim, "gathered_attention: the CUDA kernel supports D <= ",
              kd::kGatheredAttentionMaxDim, ", got D = ", d);
  DYSRA_CHECK(options.block_q >= 1, "gathered_attention: options.block_q must be >= 1, got ", options.block_q);
  const int64_t n_blocks = (tq + options.block_q - 1) / options.block_q;
  const int64_t block_q = n_blocks <= 1 ? std::max<int64_t>(tq, 1) : options.block_q;
  DYSRA_CHECK(indices.dim() == 4 && indices.size(0) == b && indices.size(1) == hkv && indices.size(2) == n_blocks,
              "gathered_attention: indices must be [", b, ", ", hkv, ", ", n_blocks, ", K], got ", indices.sizes());
  DYSRA_CHECK(indices.scalar_type() == torch::kInt32 || indices.scalar_type() == torch::kInt64,
              "gathered_attention: indices must be int32 or int64, got ", indices.scalar_type());
  cuda_detail::kernel_dtype(q, kOp, "q");
  DYSRA_CHECK(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
              "gathered_attention: k and v must have the dtype of q (", q.scalar_type(), ")");
  DYSRA_CHECK(n < (int64_t(1) << 31) && b <= 65535 && n_blocks * hkv <= 65535,
              "gathered_attention: the CUDA kernel supports N < 2^31, batch <= 65535, n_blocks·kv_heads <= 65535");
  DYSRA_CHECK(int64_t(h / hkv) * block_q < (int64_t(1) << 31), "gathered_attention: block too large");
  // (indices < N: checked by the dispatcher's validation when options.check_indices; the kernels ignore rows >= N
  // either way)
  auto idx = indices.contiguous();  // int32 or int64: the kernels read either (no conversion pass)
  const double scale = options.scale > 0 ? options.scale : 1.0 / std::sqrt(double(d));
  auto qc = cuda_detail::last_dim_contiguous(q);
  auto kc = cuda_detail::last_dim_contiguous(k), vc = cuda_detail::last_dim_contiguous(v);
  if (kc.strides() != vc.strides()) {  // the kernel reads k and v with one set of strides
    kc = kc.contiguous();
    vc = vc.contiguous();
  }
  auto outs = GatheredAttentionFn::apply(qc, kc, vc, idx, block_q, n_blocks, scale, options.causal,
                                         options.causal_offset);
  return {outs[0], outs[1]};
}

}  // namespace dysra::ops::cuda
#endif  // DYSRA_WITH_CUDA
