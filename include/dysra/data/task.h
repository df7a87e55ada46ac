// dysra/data/task.h — the Task seam: a task yields token batches (inputs + labels) for training and
// evaluation, addressed by example index so any batch can be regenerated (exact resume, reproducible eval).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dysra/core/registry.h"
#include "dysra/data/tokenizer.h"

namespace dysra::data {

/// Labels use -100 for positions that carry no target (as in PyTorch's cross-entropy ignore_index).
constexpr int64_t kIgnoreIndex = -100;

struct Batch {
  torch::Tensor tokens;   ///< [B, L] int64
  torch::Tensor labels;   ///< [B, L] int64, kIgnoreIndex where no target
  /// [B, L] float32 per-target training weights, or undefined (every target weighs 1). The training loss is
  /// Σ w·CE / Σ w over labelled positions; evaluation ignores weights.
  torch::Tensor weights;
  Batch to(const torch::Device& device) const {
    return {tokens.to(device), labels.to(device), weights.defined() ? weights.to(device) : torch::Tensor()};
  }
};

enum class Split { kTrain = 0, kValidation = 1, kTest = 2 };

/// Options of the multi-query associative recall task, exactly as Zoology defines it.
struct MqarOptions {
  int64_t vocab_size = 8192;
  int64_t seq_len = 256;
  int64_t num_kv_pairs = 16;
  int64_t num_passes = 1;           ///< repeated context passes (JRT); 1 = standard
  double power_a = 0.01;            ///< query-gap distribution p(i) ∝ a·i^(a-1)
  bool random_non_queries = false;  ///< fill non-query zeros with random tokens (Zoology class default true)
  int64_t train_examples = 100000;
  int64_t eval_examples = 3000;
};

/// Synthetic long-context tasks (passkey, RULER niah_*, vt, cwe, fwe, kv_retrieval, multihop_2/3) as LM
/// examples: prompt tokens, then the answer (answers joined by ", ") and EOS; loss only on the answer + EOS.
/// Byte-level tokens; sequences are left-padded to seq_len.
struct SyntheticTaskOptions {
  int64_t seq_len = 1024;          ///< tokens per example (prompt + answer); RULER's max_seq_length
  /// > 0: training examples get a context length drawn per example from `length_buckets` lengths spaced
  /// geometrically from min_seq_len to seq_len (left-padded to seq_len); evaluation stays at seq_len. Short
  /// contexts teach the retrieval mechanism that the long ones then use.
  int64_t min_seq_len = 0;
  int64_t length_buckets = 8;
  int64_t train_examples = 100000;
  int64_t eval_examples = 200;
  std::string essay_path = "";     ///< real text for essay haystacks ("" = generated prose; "auto" = Austen if built)
};

/// Question answering from FlashRAG JSONL (e.g. `dysra data build` output): each example's prompt is a short
/// haystack of corpus documents (the gold ones + seeded distractors, shuffled), then "Q: question\nA: ";
/// the target is the first golden answer + EOS. Byte-level tokens, left-padded to seq_len.
struct QaTaskOptions {
  std::string train_path;          ///< questions JSONL for training
  std::string eval_path;           ///< questions JSONL for evaluation
  std::string corpus_path;         ///< corpus JSONL {id, contents}; "" = no context documents
  int64_t haystack_docs = 4;       ///< documents per prompt (gold included); distractors dropped to fit seq_len
  int64_t seq_len = 512;
  int64_t max_train_examples = 0;  ///< 0 = all
  int64_t max_eval_examples = 500; ///< 0 = all
  int64_t max_answer_tokens = 64;  ///< questions with a longer first answer are dropped (and counted)
};

/// Questions over a FactStream (dysra/data/streaming.h) as training examples: example i is a fresh stream (seed
/// from the run seed and i) read up to its first question; the prompt is that text, the question and the answer
/// prefix, the target the answer. Trains the models that `dysra stream run` then evaluates on endless streams.
/// A stream text longer than the context is cut from the left (mid-item), so with question_interval ≥ seq_len no
/// example is padded and none starts at the stream's start — as on an endless stream.
struct StreamTaskOptions {
  int64_t seq_len = 1024;
  int64_t question_interval = 768;        ///< stream units between questions
  /// The example asks question number `skip` of its stream; the earlier questions stay in the text with their
  /// answers (as `dysra stream run` feeds them), so the context holds several facts and answers and the model
  /// must match the key, not just copy the last number.
  int64_t skip = 0;
  std::vector<int64_t> distances{64, 256, 512};  ///< fact distances, drawn per example
  std::string kind = "needle";            ///< needle | chain | variables
  int64_t hops = 2;
  std::string filler = "noise";           ///< noise | essay
  int64_t train_examples = 100000;
  int64_t eval_examples = 200;
};

/// Language modelling on a corpus: FlashRAG corpus JSONL ({id, contents}, e.g. `dysra data build`'s
/// lm/<name>/{train,validation}.jsonl) or plain text (documents separated by blank lines).
///  - pack: documents joined with EOS and cut into windows of seq_len + 1 tokens (no padding at all);
///  - pad:  one example per document (a longer one is cut into consecutive seq_len + 1 pieces), right-padded
///          with no loss on padding; a batch is only as wide as its longest example. With `bucket`, each
///          training epoch groups examples of similar length into batches (shuffled within windows of
///          `bucket_window` batches, then batch order shuffled), so little of a batch is padding.
struct LmTaskOptions {
  std::string train_path;
  std::string eval_path;
  int64_t seq_len = 512;
  std::string mode = "pack";      ///< "pack" | "pad"
  bool bucket = true;             ///< pad mode: length-bucketed training batches
  int64_t bucket_window = 64;     ///< batches per sorting window
  int64_t max_eval_examples = 0;  ///< 0 = all
};

/// The `data:` section. Exactly one task's option block is used, selected by `task`:
/// mqar → `mqar`; a synthetic task name → `synthetic`; qa → `qa`; lm → `lm`; fact_stream → `stream`. Text tasks (all but mqar) read
/// `tokenizer` (byte-level by default; the run records the loaded model's fingerprint in its config so that a
/// changed model file is an error on resume) and `prompt_loss_weight`.
struct TaskOptions {
  std::string task = "mqar";
  MqarOptions mqar;
  SyntheticTaskOptions synthetic;
  QaTaskOptions qa;
  LmTaskOptions lm;
  StreamTaskOptions stream;
  TokenizerOptions tokenizer;
  /// Prompt/answer tasks: > 0 adds next-token loss on the prompt (training split only), normalised so that an
  /// example's prompt targets weigh `prompt_loss_weight` times its answer targets in total. Repetitive
  /// haystacks then teach copying (induction) long before the sparse answer signal alone does.
  double prompt_loss_weight = 0.0;
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t seq_len() const = 0;
  virtual int64_t size(Split split) const = 0;
  /// Examples `ids` of `split`, stacked. Deterministic in (task options, seed, split, id).
  virtual Batch batch(Split split, const std::vector<int64_t>& ids) const = 0;
  /// Greedy decoding: prompts [B, P] int64 (left-padded) → the next `max_new_tokens` tokens [B, max_new_tokens].
  using Generate = std::function<torch::Tensor(const torch::Tensor& prompts, int64_t max_new_tokens)>;
  /// Task-specific metrics of generated answers, e.g. EM/F1 (empty when the task has none).
  virtual std::map<std::string, double> answer_metrics(Split split, int64_t max_examples, int64_t batch_size,
                                                       const Generate& generate) const {
    return {};
  }
  /// The tokenizer of a text task (nullptr for tasks over raw ids, like MQAR).
  virtual const Tokenizer* tokenizer() const { return nullptr; }
  /// The order in which training epoch `epoch` visits the training split (a permutation of its ids), batched
  /// `batch_size` at a time. Default: a uniform permutation drawn from (seed, epoch). Deterministic, so a run
  /// resumes at the exact example.
  virtual std::vector<int64_t> epoch_order(uint64_t seed, int64_t epoch, int64_t batch_size) const;
};

using TaskFactory = std::function<std::unique_ptr<Task>(const TaskOptions&, uint64_t seed)>;
Registry<TaskFactory>& task_registry();
std::unique_ptr<Task> make_task(const TaskOptions& options, uint64_t seed);

}  // namespace dysra::data
