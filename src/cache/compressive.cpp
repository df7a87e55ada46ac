// The rotating compressive cache: sinks + summaries + M raw slots (see kv_cache.h for the rule).
#include <torch/torch.h>

#include "cache/policies.h"
#include "dysra/cache/compressor.h"
#include "dysra/core/error.h"

namespace dysra::cache {
namespace {

class CompressiveCache final : public KVCachePolicy {
 public:
  CompressiveCache(const CacheOptions& o, const LayerInfo& info) : KVCachePolicy(o, info) {
    cap_ = o.summary_slots > 0 ? o.summary_slots : 4 * o.rank;
  }
  std::string name() const override { return "compressive"; }
  int64_t head_budget(int64_t) const override { return opt_.sink_tokens + opt_.raw_slots + cap_; }

 protected:
  // Row layout: [sinks: first min(S, ·) raw tokens] [summaries, oldest first] [raw tokens, oldest first].
  void enforce(Row& row, int64_t) override {
    auto depth_of = [&](const Row& r) { return r.depth; };
    const int64_t n = row.size();
    const int64_t s = std::min(opt_.sink_tokens, seen_);
    int64_t n_sum = n == 0 ? 0 : (depth_of(row) > 0).sum().item<int64_t>();
    int64_t n_raw = n - s - n_sum;
    bool changed = false;
    std::vector<Row> new_sums;
    Row sums = detail::slice(row, s, s + n_sum);
    int64_t raw_begin = s + n_sum;
    while (n_raw > opt_.raw_slots) {
      auto blk = detail::slice(row, raw_begin, raw_begin + opt_.delta);
      sums = detail::concat({sums, summarize(blk, 1)});
      raw_begin += opt_.delta, n_raw -= opt_.delta;
      changed = true;
    }
    n_sum = sums.size();
    while (n_sum > cap_) {
      const int64_t g = std::min<int64_t>(2 * opt_.rank, n_sum);
      const int64_t dmax = sums.depth.slice(0, 0, g).max().item<int64_t>();
      if (dmax < opt_.recompress_depth && g > opt_.rank) {
        sums = detail::concat({summarize(detail::slice(sums, 0, g), dmax + 1), detail::slice(sums, g, n_sum)});
      } else {
        sums = detail::slice(sums, 1, n_sum);  // the oldest summary rotates out
      }
      n_sum = sums.size();
      changed = true;
    }
    if (changed) row = detail::concat({detail::slice(row, 0, s), sums, detail::slice(row, raw_begin, n)});
  }

 private:
  Row summarize(const Row& blk, int64_t depth) const {
    Block out;
    const bool learned = opt_.method == "learned" && depth == 1;
    if (learned) {
      auto& c = *info_.compressor;
      DYSRA_CHECK(blk.size() == c.delta(), "compressive: learned compressor expects blocks of ", c.delta(), " got ",
                  blk.size());
      torch::NoGradGuard ng;
      auto kv = c.forward(blk.k.unsqueeze(0), blk.v.unsqueeze(0));
      const int64_t r = c.rank(), per = c.delta() / r;
      out.k = kv.first[0].to(blk.k.scalar_type());
      out.v = kv.second[0].to(blk.v.scalar_type());
      out.pos = blk.pos.view({r, per}).mean(1);
      out.count = blk.count.view({r, per}).sum(1);
    } else {
      Block in{blk.k, blk.v, blk.pos, blk.count};
      out = compress_block(in, opt_.rank, opt_.method == "mean" ? "mean" : "svd", info_.rope ? info_.rope_theta : 0.0);
    }
    Row r;
    const int64_t m = out.k.size(0);
    r.k = out.k, r.v = out.v, r.pos = out.pos, r.count = out.count;
    r.depth = torch::full({m}, depth, torch::kInt64);
    r.token = torch::full({m}, -1, torch::kInt64);
    r.score = torch::zeros({m}, torch::kFloat64);
    if (blk.obs.defined()) r.obs = torch::zeros({blk.obs.size(0), m}, torch::kFloat64);
    return r;
  }
  int64_t cap_;
};

}  // namespace

namespace detail {
std::unique_ptr<KVCachePolicy> make_compressive(const CacheOptions& o, const LayerInfo& info) {
  return std::make_unique<CompressiveCache>(o, info);
}
}  // namespace detail

}  // namespace dysra::cache
