// tests/test_tokenizer.cpp — byte and SentencePiece tokenizers: round trips, spans, training, identity, errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "dysra/core/error.h"
#include "dysra/data/tokenizer.h"

#ifndef DYSRA_SOURCE_DIR
#error "tests are compiled with -DDYSRA_SOURCE_DIR=\"/abs/repo\""
#endif

using namespace dysra::data;
namespace fs = std::filesystem;

namespace {

const std::string kCorpus = std::string(DYSRA_SOURCE_DIR) + "/tests/fixtures/tokenizer_corpus.txt";

// A fresh directory under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("dysra_tok_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

const std::vector<std::string> kSamples = {
    "The quick brown fox jumps over the lazy dog.",
    "Café naïve Röntgen — Ångström",                 // 2-byte and 3-byte UTF-8
    "東京と大阪 🚀",                                  // 3-byte and 4-byte UTF-8
    "mixed   spaces\tand\ttabs  ",
    "",
};

}  // namespace

TEST(ByteTokenizer, RoundTripsAnyBytes) {
  ByteTokenizer tok;
  for (const auto& s : kSamples) EXPECT_EQ(tok.decode(tok.encode(s)), s);
  std::string raw = "\xff\xfe\x00\x80 invalid utf8";
  raw[2] = '\0';
  EXPECT_EQ(tok.decode(tok.encode(raw)), raw);
  // "é" is two bytes 0xC3 0xA9 → ids 195, 169.
  EXPECT_EQ(tok.encode("é"), (std::vector<int32_t>{195, 169}));
  EXPECT_EQ(tok.vocab_size(), 260);
  // Specials are dropped on decode; out-of-range ids are errors naming the position.
  EXPECT_EQ(tok.decode({ByteTokenizer::kBos, 'h', 'i', ByteTokenizer::kEos, ByteTokenizer::kPad}), "hi");
  try {
    tok.decode({'a', 260});
    FAIL();
  } catch (const dysra::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("position 1"), std::string::npos) << e.what();
  }
  std::vector<TokenSpan> spans;
  tok.encode_with_spans("ab", &spans);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[1].begin, 1);
  EXPECT_EQ(spans[1].end, 2);
}

TEST(SentencePiece, TrainBpeRoundTripAndReload) {
  TempDir dir;
  SentencePieceTrainOptions o;
  o.input_files = {kCorpus};
  o.model_prefix = (dir.path / "bpe").string();
  o.vocab_size = 500;  // 256 byte pieces + 4 specials + ~119 characters + merges
  o.model_type = "bpe";
  const std::string model = train_sentencepiece(o);
  ASSERT_TRUE(fs::exists(model));

  SentencePieceTokenizer tok(model);
  EXPECT_EQ(tok.name(), "sentencepiece");
  EXPECT_EQ(tok.unk_id(), 0);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.pad_id(), 3);
  EXPECT_LE(tok.vocab_size(), 500);
  for (const auto& s : kSamples) EXPECT_EQ(tok.decode(tok.encode(s)), s) << s;
  // Text never seen in training still round-trips through byte fallback.
  const std::string unseen = "Ωμέγα ⚙ ~{}";
  EXPECT_EQ(tok.decode(tok.encode(unseen)), unseen);
  // Merges happened: a frequent word costs fewer tokens than bytes.
  const std::string word = "the quick brown fox";
  EXPECT_LT(tok.encode(word).size(), word.size());

  // Spans cover the text in order and map each piece back to bytes of the input.
  std::vector<TokenSpan> spans;
  const std::string text = "Café naïve fox";
  const auto ids = tok.encode_with_spans(text, &spans);
  ASSERT_EQ(ids, tok.encode(text));
  ASSERT_EQ(spans.size(), ids.size());
  int64_t prev = 0;
  for (const auto& sp : spans) {
    EXPECT_GE(sp.begin, prev);
    EXPECT_LE(sp.end, static_cast<int64_t>(text.size()));
    prev = sp.begin;
  }
  EXPECT_EQ(spans.back().end, static_cast<int64_t>(text.size()));

  // Identity: save → reload through the factory with the recorded fingerprint gives the same ids.
  const TokenizerIdentity id = tok.identity();
  EXPECT_EQ(id.type, "sentencepiece");
  EXPECT_EQ(id.fingerprint.size(), 16u);
  const std::string copy = (dir.path / "copy.model").string();
  tok.save(copy);
  auto again = make_tokenizer({"sentencepiece", copy, id.fingerprint});
  EXPECT_EQ(again->encode(kSamples[1]), tok.encode(kSamples[1]));
  // Same options (another output path) → same fingerprint (deterministic training).
  o.model_prefix = (dir.path / "bpe2").string();
  SentencePieceTokenizer tok2(train_sentencepiece(o));
  EXPECT_EQ(tok2.identity().fingerprint, id.fingerprint);
  // A different model under the recorded fingerprint is refused, naming the file.
  o.model_prefix = (dir.path / "other").string();
  o.vocab_size = 450;
  const std::string other = train_sentencepiece(o);
  try {
    make_tokenizer({"sentencepiece", other, id.fingerprint});
    FAIL();
  } catch (const dysra::DataError& e) {
    EXPECT_NE(std::string(e.what()).find(other), std::string::npos) << e.what();
  }
  EXPECT_THROW(tok.decode({tok.vocab_size()}), dysra::DataError);
  // Specials are dropped on decode.
  std::vector<int32_t> with_specials = tok.encode("fox");
  with_specials.insert(with_specials.begin(), tok.bos_id());
  with_specials.push_back(tok.eos_id());
  EXPECT_EQ(tok.decode(with_specials), "fox");
}

TEST(SentencePiece, TrainUnigramWithoutByteFallback) {
  TempDir dir;
  SentencePieceTrainOptions o;
  o.input_files = {kCorpus};
  o.model_prefix = (dir.path / "uni").string();
  o.vocab_size = 200;
  o.model_type = "unigram";
  o.byte_fallback = false;
  o.pad_id = -1;
  SentencePieceTokenizer tok(train_sentencepiece(o));
  EXPECT_EQ(tok.pad_id(), -1);
  // Characters all present in the corpus round-trip exactly, multi-byte included.
  for (const std::string s : {"Zwölf Boxkämpfer jagen Viktor", "東京と大阪", "ещё этих мягких", "fox 🚀"})
    EXPECT_EQ(tok.decode(tok.encode(s)), s) << s;
  // An unseen character becomes <unk>, which decode drops.
  const auto ids = tok.encode("fox Ω");
  EXPECT_NE(std::find(ids.begin(), ids.end(), tok.unk_id()), ids.end());
}

TEST(Tokenizer, FactoryAndErrors) {
  auto b = make_tokenizer({});
  EXPECT_EQ(b->name(), "byte");
  EXPECT_EQ(make_tokenizer({"byte", "", b->identity().fingerprint})->vocab_size(), 260);
  EXPECT_THROW(make_tokenizer({"wordpiece", "", ""}), dysra::ConfigError);
  EXPECT_THROW(make_tokenizer({"sentencepiece", "", ""}), dysra::ConfigError);
  try {
    make_tokenizer({"sentencepiece", "/nonexistent/m.model", ""});
    FAIL();
  } catch (const dysra::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/m.model"), std::string::npos);
  }
  // A file that is not a model: the error names it.
  TempDir dir;
  const std::string junk = (dir.path / "junk.model").string();
  std::ofstream(junk) << "not a model";
  try {
    SentencePieceTokenizer t(junk);
    FAIL();
  } catch (const dysra::DataError& e) {
    EXPECT_NE(std::string(e.what()).find(junk), std::string::npos) << e.what();
  }
  SentencePieceTrainOptions o;
  o.input_files = {(dir.path / "missing.txt").string()};
  o.model_prefix = (dir.path / "m").string();
  EXPECT_THROW(train_sentencepiece(o), dysra::DataError);
  o.input_files = {kCorpus};
  o.model_type = "wordpiece";
  EXPECT_THROW(train_sentencepiece(o), dysra::ConfigError);
}
