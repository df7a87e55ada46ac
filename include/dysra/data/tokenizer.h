// dysra/data/tokenizer.h — text ↔ token ids: the byte-level tokenizer and SentencePiece (libsentencepiece).
//
// encode() never adds BOS/EOS; callers add them. decode() drops special ids (pad/bos/eos/unk) and rejects ids
// outside [0, vocab_size). A tokenizer describes itself with `identity()` (type, model file, vocab size and a
// 64-bit FNV-1a fingerprint of its vocabulary: pieces, scores, kinds and the ids of a normalization probe
// string); a run records it in its config and `make_tokenizer` checks
// `expected_fingerprint` on reload, so a changed model file is an error instead of silently different ids.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dysra::data {

/// Byte span [begin, end) of one token in the encoded text.
struct TokenSpan {
  int64_t begin = 0;
  int64_t end = 0;
};

/// What identifies a tokenizer; enough to reload it and to detect that the model file changed.
struct TokenizerIdentity {
  std::string type;         ///< "byte" | "sentencepiece"
  std::string model_path;   ///< "" for byte
  int32_t vocab_size = 0;
  std::string fingerprint;  ///< 16 hex digits (see the file comment; FNV-1a 64 of "dysra-byte-v1" for byte)
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;
  /// Token ids plus each token's byte span in `text` (spans are non-decreasing; used by chunking).
  virtual std::vector<int32_t> encode_with_spans(const std::string& text, std::vector<TokenSpan>* spans) const = 0;
  /// Throws dysra::DataError naming the position and value of an id outside [0, vocab_size).
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual int32_t pad_id() const = 0;  ///< -1 when the model has none
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual int32_t unk_id() const = 0;
  virtual std::string name() const = 0;  ///< "byte" | "sentencepiece"
  virtual TokenizerIdentity identity() const = 0;
  /// Writes the model so that `make_tokenizer` can load it again: a SentencePiece .model file, or for the byte
  /// tokenizer a one-line marker file "dysra-byte-v1".
  virtual void save(const std::string& path) const = 0;
};

/// Bytes are ids 0..255; pad = 256, bos = 257, eos = 258, unk = 259 (never produced); vocab 260.
/// Round trips any byte string exactly (UTF-8 or not).
class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int32_t kPad = 256, kBos = 257, kEos = 258, kUnk = 259, kVocab = 260;
  std::vector<int32_t> encode(const std::string& text) const override;
  std::vector<int32_t> encode_with_spans(const std::string& text, std::vector<TokenSpan>* spans) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int32_t vocab_size() const override { return kVocab; }
  int32_t pad_id() const override { return kPad; }
  int32_t bos_id() const override { return kBos; }
  int32_t eos_id() const override { return kEos; }
  int32_t unk_id() const override { return kUnk; }
  std::string name() const override { return "byte"; }
  TokenizerIdentity identity() const override;
  void save(const std::string& path) const override;
};

/// A trained SentencePiece model (.model file). Not copyable; thread-safe for concurrent encode/decode.
class SentencePieceTokenizer final : public Tokenizer {
 public:
  /// Loads `model_path`; throws dysra::DataError naming the file when it is missing or not a model.
  explicit SentencePieceTokenizer(const std::string& model_path);
  ~SentencePieceTokenizer() override;
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  std::vector<int32_t> encode(const std::string& text) const override;
  std::vector<int32_t> encode_with_spans(const std::string& text, std::vector<TokenSpan>* spans) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int32_t vocab_size() const override;
  int32_t pad_id() const override;
  int32_t bos_id() const override;
  int32_t eos_id() const override;
  int32_t unk_id() const override;
  std::string name() const override { return "sentencepiece"; }
  TokenizerIdentity identity() const override;
  void save(const std::string& path) const override;
  /// The piece string of an id (e.g. "▁the"); throws on a bad id.
  std::string id_to_piece(int32_t id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Options of `train_sentencepiece` (mapped onto spm_train flags). Deterministic for fixed inputs and options
/// (one thread, no sentence sampling unless `input_sentence_size` > 0).
struct SentencePieceTrainOptions {
  std::vector<std::string> input_files;  ///< plain text, one sentence per line
  std::string model_prefix;              ///< writes <prefix>.model and <prefix>.vocab
  int32_t vocab_size = 8000;
  std::string model_type = "bpe";        ///< "bpe" | "unigram"
  double character_coverage = 1.0;
  /// "identity" keeps text byte-exact (decode(encode(s)) == s for covered text); "nmt_nfkc" is spm's default.
  std::string normalization_rule_name = "identity";
  bool remove_extra_whitespaces = false;
  bool byte_fallback = true;             ///< unseen characters become <0xNN> byte pieces instead of <unk>
  bool split_digits = false;
  bool hard_vocab_limit = false;         ///< false: a smaller vocab is allowed when the corpus is tiny
  int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = 3;  ///< -1 disables bos/eos/pad
  int64_t input_sentence_size = 0;       ///< 0 = all sentences
  int32_t max_sentence_length = 1 << 16; ///< bytes; longer lines are skipped by spm
  int32_t num_threads = 1;
};

/// Trains a model; returns the path of the .model file. Throws dysra::ConfigError for bad options and
/// dysra::DataError naming the input files when training fails.
std::string train_sentencepiece(const SentencePieceTrainOptions& options);

/// How to build a tokenizer (the `tokenizer:` block of a run config).
struct TokenizerOptions {
  std::string type = "byte";  ///< "byte" | "sentencepiece"
  std::string model_path;     ///< required for "sentencepiece"
  /// When non-empty, the loaded model's fingerprint must equal this (from a previous run's identity).
  std::string expected_fingerprint;
};

/// Builds the tokenizer; throws dysra::ConfigError for an unknown type or a missing model_path, and
/// dysra::DataError (naming the model file) for a bad file or a fingerprint mismatch.
std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerOptions& options);

/// FNV-1a 64-bit of a byte string, as 16 lower-case hex digits.
std::string fnv1a64_hex(const std::string& bytes);

}  // namespace dysra::data
