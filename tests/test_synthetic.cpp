// Tests for dysra/data/{rng,synthetic,streaming}.h: determinism, label correctness, lengths, streaming resume.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "dysra/core/error.h"
#include "dysra/data/rng.h"
#include "dysra/data/streaming.h"
#include "dysra/data/synthetic.h"

namespace dd = dysra::data;

namespace {

size_t count_occurrences(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

dd::SyntheticCommon common_with(size_t len, bool bytes) {
  dd::SyntheticCommon c;
  c.max_seq_length = len;
  c.seed = 7;
  c.essay_path = "";  // generated prose: tests must not depend on data/generated
  if (bytes) c.count_tokens = dd::byte_token_counter();
  return c;
}

std::string fixture_essay() {
  return std::string(DYSRA_SOURCE_DIR) + "/tests/fixtures/corpora/essay.txt";
}

}  // namespace

// ---- RNG ---------------------------------------------------------------------------------------------

TEST(DataRng, MatchesReferenceXoshiro256StarStar) {
  // Reference values from an independent Python implementation of splitmix64 seeding + xoshiro256**.
  dd::Rng r(12345);
  EXPECT_EQ(r.next_u64(), 0xbe6a36374160d49bULL);
  EXPECT_EQ(r.next_u64(), 0x214aaa0637a688c6ULL);
  EXPECT_EQ(r.next_u64(), 0xf69d16de9954d388ULL);
}

TEST(DataRng, DrawsAreInRangeAndRoughlyUniform) {
  dd::Rng r(99);
  std::vector<int> hist(7, 0);
  for (int i = 0; i < 70000; ++i) {
    const int64_t x = r.uniform_int(-3, 3);
    ASSERT_GE(x, -3);
    ASSERT_LE(x, 3);
    ++hist[x + 3];
  }
  for (int h : hist) EXPECT_NEAR(h, 10000, 500);
  for (int i = 0; i < 1000; ++i) {
    const double u = r.uniform_real();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
  EXPECT_THROW(r.uniform_int(3, 2), dysra::Error);
  auto s = r.sample_indices(10, 10);
  std::sort(s.begin(), s.end());
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(s[i], i);
  auto sp = r.sample_indices(1000000, 5);
  EXPECT_EQ(std::set<size_t>(sp.begin(), sp.end()).size(), 5u);
}

TEST(DataRng, StateRoundTripAndSeedFor) {
  dd::Rng a(5);
  a.next_u64();
  dd::Rng b(a.state());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
  EXPECT_EQ(dd::seed_for(1, "train", 3), dd::seed_for(1, "train", 3));
  EXPECT_NE(dd::seed_for(1, "train", 3), dd::seed_for(1, "train", 4));
  EXPECT_NE(dd::seed_for(1, "train", 3), dd::seed_for(1, "test", 3));
  EXPECT_NE(dd::seed_for(1, "train", 3), dd::seed_for(2, "train", 3));
  std::vector<int> v = {1, 2, 3, 4, 5, 6, 7, 8};
  dd::Rng c(3), d(3);
  auto v2 = v;
  c.shuffle(v);
  d.shuffle(v2);
  EXPECT_EQ(v, v2);
}

// ---- every registered task -----------------------------------------------------------------------------

class AllTasks : public ::testing::TestWithParam<std::string> {};

TEST_P(AllTasks, DeterministicAndLabelsCorrect) {
  const std::string name = GetParam();
  for (bool bytes : {false, true}) {
    const size_t max_len = bytes ? 16000 : 4096;
    auto gen = dd::make_synthetic_task(name, common_with(max_len, bytes));
    const auto a = gen(3), b = gen(3), c = gen(4);
    EXPECT_EQ(a.prompt(), b.prompt()) << name;
    EXPECT_EQ(a.answers, b.answers);
    EXPECT_NE(a.prompt(), c.prompt()) << name;
    ASSERT_FALSE(a.answers.empty()) << name;
    // Length: fits the budget and is not far below it.
    const dd::TokenCounter count = bytes ? dd::byte_token_counter() : dd::word_token_counter(1.3);
    EXPECT_EQ(a.prompt_tokens, count(a.prompt())) << name;
    EXPECT_LE(a.prompt_tokens + a.tokens_to_generate, max_len) << name;
    EXPECT_GE(a.prompt_tokens + a.tokens_to_generate, max_len * 95 / 100) << name << " bytes=" << bytes;
    // Needles are where the offsets say.
    ASSERT_EQ(a.needles.size(), a.needle_char_offsets.size());
    ASSERT_EQ(a.needles.size(), a.needle_depths.size());
    for (size_t i = 0; i < a.needles.size(); ++i) {
      EXPECT_EQ(a.context.compare(a.needle_char_offsets[i], a.needles[i].size(), a.needles[i]), 0) << name;
      if (i) {
      EXPECT_LT(a.needle_char_offsets[i - 1], a.needle_char_offsets[i]);
    }
    }
    // Every answer is present in the context (aggregation tasks: as a list item).
    for (const auto& ans : a.answers) EXPECT_NE(a.context.find(ans), std::string::npos) << name << ": " << ans;
    // Retrieval tasks: each answer is inside some gold needle.
    if (name != "cwe" && name != "fwe") {
      for (const auto& ans : a.answers) {
        bool in_needle = false;
        for (const auto& nd : a.needles) in_needle = in_needle || nd.find(ans) != std::string::npos;
        EXPECT_TRUE(in_needle) << name << ": " << ans;
      }
    }
    EXPECT_EQ(a.task, name);
  }
}

INSTANTIATE_TEST_SUITE_P(Synthetic, AllTasks, ::testing::ValuesIn(dd::synthetic_task_names()),
                         [](const auto& info) { return info.param; });

TEST(Synthetic, RegistryListsKnownNames) {
  const auto names = dd::synthetic_task_names();
  EXPECT_EQ(names.size(), 15u);
  try {
    dd::make_synthetic_task("niah_single_9");
    FAIL() << "expected an error";
  } catch (const dysra::Error& e) {
    EXPECT_NE(std::string(e.what()).find("passkey"), std::string::npos);
  }
}

// ---- per-task label checks -----------------------------------------------------------------------------

TEST(Synthetic, PasskeyDepthIsRespected) {
  for (double depth : {0.0, 0.1, 0.37, 0.5, 0.9, 1.0}) {
    dd::PasskeyOptions o;
    o.common = common_with(8000, true);
    o.depth = depth;
    const auto e = dd::generate_passkey(o, 11);
    ASSERT_EQ(e.needle_depths.size(), 1u);
    EXPECT_NEAR(e.needle_depths[0], depth, 0.02) << depth;
    const int key = std::stoi(e.answers[0]);
    EXPECT_GE(key, 1);
    EXPECT_LE(key, 50000);
    EXPECT_EQ(e.needles[0], "The pass key is " + e.answers[0] + ". Remember it. " + e.answers[0] + " is the pass key.");
    EXPECT_EQ(count_occurrences(e.context, e.answers[0]), 2u);
    // Tight fit with a byte tokenizer: less than one noise sentence is left over.
    EXPECT_LT(8000 - e.prompt_tokens - e.tokens_to_generate, std::string(dd::kNoiseSentence).size() + 2);
  }
}

TEST(Synthetic, PasskeyRandomDepthsCoverTheRange) {
  dd::PasskeyOptions o;
  o.common = common_with(2000, false);
  double lo = 1, hi = 0;
  for (uint64_t i = 0; i < 60; ++i) {
    const auto e = dd::generate_passkey(o, i);
    lo = std::min(lo, e.needle_depths[0]);
    hi = std::max(hi, e.needle_depths[0]);
  }
  EXPECT_LT(lo, 0.15);
  EXPECT_GT(hi, 0.85);
}

TEST(Synthetic, NiahMultiKeyAskedKeysAndDepths) {
  auto o = dd::niah_preset("niah_multiquery", common_with(6000, false));
  o.depths = {0.1, 0.3, 0.6, 0.9};
  const auto e = dd::generate_niah(o, 5);
  ASSERT_EQ(e.answers.size(), 4u);
  ASSERT_EQ(e.needles.size(), 4u);
  std::vector<double> got = e.needle_depths;
  std::sort(got.begin(), got.end());
  const double want[] = {0.1, 0.3, 0.6, 0.9};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(got[i], want[i], 0.03);
  EXPECT_NE(e.question.find("What are all the special magic numbers for"), std::string::npos);
  EXPECT_NE(e.question.find(", and "), std::string::npos);
  for (const auto& a : e.answers) {
    EXPECT_EQ(a.size(), 7u);
    EXPECT_EQ(count_occurrences(e.context, a), 1u);
  }
}

TEST(Synthetic, NiahSingleUsesSingularTemplate) {
  auto e = dd::make_synthetic_task("niah_single_3", common_with(3000, false))(0);
  EXPECT_EQ(e.instruction.rfind("A special magic uuid is hidden", 0), 0u) << e.instruction;
  EXPECT_NE(e.answer_prefix.find("mentioned in the provided text is"), std::string::npos);
  EXPECT_TRUE(std::regex_match(e.answers[0], std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << e.answers[0];
}

TEST(Synthetic, NiahMultikeyDistractorsNeverShareTheQueriedKey) {
  auto e = dd::make_synthetic_task("niah_multikey_2", common_with(4096, false))(2);
  EXPECT_GT(e.num_distractors, 20u);
  // The queried key occurs exactly once in the context: in its needle.
  const std::string q = e.question;
  const size_t a = q.find(" for ") + 5, b = q.find(" mentioned");
  const std::string key = q.substr(a, b - a);
  EXPECT_EQ(count_occurrences(e.context, " " + key + " "), 1u) << key;
  // Every context line is a needle sentence.
  std::istringstream in(e.context);
  std::string line;
  while (std::getline(in, line)) EXPECT_EQ(line.rfind("One of the special magic number for ", 0), 0u) << line;
}

TEST(Synthetic, NiahEssayFromFile) {
  auto c = common_with(3000, false);
  c.essay_path = fixture_essay();
  auto e = dd::make_synthetic_task("niah_single_2", c)(1);
  EXPECT_EQ(e.haystack, "essay:" + fixture_essay());
  EXPECT_NE(e.context.find("Mr. Bennet"), std::string::npos);  // the fixture's text, cycled
  c.essay_path = "/nonexistent/essay.txt";
  EXPECT_THROW(dd::make_synthetic_task("niah_single_2", c)(1), dysra::DataError);
}

TEST(Synthetic, VariableTrackingChainResolves) {
  auto e = dd::make_synthetic_task("vt", common_with(4096, false))(9);
  // Follow assignments in the context from the queried value; the set must equal the answers.
  const std::string q = e.question;
  const std::string value = q.substr(q.find("value ") + 6, 5);
  std::map<std::string, std::string> assign;  // var -> value or var
  std::regex stmt("VAR ([A-Z]{5}) = (VAR ([A-Z]{5})|([0-9]{5}))");
  for (auto it = std::sregex_iterator(e.context.begin(), e.context.end(), stmt); it != std::sregex_iterator(); ++it)
    assign[(*it)[1]] = (*it)[3].matched ? (*it)[3].str() : (*it)[4].str();
  std::set<std::string> got;
  bool changed = true;
  while (changed) {
    changed = false;
    for (const auto& [v, src] : assign)
      if (!got.count(v) && (src == value || got.count(src))) changed = got.insert(v).second || changed;
  }
  EXPECT_EQ(got, std::set<std::string>(e.answers.begin(), e.answers.end()));
  EXPECT_EQ(e.answers.size(), 5u);
  EXPECT_NE(e.instruction.find("12345"), std::string::npos);  // the one-shot example
}

TEST(Synthetic, CweCommonWordsAreTheMostFrequent) {
  for (size_t len : {2000, 6000}) {
    auto e = dd::make_synthetic_task("cwe", common_with(len, false))(1);
    std::map<std::string, int> freq;
    std::istringstream in(e.context);
    std::string tok;
    int expect_num = 1;
    while (in >> tok) {
      ASSERT_EQ(tok, std::to_string(expect_num++) + ".");
      ASSERT_TRUE(static_cast<bool>(in >> tok));
      ++freq[tok];
    }
    ASSERT_EQ(e.answers.size(), 10u);
    int min_common = 1 << 30, max_other = 0;
    std::set<std::string> ans(e.answers.begin(), e.answers.end());
    for (const auto& [w, f] : freq) (ans.count(w) ? min_common : max_other) = ans.count(w) ? std::min(min_common, f) : std::max(max_other, f);
    EXPECT_EQ(min_common, len < 4096 ? 6 : 30);
    EXPECT_EQ(max_other, len < 4096 ? 1 : 3);
  }
}

TEST(Synthetic, FweAnswersAreRanksTwoToFour) {
  auto e = dd::make_synthetic_task("fwe", common_with(4096, false))(2);
  std::map<std::string, int> freq;
  std::istringstream in(e.context);
  std::string w;
  while (in >> w) ++freq[w];
  std::vector<std::pair<int, std::string>> byf;
  for (const auto& [k, f] : freq)
    if (k != "...") byf.emplace_back(f, k);
  std::sort(byf.rbegin(), byf.rend());
  ASSERT_GE(byf.size(), 4u);
  EXPECT_GT(byf[2].first, byf[3].first);
  std::set<std::string> top = {byf[0].second, byf[1].second, byf[2].second};
  EXPECT_EQ(top, std::set<std::string>(e.answers.begin(), e.answers.end()));
  EXPECT_GT(freq["..."], byf[0].first);
}

TEST(Synthetic, KvRetrievalIsValidJsonShape) {
  dd::KvRetrievalOptions o;
  o.common = common_with(5000, false);
  o.depth = 0.5;
  const auto e = dd::generate_kv_retrieval(o, 0);
  EXPECT_EQ(e.context.front(), '{');
  EXPECT_EQ(e.context.back(), '}');
  EXPECT_NEAR(e.needle_depths[0], 0.5, 0.05);
  const std::string key = e.needles[0].substr(1, 36);
  EXPECT_NE(e.question.find(key), std::string::npos);
  EXPECT_EQ(count_occurrences(e.context, key), 1u);
}

TEST(Synthetic, MultiHopNeedsEveryFact) {
  for (size_t hops : {2u, 3u}) {
    dd::MultiHopOptions o;
    o.common = common_with(3000, false);
    o.hops = hops;
    o.num_distractor_chains = 5;
    const auto e = dd::generate_multihop(o, 4);
    ASSERT_EQ(e.needles.size(), hops);
    EXPECT_EQ(e.num_distractors, 5u);
    const std::string& country = e.answers[0];
    // The answer appears once (its fact); the question's subject is not in that fact.
    EXPECT_EQ(count_occurrences(e.context, country), 1u);
    const std::string q = e.question;
    for (const auto& nd : e.needles)
      if (nd.find(country) != std::string::npos) {
        const std::string subj = q.substr(q.find(hops == 2 ? "was " : "mentor of ") + (hops == 2 ? 4 : 10));
        EXPECT_EQ(nd.find(subj.substr(0, subj.find(" born"))), std::string::npos);
      }
    // The facts link: subject -> (mentor ->) city -> country.
    std::string all;
    for (const auto& nd : e.needles) all += nd + "\n";
    EXPECT_NE(all.find("was born in the city of"), std::string::npos);
    EXPECT_NE(all.find("lies in the country of " + country), std::string::npos);
    if (hops == 3) {
      EXPECT_NE(all.find("'s mentor was "), std::string::npos);
    }
  }
}

TEST(Synthetic, MillionTokenPasskeyIsFastAndExact) {
  dd::PasskeyOptions o;
  o.common = common_with(1000000, true);
  o.depth = 0.25;
  const auto e = dd::generate_passkey(o, 0);
  EXPECT_LE(e.prompt_tokens + e.tokens_to_generate, 1000000u);
  EXPECT_GT(e.prompt_tokens + e.tokens_to_generate, 1000000u - 100);
  EXPECT_NEAR(e.needle_depths[0], 0.25, 0.001);
}

TEST(Synthetic, TooShortLengthIsAConfigError) {
  EXPECT_THROW(dd::make_synthetic_task("vt", common_with(40, false))(0), dysra::ConfigError);
  dd::PasskeyOptions o;
  o.common = common_with(4096, false);
  o.depth = 1.5;
  EXPECT_THROW(dd::generate_passkey(o, 0), dysra::ConfigError);
}

TEST(Synthetic, SplitSentencesKeepsTitles) {
  const auto s =
      dd::split_sentences("Mr. Darcy bowed.  \"Yes!\" said Mrs. Bennet. \"Why?\" J. Smith asked.\nThen  they left");
  ASSERT_EQ(s.size(), 5u) << (s.empty() ? "" : s[0]);
  EXPECT_EQ(s[0], "Mr. Darcy bowed.");
  EXPECT_EQ(s[1], "\"Yes!\" said Mrs. Bennet.");  // no break before a lower-case word, none after "Mrs."
  EXPECT_EQ(s[2], "\"Why?\"");
  EXPECT_EQ(s[3], "J. Smith asked.");  // an initial does not end a sentence
  EXPECT_EQ(s[4], "Then they left");
}

// ---- streaming -------------------------------------------------------------------------------------------

namespace {
dd::FactStreamOptions stream_opts() {
  dd::FactStreamOptions o;
  o.seed = 3;
  o.chunk_size = 300;
  o.question_interval = 2000;
  o.distances = {150, 900, 3500};
  o.filler = dd::Haystack::essay;
  o.essay_path = "";
  return o;
}
}  // namespace

TEST(FactStream, QuestionsRefertoFactsAtTheRequestedDistance) {
  dd::FactStream s(stream_opts());
  std::string text;
  std::vector<dd::StreamQuestion> qs;
  size_t max_pending = 0;
  while (s.position() < 60000) {
    auto c = s.next();
    ASSERT_EQ(c.position, text.size());
    text += c.text;
    for (auto& q : c.questions) {
      EXPECT_EQ(q.position, text.size());
      qs.push_back(q);
    }
    max_pending = std::max(max_pending, s.state().placed.size());
  }
  ASSERT_GE(qs.size(), 28u);
  for (size_t i = 0; i < qs.size(); ++i) {
    const auto& q = qs[i];
    EXPECT_EQ(q.id, i);
    EXPECT_EQ(text.compare(q.fact_position, q.fact.size(), q.fact), 0);
    EXPECT_NE(q.fact.find(q.answers[0]), std::string::npos);
    EXPECT_GE(q.position, (i + 1) * 2000);
    // Realised distance within one item (< 200 bytes here) plus a placed fact of the requested one.
    const int64_t diff = int64_t(q.distance()) - int64_t(q.requested_distance);
    if (q.requested_distance < q.position) {
      EXPECT_LT(std::llabs(diff), 400) << i;
    }
    EXPECT_EQ(q.requested_distance, stream_opts().distances[i % 3]);
    // the key occurs exactly once in the whole stream so far
    const std::string key = q.fact.substr(q.fact.find(" for ") + 5, q.fact.find(" is: ") - q.fact.find(" for ") - 5);
    EXPECT_EQ(count_occurrences(text.substr(0, q.position), key + " "), 1u) << key;
  }
  EXPECT_LE(max_pending, 3u);
}

TEST(FactStream, ResumeFromStateAndSeekAreExact) {
  dd::FactStream a(stream_opts());
  for (int i = 0; i < 57; ++i) a.next();
  const dd::FactStreamState st = a.state();
  std::string rest_a;
  std::vector<uint64_t> qa;
  for (int i = 0; i < 200; ++i) {
    auto c = a.next();
    rest_a += c.text;
    for (auto& q : c.questions) qa.push_back(q.fact_position * 1000003 + q.position);
  }
  dd::FactStream b(stream_opts(), st);
  std::string rest_b;
  std::vector<uint64_t> qb;
  for (int i = 0; i < 200; ++i) {
    auto c = b.next();
    rest_b += c.text;
    for (auto& q : c.questions) qb.push_back(q.fact_position * 1000003 + q.position);
  }
  EXPECT_EQ(rest_a, rest_b);
  EXPECT_EQ(qa, qb);
  EXPECT_FALSE(qa.empty());
  // seek() replays to the same state.
  dd::FactStream c(stream_opts());
  c.seek(st.position);
  EXPECT_EQ(c.state(), st);
  // A different seed gives a different stream.
  auto o = stream_opts();
  o.seed = 4;
  dd::FactStream d(o);
  dd::FactStream e(stream_opts());
  EXPECT_NE(d.next().text + d.next().text, e.next().text + e.next().text);
}

class FactStreamKinds : public ::testing::TestWithParam<std::pair<std::string, size_t>> {};

TEST_P(FactStreamKinds, EveryPartPrecedesItsQuestionAndTheAnswerFollowsFromTheParts) {
  auto o = stream_opts();
  o.kind = GetParam().first;
  o.hops = GetParam().second;
  dd::FactStream s(o);
  std::string text;
  std::vector<dd::StreamQuestion> qs;
  while (s.position() < 40000) {
    auto c = s.next();
    text += c.text;
    for (auto& q : c.questions) qs.push_back(q);
  }
  ASSERT_GE(qs.size(), 15u);
  for (const auto& q : qs) {
    ASSERT_EQ(q.parts.size(), o.hops);
    ASSERT_EQ(q.part_positions.size(), o.hops);
    EXPECT_EQ(q.fact, q.parts[0]);
    EXPECT_EQ(q.fact_position, q.part_positions[0]);
    for (size_t j = 0; j < q.parts.size(); ++j) {
      EXPECT_EQ(text.compare(q.part_positions[j], q.parts[j].size(), q.parts[j]), 0) << q.id << " part " << j;
      EXPECT_LT(q.part_positions[j], q.position);
      if (j) EXPECT_GT(q.part_positions[j], q.part_positions[j - 1]) << "parts in order";
    }
    if (o.kind == "chain") {
      // follow the links from the key the question names to the value fact
      std::string key = q.question.substr(q.question.rfind("partner of ") + 11);
      key.pop_back();  // '?'
      for (size_t hop = 1; hop < o.hops; ++hop) {
        const std::string link = "The partner of " + key + " is ";
        const auto at = text.find(link);
        ASSERT_NE(at, std::string::npos) << key;
        key = text.substr(at + link.size(), text.find('.', at + link.size()) - at - link.size());
      }
      const std::string fact = "The special magic number for " + key + " is: " + q.answers[0] + ".";
      EXPECT_NE(text.find(fact), std::string::npos) << fact;
      std::string ref = q.question.substr(q.question.find(" for ") + 5);
      ref.pop_back();
      EXPECT_EQ(q.answer_prefix, "The special magic number for " + ref + " is: ");
    } else {
      // every listed name is assigned the value, directly or through the chain of VAR lines
      const std::string v = q.question.substr(q.question.rfind(' ') + 1, 5);
      std::istringstream names(q.answers[0]);
      std::string n, prev;
      int i = 0;
      while (std::getline(names, n, ',')) {
        if (n[0] == ' ') n = n.substr(1);
        const std::string line = i == 0 ? "VAR " + n + " = " + v + "." : "VAR " + n + " = VAR " + prev + ".";
        EXPECT_NE(text.find(line), std::string::npos) << line;
        prev = n, ++i;
      }
      EXPECT_EQ(i, static_cast<int>(o.hops));
    }
  }
  // resume mid-stream with parts pending
  dd::FactStream a(o);
  for (int i = 0; i < 37; ++i) a.next();
  dd::FactStream b(o, a.state());
  for (int i = 0; i < 60; ++i) EXPECT_EQ(a.next().text, b.next().text);
}
INSTANTIATE_TEST_SUITE_P(Kinds, FactStreamKinds,
                         ::testing::Values(std::make_pair(std::string("chain"), size_t{2}),
                                           std::make_pair(std::string("chain"), size_t{3}),
                                           std::make_pair(std::string("variables"), size_t{4})),
                         [](const auto& i) { return i.param.first + std::to_string(i.param.second); });

TEST(FactStream, TokenPositionsAndBadOptions) {
  auto o = stream_opts();
  o.count_tokens = dd::word_token_counter(1.0);
  o.question_interval = 500;
  o.distances = {100};
  dd::FactStream s(o);
  uint64_t words = 0;
  int questions = 0;
  while (questions < 5) {
    auto c = s.next();
    std::istringstream in(c.text);
    std::string w;
    while (in >> w) ++words;
    EXPECT_EQ(words, s.position());
    questions += static_cast<int>(c.questions.size());
  }
  o.distances = {};
  EXPECT_THROW(dd::FactStream{o}, dysra::ConfigError);
  o.distances = {100};
  o.kind = "chains";
  EXPECT_THROW(dd::FactStream{o}, dysra::ConfigError);
  o.kind = "chain";
  o.hops = 1;
  EXPECT_THROW(dd::FactStream{o}, dysra::ConfigError);
}
