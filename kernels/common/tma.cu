// kernels/common/tma.cu — host side of common/tma.cuh: tensor maps through the driver's encoder, reached by the
// runtime's entry-point query (no link against libcuda).
#include "common/tma.cuh"

namespace dysra::kernels::tma {
namespace {

using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

EncodeTiled encoder() {
  static const EncodeTiled fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      cudaGetLastError();  // the query's error is not the caller's
      return EncodeTiled(nullptr);
    }
    return reinterpret_cast<EncodeTiled>(f);
  }();
  return fn;
}

}  // namespace

bool encode_bf16_4d(CUtensorMap* map, const void* ptr, int64_t B, int64_t T, int64_t H, int64_t C, int64_t stride_b,
                    int64_t stride_t, int64_t stride_h, int box_rows) {
  const EncodeTiled fn = encoder();
  if (!fn || B <= 0 || T <= 0 || H <= 0 || C <= 0 || stride_b <= 0 || stride_t <= 0 || stride_h <= 0) return false;
  const cuuint64_t dims[4] = {cuuint64_t(C), cuuint64_t(T), cuuint64_t(H), cuuint64_t(B)};
  const cuuint64_t strides[3] = {cuuint64_t(stride_t) * 2, cuuint64_t(stride_h) * 2, cuuint64_t(stride_b) * 2};
  const cuuint32_t box[4] = {64, cuuint32_t(box_rows), 1, 1};
  const cuuint32_t elem_strides[4] = {1, 1, 1, 1};
  return fn(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4, const_cast<void*>(ptr), dims, strides, box, elem_strides,
            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace dysra::kernels::tma
