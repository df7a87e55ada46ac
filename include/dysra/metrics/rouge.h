// dysra/metrics/rouge.h — ROUGE-N, ROUGE-L and ROUGE-Lsum exactly as Google's `rouge-score` package computes
// them (rouge_score 0.1.2; ../shared/research/retrieval_frameworks.md §6.2).
//
// Tokenizer: Python lower() → every run of [^a-z0-9] becomes a space → split → (use_stemmer) NLTK's Porter
// stemmer in its default NLTK_EXTENSIONS mode on tokens longer than 3 characters → keep ^[a-z0-9]+$ tokens.
// Non-ASCII letters are separators ("Röntgen" → "r", "ntgen").
// Scores take the reference (target) FIRST, as rouge_score's `score(target, prediction)`.
// F = 2PR/(P+R), or 0 when P+R = 0. Per-example scores only; rouge-score's bootstrap "mid" is random and is
// not reproduced — average per-example scores yourself.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace dysra::metrics {

struct RougeScore {
  double precision = 0;
  double recall = 0;
  double fmeasure = 0;
};

/// NLTK PorterStemmer().stem(word) in NLTK_EXTENSIONS mode (lower-cases `word` first; ASCII only: other bytes
/// are treated as consonants).
std::string porter_stem(const std::string& word);

/// rouge_score's tokenizer (see the file comment).
std::vector<std::string> rouge_tokenize(const std::string& text, bool use_stemmer);

/// ROUGE-N over token lists: clipped n-gram overlap; P = overlap / max(#pred n-grams, 1), R likewise.
RougeScore rouge_n_tokens(const std::vector<std::string>& target, const std::vector<std::string>& prediction, int n);
/// ROUGE-L over token lists: LCS / |prediction|, LCS / |target|; all 0 if either side is empty.
RougeScore rouge_l_tokens(const std::vector<std::string>& target, const std::vector<std::string>& prediction);
/// ROUGE-Lsum over sentences (token lists): summary-level union LCS, each token counted at most as often as it
/// occurs on both sides (ROUGE-1.5.5 behaviour).
RougeScore rouge_lsum_tokens(const std::vector<std::vector<std::string>>& target_sents,
                             const std::vector<std::vector<std::string>>& prediction_sents);
/// Length of the longest common subsequence.
int64_t lcs_length(const std::vector<std::string>& a, const std::vector<std::string>& b);

struct RougeOptions {
  /// "rouge1" … "rouge9", "rougeL", "rougeLsum" (the HF evaluate default set).
  std::vector<std::string> types = {"rouge1", "rouge2", "rougeL", "rougeLsum"};
  bool use_stemmer = false;
};

/// rouge_score's RougeScorer(types, use_stemmer).score(target, prediction). rougeLsum splits both texts on
/// "\n" and drops empty lines. An unknown type throws dysra::Error listing the known ones.
std::map<std::string, RougeScore> rouge(const std::string& target, const std::string& prediction,
                                        const RougeOptions& options = {});

/// score_multi: per type, the target with the highest F-measure (first on ties). Throws if `targets` is empty.
std::map<std::string, RougeScore> rouge_multi(const std::vector<std::string>& targets, const std::string& prediction,
                                              const RougeOptions& options = {});

}  // namespace dysra::metrics
