// src/metrics/retrieval.cpp — recall@k and hit@k.
#include "dysra/metrics/retrieval.h"

#include <algorithm>
#include <unordered_set>

#include "dysra/core/error.h"

namespace dysra::metrics {
namespace {

// Number of distinct gold ids found among the first k ranked ids.
int64_t found(const std::vector<std::string>& gold, const std::vector<std::string>& ranked, int64_t k,
              const char* fn) {
  DYSRA_CHECK(!gold.empty(), "dysra::metrics::", fn, ": the gold id set is empty");
  DYSRA_CHECK(k >= 1, "dysra::metrics::", fn, ": k must be >= 1, got ", k);
  const std::unordered_set<std::string> g(gold.begin(), gold.end());
  std::unordered_set<std::string> seen;
  const size_t top = static_cast<size_t>(std::min<int64_t>(k, static_cast<int64_t>(ranked.size())));
  for (size_t i = 0; i < top; ++i)
    if (g.count(ranked[i])) seen.insert(ranked[i]);
  return static_cast<int64_t>(seen.size());
}

}  // namespace

double recall_at_k(const std::vector<std::string>& gold, const std::vector<std::string>& ranked, int64_t k) {
  const int64_t f = found(gold, ranked, k, "recall_at_k");
  const std::unordered_set<std::string> g(gold.begin(), gold.end());
  return double(f) / double(g.size());
}

double hit_at_k(const std::vector<std::string>& gold, const std::vector<std::string>& ranked, int64_t k) {
  return found(gold, ranked, k, "hit_at_k") > 0 ? 1.0 : 0.0;
}

RetrievalScores evaluate_retrieval(const std::vector<std::vector<std::string>>& gold,
                                   const std::vector<std::vector<std::string>>& ranked, const std::vector<int64_t>& ks) {
  DYSRA_CHECK(gold.size() == ranked.size(), "dysra::metrics::evaluate_retrieval: ", gold.size(),
              " gold id sets but ", ranked.size(), " rankings");
  DYSRA_CHECK(!ks.empty(), "dysra::metrics::evaluate_retrieval: no k given");
  RetrievalScores s;
  s.count = static_cast<int64_t>(gold.size());
  for (int64_t k : ks) {
    double r = 0, h = 0;
    for (size_t i = 0; i < gold.size(); ++i) {
      DYSRA_CHECK(!gold[i].empty(), "dysra::metrics::evaluate_retrieval: question ", i, " has no gold ids");
      r += recall_at_k(gold[i], ranked[i], k);
      h += hit_at_k(gold[i], ranked[i], k);
    }
    s.recall[k] = gold.empty() ? 0.0 : 100.0 * r / double(gold.size());
    s.hit[k] = gold.empty() ? 0.0 : 100.0 * h / double(gold.size());
  }
  return s;
}

}  // namespace dysra::metrics
