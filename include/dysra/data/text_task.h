// dysra/data/text_task.h — text tasks as LM training examples: the synthetic long-context suite and FlashRAG
// JSONL question answering, tokenized with `data.tokenizer` (byte-level by default), with loss on the answer
// tokens and EOS (plus, with `data.prompt_loss_weight` > 0, a weighted next-token loss on the prompt).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "dysra/data/jsonl.h"
#include "dysra/data/streaming.h"
#include "dysra/data/synthetic.h"
#include "dysra/data/task.h"
#include "dysra/data/tokenizer.h"

namespace dysra::data {

/// One prompt/answer pair, tokenized into an LM example of `seq_len` tokens (the pad token is the tokenizer's
/// pad id, or EOS when it has none). The sequence is
///     pad × (seq_len + 1 − |prompt| − A) · prompt · answer · EOS · pad × (A − |answer| − 1)
/// with A = `answer_budget` (0: A = |answer| + 1, no right padding). A fixed per-task A puts every prompt at the
/// place where generation sees it (prompts left-padded to seq_len + 1 − A), whatever the answer's length, so
/// the amount of padding never tells the model anything. Answer targets weigh 1; with `weights` and
/// prompt_loss_weight > 0 the prompt's next tokens are targets too, each weighing
/// prompt_loss_weight · (answer targets / prompt targets). Returns false when the prompt and answer do not fit.
bool encode_prompt_answer(const Tokenizer& tok, const std::string& prompt, const std::string& answer, int64_t seq_len,
                          int64_t* inputs, int64_t* labels, float* weights = nullptr, double prompt_loss_weight = 0.0,
                          int64_t answer_budget = 0);

/// The padding id used for `tok`: pad_id(), or eos_id() when the tokenizer has no pad.
int32_t padding_id(const Tokenizer& tok);

class TextTask : public Task {
 public:
  std::string name() const override { return name_; }
  int64_t vocab_size() const override { return tokenizer_->vocab_size(); }
  int64_t seq_len() const override { return seq_len_; }
  Batch batch(Split split, const std::vector<int64_t>& ids) const override;
  std::map<std::string, double> answer_metrics(Split split, int64_t max_examples, int64_t batch_size,
                                               const Generate& generate) const override;
  const Tokenizer* tokenizer() const override { return tokenizer_.get(); }
  /// Tokens reserved after the prompt for the answer and EOS (A in encode_prompt_answer); also the generation
  /// budget in answer_metrics.
  int64_t answer_budget() const { return answer_budget_; }
  /// Prompt and gold answers of example `id`.
  virtual std::pair<std::string, std::vector<std::string>> text(Split split, int64_t id) const = 0;

 protected:
  TextTask(std::string name, int64_t seq_len, const TaskOptions& options);
  std::string name_;
  int64_t seq_len_;
  double prompt_loss_weight_;
  std::unique_ptr<Tokenizer> tokenizer_;
  int64_t answer_budget_ = 0;  ///< set by the subclass constructor
};

class SyntheticTask : public TextTask {
 public:
  /// Reads options.synthetic, options.tokenizer and options.prompt_loss_weight.
  SyntheticTask(const std::string& name, const TaskOptions& options, uint64_t seed);
  int64_t size(Split split) const override;
  std::pair<std::string, std::vector<std::string>> text(Split split, int64_t id) const override;

 private:
  SyntheticTaskOptions options_;
  std::vector<SyntheticGenerator> train_;  ///< one per training context length (one when min_seq_len = 0)
  SyntheticGenerator eval_;
  uint64_t seed_;
};

class FactStreamTask : public TextTask {
 public:
  /// Reads options.stream, options.tokenizer and options.prompt_loss_weight.
  FactStreamTask(const TaskOptions& options, uint64_t seed);
  int64_t size(Split split) const override;
  std::pair<std::string, std::vector<std::string>> text(Split split, int64_t id) const override;

 private:
  StreamTaskOptions options_;
  uint64_t seed_;
};

class QaTask : public TextTask {
 public:
  /// Reads options.qa, options.tokenizer and options.prompt_loss_weight.
  QaTask(const TaskOptions& options, uint64_t seed);
  int64_t size(Split split) const override;
  std::pair<std::string, std::vector<std::string>> text(Split split, int64_t id) const override;
  /// TextTask's EM/F1 plus majority_em / majority_f1: the trivial baseline that always answers majority_answer().
  std::map<std::string, double> answer_metrics(Split split, int64_t max_examples, int64_t batch_size,
                                               const Generate& generate) const override;
  /// The most frequent first golden answer of the training split (the trivial baseline's prediction).
  const std::string& majority_answer() const { return majority_; }
  /// Questions left out because their gold documents + question + answer exceed seq_len.
  int64_t dropped_examples() const { return dropped_; }

 private:
  QaTaskOptions options_;
  uint64_t seed_;
  std::vector<QAExample> train_, eval_;
  std::vector<Document> corpus_;
  std::map<std::string, size_t> doc_index_;
  std::string majority_;
  int64_t dropped_ = 0;
};

}  // namespace dysra::data
