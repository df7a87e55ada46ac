// Decode attention over a slot cache: validating dispatcher, the LibTorch path (CPU, and CUDA head sizes without
// a kernel) and the float64 reference.
#include "dysra/ops/decode_attention.h"

#include <torch/torch.h>

#include <cmath>

#include "dysra/core/error.h"
#include "dysra/ops/backend.h"
#include "ops/cuda_glue.h"

namespace dysra::ops {
namespace {

void validate(const torch::Tensor& q, const torch::Tensor& k_new, const torch::Tensor& v_new, const torch::Tensor& K,
              const torch::Tensor& V, const torch::Tensor& bias, int64_t slot, const DecodeAttentionOptions& o) {
  DYSRA_CHECK(q.defined() && k_new.defined() && v_new.defined() && K.defined() && V.defined() && bias.defined(),
              "decode_attention: q, k_new, v_new, K, V and bias are required");
  DYSRA_CHECK(K.dim() == 4, "decode_attention: K must be [batch, heads, slots, D], got ", K.sizes());
  const int64_t B = K.size(0), H = K.size(1), N = K.size(2), D = K.size(3);
  DYSRA_CHECK(V.sizes() == K.sizes(), "decode_attention: V must have K's shape ", K.sizes(), ", got ", V.sizes());
  for (auto [t, name] : {std::pair{&q, "q"}, std::pair{&k_new, "k_new"}, std::pair{&v_new, "v_new"}})
    DYSRA_CHECK(t->dim() == 4 && t->size(0) == B && t->size(1) == H && t->size(2) == 1 && t->size(3) == D,
                "decode_attention: ", name, " must be [", B, ", ", H, ", 1, ", D, "], got ", t->sizes());
  DYSRA_CHECK(bias.dim() == 4 && bias.size(0) == B && bias.size(1) == H && bias.size(2) == 1 && bias.size(3) == N,
              "decode_attention: bias must be [", B, ", ", H, ", 1, ", N, "], got ", bias.sizes());
  DYSRA_CHECK(V.scalar_type() == K.scalar_type() && bias.scalar_type() == K.scalar_type(),
              "decode_attention: V and bias must have K's dtype (", K.scalar_type(), "), got ", V.scalar_type(), " and ",
              bias.scalar_type());
  DYSRA_CHECK(K.is_contiguous() && V.is_contiguous() && bias.is_contiguous(),
              "decode_attention: K, V and bias must be contiguous (they are written in place)");
  DYSRA_CHECK(slot >= 0 && slot < N, "decode_attention: slot must be in [0, ", N, "), got ", slot);
  DYSRA_CHECK(o.scale >= 0, "decode_attention: options.scale must be >= 0 (0 = 1/sqrt(D)), got ", o.scale);
  for (auto [t, name] : {std::pair{&q, "q"}, std::pair{&k_new, "k_new"}, std::pair{&v_new, "v_new"},
                         std::pair{&V, "V"}, std::pair{&bias, "bias"}})
    DYSRA_CHECK(t->device() == K.device(), "decode_attention: ", name, " is on ", t->device(), " but K is on ",
                K.device());
}

double scale_of(const DecodeAttentionOptions& o, int64_t D) {
  return o.scale > 0 ? o.scale : 1.0 / std::sqrt(static_cast<double>(D));
}

}  // namespace

torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k_new, const torch::Tensor& v_new,
                               torch::Tensor& K, torch::Tensor& V, torch::Tensor& bias, int64_t slot,
                               const DecodeAttentionOptions& options) {
  validate(q, k_new, v_new, K, V, bias, slot, options);
  const auto dt = K.scalar_type();
  const double scale = scale_of(options, K.size(3));
  auto qc = q.to(dt).contiguous(), kc = k_new.to(dt).contiguous(), vc = v_new.to(dt).contiguous();
#ifdef DYSRA_WITH_CUDA
  if (K.is_cuda() && dt != torch::kFloat64 && cuda::decode_supported(K.size(3)) &&
      use_cuda_kernels(Op::kDecodeAttention))
    return cuda::decode_attention(qc, kc, vc, K, V, bias, slot, scale, options.workspace);
#endif
  K.narrow(2, slot, 1).copy_(kc);
  V.narrow(2, slot, 1).copy_(vc);
  bias.narrow(3, slot, 1).fill_(0.0);
  return at::scaled_dot_product_attention(qc, K, V, bias, 0.0, false, scale);
}

torch::Tensor decode_attention_workspace(const torch::Tensor& K) {
  DYSRA_CHECK(K.defined() && K.dim() == 4, "decode_attention_workspace: K must be [batch, heads, slots, D]");
#ifdef DYSRA_WITH_CUDA
  if (K.is_cuda() && K.scalar_type() != torch::kFloat64 && cuda::decode_supported(K.size(3))) return cuda::decode_workspace(K);
#endif
  return {};
}

torch::Tensor decode_attention_reference(const torch::Tensor& q, const torch::Tensor& k_new, const torch::Tensor& v_new,
                                         const torch::Tensor& K, const torch::Tensor& V, const torch::Tensor& bias,
                                         int64_t slot, const DecodeAttentionOptions& options) {
  validate(q, k_new, v_new, K, V, bias, slot, options);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(torch::kCPU);
  auto k = K.to(f64).clone(), v = V.to(f64).clone(), b = bias.to(f64).clone();
  k.narrow(2, slot, 1).copy_(k_new.to(f64));
  v.narrow(2, slot, 1).copy_(v_new.to(f64));
  b.narrow(3, slot, 1).fill_(0.0);
  auto logits = torch::matmul(q.to(f64), k.transpose(2, 3)) * scale_of(options, K.size(3)) + b;  // [B, H, 1, N]
  return torch::matmul(torch::softmax(logits, -1), v);
}

}  // namespace dysra::ops
