#include "dysra/data/mqar.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "dysra/core/error.h"
#include "dysra/core/random.h"

namespace dysra::data {
namespace {

// k distinct values from [lo, hi), partial Fisher-Yates over the range.
std::vector<int64_t> distinct(SplitMix64& rng, int64_t lo, int64_t hi, int64_t k) {
  std::vector<int64_t> pool(hi - lo);
  std::iota(pool.begin(), pool.end(), lo);
  for (int64_t i = 0; i < k; ++i) std::swap(pool[i], pool[i + rng.below(static_cast<int64_t>(pool.size()) - i)]);
  pool.resize(k);
  return pool;
}

}  // namespace

MqarTask::MqarTask(const MqarOptions& o, uint64_t seed) : options_(o), seed_(seed) {
  const int64_t L = o.seq_len, V = o.vocab_size, D = o.num_kv_pairs, P = o.num_passes;
  DYSRA_CHECK_T(ConfigError, L % 2 == 0, "mqar: seq_len must be even, got ", L);
  DYSRA_CHECK_T(ConfigError, V > L, "mqar: vocab_size (", V, ") must exceed seq_len (", L, ")");
  DYSRA_CHECK_T(ConfigError, D >= 1 && D * 2 * P + D * 2 <= L, "mqar: need num_kv_pairs·2·num_passes + num_kv_pairs·2 <= seq_len, got D=",
                D, " P=", P, " L=", L);
  DYSRA_CHECK_T(ConfigError, D < V / 2, "mqar: num_kv_pairs (", D, ") must be below vocab_size/2 - 1");
  DYSRA_CHECK_T(ConfigError, o.power_a > 0, "mqar: power_a must be > 0");
  const int64_t space = (L - 2 * D * P) / 2;
  gap_cdf_weights_.resize(space);
  for (int64_t i = 0; i < space; ++i) gap_cdf_weights_[i] = o.power_a * std::pow(static_cast<double>(i + 1), o.power_a - 1.0);
}

int64_t MqarTask::size(Split split) const {
  return split == Split::kTrain ? options_.train_examples : options_.eval_examples;
}

void MqarTask::example(Split split, int64_t id, int64_t* inputs, int64_t* labels) const {
  const auto& o = options_;
  const int64_t L = o.seq_len, V = o.vocab_size, D = o.num_kv_pairs, P = o.num_passes;
  const int64_t C = 2 * D * P;
  SplitMix64 rng(mix_seed(seed_, static_cast<uint64_t>(split), static_cast<uint64_t>(id)));
  std::vector<int64_t> keys = distinct(rng, 1, V / 2, D);
  std::vector<int64_t> values = distinct(rng, V / 2, V, D);

  // D distinct gaps, drawn one after another with the remaining probabilities renormalised
  // (numpy's choice(replace=False, p=...) semantics).
  std::vector<double> w = gap_cdf_weights_;
  std::vector<int64_t> gaps;
  gaps.reserve(D);
  for (int64_t d = 0; d < D; ++d) {
    double total = 0;
    for (double x : w) total += x;
    double r = rng.uniform() * total, acc = 0;
    int64_t pick = -1;
    for (size_t g = 0; g < w.size(); ++g) {
      if (w[g] == 0) continue;
      acc += w[g];
      pick = static_cast<int64_t>(g);
      if (r < acc) break;
    }
    gaps.push_back(pick);
    w[pick] = 0;
  }

  // examples has length L+1: context, then queries (zeros with keys at 2g); labels at 2g + C + 1.
  std::vector<int64_t> ex(L + 1, 0), lab(L + 1, kIgnoreIndex);
  for (int64_t p = 0; p < P; ++p)
    for (int64_t d = 0; d < D; ++d) {
      ex[p * 2 * D + 2 * d] = keys[d];
      ex[p * 2 * D + 2 * d + 1] = values[d];
    }
  for (int64_t d = 0; d < D; ++d) {  // key d is queried at gap slot gaps[d] (gaps drawn in random order)
    ex[C + 2 * gaps[d]] = keys[d];
    lab[C + 2 * gaps[d] + 1] = values[d];
  }
  for (int64_t t = 0; t < L; ++t) {
    int64_t x = ex[t];
    if (o.random_non_queries && x == 0) x = rng.below(V);
    inputs[t] = x;
    labels[t] = lab[t + 1];
  }
}

Batch MqarTask::batch(Split split, const std::vector<int64_t>& ids) const {
  const int64_t L = options_.seq_len, B = static_cast<int64_t>(ids.size());
  auto tokens = torch::empty({B, L}, torch::kInt64);
  auto labels = torch::empty({B, L}, torch::kInt64);
  for (int64_t b = 0; b < B; ++b) {
    DYSRA_CHECK(ids[b] >= 0 && ids[b] < size(split), "mqar: example id ", ids[b], " out of range [0, ", size(split), ")");
    example(split, ids[b], tokens[b].data_ptr<int64_t>(), labels[b].data_ptr<int64_t>());
  }
  return {tokens, labels};
}

}  // namespace dysra::data
