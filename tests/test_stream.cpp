// Streaming runner: outputs written per interval, bounded cache memory on a stream, and resume from a
// checkpoint giving the same outputs as an uninterrupted run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dysra/data/tokenizer.h"
#include "dysra/models/lm.h"
#include "dysra/stream/runner.h"
#include "test_util.h"

using namespace dysra;

namespace {

std::vector<std::string> lines(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(f, l);) out.push_back(l);
  return out;
}

/// Interval lines without their timing fields.
std::vector<nlohmann::json> untimed(const std::string& path) {
  std::vector<nlohmann::json> out;
  for (const auto& l : lines(path)) {
    auto j = nlohmann::json::parse(l);
    j.erase("decode_ms_per_token");
    j.erase("prefill_ms_per_token");
    out.push_back(j);
  }
  return out;
}

stream::StreamOptions options(const std::string& dir) {
  stream::StreamOptions o;
  o.facts.chunk_size = 200;
  o.facts.question_interval = 500;
  o.facts.distances = {150, 300};
  o.total_tokens = 2500;
  o.chunk_tokens = 96;
  o.report_every = 600;
  o.run_dir = dir;
  o.cache.policy = "compressive";
  o.cache.sink_tokens = 4, o.cache.raw_slots = 128, o.cache.delta = 32, o.cache.rank = 4, o.cache.summary_slots = 16;
  return o;
}

models::LanguageModel tiny_model() {
  torch::manual_seed(0);
  models::ModelOptions mo;
  mo.d_model = 32, mo.n_heads = 2, mo.n_layers = 2;
  return models::LanguageModel(mo, data::ByteTokenizer::kVocab);
}

/// Many small decode steps: one intra-op thread (OpenMP barriers are slow on a shared CPU); restored after.
struct OneThread {
  int before = torch::get_num_threads();
  OneThread() { torch::set_num_threads(1); }
  ~OneThread() { torch::set_num_threads(before); }
};

}  // namespace

TEST(Stream, WritesIntervalsWithBoundedMemory) {
  OneThread one;
  test::TempDir dir;
  auto model = tiny_model();
  data::ByteTokenizer tok;
  auto o = options(dir.path("run"));
  auto s = stream::run_stream(o, *model, tok);
  EXPECT_GE(s.tokens, 2500u);
  EXPECT_GE(s.questions, 4u);
  auto iv = untimed(dir.path("run/stream.jsonl"));
  ASSERT_GE(iv.size(), 4u);
  // the compressive cache is full after the first interval: capacity constant, occupancy ≤ capacity
  for (size_t i = 1; i < iv.size(); ++i) {
    EXPECT_EQ(iv[i]["cache_capacity_bytes"], iv[1]["cache_capacity_bytes"]);
    EXPECT_LE(iv[i]["cache_bytes"].get<int64_t>(), iv[i]["cache_capacity_bytes"].get<int64_t>());
  }
  auto q = lines(dir.path("run/questions.jsonl"));
  EXPECT_EQ(q.size(), s.questions);
  auto q0 = nlohmann::json::parse(q[0]);
  EXPECT_TRUE(q0.contains("distance") && q0.contains("guess") && q0.contains("gold"));
  EXPECT_TRUE(std::ifstream(dir.path("run/summary.json")).good());
}

TEST(Stream, ResumeGivesTheSameOutputs) {
  OneThread one;
  test::TempDir dir;
  data::ByteTokenizer tok;
  auto model = tiny_model();
  auto a = options(dir.path("a"));
  stream::run_stream(a, *model, tok);

  auto b = options(dir.path("b"));
  b.checkpoint_every = 300;
  b.stop_after = 1500;  // "killed" after the checkpoint, with lines written beyond it
  auto sb = stream::run_stream(b, *model, tok);
  EXPECT_TRUE(sb.stopped_early);
  auto model2 = tiny_model();  // a fresh process: same weights, empty state
  b.stop_after = 0;
  b.resume = true;
  auto sc = stream::run_stream(b, *model2, tok);
  EXPECT_FALSE(sc.stopped_early);
  EXPECT_EQ(lines(dir.path("a/questions.jsonl")), lines(dir.path("b/questions.jsonl")));
  EXPECT_EQ(untimed(dir.path("a/stream.jsonl")), untimed(dir.path("b/stream.jsonl")));
}

TEST(Stream, BadOptionsAreErrors) {
  data::ByteTokenizer tok;
  auto model = tiny_model();
  stream::StreamOptions o;
  EXPECT_THROW(stream::run_stream(o, *model, tok), ConfigError);  // no run_dir
  test::TempDir dir;
  o = options(dir.path("x"));
  o.cache.policy = "nope";
  EXPECT_THROW(stream::run_stream(o, *model, tok), ConfigError);
}
