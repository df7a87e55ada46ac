// src/metrics/perplexity.cpp — perplexity from summed NLL.
#include "dysra/metrics/perplexity.h"

#include <cmath>

#include "dysra/core/error.h"

namespace dysra::metrics {

double perplexity(double sum_nll, int64_t n_tokens) {
  DYSRA_CHECK(n_tokens >= 1, "dysra::metrics::perplexity: n_tokens must be >= 1, got ", n_tokens);
  DYSRA_CHECK(std::isfinite(sum_nll) && sum_nll >= 0, "dysra::metrics::perplexity: sum_nll must be finite and >= 0, got ",
              sum_nll);
  return std::exp(sum_nll / double(n_tokens));
}

void PerplexityAccumulator::add(double sum_nll, int64_t n_tokens) {
  DYSRA_CHECK(n_tokens >= 0, "PerplexityAccumulator::add: n_tokens must be >= 0, got ", n_tokens);
  DYSRA_CHECK(std::isfinite(sum_nll) && sum_nll >= 0,
              "PerplexityAccumulator::add: sum_nll must be finite and >= 0, got ", sum_nll);
  sum_nll_ += sum_nll;
  tokens_ += n_tokens;
}

double PerplexityAccumulator::mean_nll() const {
  DYSRA_CHECK(tokens_ > 0, "PerplexityAccumulator: no tokens were added");
  return sum_nll_ / double(tokens_);
}

double PerplexityAccumulator::perplexity() const { return std::exp(mean_nll()); }

double PerplexityAccumulator::bits_per_token() const { return mean_nll() / std::log(2.0); }

}  // namespace dysra::metrics
