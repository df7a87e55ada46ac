// Internal: factories of the policies defined in src/cache/*.cpp (registered in kv_cache.cpp).
#pragma once
#include <memory>

#include "dysra/cache/kv_cache.h"

namespace dysra::cache::detail {

std::unique_ptr<KVCachePolicy> make_compressive(const CacheOptions& o, const LayerInfo& info);

/// Row helpers shared by the policies.
torch::Tensor cat_rows(const torch::Tensor& a, const torch::Tensor& b);
/// Replaces a row's entries by the concatenation of pieces (each a Row-shaped set of tensors).
KVCachePolicy::Row concat(const std::vector<KVCachePolicy::Row>& parts);
/// Entries [begin, end) of a row.
KVCachePolicy::Row slice(const KVCachePolicy::Row& row, int64_t begin, int64_t end);

}  // namespace dysra::cache::detail
