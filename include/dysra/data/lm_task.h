// dysra/data/lm_task.h — language modelling on a corpus (packed windows, or padded documents with length
// bucketing); see LmTaskOptions in dysra/data/task.h.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "dysra/data/task.h"
#include "dysra/data/tokenizer.h"

namespace dysra::data {

/// Reads a corpus file into documents: FlashRAG corpus JSONL (".jsonl": one {id, contents} per line) or plain
/// text (any other name: paragraphs separated by blank lines). Throws DataError naming the file when it is
/// missing, malformed or holds no text.
std::vector<std::string> read_lm_documents(const std::string& path);

class LmTask : public Task {
 public:
  LmTask(const LmTaskOptions& options, const TokenizerOptions& tokenizer);
  std::string name() const override { return "lm"; }
  int64_t vocab_size() const override { return tokenizer_->vocab_size(); }
  int64_t seq_len() const override { return options_.seq_len; }
  int64_t size(Split split) const override;
  /// pack: [B, seq_len]; pad: [B, W] with W the longest example of the batch (≤ seq_len), labels
  /// kIgnoreIndex on padding.
  Batch batch(Split split, const std::vector<int64_t>& ids) const override;
  const Tokenizer* tokenizer() const override { return tokenizer_.get(); }
  /// pad mode with `bucket`: batches of similar-length examples (see LmTaskOptions); otherwise the default.
  std::vector<int64_t> epoch_order(uint64_t seed, int64_t epoch, int64_t batch_size) const override;
  /// Number of targets (input length) of example `id`: seq_len in pack mode.
  int64_t example_length(Split split, int64_t id) const;
  /// Tokens of the split's corpus, EOS after each document included.
  int64_t corpus_tokens(Split split) const;

 private:
  struct Segment {
    int64_t begin;   ///< offset into the split's token array
    int64_t length;  ///< tokens in the piece (inputs + 1)
  };
  struct SplitData {
    std::vector<int32_t> tokens;    ///< documents, each followed by EOS
    std::vector<Segment> segments;  ///< the examples
  };
  SplitData load(const std::string& path, int64_t max_examples) const;
  const SplitData& data(Split split) const { return split == Split::kTrain ? train_ : eval_; }

  LmTaskOptions options_;
  std::unique_ptr<Tokenizer> tokenizer_;
  SplitData train_, eval_;
};

}  // namespace dysra::data
