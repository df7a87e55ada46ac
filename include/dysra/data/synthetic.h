// dysra/data/synthetic.h — the synthetic long-context task suite, generated on the fly from a seed.
//
// Tasks (registry names): passkey; RULER's niah_single_{1,2,3}, niah_multikey_{1,2,3}, niah_multivalue,
// niah_multiquery, vt (variable tracking), cwe (common words), fwe (frequent words); kv_retrieval
// (InfiniteBench-style JSON of UUID pairs); multihop_2 / multihop_3 (answer needs 2 or 3 linked facts).
// Generation rules follow RULER (`NVIDIA/RULER@c3f5e3b`, see ../shared/research/kvcache.md §7.1) and the
// Mohtashami & Jaggi passkey prompt (§7.2); every deviation is named next to the option it concerns.
//
// Determinism: example `index` of (seed, split) is a pure function of its options and index (it draws from
// `Rng(seed_for(seed, split, index))`), identical on every platform; examples are independent (random access).
//
// Length: `max_seq_length` is in units of the target tokenizer. The prompt (instruction + context + question +
// answer prefix) plus `tokens_to_generate` fits in it, as RULER's binary search does, and is as long as the
// haystack's granularity allows (one noise sentence / one essay sentence / one list item short at most).
// Tokens are counted by `count_tokens` when given (pass the real tokenizer, or `byte_token_counter()` for the
// byte-level one); otherwise by an approximate model, ceil(tokens_per_word × whitespace-separated words), with
// 1.3 tokens per word (English BPE). The haystack is sized by summing per-sentence counts and then checked on
// the whole prompt, so a tokenizer that is not additive across sentence joins is still respected.
//
// Haystacks: "noise" is RULER's repeated sentence; "essay" is real prose (the Austen LM corpus written by
// `dysra data build`, or any text file, see `SyntheticCommon::essay_path`) and, when none is available, a
// deterministic generated prose (reported in `SyntheticExample::haystack`); "needle" is distractor needles.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dysra/data/rng.h"

namespace dysra::data {

class Tokenizer;  // tokenizer.h

/// Counts the tokens of a text in the target tokenizer.
using TokenCounter = std::function<size_t(const std::string&)>;

/// Byte-level tokenizer: one token per byte.
TokenCounter byte_token_counter();
/// Counts with `tok` (which must outlive the counter); a byte-level tokenizer gets byte_token_counter().
TokenCounter tokenizer_token_counter(const Tokenizer& tok);
/// The approximate model: ceil(tokens_per_word × number of whitespace-separated words).
TokenCounter word_token_counter(double tokens_per_word = 1.3);

/// One generated example. Offsets index `context`; `prompt()` is what a model reads.
struct SyntheticExample {
  std::string task;           ///< registry name, e.g. "niah_multikey_2"
  uint64_t index = 0;         ///< example index within (seed, split)
  std::string instruction;    ///< text before the context (task description, few-shot example), with separator
  std::string context;        ///< the haystack with the needles
  std::string question;       ///< text after the context, with its leading separator
  std::string answer_prefix;  ///< RULER's answer prefix (the model continues after it); may be empty
  std::vector<std::string> answers;          ///< gold strings; all are expected (RULER string_match_all)
  std::vector<std::string> needles;          ///< gold needle texts (facts that carry the answer), in order
  std::vector<size_t> needle_char_offsets;   ///< byte offset of each gold needle in `context`
  std::vector<double> needle_depths;         ///< needle_char_offsets[i] / context.size()
  size_t num_distractors = 0;  ///< distractor needles / chains / non-queried keys in the context
  size_t prompt_tokens = 0;    ///< counted tokens of prompt()
  size_t tokens_to_generate = 0;  ///< RULER's generation budget for the task
  std::string haystack;        ///< "noise", "needle", "essay:<file>", "essay:generated", "list", "json"

  /// instruction + context + question + answer_prefix.
  std::string prompt() const;
};

/// Settings shared by every task.
struct SyntheticCommon {
  size_t max_seq_length = 4096;  ///< prompt tokens + tokens_to_generate ≤ this (RULER's max_seq_length)
  TokenCounter count_tokens;     ///< empty: word_token_counter(tokens_per_word)
  double tokens_per_word = 1.3;
  uint64_t seed = 42;
  std::string split = "test";    ///< mixed into the per-example seed (different splits never coincide)
  /// Real text for "essay" haystacks: a plain-text file (paragraphs separated by blank lines). "auto" uses
  /// $DYSRA_DATA_DIR/lm/austen/train.txt, else data/generated/lm/austen/train.txt, when it exists; "" or a
  /// missing "auto" file gives generated prose. An explicit path that does not exist is an error.
  std::string essay_path = "auto";
};

/// Passkey retrieval (Mohtashami & Jaggi 2023), noise haystack of sentences joined by " ".
struct PasskeyOptions {
  SyntheticCommon common;
  double depth = -1;       ///< needle position as a fraction of the filler in [0, 1]; < 0: uniform at random
  int64_t min_key = 1;     ///< passkey drawn uniformly from [min_key, max_key]
  int64_t max_key = 50000;
};

enum class Haystack { noise, essay, needle };
enum class NeedleType { words, numbers, uuids };

/// RULER needle-in-a-haystack. Presets: niah_preset().
struct NiahOptions {
  SyntheticCommon common;
  Haystack haystack = Haystack::essay;
  NeedleType key_type = NeedleType::words;
  NeedleType value_type = NeedleType::numbers;
  size_t num_keys = 1;     ///< needles with distinct keys (RULER num_needle_k; max(keys, queries) are made)
  size_t num_values = 1;   ///< values per key (num_needle_v)
  size_t num_queries = 1;  ///< keys asked about (num_needle_q)
  /// Needle depths in [0, 1]. Empty: RULER's rule (noise/needle: random distinct positions; essay: depths
  /// drawn without replacement from round(linspace(0, 100, 40)) %). One value: all needles there (adjacent,
  /// in shuffled order). Otherwise one value per needle (in the shuffled needle order).
  std::vector<double> depths;
};
/// Options of a RULER preset name (niah_single_1 … niah_multiquery); unknown names list the known ones.
NiahOptions niah_preset(const std::string& name, const SyntheticCommon& common = {});

/// RULER variable tracking: chains "VAR X0 = 12345", "VAR X1 = VAR X0 ", … in a noise haystack.
struct VariableTrackingOptions {
  SyntheticCommon common;
  size_t num_chains = 1;
  size_t num_hops = 4;
  bool icl_example = true;  ///< prepend RULER's one-shot example (3-letter names, value 12345)
};

/// RULER common words extraction: a numbered list where num_common words repeat freq_common times.
struct CweOptions {
  SyntheticCommon common;
  size_t num_common = 10;
  size_t freq_common = 0;    ///< 0: RULER's default, 30 (6 when max_seq_length < 4096)
  size_t freq_uncommon = 0;  ///< 0: RULER's default, 3 (1 when max_seq_length < 4096)
  bool icl_example = true;   ///< prepend RULER's example (40 words, 10×/3×; 20 words, 3×/1× below 4K)
};

/// RULER frequent words extraction: Zipf(alpha) counts over random 6-letter "coded" words.
struct FweOptions {
  SyntheticCommon common;
  double alpha = 2.0;
  size_t vocab_size = 2000;
};

/// InfiniteBench-style key-value retrieval: a JSON object of UUID → UUID pairs; one key is asked.
struct KvRetrievalOptions {
  SyntheticCommon common;
  double depth = -1;  ///< position of the gold pair in [0, 1]; < 0: uniform at random
};

/// Multi-hop chained facts (HotpotQA pattern): "P was born in the city of C." + "The city of C lies in the
/// country of K." (+ "P's mentor was Q." for 3 hops); the question needs every link. Distractor chains use
/// other, distinct names. Names are generated (no world knowledge helps).
struct MultiHopOptions {
  SyntheticCommon common;
  size_t hops = 2;                  ///< 2 or 3
  size_t num_distractor_chains = 4;
  Haystack haystack = Haystack::essay;  ///< noise or essay
  std::vector<double> depths;       ///< as NiahOptions::depths, over the gold facts (empty: random)
};

SyntheticExample generate_passkey(const PasskeyOptions& opt, uint64_t index);
SyntheticExample generate_niah(const NiahOptions& opt, uint64_t index);
SyntheticExample generate_variable_tracking(const VariableTrackingOptions& opt, uint64_t index);
SyntheticExample generate_cwe(const CweOptions& opt, uint64_t index);
SyntheticExample generate_fwe(const FweOptions& opt, uint64_t index);
SyntheticExample generate_kv_retrieval(const KvRetrievalOptions& opt, uint64_t index);
SyntheticExample generate_multihop(const MultiHopOptions& opt, uint64_t index);

/// A task bound to its options: index → example.
using SyntheticGenerator = std::function<SyntheticExample(uint64_t index)>;
/// The registry: a task name with default options over `common` (unknown names list the known ones).
SyntheticGenerator make_synthetic_task(const std::string& name, const SyntheticCommon& common = {});
/// All registered task names, sorted.
std::vector<std::string> synthetic_task_names();

/// A source of haystack sentences, indexed from 0 and cycling (RULER takes the first n essay words).
/// `essay_path` as in SyntheticCommon. Loading a file is cached per path and thread-safe.
class EssayText {
 public:
  explicit EssayText(const std::string& essay_path);
  /// Sentence i (i ≥ 0): from the file (i mod size) or from the generated prose (random access).
  std::string sentence(uint64_t i) const;
  /// "essay:<path>" or "essay:generated".
  const std::string& name() const { return name_; }

 private:
  std::shared_ptr<const std::vector<std::string>> sentences_;
  std::string name_;
};

/// Splits prose into sentences (. ! ? followed by space and a capital/quote/digit; keeps "Mr." "Mrs." "Dr."
/// "St." and initials attached); whitespace runs become one space. Used for essay haystacks and Austen tasks.
std::vector<std::string> split_sentences(const std::string& text);

/// A random needle key or value (numbers: 7 digits; words: adjective-noun; uuids: uuid4), as RULER draws them.
std::string random_needle(Rng& rng, NeedleType type);

/// The RULER noise sentence.
extern const char* const kNoiseSentence;

}  // namespace dysra::data
