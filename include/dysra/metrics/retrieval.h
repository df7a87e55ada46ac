// dysra/metrics/retrieval.h — retrieval recall@k and hit@k of ranked document ids against gold id sets.
//
//   recall@k = |gold ∩ top-k(ranked)| / |gold|     (distinct ids; a duplicate in the ranking counts once)
//   hit@k    = 1 if any gold id is in top-k(ranked), else 0
// top-k is the first min(k, |ranked|) entries. Corpus scores are 100 × the mean over questions.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dysra::metrics {

/// recall@k of one question. Throws dysra::Error when `gold` is empty or k < 1.
double recall_at_k(const std::vector<std::string>& gold, const std::vector<std::string>& ranked, int64_t k);
/// hit@k (a.k.a. success@k / top-k accuracy) of one question. Same errors.
double hit_at_k(const std::vector<std::string>& gold, const std::vector<std::string>& ranked, int64_t k);

struct RetrievalScores {
  std::map<int64_t, double> recall;  ///< k → 100 × mean recall@k
  std::map<int64_t, double> hit;     ///< k → 100 × mean hit@k
  int64_t count = 0;
};

/// Mean recall@k and hit@k for every k in `ks`. Sizes must match; errors name the question index.
RetrievalScores evaluate_retrieval(const std::vector<std::vector<std::string>>& gold,
                                   const std::vector<std::vector<std::string>>& ranked, const std::vector<int64_t>& ks);

}  // namespace dysra::metrics
