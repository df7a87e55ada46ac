// dysra/data/text_task.h — text tasks as LM training examples: the synthetic long-context suite and FlashRAG
// JSONL question answering, tokenized byte-level, with loss only on the answer tokens and EOS.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "dysra/data/jsonl.h"
#include "dysra/data/synthetic.h"
#include "dysra/data/task.h"
#include "dysra/data/tokenizer.h"

namespace dysra::data {

/// One prompt/answer pair, tokenized into a left-padded LM example of `seq_len` tokens.
/// Returns false when the prompt and answer do not fit.
bool encode_prompt_answer(const Tokenizer& tok, const std::string& prompt, const std::string& answer, int64_t seq_len,
                          int64_t* inputs, int64_t* labels);

class TextTask : public Task {
 public:
  std::string name() const override { return name_; }
  int64_t vocab_size() const override { return tokenizer_->vocab_size(); }
  int64_t seq_len() const override { return seq_len_; }
  Batch batch(Split split, const std::vector<int64_t>& ids) const override;
  std::map<std::string, double> answer_metrics(Split split, int64_t max_examples, int64_t batch_size,
                                               const Generate& generate) const override;
  /// Prompt and gold answers of example `id`.
  virtual std::pair<std::string, std::vector<std::string>> text(Split split, int64_t id) const = 0;

 protected:
  TextTask(std::string name, int64_t seq_len);
  std::string name_;
  int64_t seq_len_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

class SyntheticTask : public TextTask {
 public:
  SyntheticTask(const std::string& name, const SyntheticTaskOptions& options, uint64_t seed);
  int64_t size(Split split) const override;
  std::pair<std::string, std::vector<std::string>> text(Split split, int64_t id) const override;

 private:
  SyntheticTaskOptions options_;
  SyntheticGenerator train_, eval_;
};

class QaTask : public TextTask {
 public:
  QaTask(const QaTaskOptions& options, uint64_t seed);
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
