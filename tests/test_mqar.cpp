// MQAR generation follows Zoology's rule: vocab halves, distinct keys/values, each key queried once,
// labels only at query positions (the value of the queried key), deterministic per (seed, split, id).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <set>

#include "dysra/data/mqar.h"

using namespace dysra::data;

namespace {
MqarOptions opts(int64_t L, int64_t D) {
  MqarOptions o;
  o.vocab_size = 512;
  o.seq_len = L;
  o.num_kv_pairs = D;
  o.train_examples = 100;
  o.eval_examples = 50;
  return o;
}
}  // namespace

TEST(Mqar, StructureAndLabels) {
  for (auto [L, D] : std::vector<std::pair<int64_t, int64_t>>{{64, 4}, {128, 8}, {256, 16}, {66, 16}}) {
    MqarTask task(opts(L, D), 7);
    for (int64_t id = 0; id < 20; ++id) {
      std::vector<int64_t> x(L), y(L);
      task.example(Split::kTrain, id, x.data(), y.data());
      std::map<int64_t, int64_t> kv;
      std::set<int64_t> values;
      for (int64_t d = 0; d < D; ++d) {
        const int64_t k = x[2 * d], v = x[2 * d + 1];
        EXPECT_GE(k, 1);
        EXPECT_LT(k, 256);
        EXPECT_GE(v, 256);
        EXPECT_LT(v, 512);
        EXPECT_TRUE(kv.emplace(k, v).second) << "duplicate key";
        EXPECT_TRUE(values.insert(v).second) << "duplicate value";
        EXPECT_EQ(y[2 * d], kIgnoreIndex);
      }
      std::set<int64_t> queried;
      int64_t n_labels = 0;
      for (int64_t t = 2 * D; t < L; ++t) {
        if (y[t] != kIgnoreIndex) {
          ++n_labels;
          EXPECT_EQ((t - 2 * D) % 2, 0) << "queries sit at even offsets";
          ASSERT_TRUE(kv.count(x[t])) << "label at a non-key position";
          EXPECT_EQ(y[t], kv[x[t]]);
          EXPECT_TRUE(queried.insert(x[t]).second) << "key queried twice";
        } else {
          EXPECT_EQ(x[t], 0) << "non-query positions are filler";
        }
      }
      EXPECT_EQ(n_labels, D);
    }
  }
}

TEST(Mqar, DeterministicAndSplitsDiffer) {
  MqarTask a(opts(128, 8), 3), b(opts(128, 8), 3), c(opts(128, 8), 4);
  auto x1 = a.batch(Split::kTrain, {0, 5, 9}), x2 = b.batch(Split::kTrain, {0, 5, 9});
  EXPECT_TRUE(torch::equal(x1.tokens, x2.tokens));
  EXPECT_TRUE(torch::equal(x1.labels, x2.labels));
  EXPECT_FALSE(torch::equal(x1.tokens, c.batch(Split::kTrain, {0, 5, 9}).tokens));
  EXPECT_FALSE(torch::equal(x1.tokens, a.batch(Split::kValidation, {0, 5, 9}).tokens));
  EXPECT_FALSE(torch::equal(a.batch(Split::kTrain, {1}).tokens, a.batch(Split::kTrain, {2}).tokens));
}

TEST(Mqar, SmallGapsDominateWithPowerLaw) {
  // a = 0.01 puts most mass on the first gaps: the mean query offset is well below the uniform mean.
  auto o = opts(256, 4);
  MqarTask task(o, 1);
  double mean_gap = 0;
  int n = 0;
  for (int64_t id = 0; id < 200; ++id) {
    std::vector<int64_t> x(256), y(256);
    task.example(Split::kTrain, id, x.data(), y.data());
    for (int64_t t = 8; t < 256; ++t)
      if (y[t] != kIgnoreIndex) mean_gap += (t - 8) / 2.0, ++n;
  }
  mean_gap /= n;
  EXPECT_LT(mean_gap, 0.35 * (256 - 8) / 2.0);
}

TEST(Mqar, RandomNonQueriesFillsZeros) {
  auto o = opts(128, 8);
  o.random_non_queries = true;
  MqarTask task(o, 1);
  auto b = task.batch(Split::kTrain, {0, 1, 2, 3});
  EXPECT_LT(b.tokens.eq(0).sum().item<int64_t>(), 10);
}

TEST(Mqar, BadIdIsAnError) {
  MqarTask task(opts(64, 4), 1);
  EXPECT_THROW(task.batch(Split::kTrain, {100}), dysra::Error);
}
