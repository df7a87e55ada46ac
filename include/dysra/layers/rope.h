// dysra/layers/rope.h — rotary position embedding (Su et al.), the half-split ("NeoX") convention.
#pragma once
#include <torch/types.h>

namespace dysra::layers {

/// Rotates x: [B, H, L, Dh] (Dh even) by the angles of `positions` ([L] int64). Differentiable in x.
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& positions, double theta);

/// positions offset, offset+1, ..., offset+L-1 on `device`.
torch::Tensor default_positions(int64_t length, int64_t offset, const torch::Device& device);

}  // namespace dysra::layers
