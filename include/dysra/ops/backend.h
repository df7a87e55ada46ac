// dysra/ops/backend.h — which implementation the ops use for CUDA tensors: dysra's CUDA kernels (default
// when built with DYSRA_WITH_CUDA) or the LibTorch-op implementations (the CPU path's ops, run on the GPU;
// the selective scan then runs its sequential reference). The LibTorch path is the baseline the kernels are
// benchmarked against, and what a build without kernels uses. The environment variable
// DYSRA_CUDA_BACKEND=torch|kernels sets the initial choice.
#pragma once

namespace dysra::ops {

enum class CudaBackend { kKernels, kTorchOps };

void set_cuda_backend(CudaBackend backend);
CudaBackend cuda_backend();
/// True when CUDA tensors go to dysra's kernels (built with CUDA, a device present, backend kKernels).
bool use_cuda_kernels();

}  // namespace dysra::ops
