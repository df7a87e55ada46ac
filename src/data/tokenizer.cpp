// src/data/tokenizer.cpp — byte-level and SentencePiece tokenizers, SentencePiece training, the factory.
#include "dysra/data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "dysra/core/error.h"

namespace dysra::data {

std::string fnv1a64_hex(const std::string& bytes) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

namespace {

constexpr const char* kByteMarker = "dysra-byte-v1";

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  DYSRA_CHECK_T(DataError, f.good(), path, ": cannot open for writing");
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  DYSRA_CHECK_T(DataError, f.good(), path, ": write failed");
}

}  // namespace

// ---- ByteTokenizer -------------------------------------------------------------------------------------------

std::vector<int32_t> ByteTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::vector<int32_t> ByteTokenizer::encode_with_spans(const std::string& text, std::vector<TokenSpan>* spans) const {
  if (spans) {
    spans->resize(text.size());
    for (size_t i = 0; i < text.size(); ++i) (*spans)[i] = {int64_t(i), int64_t(i + 1)};
  }
  return encode(text);
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    DYSRA_CHECK_T(DataError, id >= 0 && id < kVocab, "ByteTokenizer::decode: id ", id, " at position ", i,
                  " is outside [0, ", kVocab, ")");
    if (id < 256) out.push_back(static_cast<char>(id));
  }
  return out;
}

TokenizerIdentity ByteTokenizer::identity() const { return {"byte", "", kVocab, fnv1a64_hex(kByteMarker)}; }

void ByteTokenizer::save(const std::string& path) const { write_file(path, std::string(kByteMarker) + "\n"); }

// ---- SentencePieceTokenizer ----------------------------------------------------------------------------------

struct SentencePieceTokenizer::Impl {
  sentencepiece::SentencePieceProcessor sp;
  std::string path;
  std::string fingerprint;
};

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path) : impl_(std::make_unique<Impl>()) {
  impl_->path = model_path;
  DYSRA_CHECK_T(DataError, std::filesystem::is_regular_file(model_path), "sentencepiece model '", model_path,
                "': no such file");
  const auto status = impl_->sp.Load(model_path);
  DYSRA_CHECK_T(DataError, status.ok(), "sentencepiece model '", model_path, "': cannot load: ", status.ToString());
  // Fingerprint what decides the ids: every piece with its score and kind, plus the ids of a probe string that
  // exercises normalization (width folding, ligatures, whitespace). The trainer settings stored in the file
  // (model_prefix, input paths) are deliberately left out, so retraining with the same options matches.
  std::string desc;
  const int n = impl_->sp.GetPieceSize();
  for (int i = 0; i < n; ++i) {
    const auto& sp = impl_->sp;
    desc += sp.IdToPiece(i);
    desc += '\x1f' + std::to_string(sp.GetScore(i)) + '\x1f' + std::to_string(int(sp.IsControl(i))) +
            std::to_string(int(sp.IsUnknown(i))) + std::to_string(int(sp.IsByte(i))) +
            std::to_string(int(sp.IsUnused(i))) + '\x1e';
  }
  std::vector<int> probe;
  if (impl_->sp.Encode("  \xef\xbc\xa1 x\tY \xef\xac\x81  e\xcc\x81 1234 ", &probe).ok())
    for (int id : probe) desc += std::to_string(id) + ",";
  impl_->fingerprint = fnv1a64_hex(desc);
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int32_t> SentencePieceTokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  const auto status = impl_->sp.Encode(text, &ids);
  DYSRA_CHECK_T(DataError, status.ok(), "sentencepiece model '", impl_->path, "': encode failed: ", status.ToString());
  return std::vector<int32_t>(ids.begin(), ids.end());
}

std::vector<int32_t> SentencePieceTokenizer::encode_with_spans(const std::string& text,
                                                               std::vector<TokenSpan>* spans) const {
  const auto proto = impl_->sp.EncodeAsImmutableProto(text);
  std::vector<int32_t> ids;
  ids.reserve(proto.pieces_size());
  if (spans) spans->clear();
  for (const auto& p : proto.pieces()) {
    ids.push_back(static_cast<int32_t>(p.id()));
    if (spans) spans->push_back({int64_t(p.begin()), int64_t(p.end())});
  }
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids) const {
  const int32_t n = vocab_size();
  std::vector<int> kept;
  kept.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    DYSRA_CHECK_T(DataError, id >= 0 && id < n, "sentencepiece model '", impl_->path, "': decode: id ", id,
                  " at position ", i, " is outside [0, ", n, ")");
    if (impl_->sp.IsControl(id) || impl_->sp.IsUnknown(id)) continue;
    kept.push_back(id);
  }
  std::string out;
  const auto status = impl_->sp.Decode(kept, &out);
  DYSRA_CHECK_T(DataError, status.ok(), "sentencepiece model '", impl_->path, "': decode failed: ", status.ToString());
  return out;
}

int32_t SentencePieceTokenizer::vocab_size() const { return impl_->sp.GetPieceSize(); }
int32_t SentencePieceTokenizer::pad_id() const { return impl_->sp.pad_id(); }
int32_t SentencePieceTokenizer::bos_id() const { return impl_->sp.bos_id(); }
int32_t SentencePieceTokenizer::eos_id() const { return impl_->sp.eos_id(); }
int32_t SentencePieceTokenizer::unk_id() const { return impl_->sp.unk_id(); }

TokenizerIdentity SentencePieceTokenizer::identity() const {
  return {"sentencepiece", impl_->path, vocab_size(), impl_->fingerprint};
}

void SentencePieceTokenizer::save(const std::string& path) const {
  write_file(path, impl_->sp.serialized_model_proto());
}

std::string SentencePieceTokenizer::id_to_piece(int32_t id) const {
  DYSRA_CHECK_T(DataError, id >= 0 && id < vocab_size(), "sentencepiece model '", impl_->path, "': id ", id,
                " is outside [0, ", vocab_size(), ")");
  return impl_->sp.IdToPiece(id);
}

// ---- training ------------------------------------------------------------------------------------------------

std::string train_sentencepiece(const SentencePieceTrainOptions& o) {
  DYSRA_CHECK_T(ConfigError, !o.input_files.empty(), "train_sentencepiece: input_files is empty");
  DYSRA_CHECK_T(ConfigError, !o.model_prefix.empty(), "train_sentencepiece: model_prefix is empty");
  DYSRA_CHECK_T(ConfigError, o.model_type == "bpe" || o.model_type == "unigram",
                "train_sentencepiece: model_type '", o.model_type, "' (known: bpe, unigram)");
  DYSRA_CHECK_T(ConfigError, o.vocab_size > 0, "train_sentencepiece: vocab_size must be > 0, got ", o.vocab_size);
  std::string joined;
  for (const auto& f : o.input_files) {
    DYSRA_CHECK_T(DataError, std::filesystem::is_regular_file(f), "train_sentencepiece: input file '", f,
                  "': no such file");
    DYSRA_CHECK_T(ConfigError, f.find(',') == std::string::npos, "train_sentencepiece: input file '", f,
                  "' contains a comma, which spm_train cannot take");
    joined += (joined.empty() ? "" : ",") + f;
  }
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  std::unordered_map<std::string, std::string> kw = {
      {"input", joined},
      {"model_prefix", o.model_prefix},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"model_type", o.model_type},
      {"character_coverage", std::to_string(o.character_coverage)},
      {"normalization_rule_name", o.normalization_rule_name},
      {"remove_extra_whitespaces", b(o.remove_extra_whitespaces)},
      {"byte_fallback", b(o.byte_fallback)},
      {"split_digits", b(o.split_digits)},
      {"hard_vocab_limit", b(o.hard_vocab_limit)},
      {"unk_id", std::to_string(o.unk_id)},
      {"bos_id", std::to_string(o.bos_id)},
      {"eos_id", std::to_string(o.eos_id)},
      {"pad_id", std::to_string(o.pad_id)},
      {"input_sentence_size", std::to_string(o.input_sentence_size)},
      {"shuffle_input_sentence", "false"},
      {"max_sentence_length", std::to_string(o.max_sentence_length)},
      {"num_threads", std::to_string(o.num_threads)},
      {"minloglevel", "2"},
  };
  const auto status = sentencepiece::SentencePieceTrainer::Train(kw);
  DYSRA_CHECK_T(DataError, status.ok(), "train_sentencepiece on '", joined, "' (model_prefix '", o.model_prefix,
                "') failed: ", status.ToString());
  return o.model_prefix + ".model";
}

// ---- factory -------------------------------------------------------------------------------------------------

std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerOptions& options) {
  std::unique_ptr<Tokenizer> tok;
  if (options.type == "byte") {
    tok = std::make_unique<ByteTokenizer>();
  } else if (options.type == "sentencepiece") {
    DYSRA_CHECK_T(ConfigError, !options.model_path.empty(), "tokenizer: type 'sentencepiece' needs model_path");
    tok = std::make_unique<SentencePieceTokenizer>(options.model_path);
  } else {
    throw ConfigError("tokenizer: unknown type '" + options.type + "' (known: byte, sentencepiece)");
  }
  if (!options.expected_fingerprint.empty()) {
    const TokenizerIdentity id = tok->identity();
    DYSRA_CHECK_T(DataError, id.fingerprint == options.expected_fingerprint, "tokenizer model '",
                  id.model_path.empty() ? id.type : id.model_path, "': fingerprint ", id.fingerprint,
                  " differs from the expected ", options.expected_fingerprint,
                  " (the model file changed since the run that recorded it)");
  }
  return tok;
}

}  // namespace dysra::data
