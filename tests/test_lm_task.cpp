// Language modelling on a corpus: packing, padding, length bucketing, bad files, resume of the data position.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "dysra/core/error.h"
#include "dysra/data/lm_task.h"
#include "test_util.h"

using namespace dysra;
using namespace dysra::data;

namespace {

std::string corpus_jsonl(int docs, uint64_t seed) {
  std::string s;
  uint64_t x = seed;
  for (int i = 0; i < docs; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const int len = 3 + static_cast<int>((x >> 33) % 120);  // 3 .. 122 bytes
    std::string text;
    for (int j = 0; j < len; ++j) text += static_cast<char>('a' + (j * 7 + i) % 26);
    s += "{\"id\":\"d" + std::to_string(i) + "\",\"contents\":\"" + text + "\"}\n";
  }
  return s;
}

// All targets of all examples, in example order.
std::vector<int64_t> all_targets(const LmTask& task, Split split) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < task.size(split); ++i) {
    auto b = task.batch(split, {i});
    for (int64_t t = 0; t < b.labels.size(1); ++t)
      if (b.labels[0][t].item<int64_t>() != kIgnoreIndex) out.push_back(b.labels[0][t].item<int64_t>());
  }
  return out;
}

// Options over two generated corpora in `dir`.
LmTaskOptions options(const test::TempDir& dir, int train_docs, uint64_t seed, int64_t seq_len, const std::string& mode) {
  LmTaskOptions o;
  o.train_path = dir.file("train.jsonl", corpus_jsonl(train_docs, seed));
  o.eval_path = dir.file("dev.jsonl", corpus_jsonl(5, seed + 1));
  o.seq_len = seq_len;
  o.mode = mode;
  return o;
}

}  // namespace

TEST(LmTask, PackedWindowsCoverTheCorpusWithoutPadding) {
  test::TempDir dir;
  const LmTaskOptions o = options(dir, 50, 1, 33, "pack");
  LmTask task(o, {});
  const int64_t n = task.corpus_tokens(Split::kTrain);
  EXPECT_EQ(task.size(Split::kTrain), (n - 1) / 33);
  auto b = task.batch(Split::kTrain, {0, 1, 2});
  EXPECT_EQ(b.tokens.sizes(), (std::vector<int64_t>{3, 33}));
  EXPECT_TRUE(b.labels.ne(kIgnoreIndex).all().item<bool>());
  // window i+1 starts where window i's targets end: labels[i] == tokens shifted by one, continuing
  EXPECT_TRUE(b.labels[0].slice(0, 0, 32).equal(b.tokens[0].slice(0, 1, 33)));
  EXPECT_EQ(b.labels[0][32].item<int64_t>(), b.tokens[1][0].item<int64_t>());
  // the first document's bytes then EOS
  const auto docs = read_lm_documents(o.train_path);
  for (size_t j = 0; j < docs[0].size() && j < 33; ++j) EXPECT_EQ(b.tokens[0][static_cast<int64_t>(j)].item<int64_t>(), (unsigned char)docs[0][j]);
  if (docs[0].size() < 33) EXPECT_EQ(b.tokens[0][static_cast<int64_t>(docs[0].size())].item<int64_t>(), ByteTokenizer::kEos);
}

TEST(LmTask, PaddedDocumentsTargetEveryTokenOnceAndBatchesAreOnlyAsWideAsNeeded) {
  test::TempDir dir;
  const LmTaskOptions o = options(dir, 40, 3, 50, "pad");
  LmTask task(o, {});
  // every token after each document's first is a target exactly once (long documents are cut into pieces)
  int64_t expected = 0;
  for (const auto& d : read_lm_documents(o.train_path)) expected += static_cast<int64_t>(d.size());  // bytes + EOS - first
  EXPECT_EQ(static_cast<int64_t>(all_targets(task, Split::kTrain).size()), expected);
  int64_t shortest = 0;
  for (int64_t i = 1; i < task.size(Split::kTrain); ++i)
    if (task.example_length(Split::kTrain, i) < task.example_length(Split::kTrain, shortest)) shortest = i;
  auto b = task.batch(Split::kTrain, {shortest});
  EXPECT_EQ(b.tokens.size(1), task.example_length(Split::kTrain, shortest));
  int64_t longest = 0;
  for (int64_t i = 0; i < task.size(Split::kTrain); ++i) longest = std::max(longest, task.example_length(Split::kTrain, i));
  EXPECT_EQ(longest, 50);
  std::vector<int64_t> ids(static_cast<size_t>(task.size(Split::kTrain)));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i);
  auto all = task.batch(Split::kTrain, ids);
  EXPECT_EQ(all.tokens.size(1), 50);
  // padding carries no loss and uses the pad token
  auto pad = all.labels.eq(kIgnoreIndex);
  EXPECT_TRUE(all.tokens.index({pad}).eq(ByteTokenizer::kPad).all().item<bool>());
}

TEST(LmTask, BucketingIsADeterministicPermutationThatCutsPadding) {
  test::TempDir dir;
  LmTaskOptions o = options(dir, 500, 5, 128, "pad");
  o.bucket_window = 8;
  LmTask bucketed(o, {});
  o.bucket = false;
  LmTask plain(o, {});
  const int64_t B = 16, N = bucketed.size(Split::kTrain);
  auto padding = [&](const LmTask& t, const std::vector<int64_t>& order) {
    int64_t pad = 0;
    for (int64_t s = 0; s < N; s += B) {
      int64_t w = 0, sum = 0;
      for (int64_t i = s; i < std::min(N, s + B); ++i) {
        w = std::max(w, t.example_length(Split::kTrain, order[i]));
        sum += t.example_length(Split::kTrain, order[i]);
      }
      pad += w * (std::min(N, s + B) - s) - sum;
    }
    return pad;
  };
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    auto order = bucketed.epoch_order(7, epoch, B);
    EXPECT_EQ(order, bucketed.epoch_order(7, epoch, B)) << "deterministic";
    std::set<int64_t> seen(order.begin(), order.end());
    EXPECT_EQ(static_cast<int64_t>(seen.size()), N);
    EXPECT_EQ(*seen.begin(), 0);
    EXPECT_EQ(*seen.rbegin(), N - 1);
    const auto plain_order = plain.epoch_order(7, epoch, B);
    EXPECT_LT(padding(bucketed, order) * 3, padding(plain, plain_order)) << "epoch " << epoch;
  }
  EXPECT_NE(bucketed.epoch_order(7, 0, B), bucketed.epoch_order(7, 1, B));
}

TEST(LmTask, PlainTextParagraphsAreDocumentsAndBadFilesAreNamed) {
  test::TempDir dir;
  auto txt = dir.file("c.txt", "First paragraph\nsecond line.\n\n\nSecond paragraph.\r\n  \nThird.\n");
  auto docs = read_lm_documents(txt);
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0], "First paragraph\nsecond line.");
  EXPECT_EQ(docs[1], "Second paragraph.");
  auto expect_error = [](const std::function<void()>& f, const std::string& needle) {
    try {
      f();
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([&] { read_lm_documents(dir.path("missing.jsonl")); }, "missing.jsonl");
  auto bad = dir.file("bad.jsonl", "{\"id\":\"a\",\"contents\":\"ok\"}\n{not json\n");
  expect_error([&] { read_lm_documents(bad); }, "bad.jsonl:2");
  auto empty = dir.file("empty.txt", "\n\n  \n");
  expect_error([&] { read_lm_documents(empty); }, "empty.txt");
  LmTaskOptions o;
  o.train_path = txt;
  o.eval_path = txt;
  o.seq_len = 4096;  // the corpus is shorter than one packed window
  expect_error([&] { LmTask t(o, {}); }, "c.txt");
}
