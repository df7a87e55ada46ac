// dysra/ops/backend.h — which implementation the ops use for CUDA tensors: dysra's CUDA kernels or the
// LibTorch-op implementations (the CPU path's ops, run on the GPU; the selective scan then runs its sequential
// reference). kAuto picks, per op, whichever measured faster on H200 (bench/RESULTS.md): the kernel for the
// selective scan (118× the LibTorch path) and the decode attention, the LibTorch path for linear and gathered attention (whose kernels
// do not use tensor cores yet). DYSRA_CUDA_BACKEND=auto|kernels|torch sets the initial choice.
#pragma once

namespace dysra::ops {

enum class CudaBackend { kAuto, kKernels, kTorchOps };
enum class Op { kSelectiveScan, kLinearAttention, kGatheredAttention, kDecodeAttention };

void set_cuda_backend(CudaBackend backend);
CudaBackend cuda_backend();
/// True when CUDA tensors of `op` go to dysra's kernel (built with CUDA, a device present, backend allows it).
bool use_cuda_kernels(Op op);

}  // namespace dysra::ops
