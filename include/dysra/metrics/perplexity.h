// dysra/metrics/perplexity.h — perplexity from summed negative log-likelihood (natural log) and token count.
//
//   ppl = exp(sum_nll / n_tokens),   bits per token = sum_nll / (n_tokens · ln 2)
#pragma once
#include <cstdint>

namespace dysra::metrics {

/// exp(sum_nll / n_tokens). Throws dysra::Error if n_tokens < 1, or sum_nll is negative or not finite.
double perplexity(double sum_nll, int64_t n_tokens);

/// Sums NLL and token counts over batches (e.g. a loss already summed over tokens, and its token count).
class PerplexityAccumulator {
 public:
  /// Adds a batch: `sum_nll` summed over `n_tokens` tokens (n_tokens ≥ 0; sum_nll ≥ 0 and finite).
  void add(double sum_nll, int64_t n_tokens);
  double sum_nll() const { return sum_nll_; }
  int64_t tokens() const { return tokens_; }
  double mean_nll() const;         ///< nats per token; throws if no tokens were added
  double perplexity() const;       ///< exp(mean_nll())
  double bits_per_token() const;   ///< mean_nll() / ln 2

 private:
  double sum_nll_ = 0;
  int64_t tokens_ = 0;
};

}  // namespace dysra::metrics
