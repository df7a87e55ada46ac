#include "dysra/ops/backend.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "dysra/core/error.h"
#include "ops/cuda_glue.h"

namespace dysra::ops {
namespace {
CudaBackend initial_backend() {
  const char* env = std::getenv("DYSRA_CUDA_BACKEND");
  if (env == nullptr || std::strcmp(env, "auto") == 0) return CudaBackend::kAuto;
  if (std::strcmp(env, "kernels") == 0) return CudaBackend::kKernels;
  if (std::strcmp(env, "torch") == 0) return CudaBackend::kTorchOps;
  throw ConfigError(std::string("DYSRA_CUDA_BACKEND: expected auto, kernels or torch, got \"") + env + "\"");
}
std::atomic<CudaBackend>& backend() {
  static std::atomic<CudaBackend> b{initial_backend()};
  return b;
}
}  // namespace

void set_cuda_backend(CudaBackend b) { backend().store(b); }
CudaBackend cuda_backend() { return backend().load(); }

bool use_cuda_kernels(Op op, bool tensor_cores) {
#ifdef DYSRA_WITH_CUDA
  switch (cuda_backend()) {
    case CudaBackend::kKernels:
      return cuda::available();
    case CudaBackend::kTorchOps:
      return false;
    case CudaBackend::kAuto:
      return (op == Op::kSelectiveScan || op == Op::kDecodeAttention || tensor_cores) && cuda::available();
  }
  return false;
#else
  (void)op;
  (void)tensor_cores;
  return false;
#endif
}

}  // namespace dysra::ops
