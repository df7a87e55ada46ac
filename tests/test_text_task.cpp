// Text tasks as LM examples: label placement, synthetic passkey, FlashRAG QA prompts, greedy decoding.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <set>

#include "dysra/core/error.h"
#include "dysra/data/text_task.h"
#include "dysra/models/lm.h"
#include "dysra/train/trainer.h"
#include "test_util.h"

using namespace dysra;
using namespace dysra::data;

namespace {
std::string decode_labels(const Tokenizer& tok, const torch::Tensor& labels) {
  std::vector<int32_t> ids;
  for (int64_t t = 0; t < labels.size(0); ++t) {
    const auto v = labels[t].item<int64_t>();
    if (v != kIgnoreIndex && v != tok.eos_id()) ids.push_back(static_cast<int32_t>(v));
  }
  return tok.decode(ids);
}
}  // namespace

TEST(TextTask, EncodePromptAnswerPlacesLabelsOnAnswerAndEos) {
  ByteTokenizer tok;
  std::vector<int64_t> x(16), y(16);
  ASSERT_TRUE(encode_prompt_answer(tok, "Q: 2+2?\nA: ", "4", 16, x.data(), y.data()));
  // s = pad×4 "Q: 2+2?\nA: " "4" EOS (17 tokens); inputs = s[0:16], labels = s[1:17] on the answer part
  EXPECT_EQ(x[0], tok.pad_id());
  EXPECT_EQ(x[15], '4');
  EXPECT_EQ(y[14], '4');
  EXPECT_EQ(y[15], tok.eos_id());
  for (int t = 0; t < 14; ++t) EXPECT_EQ(y[t], kIgnoreIndex) << t;
  EXPECT_FALSE(encode_prompt_answer(tok, std::string(40, 'x'), "abc", 16, x.data(), y.data()));

  // a fixed answer budget A = 5: the prompt ends at seq_len + 1 - A whatever the answer's length
  ASSERT_TRUE(encode_prompt_answer(tok, "Q: 2+2?\nA: ", "4", 16, x.data(), y.data(), nullptr, 0.0, 5));
  // s = pad "Q: 2+2?\nA: "(11) "4" EOS pad pad pad (17 tokens)
  EXPECT_EQ(x[0], tok.pad_id());
  EXPECT_EQ(x[1], 'Q');
  EXPECT_EQ(x[11], ' ');
  EXPECT_EQ(y[11], '4');
  EXPECT_EQ(y[12], tok.eos_id());
  for (int t = 0; t < 16; ++t)
    if (t != 11 && t != 12) EXPECT_EQ(y[t], kIgnoreIndex) << t;
  EXPECT_EQ(x[14], tok.pad_id());
  ASSERT_TRUE(encode_prompt_answer(tok, "Q: 2+2?\nA: ", "four", 16, x.data(), y.data(), nullptr, 0.0, 5));
  EXPECT_EQ(x[1], 'Q') << "same prompt placement for a longer answer";
  EXPECT_EQ(y[15], tok.eos_id());
  EXPECT_FALSE(encode_prompt_answer(tok, "Q: 2+2?\nA: ", "fours", 16, x.data(), y.data(), nullptr, 0.0, 5))
      << "answer + EOS over the budget";
}

TEST(TextTask, PromptLossWeightLabelsThePromptAndNormalises) {
  ByteTokenizer tok;
  const std::string prompt = "Q: 2+2?\nA: ", answer = "4";  // 11 prompt tokens, 2 answer targets ("4", EOS)
  std::vector<int64_t> x(16), y(16);
  std::vector<float> w(16);
  ASSERT_TRUE(encode_prompt_answer(tok, prompt, answer, 16, x.data(), y.data(), w.data(), 0.5));
  // s = pad×4 prompt(11) "4" EOS; the first prompt token (t = 4) is input only; targets from t = 4 on
  for (int t = 0; t < 4; ++t) EXPECT_EQ(y[t], kIgnoreIndex) << t;
  for (int t = 4; t < 14; ++t) {
    EXPECT_EQ(y[t], static_cast<unsigned char>(prompt[t - 3])) << t;  // next prompt byte
    EXPECT_FLOAT_EQ(w[t], 0.5f * 2.f / 10.f) << t;                   // weight·answer targets / prompt targets
  }
  EXPECT_EQ(y[14], '4');
  EXPECT_EQ(y[15], tok.eos_id());
  EXPECT_EQ(w[14], 1.f);
  EXPECT_EQ(w[15], 1.f);
  double prompt_total = 0;
  for (int t = 4; t < 14; ++t) prompt_total += w[t];
  EXPECT_NEAR(prompt_total, 0.5 * 2.0, 1e-6);  // the prompt weighs 0.5 × the answer in total

  // tasks: training batches carry weights, evaluation batches only the answer labels
  TaskOptions to;
  to.task = "passkey";
  to.synthetic.seq_len = 512;
  to.synthetic.train_examples = 4;
  to.synthetic.eval_examples = 2;
  to.prompt_loss_weight = 1.0;
  SyntheticTask task("passkey", to, 3);
  auto tb = task.batch(Split::kTrain, {0, 1});
  ASSERT_TRUE(tb.weights.defined());
  EXPECT_GT(tb.labels.ne(kIgnoreIndex).sum().item<int64_t>(), 2 * 400);
  auto labelled = tb.labels.ne(kIgnoreIndex);
  EXPECT_TRUE(tb.weights.index({labelled.logical_not()}).eq(0).all().item<bool>());
  auto eb = task.batch(Split::kValidation, {0, 1});
  EXPECT_FALSE(eb.weights.defined());
  EXPECT_LT(eb.labels.ne(kIgnoreIndex).sum().item<int64_t>(), 2 * 12);
}

TEST(TextTask, SentencePieceTokenizerDrivesATextTask) {
  test::TempDir dir;
  std::string text;
  for (int i = 0; i < 400; ++i) text += "The grass is green. The sky is blue. The pass key is " + std::to_string(10000 + 37 * i) + ".\n";
  SentencePieceTrainOptions so;
  so.input_files = {dir.file("corpus.txt", text)};
  so.model_prefix = dir.path("spm");
  so.vocab_size = 300;
  const std::string model = train_sentencepiece(so);
  TaskOptions to;
  to.task = "passkey";
  to.synthetic.seq_len = 256;
  to.synthetic.train_examples = 4;
  to.synthetic.eval_examples = 2;
  to.tokenizer.type = "sentencepiece";
  to.tokenizer.model_path = model;
  SyntheticTask task("passkey", to, 3);
  ASSERT_NE(task.tokenizer(), nullptr);
  EXPECT_EQ(task.tokenizer()->name(), "sentencepiece");
  EXPECT_EQ(task.vocab_size(), task.tokenizer()->vocab_size());
  auto b = task.batch(Split::kTrain, {0, 1});
  EXPECT_EQ(b.tokens.size(1), 256);
  EXPECT_LT(b.tokens.max().item<int64_t>(), task.vocab_size());
  for (int64_t i = 0; i < 2; ++i) {
    std::vector<int32_t> ids;
    for (int64_t t = 0; t < 256; ++t)
      if (b.labels[i][t].item<int64_t>() != kIgnoreIndex && b.labels[i][t].item<int64_t>() != task.tokenizer()->eos_id())
        ids.push_back(static_cast<int32_t>(b.labels[i][t].item<int64_t>()));
    EXPECT_EQ(task.tokenizer()->decode(ids), task.text(Split::kTrain, i).second[0]);
  }
  // the run records the fingerprint; a different one is an error naming the model file
  to.tokenizer.expected_fingerprint = "0123456789abcdef";
  try {
    SyntheticTask bad("passkey", to, 3);
    FAIL() << "fingerprint mismatch accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("spm.model"), std::string::npos) << e.what();
  }
}

TEST(TextTask, MinSeqLenMixesTrainingContextLengthsAndEvaluatesAtFullLength) {
  TaskOptions to;
  to.synthetic.seq_len = 2048;
  to.synthetic.min_seq_len = 512;
  to.synthetic.length_buckets = 4;
  to.synthetic.train_examples = 64;
  to.synthetic.eval_examples = 8;
  SyntheticTask task("passkey", to, 5);
  std::set<size_t> lengths;
  size_t shortest = SIZE_MAX, longest = 0;
  for (int64_t i = 0; i < 64; ++i) {
    const size_t n = task.text(Split::kTrain, i).first.size();
    lengths.insert(n / 128);
    shortest = std::min(shortest, n), longest = std::max(longest, n);
  }
  EXPECT_LT(shortest, 520u);
  EXPECT_GT(longest, 1800u);
  EXPECT_GE(lengths.size(), 4u) << "four length buckets in use";
  for (int64_t i = 0; i < 8; ++i) EXPECT_GT(task.text(Split::kValidation, i).first.size(), 1900u);
  auto b = task.batch(Split::kTrain, {0, 1, 2, 3});
  EXPECT_EQ(b.tokens.size(1), 2048);
  EXPECT_EQ(task.text(Split::kTrain, 7), task.text(Split::kTrain, 7)) << "deterministic per id";
}

TEST(TextTask, FactStreamQuestionsAsExamples) {
  TaskOptions to;
  to.task = "fact_stream";
  to.stream.seq_len = 1024;
  to.stream.question_interval = 700;
  to.stream.distances = {60, 400};
  to.stream.train_examples = 20;
  to.stream.eval_examples = 5;
  FactStreamTask task(to, 9);
  ByteTokenizer tok;
  auto b = task.batch(Split::kTrain, {0, 1, 2, 3});
  for (int64_t i = 0; i < 4; ++i) {
    auto [prompt, answers] = task.text(Split::kTrain, i);
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(decode_labels(tok, b.labels[i]), answers[0]);
    // the prompt ends with the question and the answer prefix; the fact with the answer is in the stream text
    EXPECT_EQ(prompt.substr(prompt.size() - 5), " is: ");
    const auto fact_end = prompt.find(answers[0] + ".");
    ASSERT_NE(fact_end, std::string::npos);
    EXPECT_LT(fact_end, prompt.find("What is the special magic"));
  }
  EXPECT_EQ(task.text(Split::kTrain, 3), task.text(Split::kTrain, 3));
  EXPECT_NE(task.text(Split::kTrain, 0).second, task.text(Split::kValidation, 0).second);
  to.stream.kind = "variables";
  to.stream.hops = 3;
  FactStreamTask vt(to, 9);
  auto [vp, va] = vt.text(Split::kTrain, 0);
  EXPECT_EQ(std::count(va[0].begin(), va[0].end(), ','), 2) << va[0];
  EXPECT_EQ(vp.substr(vp.size() - 10), "They are: ");
  to.stream.seq_len = 300;  // a prompt does not fit
  EXPECT_THROW(FactStreamTask(to, 9), ConfigError);
}

TEST(TextTask, PasskeyLabelsAreThePasskey) {
  TaskOptions to;
  SyntheticTaskOptions& o = to.synthetic;
  o.seq_len = 512;
  o.train_examples = 10;
  o.eval_examples = 4;
  SyntheticTask task("passkey", to, 3);
  ByteTokenizer tok;
  auto b = task.batch(Split::kTrain, {0, 1, 2});
  EXPECT_EQ(b.tokens.sizes(), (std::vector<int64_t>{3, 512}));
  for (int64_t i = 0; i < 3; ++i) {
    auto [prompt, answers] = task.text(Split::kTrain, i);
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(decode_labels(tok, b.labels[i]), answers[0]);
    EXPECT_NE(prompt.find(answers[0]), std::string::npos) << "the passkey is in the context";
  }
  EXPECT_NE(task.text(Split::kTrain, 0).second, task.text(Split::kValidation, 0).second);
}

TEST(TextTask, QaPromptHoldsGoldDocumentAndFits) {
  test::TempDir dir;
  auto corpus = dir.file("corpus.jsonl",
                         "{\"id\":\"d1\",\"contents\":\"ovarian (adj): of or involving the ovaries\"}\n"
                         "{\"id\":\"d2\",\"contents\":\"insulant (noun): a material that reduces heat transmission\"}\n"
                         "{\"id\":\"d3\",\"contents\":\"cat (noun): a small domesticated feline\"}\n"
                         "{\"id\":\"d4\",\"contents\":\"dog (noun): a domesticated canid\"}\n");
  auto qs = dir.file("q.jsonl",
                     "{\"id\":\"q1\",\"question\":\"What is the definition of \\\"ovarian\\\"?\",\"golden_answers\":[\"of or involving the ovaries\"],\"metadata\":{\"gold_doc_ids\":[\"d1\"]}}\n"
                     "{\"id\":\"q2\",\"question\":\"What is the definition of \\\"cat\\\"?\",\"golden_answers\":[\"a small domesticated feline\"],\"metadata\":{\"gold_doc_ids\":[\"d3\"]}}\n"
                     "{\"id\":\"q3\",\"question\":\"What is the definition of \\\"dog\\\"?\",\"golden_answers\":[\"a small domesticated feline\"],\"metadata\":{\"gold_doc_ids\":[\"d4\"]}}\n");
  TaskOptions to;
  QaTaskOptions& o = to.qa;
  o.train_path = qs;
  o.eval_path = qs;
  o.corpus_path = corpus;
  o.haystack_docs = 3;
  o.seq_len = 160;
  QaTask task(to, 1);
  EXPECT_EQ(task.majority_answer(), "a small domesticated feline");
  for (int64_t i = 0; i < 3; ++i) {
    auto [prompt, answers] = task.text(Split::kTrain, i);
    EXPECT_LE(prompt.size() + answers[0].size() + 1, 161u);
    EXPECT_NE(prompt.find(i == 0 ? "ovarian (adj)" : i == 1 ? "cat (noun)" : "dog (noun)"), std::string::npos) << prompt;
  }
  auto b = task.batch(Split::kValidation, {0});
  EXPECT_EQ(decode_labels(ByteTokenizer(), b.labels[0]), "of or involving the ovaries");
  // answer metrics with an oracle generator score 100, with a wrong one 0
  auto oracle = [&](const torch::Tensor& prompts, int64_t max_new) {
    auto out = torch::full({prompts.size(0), max_new}, ByteTokenizer::kEos, torch::kInt64);
    for (int64_t r = 0; r < prompts.size(0); ++r) {
      auto ans = ByteTokenizer().encode(task.text(Split::kValidation, r).second[0]);
      for (size_t j = 0; j < ans.size(); ++j) out[r][static_cast<int64_t>(j)] = ans[j];
    }
    return out;
  };
  auto m = task.answer_metrics(Split::kValidation, 3, 3, oracle);  // one batch: row r is example r
  EXPECT_DOUBLE_EQ(m.at("em"), 100.0);
  EXPECT_NEAR(m.at("majority_em"), 200.0 / 3.0, 1e-9);  // 2 of 3 golds are the majority answer
  auto wrong = [&](const torch::Tensor& prompts, int64_t max_new) { return torch::full({prompts.size(0), max_new}, 'z', torch::kInt64); };
  EXPECT_DOUBLE_EQ(task.answer_metrics(Split::kValidation, 3, 3, wrong).at("em"), 0.0);
}

TEST(TextTask, QaDropsQuestionsThatCannotFitAndCountsThem) {
  test::TempDir dir;
  auto corpus = dir.file("c.jsonl", "{\"id\":\"d1\",\"contents\":\"short entry\"}\n");
  auto qs = dir.file("q.jsonl",
                     "{\"id\":\"q1\",\"question\":\"a?\",\"golden_answers\":[\"yes\"],\"metadata\":{\"gold_doc_ids\":[\"d1\"]}}\n"
                     "{\"id\":\"q2\",\"question\":\"b?\",\"golden_answers\":[\"" + std::string(100, 'x') +
                         "\"],\"metadata\":{\"gold_doc_ids\":[\"d1\"]}}\n");
  TaskOptions to;
  QaTaskOptions& o = to.qa;
  o.train_path = qs;
  o.eval_path = qs;
  o.corpus_path = corpus;
  o.seq_len = 64;
  QaTask task(to, 1);
  EXPECT_EQ(task.size(Split::kTrain), 1);
  EXPECT_EQ(task.dropped_examples(), 2);  // q2 from the train and the eval split
  o.seq_len = 16;
  EXPECT_THROW(QaTask(to, 1), DataError);  // nothing fits
}

TEST(TextTask, QaMissingGoldDocumentIsADataError) {
  test::TempDir dir;
  auto corpus = dir.file("c.jsonl", "{\"id\":\"d1\",\"contents\":\"x\"}\n");
  auto qs = dir.file("q.jsonl", "{\"id\":\"q1\",\"question\":\"?\",\"golden_answers\":[\"y\"],\"metadata\":{\"gold_doc_ids\":[\"d9\"]}}\n");
  TaskOptions to;
  QaTaskOptions& o = to.qa;
  o.train_path = qs;
  o.eval_path = qs;
  o.corpus_path = corpus;
  EXPECT_THROW(QaTask(to, 1), DataError);
}

class GreedyDecode : public ::testing::TestWithParam<std::string> {};

TEST_P(GreedyDecode, IncrementalEqualsFullRecompute) {
  // greedy decoding through the layers' recurrent / KV state gives the same tokens as re-running the whole prefix
  torch::manual_seed(5);
  models::ModelOptions o;
  o.backbone = GetParam();
  o.d_model = 32;
  o.n_heads = 2;
  o.n_layers = 2;
  models::LanguageModel model(o, 40);
  model->eval();
  auto prompts = torch::randint(0, 40, {3, 11}, torch::kInt64);
  auto fast = train::greedy_generate(model, prompts, 6, false);
  torch::NoGradGuard ng;
  auto seq = prompts.clone();
  for (int i = 0; i < 6; ++i) {
    auto next = model->forward(seq).select(1, seq.size(1) - 1).argmax(-1);
    EXPECT_TRUE(torch::equal(next, fast.select(1, i))) << "token " << i;
    seq = torch::cat({seq, next.unsqueeze(1)}, 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Backbones, GreedyDecode, ::testing::Values("transformer", "mamba", "linear_attention"));
