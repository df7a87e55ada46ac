#include "dysra/layers/rope.h"

#include <torch/torch.h>

#include "dysra/core/error.h"

namespace dysra::layers {

torch::Tensor default_positions(int64_t length, int64_t offset, const torch::Device& device) {
  return torch::arange(offset, offset + length, torch::TensorOptions().dtype(torch::kInt64).device(device));
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& positions, double theta) {
  const int64_t dh = x.size(-1);
  DYSRA_CHECK(dh % 2 == 0, "rope: head dim must be even, got ", dh);
  DYSRA_CHECK(positions.dim() == 1 && positions.size(0) == x.size(-2), "rope: positions must be [L] with L = ",
              x.size(-2), ", got ", positions.sizes());
  const int64_t half = dh / 2;
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(x.device());
  auto inv_freq = torch::pow(theta, -torch::arange(0, half, opts) / static_cast<double>(half));  // [half]
  auto ang = positions.to(torch::kFloat32).unsqueeze(1) * inv_freq.unsqueeze(0);                // [L, half]
  auto cos = ang.cos().to(x.scalar_type()), sin = ang.sin().to(x.scalar_type());
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  return torch::cat({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, -1);
}

}  // namespace dysra::layers
