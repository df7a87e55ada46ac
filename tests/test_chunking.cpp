// tests/test_chunking.cpp — chunk windows, overlap, ids and byte offsets back to the text.
#include <gtest/gtest.h>

#include <random>

#include "dysra/core/error.h"
#include "dysra/data/chunking.h"

using namespace dysra::data;

namespace {

// Words w0 … w{n-1} separated by varying whitespace, so offsets are not a simple multiple.
std::string words(int n) {
  std::string s = "  ";
  for (int i = 0; i < n; ++i) s += "w" + std::to_string(i) + (i % 3 == 0 ? "\n\t" : " ");
  return s;
}

}  // namespace

TEST(Chunking, WordWindowsWithOverlap) {
  // 10 words, chunk 4, overlap 1 → stride 3: [0,4) [3,7) [6,10) — the last one reaches the end, so it stops.
  const std::string text = words(10);
  const auto cs = chunk_text("doc", text, {4, 1});
  ASSERT_EQ(cs.size(), 3u);
  EXPECT_EQ(cs[0].id, "doc#0");
  EXPECT_EQ(cs[2].id, "doc#2");
  EXPECT_EQ(cs[1].token_begin, 3);
  EXPECT_EQ(cs[1].token_end, 7);
  EXPECT_EQ(cs[2].token_end, 10);
  EXPECT_EQ(cs[0].text, "w0\n\tw1 w2 w3");  // inner whitespace kept, outer trimmed to the tokens
  EXPECT_EQ(cs[1].text, "w3\n\tw4 w5 w6");  // w3 is the shared token
  for (const auto& c : cs) EXPECT_EQ(text.substr(c.begin, c.end - c.begin), c.text);
  EXPECT_EQ(cs[0].begin, 2);  // leading "  " skipped
}

TEST(Chunking, EdgeCases) {
  // Shorter than one window → one chunk with everything; exactly one window → one chunk.
  EXPECT_EQ(chunk_text("d", words(3), {4, 1}).size(), 1u);
  EXPECT_EQ(chunk_text("d", words(4), {4, 1}).size(), 1u);
  // 5 words, chunk 4, overlap 1: [0,4) then [3,5) (shorter last chunk).
  const auto five = chunk_text("d", words(5), {4, 1});
  ASSERT_EQ(five.size(), 2u);
  EXPECT_EQ(five[1].token_begin, 3);
  EXPECT_EQ(five[1].token_end, 5);
  // Empty or whitespace-only text → no chunks.
  EXPECT_TRUE(chunk_text("d", "", {4, 1}).empty());
  EXPECT_TRUE(chunk_text("d", " \n\t ", {4, 1}).empty());
  // No overlap: disjoint windows covering every token once; chunk size 1 → one chunk per word.
  const auto single = chunk_text("d", "a bb ccc", {1, 0});
  ASSERT_EQ(single.size(), 3u);
  EXPECT_EQ(single[2].text, "ccc");
  EXPECT_EQ(single[2].begin, 5);
  // Maximal overlap (C−1): stride 1 → n − C + 1 windows.
  EXPECT_EQ(chunk_text("d", words(10), {4, 3}).size(), 7u);
  // Bad options and ids.
  EXPECT_THROW(chunk_text("d", "x", {0, 0}), dysra::ConfigError);
  EXPECT_THROW(chunk_text("d", "x", {4, 4}), dysra::ConfigError);
  EXPECT_THROW(chunk_text("d", "x", {4, -1}), dysra::ConfigError);
  EXPECT_THROW(chunk_text("", "x", {4, 1}), dysra::Error);
  EXPECT_THROW(chunk_documents({{"a", "", "x"}, {"a", "", "y"}}, {4, 1}), dysra::DataError);
}

TEST(Chunking, RandomTextsCoverEveryTokenAndOverlapExactly) {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = std::uniform_int_distribution<int>(0, 60)(rng);
    std::string text;
    for (int i = 0; i < n; ++i) {
      text += std::string(std::uniform_int_distribution<int>(0, 2)(rng) + (i ? 1 : 0), ' ');
      text += std::string(std::uniform_int_distribution<int>(1, 5)(rng), char('a' + i % 26));
    }
    const int64_t C = std::uniform_int_distribution<int>(1, 9)(rng);
    const int64_t O = std::uniform_int_distribution<int>(0, int(C) - 1)(rng);
    const auto cs = chunk_text("t", text, {C, O});
    const auto spans = word_spans(text);
    ASSERT_EQ(static_cast<int>(spans.size()), n);
    if (n == 0) {
      EXPECT_TRUE(cs.empty());
      continue;
    }
    ASSERT_FALSE(cs.empty());
    EXPECT_EQ(cs.front().token_begin, 0);
    EXPECT_EQ(cs.back().token_end, n);
    for (size_t k = 0; k < cs.size(); ++k) {
      EXPECT_EQ(cs[k].ordinal, static_cast<int64_t>(k));
      EXPECT_LE(cs[k].token_end - cs[k].token_begin, C);
      EXPECT_EQ(cs[k].begin, spans[cs[k].token_begin].begin);
      EXPECT_EQ(cs[k].end, spans[cs[k].token_end - 1].end);
      EXPECT_EQ(text.substr(cs[k].begin, cs[k].end - cs[k].begin), cs[k].text);
      if (k > 0) {
        EXPECT_EQ(cs[k].token_begin, cs[k - 1].token_begin + (C - O));             // stride
        EXPECT_EQ(cs[k - 1].token_end - cs[k].token_begin, O);                     // exact overlap
        EXPECT_EQ(cs[k - 1].token_end - cs[k - 1].token_begin, C);                 // only the last may be short
      }
    }
  }
}

TEST(Chunking, WithByteTokenizer) {
  // Byte tokens: "héllo world" is 12 bytes (é = 2); chunk 5, overlap 2 → stride 3: [0,5) [3,8) [6,11) [9,12).
  ByteTokenizer tok;
  const std::string text = "héllo world";
  const auto cs = chunk_text("b", text, {5, 2}, &tok);
  ASSERT_EQ(cs.size(), 4u);
  EXPECT_EQ(cs[3].token_begin, 9);
  EXPECT_EQ(cs[3].end, 12);
  for (const auto& c : cs) {
    EXPECT_EQ(text.substr(c.begin, c.end - c.begin), c.text);
    EXPECT_EQ(tok.decode(c.token_ids), c.text);
  }
  // Documents keep their own ids and ordinals.
  const auto all = chunk_documents({{"x", "", "a b c"}, {"y", "T", "d"}}, {2, 0});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].id, "x#1");
  EXPECT_EQ(all[2].id, "y#0");
  EXPECT_EQ(all[2].text, "d");
}
