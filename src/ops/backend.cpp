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
  if (env == nullptr || std::strcmp(env, "kernels") == 0) return CudaBackend::kKernels;
  if (std::strcmp(env, "torch") == 0) return CudaBackend::kTorchOps;
  throw ConfigError(std::string("DYSRA_CUDA_BACKEND: expected kernels or torch, got \"") + env + "\"");
}
std::atomic<CudaBackend>& backend() {
  static std::atomic<CudaBackend> b{initial_backend()};
  return b;
}
}  // namespace

void set_cuda_backend(CudaBackend b) { backend().store(b); }
CudaBackend cuda_backend() { return backend().load(); }

bool use_cuda_kernels() {
#ifdef DYSRA_WITH_CUDA
  return cuda_backend() == CudaBackend::kKernels && cuda::available();
#else
  return false;
#endif
}

}  // namespace dysra::ops
