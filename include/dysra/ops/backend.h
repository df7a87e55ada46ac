// dysra/ops/backend.h — which implementation the ops use for CUDA tensors: dysra's CUDA kernels or the
// LibTorch-op implementations (the CPU path's ops, run on the GPU; the selective scan then runs its sequential
// reference). kAuto picks, per op, whichever measured faster on H200 (bench/RESULTS.md): the kernel for the
// selective scan (118× the LibTorch path) and the decode attention; for linear and gathered attention the kernel
// where its tensor-core path applies (bf16 linear attention with d_k 64/128; bf16/fp16 gathered attention with
// D 64/128), the LibTorch ops otherwise (their CUDA-core fallback loses to cuBLAS).
// DYSRA_CUDA_BACKEND=auto|kernels|torch sets the initial choice.
#pragma once

namespace dysra::ops {

enum class CudaBackend { kAuto, kKernels, kTorchOps };
enum class Op { kSelectiveScan, kLinearAttention, kGatheredAttention, kDecodeAttention };

void set_cuda_backend(CudaBackend backend);
CudaBackend cuda_backend();
/// True when CUDA tensors of `op` go to dysra's kernel (built with CUDA, a device present, backend allows it).
/// `tensor_cores`: the call's shapes and dtypes take the kernel's tensor-core path (what kAuto needs for linear and
/// gathered attention).
bool use_cuda_kernels(Op op, bool tensor_cores = false);

}  // namespace dysra::ops
