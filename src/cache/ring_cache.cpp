#include "dysra/cache/ring_cache.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "dysra/cache/kv_cache.h"
#include "dysra/core/error.h"
#include "dysra/ops/decode_attention.h"

namespace dysra::cache {
namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}

RingCompressiveCache::RingCompressiveCache(const RingCacheOptions& o, int64_t B, int64_t H, int64_t D,
                                           const torch::TensorOptions& opts)
    : o_(o) {
  DYSRA_CHECK_T(ConfigError, o.sink_tokens >= 0 && o.rank >= 1 && o.delta >= o.rank && o.delta % o.rank == 0 &&
                                 o.delta <= o.raw_slots,
                "ring cache: need sinks >= 0, rank >= 1, delta a multiple of rank and delta <= raw_slots (got S ",
                o.sink_tokens, ", r ", o.rank, ", delta ", o.delta, ", M ", o.raw_slots, ")");
  S_ = o.sink_tokens, M_ = o.raw_slots;
  C_ = o.summary_slots > 0 ? o.summary_slots : 4 * o.rank;
  DYSRA_CHECK_T(ConfigError, C_ % o.rank == 0, "ring cache: summary_slots (", C_, ") must be a multiple of rank (", o.rank, ")");
  DYSRA_CHECK_T(ConfigError, B >= 1 && H >= 1 && D >= 2 && D % 2 == 0, "ring cache: need batch, heads >= 1 and an even head_dim");
  N_ = (S_ + C_ + M_ + 1 + 15) / 16 * 16;  // aligned: attention kernels take the bias without a padded copy
  k_ = torch::zeros({B, H, N_, D}, opts);
  v_ = torch::zeros({B, H, N_, D}, opts);
  bias_ = torch::full({B, H, 1, N_}, -kInf, opts);
  decode_opts_.workspace = ops::decode_attention_workspace(k_);
}

int64_t RingCompressiveCache::bytes() const {
  int64_t b = 0;
  for (const auto* t : {&k_, &v_, &bias_, &decode_opts_.workspace})
    if (t->defined()) b += t->numel() * static_cast<int64_t>(t->element_size());
  return b;
}

int64_t RingCompressiveCache::held_slots() const { return std::min(seen_, S_) + n_groups_ * o_.rank + n_raw_; }

torch::Tensor RingCompressiveCache::rotate(const torch::Tensor& x, double position) const {
  if (o_.rope_theta <= 0) return x;
  auto pos = torch::arange(position, position + static_cast<double>(x.size(2)), x.options().dtype(torch::kFloat64));
  return rope_at(x, pos, o_.rope_theta);
}

int64_t RingCompressiveCache::next_slot() const {
  return seen_ < S_ ? seen_ : S_ + C_ + (raw_head_ + n_raw_) % (M_ + 1);
}

void RingCompressiveCache::advance() {
  if (seen_ >= S_) ++n_raw_;
  ++seen_;
}

void RingCompressiveCache::put(int64_t slot, const torch::Tensor& k_rot, const torch::Tensor& v) {
  const int64_t n = k_rot.size(2);
  k_.narrow(2, slot, n).copy_(k_rot);
  v_.narrow(2, slot, n).copy_(v);
  bias_.narrow(3, slot, n).fill_(0.0);
}

void RingCompressiveCache::compress_oldest_block() {
  const int64_t d = o_.delta, r = o_.rank, per = d / r;
  // the oldest Δ raw tokens: ring slots raw_head_ … raw_head_ + Δ − 1 (mod M + 1)
  const int64_t first = std::min(d, M_ + 1 - raw_head_);
  auto take = [&](const torch::Tensor& x) {
    auto ring = x.narrow(2, S_ + C_, M_ + 1);
    auto a = ring.narrow(2, raw_head_, first);
    return first == d ? a : torch::cat({a, ring.narrow(2, 0, d - first)}, 2);
  };
  auto kb = take(k_), vb = take(v_);
  const auto B = kb.size(0), H = kb.size(1), D = kb.size(3);
  // summary key = the mean of the members' rotated keys (compress_block's rule), which is what the slots hold
  auto kr = kb.to(torch::kFloat64).view({B, H, r, per, D}).mean(3), vs = vb.to(torch::kFloat64).view({B, H, r, per, D}).mean(3);
  const int64_t at = S_ + next_group_ * r;  // the oldest group rotates out when all C / r are in use
  k_.narrow(2, at, r).copy_(kr);
  v_.narrow(2, at, r).copy_(vs);
  bias_.narrow(3, at, r).fill_(std::log(static_cast<double>(per)));
  bias_.narrow(3, S_ + C_ + raw_head_, first).fill_(-kInf);  // the block's raw slots are free again
  if (first < d) bias_.narrow(3, S_ + C_, d - first).fill_(-kInf);
  raw_head_ = (raw_head_ + d) % (M_ + 1);
  n_raw_ -= d;
  next_group_ = (next_group_ + 1) % (C_ / r);
  n_groups_ = std::min(n_groups_ + 1, C_ / r);
}

torch::Tensor RingCompressiveCache::decode_rotated(const torch::Tensor& q_rot, const torch::Tensor& k_rot,
                                                   const torch::Tensor& v) {
  // one op writes the token into its slot and attends over every slot (one fused CUDA step on the GPU); it checks
  // that q, k and v are [B, H, 1, D] of the buffers' B, H and D before anything is written, and the counters
  // advance only after it
  auto y = ops::decode_attention(q_rot, k_rot, v, k_, v_, bias_, next_slot(), decode_opts_);
  advance();
  if (n_raw_ > M_) compress_oldest_block();
  return y;
}

torch::Tensor RingCompressiveCache::decode(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const auto t = static_cast<double>(seen_);
  return decode_rotated(rotate(q, t), rotate(k, t), v);
}

void RingCompressiveCache::append(const torch::Tensor& k, const torch::Tensor& v) {
  DYSRA_CHECK(k.dim() == 4 && v.sizes() == k.sizes() && k.size(0) == k_.size(0) && k.size(1) == k_.size(1) &&
                  k.size(3) == k_.size(3),
              "ring cache: append takes k, v [", k_.size(0), ", ", k_.size(1), ", L, ", k_.size(3), "], got ", k.sizes(),
              " ", v.sizes());
  auto kr = rotate(k, static_cast<double>(seen_)).to(k_.scalar_type());
  auto vv = v.to(v_.scalar_type());
  const int64_t L = k.size(2);
  int64_t i = 0;
  for (; i < L && seen_ < S_; ++i) put(next_slot(), kr.narrow(2, i, 1), vv.narrow(2, i, 1)), advance();  // sinks
  // runs of raw tokens: as many as fit before the next compression and before the ring wraps, in one copy each
  while (i < L) {
    const int64_t tail = (raw_head_ + n_raw_) % (M_ + 1);
    const int64_t n = std::min({L - i, M_ + 1 - n_raw_, M_ + 1 - tail});
    put(S_ + C_ + tail, kr.narrow(2, i, n), vv.narrow(2, i, n));
    n_raw_ += n, seen_ += n, i += n;
    if (n_raw_ > M_) compress_oldest_block();
  }
}

}  // namespace dysra::cache
