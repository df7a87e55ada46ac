// dysra/data/mqar.h — multi-query associative recall (Zoology, Arora et al. 2023), generated on the fly.
//
// Rule (zoology/data/multiquery_ar.py): keys from [1, V/2), values from [V/2, V), D distinct of each; the
// context is k1 v1 k2 v2 ... (repeated num_passes times); the query region holds every key exactly once at
// even offsets 2g, where the D distinct gaps g are drawn without replacement with p(g) ∝ a·(g+1)^(a-1).
// The label at a query key's position is its value; all other labels are -100. Token 0 is filler.
// Example i of a split is generated from seed_for(seed, split, i): train and eval never share a stream.
#pragma once
#include "dysra/data/task.h"

namespace dysra::data {

class MqarTask : public Task {
 public:
  MqarTask(const MqarOptions& options, uint64_t seed);
  std::string name() const override { return "mqar"; }
  int64_t vocab_size() const override { return options_.vocab_size; }
  int64_t seq_len() const override { return options_.seq_len; }
  int64_t size(Split split) const override;
  Batch batch(Split split, const std::vector<int64_t>& ids) const override;

  /// One example: inputs [L] and labels [L].
  void example(Split split, int64_t id, int64_t* inputs, int64_t* labels) const;
  const MqarOptions& options() const { return options_; }

 private:
  MqarOptions options_;
  uint64_t seed_;
  std::vector<double> gap_cdf_weights_;  // p(g) for g = 0..space-1
};

}  // namespace dysra::data
