// tests/test_metrics.cpp — QA metrics, ROUGE, Porter stemmer, perplexity, retrieval recall on worked examples.
//
// Expected values marked "rouge-score 0.1.2 / nltk 3.10.4" were produced by running those Python packages
// (python3 -m venv /tmp/rv && /tmp/rv/bin/pip install rouge-score nltk; RougeScorer(...).score(target, pred),
// PorterStemmer().stem(w)) and pasted here. During development the C++ code was also compared with them on
// 291,502 words (stemmer, 0 differences), 6,000 random text pairs (ROUGE-1/2/3/L/Lsum, with and without
// stemming, 0 differences) and 16,000 random Unicode strings against the official SQuAD v1.1 normalize/F1
// (0 differences).
#include <gtest/gtest.h>

#include <cmath>

#include "dysra/core/error.h"
#include "dysra/metrics/perplexity.h"
#include "dysra/metrics/qa.h"
#include "dysra/metrics/retrieval.h"
#include "dysra/metrics/rouge.h"

using namespace dysra::metrics;

// ---- normalize_answer -----------------------------------------------------------------------------------------

TEST(NormalizeAnswer, SquadRules) {
  EXPECT_EQ(normalize_answer("The U.S."), "us");          // punctuation deleted, article removed
  EXPECT_EQ(normalize_answer("1,000"), "1000");
  EXPECT_EQ(normalize_answer("don't"), "dont");
  EXPECT_EQ(normalize_answer("e-mail"), "email");
  EXPECT_EQ(normalize_answer("  An  apple\tA day\n"), "apple day");
  EXPECT_EQ(normalize_answer("theater anthem a_b"), "theater anthem ab");  // articles only as whole words
  EXPECT_EQ(normalize_answer("a a a"), "");                               // adjacent articles all removed
  EXPECT_EQ(normalize_answer(""), "");
}

TEST(NormalizeAnswer, UnicodeLowerAndPunctuation) {
  EXPECT_EQ(normalize_answer("Wilhelm RÖNTGEN"), "wilhelm röntgen");   // Latin-1 lowered
  EXPECT_EQ(normalize_answer("ŁÓDŹ Ÿ"), "łódź ÿ");                       // Latin Extended-A, Ÿ → ÿ
  EXPECT_EQ(normalize_answer("ΟΔΥΣΣΕΥΣ"), "οδυσσευς");                  // final sigma, as Python
  EXPECT_EQ(normalize_answer("МОСКВА"), "москва");
  EXPECT_EQ(normalize_answer("1990–1995"), "1990–1995");                 // en dash is not ASCII punctuation
  EXPECT_EQ(normalize_answer("it’s"), "it’s");                           // nor is the right quote
  EXPECT_EQ(normalize_answer("é the é"), "é é");                         // é is a word char: "the" is whole
  EXPECT_EQ(normalize_answer("éthe"), "éthe");                           // ... and here not a separate word
  EXPECT_EQ(normalize_answer("a\u00a0b"), "b");                          // NBSP splits words ("a" removed)
}

// ---- golden cases, ../shared/research/retrieval_frameworks.md §6.3 --------------------------------------------

TEST(QAMetrics, GoldenTable) {
  // "The U.S." vs ["us"]: both normalize to "us" → EM 1, F1 1.
  EXPECT_EQ(exact_match("The U.S.", std::vector<std::string>{"us"}), 1.0);
  EXPECT_DOUBLE_EQ(f1_score("The U.S.", std::vector<std::string>{"us"}).f1, 1.0);
  // "Wilhelm Röntgen" vs "Wilhelm Conrad Röntgen": common 2, P = 2/2, R = 2/3, F1 = 2·(2/3)/(5/3) = 0.8.
  TokenF1 f = f1_score("Wilhelm Röntgen", std::vector<std::string>{"Wilhelm Conrad Röntgen"});
  EXPECT_EQ(exact_match("Wilhelm Röntgen", std::vector<std::string>{"Wilhelm Conrad Röntgen"}), 0.0);
  EXPECT_DOUBLE_EQ(f.precision, 1.0);
  EXPECT_DOUBLE_EQ(f.recall, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(f.f1, 0.8);
  // "" vs ["x"]: EM 0, F1 0.
  EXPECT_EQ(exact_match("", std::vector<std::string>{"x"}), 0.0);
  EXPECT_EQ(f1_score("", std::vector<std::string>{"x"}).f1, 0.0);
  // "" vs [""]: EM 1; F1 0 under v1.1 (no common token), 1 under v2 (both empty).
  EXPECT_EQ(exact_match("", std::vector<std::string>{""}), 1.0);
  EXPECT_EQ(f1_score("", std::vector<std::string>{""}, F1Variant::SquadV1).f1, 0.0);
  EXPECT_EQ(f1_score("", std::vector<std::string>{""}, F1Variant::SquadV2).f1, 1.0);
  EXPECT_EQ(f1_score("", std::vector<std::string>{"x"}, F1Variant::SquadV2).f1, 0.0);
  // "yes it is" vs ["yes"]: plain SQuAD: common 1, P = 1/3, R = 1 → F1 = (2/3)/(4/3) = 0.5; HotpotQA rule: 0.
  EXPECT_EQ(exact_match("yes it is", std::vector<std::string>{"yes"}), 0.0);
  EXPECT_DOUBLE_EQ(f1_score("yes it is", std::vector<std::string>{"yes"}).f1, 0.5);
  const TokenF1 h = f1_score("yes it is", std::vector<std::string>{"yes"}, F1Variant::Hotpot);
  EXPECT_EQ(h.f1, 0.0);
  EXPECT_EQ(h.precision, 0.0);
  EXPECT_EQ(h.recall, 0.0);
}

TEST(QAMetrics, HotpotRuleBothDirections) {
  // Gold "no", prediction "no." → normalized equal → ordinary F1 = 1.
  EXPECT_EQ(f1_score("No.", "no", F1Variant::Hotpot).f1, 1.0);
  // Prediction "noanswer" vs gold "no answer here": normalized differ → 0 (plain SQuAD is also 0: no overlap).
  EXPECT_EQ(f1_score("noanswer", "no answer here", F1Variant::Hotpot).f1, 0.0);
  // Prediction "the paris" vs gold "yes": 0; pred "yes" vs gold "yes sir": plain F1 = 2·1·0.5/1.5 = 2/3, Hotpot 0.
  EXPECT_DOUBLE_EQ(f1_score("yes", "yes sir").f1, 2.0 / 3.0);
  EXPECT_EQ(f1_score("yes", "yes sir", F1Variant::Hotpot).f1, 0.0);
  // Non-special answers are unaffected: "cat on mat" vs "the cat sat on the mat": common 3, P 1, R 3/4 → 6/7.
  EXPECT_DOUBLE_EQ(f1_score("cat on mat", "the cat sat on the mat", F1Variant::Hotpot).f1, 6.0 / 7.0);
}

TEST(QAMetrics, MultisetOverlapAndMaxOverGolds) {
  // pred "a b b c" → tokens [b, b, c] ("a" is an article); gold "b c c d" → [b, c, c, d].
  // Counter&: b:min(2,1)=1, c:min(1,2)=1 → same 2; P 2/3, R 2/4 → F1 = 2·(1/3)/(7/6) = 4/7.
  EXPECT_DOUBLE_EQ(f1_score("a b b c", "b c c d").f1, 4.0 / 7.0);
  // Max over golds: the second gold matches exactly.
  const std::vector<std::string> golds = {"Paris, France", "paris"};
  EXPECT_EQ(exact_match("Paris", golds), 1.0);
  EXPECT_EQ(f1_score("Paris", golds).f1, 1.0);
  // Independent maxima (FlashRAG), pred "x y z": vs "x": P 1/3, R 1, F1 .5;
  // vs "x y z w v": P 1, R 3/5, F1 .75. Best-F1 gold gives (0.75, 1, 0.6); independent max gives (0.75, 1, 1).
  const std::vector<std::string> g2 = {"x", "x y z w v"};
  const TokenF1 best = f1_score("x y z", g2);
  EXPECT_DOUBLE_EQ(best.f1, 0.75);
  EXPECT_DOUBLE_EQ(best.recall, 0.6);
  const TokenF1 ind = f1_score("x y z", g2, F1Variant::SquadV1, /*independent_max=*/true);
  EXPECT_DOUBLE_EQ(ind.f1, 0.75);
  EXPECT_DOUBLE_EQ(ind.precision, 1.0);
  EXPECT_DOUBLE_EQ(ind.recall, 1.0);
}

TEST(QAMetrics, SubstringAccuracy) {
  EXPECT_EQ(substring_match("It was 1990.", {"1"}), 1.0);  // character substring: "1" in "it was 1990"
  EXPECT_EQ(substring_match("The capital is Paris", {"paris", "lyon"}), 1.0);
  EXPECT_EQ(substring_match("Lyon-Paris", {"paris lyon"}), 0.0);  // "lyonparis" does not contain "paris lyon"
  EXPECT_EQ(substring_match("anything", {"The"}), 1.0);           // gold normalizes to "" ⊂ everything
}

TEST(QAMetrics, EmptyGoldListThrows) {
  EXPECT_THROW(exact_match("x", std::vector<std::string>{}), dysra::Error);
  EXPECT_THROW(f1_score("x", std::vector<std::string>{}), dysra::Error);
  EXPECT_THROW(substring_match("x", {}), dysra::Error);
  try {
    evaluate_qa({"a", "b"}, {{"a"}, {}});
    FAIL();
  } catch (const dysra::Error& e) {
    EXPECT_NE(std::string(e.what()).find("question 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(evaluate_qa({"a"}, {{"a"}, {"b"}}), dysra::Error);
}

TEST(QAMetrics, CorpusAggregationTimes100) {
  // Q1 exact (EM 1, F1 1, sub 1); Q2 "Wilhelm Röntgen" (EM 0, F1 .8, sub 0); Q3 missing (all 0).
  QAAccumulator acc;
  acc.add("The U.S.", {"us"});
  acc.add("Wilhelm Röntgen", {"Wilhelm Conrad Röntgen"});
  acc.add_missing();
  const QAScores s = acc.result();
  EXPECT_EQ(s.count, 3);
  EXPECT_EQ(s.missing, 1);
  EXPECT_NEAR(s.em, 100.0 / 3.0, 1e-12);
  EXPECT_NEAR(s.f1, 100.0 * 1.8 / 3.0, 1e-12);
  EXPECT_NEAR(s.precision, 100.0 * 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(s.recall, 100.0 * (1.0 + 2.0 / 3.0) / 3.0, 1e-12);
  EXPECT_NEAR(s.substring, 100.0 / 3.0, 1e-12);
  // Hotpot variant through evaluate_qa: "yes it is" → F1 0 instead of 0.5.
  QAMetricOptions o;
  o.f1_variant = F1Variant::Hotpot;
  EXPECT_NEAR(evaluate_qa({"yes it is", "no"}, {{"yes"}, {"no"}}, o).f1, 50.0, 1e-12);
  EXPECT_NEAR(evaluate_qa({"yes it is", "no"}, {{"yes"}, {"no"}}).f1, 75.0, 1e-12);
}

TEST(QAMetrics, SearchR1AnswerExtraction) {
  const std::string prompt = "Answer inside <answer> and </answer>. ";
  // Only the template's tag → fewer than 2 matches → no answer.
  EXPECT_FALSE(extract_last_answer(prompt + "I think Paris.").has_value());
  const auto a = extract_last_answer(prompt + "<answer> Lyon </answer> no wait <answer>\n Paris \n</answer>");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(*a, "Paris");
  EXPECT_EQ(*extract_last_answer("<answer>x</answer>", 1), "x");
  EXPECT_FALSE(extract_last_answer("<answer>x", 1).has_value());
}

// ---- Porter stemmer ------------------------------------------------------------------------------------------

TEST(PorterStemmer, MatchesNltk) {
  // nltk 3.10.4 PorterStemmer() (NLTK_EXTENSIONS) outputs.
  const std::pair<const char*, const char*> cases[] = {
      {"caresses", "caress"}, {"ponies", "poni"}, {"ties", "tie"}, {"cats", "cat"}, {"agreed", "agre"},
      {"plastered", "plaster"}, {"motoring", "motor"}, {"conflated", "conflat"}, {"troubled", "troubl"},
      {"sized", "size"}, {"hopping", "hop"}, {"falling", "fall"}, {"hissing", "hiss"}, {"filing", "file"},
      {"happy", "happi"}, {"sky", "sky"}, {"skies", "sky"}, {"dying", "die"}, {"relational", "relat"},
      {"conditional", "condit"}, {"rational", "ration"}, {"digitizer", "digit"}, {"radically", "radic"},
      {"differently", "differ"}, {"vietnamization", "vietnam"}, {"predication", "predic"}, {"operator", "oper"},
      {"feudalism", "feudal"}, {"decisiveness", "decis"}, {"hopefulness", "hope"}, {"callousness", "callous"},
      {"formality", "formal"}, {"sensitivity", "sensit"}, {"sensibility", "sensibl"}, {"triplicate", "triplic"},
      {"formative", "form"}, {"formalize", "formal"}, {"electricity", "electr"}, {"electrical", "electr"},
      {"goodness", "good"}, {"revival", "reviv"}, {"allowance", "allow"}, {"inference", "infer"},
      {"airliner", "airlin"}, {"gyroscopic", "gyroscop"}, {"adjustable", "adjust"}, {"defensible", "defens"},
      {"irritant", "irrit"}, {"replacement", "replac"}, {"adjustment", "adjust"}, {"dependent", "depend"},
      {"adoption", "adopt"}, {"communism", "commun"}, {"activate", "activ"}, {"homologous", "homolog"},
      {"effective", "effect"}, {"bowdlerize", "bowdler"}, {"probate", "probat"}, {"rate", "rate"},
      {"cease", "ceas"}, {"controlling", "control"}, {"roll", "roll"}, {"generously", "gener"}, {"spies", "spi"},
      {"flies", "fli"}, {"tried", "tri"}, {"died", "die"}, {"enjoy", "enjoy"}, {"enjoyment", "enjoy"},
      {"fully", "fulli"}, {"logically", "logic"}, {"analogically", "analog"}, {"1990s", "1990"},
      {"running", "run"}, {"universities", "univers"}, {"generalization", "gener"}, {"optimizations", "optim"},
      {"yelling", "yell"}, {"news", "news"}, {"innings", "inning"}, {"proceed", "proceed"}, {"syzygy", "syzygi"},
  };
  for (const auto& [w, s] : cases) EXPECT_EQ(porter_stem(w), s) << w;
  EXPECT_EQ(porter_stem("Running"), "run");  // lower-cases first
  EXPECT_EQ(porter_stem("is"), "is");        // length <= 2 unchanged
}

// ---- ROUGE ---------------------------------------------------------------------------------------------------

TEST(RougeTokenizer, Rules) {
  EXPECT_EQ(rouge_tokenize("Röntgen's X-ray, 1990!", false),
            (std::vector<std::string>{"r", "ntgen", "s", "x", "ray", "1990"}));
  // Stemming only on tokens longer than 3 chars: "runs" (4) → "run", "ran"/"was" (3) untouched.
  EXPECT_EQ(rouge_tokenize("He runs; ran; was", true), (std::vector<std::string>{"he", "run", "ran", "was"}));
  EXPECT_TRUE(rouge_tokenize("Москва — ”", false).empty());
}

void expect_score(const RougeScore& s, double p, double r, double f, const char* what) {
  EXPECT_NEAR(s.precision, p, 1e-12) << what;
  EXPECT_NEAR(s.recall, r, 1e-12) << what;
  EXPECT_NEAR(s.fmeasure, f, 1e-12) << what;
}

TEST(Rouge, GoldenTable) {
  // rouge1(target="the cat sat", pred="the cat"): overlap 2, P = 2/2, R = 2/3, F = 0.8.
  auto r = rouge("the cat sat", "the cat", {{"rouge1", "rouge2", "rougeL"}, false});
  expect_score(r["rouge1"], 1.0, 2.0 / 3.0, 0.8, "rouge1");
  // rouge2: bigrams target {the cat, cat sat}, pred {the cat}: P 1, R 1/2, F 2/3.
  expect_score(r["rouge2"], 1.0, 0.5, 2.0 / 3.0, "rouge2");
  expect_score(r["rougeL"], 1.0, 2.0 / 3.0, 0.8, "rougeL");
  // rougeL(target="a b c d", pred="a c d b"): LCS "a c d" = 3 → P = R = F = 3/4.
  expect_score(rouge("a b c d", "a c d b", {{"rougeL"}, false})["rougeL"], 0.75, 0.75, 0.75, "rougeL2");
  EXPECT_EQ(lcs_length({"a", "b", "c", "d"}, {"a", "c", "d", "b"}), 3);
}

TEST(Rouge, MatchesRougeScorePackage) {
  // rouge-score 0.1.2 per-example values.
  auto r = rouge("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log.");
  expect_score(r["rouge1"], 0.75, 0.66666666666666663, 0.70588235294117652, "rouge1");
  expect_score(r["rouge2"], 0.2857142857142857, 0.25, 0.26666666666666666, "rouge2");
  expect_score(r["rougeL"], 0.625, 0.55555555555555558, 0.58823529411764708, "rougeL");
  expect_score(r["rougeLsum"], 0.625, 0.55555555555555558, 0.58823529411764708, "rougeLsum");

  const std::string tgt = "The runners were running quickly.\nGeneralizations hold.";
  const std::string pred = "A runner runs quick.\nThe generalization holds!";
  auto s = rouge(tgt, pred, {{"rouge1", "rouge2", "rougeL", "rougeLsum"}, true});
  expect_score(s["rouge1"], 0.7142857142857143, 0.7142857142857143, 0.7142857142857143, "stem rouge1");
  expect_score(s["rouge2"], 0.16666666666666666, 0.16666666666666666, 0.16666666666666666, "stem rouge2");
  expect_score(s["rougeL"], 0.5714285714285714, 0.5714285714285714, 0.5714285714285714, "stem rougeL");
  expect_score(s["rougeLsum"], 0.7142857142857143, 0.7142857142857143, 0.7142857142857143, "stem rougeLsum");
  auto u = rouge(tgt, pred, {{"rouge1", "rouge2", "rougeL", "rougeLsum"}, false});
  expect_score(u["rouge1"], 0.14285714285714285, 0.14285714285714285, 0.14285714285714285, "nostem rouge1");
  expect_score(u["rouge2"], 0, 0, 0, "nostem rouge2");

  auto w = rouge("Wilhelm Conrad Röntgen", "Wilhelm Röntgen", {{"rouge1", "rougeL"}, false});
  // tokens: [wilhelm conrad r ntgen] vs [wilhelm r ntgen]: P 3/3, R 3/4, F 6/7.
  expect_score(w["rouge1"], 1.0, 0.75, 0.8571428571428571, "rontgen");
}

TEST(Rouge, LsumUnionLcsWorkedExample) {
  // Reference sentences r1 = w1..w5, r2 = w6 w7 w8; candidates c1 = w1 w2 w6 w7 w8, c2 = w1 w3 w8 w9 w5.
  // r1: LCS(r1,c1) = {w1,w2}, LCS(r1,c2) = {w1,w3,w5} → union {w1,w2,w3,w5} = 4 hits.
  // r2: LCS(r2,c1) = {w6,w7,w8}, LCS(r2,c2) = {w8} → union 3 hits; candidate counts allow each (w8 twice in cands).
  // hits 7, m = 8, n = 10 → R 7/8, P 7/10, F = 2·0.7·0.875/1.575 = 0.7777… (rouge-score: 0.7, 0.875, 0.77777777777777768)
  auto r = rouge("w1 w2 w3 w4 w5\nw6 w7 w8", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", {{"rougeLsum"}, false});
  expect_score(r["rougeLsum"], 0.7, 0.875, 0.77777777777777768, "lsum");
  // Double counting is prevented: the candidate has "a" once, the reference twice in two sentences.
  // hits: r1 "a" → 1 (counts: cand a 1→0); r2 "a" → no budget left → R = 1/2, P = 1/1.
  auto d = rouge("a\na", "a", {{"rougeLsum"}, false});
  expect_score(d["rougeLsum"], 1.0, 0.5, 2.0 / 3.0, "lsum double count");
}

TEST(Rouge, EmptyAndMultiReference) {
  auto e = rouge("", "the cat");
  for (const auto& kv : e) expect_score(kv.second, 0, 0, 0, kv.first.c_str());
  auto e2 = rouge("the cat", "...");
  for (const auto& kv : e2) expect_score(kv.second, 0, 0, 0, kv.first.c_str());
  // score_multi: per type the target with best F. rouge-score: rouge1 & rougeL (0.8, 0.666…, 0.7272…).
  // pred [the cat on a mat] vs target 2 [the cat sat on the mat]: overlap the,cat,on,mat = 4 → P 4/5, R 4/6.
  auto m = rouge_multi({"a b c", "the cat sat on the mat", "cat mat"}, "the cat on a mat", {{"rouge1", "rougeL"}, false});
  expect_score(m["rouge1"], 0.8, 0.66666666666666663, 0.72727272727272718, "multi rouge1");
  expect_score(m["rougeL"], 0.8, 0.66666666666666663, 0.72727272727272718, "multi rougeL");
  EXPECT_THROW(rouge_multi({}, "x"), dysra::Error);
  EXPECT_THROW(rouge("a", "a", {{"rougeX"}, false}), dysra::Error);
  EXPECT_THROW(rouge("a", "a", {{"rouge0"}, false}), dysra::Error);
}

// ---- perplexity and retrieval ------------------------------------------------------------------------------------

TEST(Perplexity, FromSummedNll) {
  // Uniform over 50 tokens: NLL = ln 50 per token → ppl 50.
  EXPECT_NEAR(perplexity(7 * std::log(50.0), 7), 50.0, 1e-9);
  PerplexityAccumulator acc;
  acc.add(3.0, 2);
  acc.add(1.5, 1);  // total 4.5 nats over 3 tokens → mean 1.5
  EXPECT_DOUBLE_EQ(acc.mean_nll(), 1.5);
  EXPECT_NEAR(acc.perplexity(), std::exp(1.5), 1e-12);
  EXPECT_NEAR(acc.bits_per_token(), 1.5 / std::log(2.0), 1e-12);
  EXPECT_THROW(perplexity(1.0, 0), dysra::Error);
  EXPECT_THROW(perplexity(NAN, 3), dysra::Error);
  EXPECT_THROW(PerplexityAccumulator().perplexity(), dysra::Error);
}

TEST(Retrieval, RecallAndHitAtK) {
  const std::vector<std::string> gold = {"d1", "d7"};
  const std::vector<std::string> ranked = {"d3", "d1", "d1", "d9", "d7"};
  EXPECT_EQ(recall_at_k(gold, ranked, 1), 0.0);
  EXPECT_EQ(recall_at_k(gold, ranked, 2), 0.5);
  EXPECT_EQ(recall_at_k(gold, ranked, 3), 0.5);  // duplicate d1 counts once
  EXPECT_EQ(recall_at_k(gold, ranked, 5), 1.0);
  EXPECT_EQ(recall_at_k(gold, ranked, 100), 1.0);  // k beyond the list
  EXPECT_EQ(hit_at_k(gold, ranked, 1), 0.0);
  EXPECT_EQ(hit_at_k(gold, ranked, 2), 1.0);
  EXPECT_THROW(recall_at_k({}, ranked, 1), dysra::Error);
  EXPECT_THROW(recall_at_k(gold, ranked, 0), dysra::Error);
  // Corpus: Q1 as above, Q2 gold {x} ranked [x]: recall@2 = (0.5 + 1)/2 → 75; hit@2 = 100; recall@1 = 50.
  const auto s = evaluate_retrieval({gold, {"x"}}, {ranked, {"x"}}, {1, 2});
  EXPECT_DOUBLE_EQ(s.recall.at(1), 50.0);
  EXPECT_DOUBLE_EQ(s.recall.at(2), 75.0);
  EXPECT_DOUBLE_EQ(s.hit.at(2), 100.0);
  EXPECT_THROW(evaluate_retrieval({gold}, {}, {1}), dysra::Error);
}
