// dysra/metrics/qa.h — answer-level QA metrics: SQuAD EM/F1, HotpotQA's yes/no rule, substring accuracy.
//
// Follows the official SQuAD v1.1 script (../shared/research/retrieval_frameworks.md §6.1):
//   normalize_answer(s) = white_space_fix(remove_articles(remove_punc(lower(s))))
//   lower:            Python str.lower() (Unicode-aware for Latin, Greek, Cyrillic; see src/metrics/unicode.h)
//   remove_punc:      DELETE the 32 ASCII punctuation characters (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~);
//                     "U.S." → "us", "1,000" → "1000"; Unicode punctuation ("–", "’") is kept
//   remove_articles:  re.sub(r"\b(a|an|the)\b", " ", s) with Unicode word boundaries
//   white_space_fix:  " ".join(s.split()) (any Unicode whitespace)
// Scores of one prediction are maxima over its gold answers; corpus scores are 100 × the mean.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dysra::metrics {

/// SQuAD v1.1 answer normalization (see the file comment). Input and output are UTF-8.
std::string normalize_answer(const std::string& text);

/// Tokens of the normalized answer: normalize_answer(text).split().
std::vector<std::string> answer_tokens(const std::string& text);

/// How token F1 treats special cases.
enum class F1Variant {
  SquadV1,  ///< no common token → 0 (so an empty prediction or gold scores 0)
  SquadV2,  ///< if either side has no tokens: 1 when both are empty, else 0
  Hotpot,   ///< SquadV1, plus: if either normalized side is yes/no/noanswer and they differ → 0 (HotpotQA, FlashRAG)
};

/// Token-level scores of one prediction against one gold answer (each in [0, 1]).
struct TokenF1 {
  double f1 = 0;
  double precision = 0;
  double recall = 0;
};

/// 1 if normalize_answer(prediction) == normalize_answer(gold), else 0.
double exact_match(const std::string& prediction, const std::string& gold);
/// Max of exact_match over the gold answers. Throws dysra::Error when `golds` is empty.
double exact_match(const std::string& prediction, const std::vector<std::string>& golds);

/// Token F1 with multiset overlap (Counter & Counter) of the normalized tokens.
TokenF1 f1_score(const std::string& prediction, const std::string& gold, F1Variant variant = F1Variant::SquadV1);
/// Max over gold answers. By default the (f1, P, R) of the gold with the highest F1 (first on ties; SQuAD,
/// HotpotQA). With `independent_max`, F1, P and R are maximised separately (FlashRAG's `token_level_scores`).
/// Throws dysra::Error when `golds` is empty.
TokenF1 f1_score(const std::string& prediction, const std::vector<std::string>& golds,
                 F1Variant variant = F1Variant::SquadV1, bool independent_max = false);

/// FlashRAG "acc" / Search-R1 `subem`: 1 if normalize(gold) is a character substring of normalize(prediction)
/// for any gold (so gold "1" matches "1990"). Throws dysra::Error when `golds` is empty.
double substring_match(const std::string& prediction, const std::vector<std::string>& golds);

/// Search-R1: the text (trimmed) of the last <answer>...</answer> in `text`; std::nullopt when there are fewer
/// than `min_matches` such spans (the default 2 because Search-R1's prompt already holds one tag).
std::optional<std::string> extract_last_answer(const std::string& text, int min_matches = 2);

/// Corpus-level QA scores, each 100 × the mean over questions.
struct QAScores {
  double em = 0;
  double f1 = 0;
  double precision = 0;
  double recall = 0;
  double substring = 0;  ///< FlashRAG acc / subem
  int64_t count = 0;     ///< questions scored (including missing predictions)
  int64_t missing = 0;   ///< questions that had no prediction (scored 0 on every metric)
};

struct QAMetricOptions {
  F1Variant f1_variant = F1Variant::SquadV1;
  bool independent_max = false;  ///< FlashRAG-style separate maxima of F1/P/R (see f1_score)
};

/// Streams questions in, returns the corpus means. Not thread-safe.
class QAAccumulator {
 public:
  explicit QAAccumulator(QAMetricOptions options = {}) : options_(options) {}
  /// Scores one prediction against its gold answers (non-empty).
  void add(const std::string& prediction, const std::vector<std::string>& golds);
  /// A question the system produced no prediction for: scores 0 everywhere (SQuAD's rule).
  void add_missing();
  QAScores result() const;

 private:
  QAMetricOptions options_;
  double em_ = 0, f1_ = 0, p_ = 0, r_ = 0, sub_ = 0;
  int64_t count_ = 0, missing_ = 0;
};

/// Convenience: one prediction per question. Throws dysra::Error if the sizes differ or a gold list is empty
/// (the message names the question index).
QAScores evaluate_qa(const std::vector<std::string>& predictions, const std::vector<std::vector<std::string>>& golds,
                     const QAMetricOptions& options = {});

}  // namespace dysra::metrics
