// tests/test_loaders.cpp — FlashRAG JSONL and the dataset loaders on the fixtures in tests/fixtures/.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "dysra/core/error.h"
#include "dysra/data/jsonl.h"
#include "dysra/data/loaders.h"

#ifndef DYSRA_SOURCE_DIR
#error "tests are compiled with -DDYSRA_SOURCE_DIR=\"/abs/repo\""
#endif

using namespace dysra::data;
namespace fs = std::filesystem;

namespace {

std::string fx(const std::string& name) { return std::string(DYSRA_SOURCE_DIR) + "/tests/fixtures/" + name; }

// Runs `fn`, expects a DataError whose message contains every one of `parts`.
template <class F>
void expect_data_error(F fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no DataError thrown";
  } catch (const dysra::DataError& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

template <class T>
const T& meta(const QAExample& ex, const std::string& key) {
  return std::get<T>(ex.metadata.at(key));
}

}  // namespace

// ---- FlashRAG ------------------------------------------------------------------------------------------------

TEST(FlashRAG, ReadQuestions) {
  const auto qs = read_flashrag_questions(fx("flashrag_questions.jsonl"));
  ASSERT_EQ(qs.size(), 2u);
  EXPECT_EQ(qs[0].id, "q1");
  EXPECT_EQ(qs[0].golden_answers, (std::vector<std::string>{"Wilhelm Röntgen", "Röntgen"}));
  EXPECT_EQ(qs[0].gold_doc_ids, (std::vector<std::string>{"d1"}));
  EXPECT_EQ(meta<std::string>(qs[0], "source"), "test");
  EXPECT_EQ(meta<int64_t>(qs[0], "year"), 1895);
  EXPECT_EQ(meta<double>(qs[0], "score"), 0.5);
  EXPECT_EQ(meta<bool>(qs[0], "ok"), true);
  EXPECT_EQ(meta<RawJson>(qs[0], "tags").text, R"(["a","b"])");
  EXPECT_EQ(qs[0].metadata.count("gold_doc_ids"), 0u);  // reserved key moved into the field
  EXPECT_EQ(qs[1].id, "2");                              // integer ids become their decimal text
  EXPECT_TRUE(qs[1].metadata.empty());
}

TEST(FlashRAG, WriteReadRoundTrip) {
  QAExample ex;
  ex.id = "x/1";
  ex.question = "Quelle est la capitale ? \"quoted\"\nnewline";
  ex.golden_answers = {"Paris", "Parîs"};
  ex.contexts = {{"d1", "Paris", "Paris is the capital."}, {"d2", "", "Lyon."}};
  ex.gold_doc_ids = {"d1"};
  ex.metadata["n"] = int64_t(3);
  ex.metadata["r"] = 0.25;
  ex.metadata["s"] = std::string("é");
  ex.metadata["nested"] = RawJson{R"({"a":[1,2]})"};
  QAExample empty;
  empty.id = "e";
  const fs::path p = fs::temp_directory_path() / ("dysra_flashrag_" + std::to_string(std::random_device{}()) + ".jsonl");
  write_flashrag_questions(p.string(), {ex, empty});
  const auto back = read_flashrag_questions(p.string());
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].id, ex.id);
  EXPECT_EQ(back[0].question, ex.question);
  EXPECT_EQ(back[0].golden_answers, ex.golden_answers);
  EXPECT_EQ(back[0].contexts, ex.contexts);
  EXPECT_EQ(back[0].gold_doc_ids, ex.gold_doc_ids);
  EXPECT_EQ(back[0].metadata, ex.metadata);
  EXPECT_EQ(back[1].id, "e");
  EXPECT_TRUE(back[1].golden_answers.empty());

  // Corpus round trip with the quoted-title convention (titled documents read back with split_title; an
  // untitled document's contents is its text, read back without split_title).
  const std::vector<Document> docs = {{"d1", "Title \"x\"", "line1\nline2"}, {"d2", "", "no title"}};
  write_flashrag_corpus(p.string(), docs);
  EXPECT_EQ(read_flashrag_corpus(p.string(), {true})[0], docs[0]);
  EXPECT_EQ(read_flashrag_corpus(p.string(), {false})[1], docs[1]);
  fs::remove(p);
}

TEST(FlashRAG, ReadCorpus) {
  const auto plain = read_flashrag_corpus(fx("flashrag_corpus.jsonl"));
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_EQ(plain[0].title, "");
  EXPECT_EQ(plain[0].text, "\"Wilhelm Röntgen\"\nWilhelm Conrad Röntgen was a German physicist.");
  const auto split = read_flashrag_corpus(fx("flashrag_corpus.jsonl"), {true});
  EXPECT_EQ(split[0].title, "Wilhelm Röntgen");
  EXPECT_EQ(split[0].text, "Wilhelm Conrad Röntgen was a German physicist.");
  EXPECT_EQ(split[1].title, "No title line here.");  // single line: all of it is the title
  EXPECT_EQ(split[1].text, "");
}

TEST(FlashRAG, MalformedInputNamesFileAndLine) {
  expect_data_error([] { read_flashrag_questions(fx("flashrag_questions_bad.jsonl")); },
                    {"flashrag_questions_bad.jsonl:2:", "missing field 'golden_answers'"});
  expect_data_error([] { read_flashrag_questions(fx("flashrag_questions_badtype.jsonl")); },
                    {"flashrag_questions_badtype.jsonl:2:", "golden_answers[1]", "must be a string", "number"});
  expect_data_error([] { read_flashrag_questions(fx("flashrag_questions_badjson.jsonl")); },
                    {"flashrag_questions_badjson.jsonl:3:", "bad JSON"});
  expect_data_error([] { read_flashrag_questions(fx("flashrag_questions_blank.jsonl")); },
                    {"flashrag_questions_blank.jsonl:2:", "blank line"});
  expect_data_error([] { read_flashrag_questions(fx("no_such_file.jsonl")); }, {"no_such_file.jsonl", "cannot open"});
  // A corpus file read as questions: the first line lacks "question".
  expect_data_error([] { read_flashrag_questions(fx("flashrag_corpus.jsonl")); },
                    {"flashrag_corpus.jsonl:1:", "missing field 'question'"});
}

// ---- Natural Questions ---------------------------------------------------------------------------------------

TEST(NaturalQuestions, SimplifiedFormat) {
  const auto qs = load_natural_questions(fx("nq_simplified.jsonl"));
  ASSERT_EQ(qs.size(), 3u);
  // Example 1: short answers tokens [5,8) "Wilhelm Conrad Röntgen" and [7,8) "Röntgen" (deduplicated).
  EXPECT_EQ(qs[0].id, "5655493461695504401");
  EXPECT_EQ(qs[0].question, "who discovered x rays");
  EXPECT_EQ(qs[0].golden_answers, (std::vector<std::string>{"Wilhelm Conrad Röntgen", "Röntgen"}));
  EXPECT_EQ(qs[0].gold_doc_ids, (std::vector<std::string>{"5655493461695504401"}));
  ASSERT_EQ(qs[0].contexts.size(), 1u);
  EXPECT_EQ(qs[0].contexts[0].text, "Wilhelm Röntgen Wilhelm Conrad Röntgen discovered X-rays in 1895 .");  // HTML gone
  EXPECT_EQ(meta<std::string>(qs[0], "long_answer"), "Wilhelm Conrad Röntgen discovered X-rays in 1895 .");
  EXPECT_EQ(qs[1].golden_answers, (std::vector<std::string>{"yes"}));  // yes/no annotation
  EXPECT_TRUE(qs[2].golden_answers.empty());                          // unanswerable: kept, no answers
  EXPECT_TRUE(qs[2].gold_doc_ids.empty());
  // Without HTML stripping the tags stay in the context.
  const auto raw = load_natural_questions(fx("nq_simplified.jsonl"), {false});
  EXPECT_EQ(raw[0].contexts[0].text.rfind("<H1>", 0), 0u);
}

TEST(NaturalQuestions, Malformed) {
  expect_data_error([] { load_natural_questions(fx("nq_bad_span.jsonl")); },
                    {"nq_bad_span.jsonl:1:", "annotations[0].short_answers[0]", "[2, 9)", "3 tokens"});
  expect_data_error([] { load_natural_questions(fx("nq_missing_field.jsonl")); },
                    {"nq_missing_field.jsonl:2:", "missing field 'question_text'"});
  expect_data_error([] { load_natural_questions(fx("hotpot_dev.json")); }, {"hotpot_dev.json:1:", "bad JSON"});
}

// ---- HotpotQA ------------------------------------------------------------------------------------------------

TEST(HotpotQA, DistractorFormat) {
  const auto qs = load_hotpotqa(fx("hotpot_dev.json"));
  ASSERT_EQ(qs.size(), 2u);
  const QAExample& a = qs[0];
  EXPECT_EQ(a.id, "5a8b57f25542995d1e6f1371");
  EXPECT_EQ(a.golden_answers, (std::vector<std::string>{"yes"}));
  ASSERT_EQ(a.contexts.size(), 3u);
  EXPECT_EQ(a.contexts[1].title, "Scott Derrickson");
  EXPECT_EQ(a.contexts[1].id, "5a8b57f25542995d1e6f1371/1");
  EXPECT_EQ(a.contexts[0].text, "Ed Wood is a 1994 American biographical film. It was directed by Tim Burton.");
  // Supporting facts name "Scott Derrickson" (paragraph 1) and "Ed Wood" (paragraph 2), not "Ed Wood (film)".
  EXPECT_EQ(a.gold_doc_ids, (std::vector<std::string>{"5a8b57f25542995d1e6f1371/1", "5a8b57f25542995d1e6f1371/2"}));
  EXPECT_EQ(meta<std::string>(a, "type"), "comparison");
  EXPECT_EQ(meta<std::string>(a, "level"), "hard");
  EXPECT_EQ(qs[1].gold_doc_ids, (std::vector<std::string>{"5a8c7595554299585d9e36b6/1"}));
}

TEST(HotpotQA, Malformed) {
  // Element 1 starts on line 41 of the pretty-printed array.
  expect_data_error([] { load_hotpotqa(fx("hotpot_bad_type.json")); },
                    {"hotpot_bad_type.json:41:", "element 1", "'answer' must be a string", "array"});
  expect_data_error([] { load_hotpotqa(fx("hotpot_bad_fact.json")); },
                    {"hotpot_bad_fact.json:41:", "supporting_facts[0]", "'Nobody'"});
  expect_data_error([] { load_hotpotqa(fx("hotpot_bad_json.json")); }, {"hotpot_bad_json.json:6", "bad JSON"});
  expect_data_error([] { load_hotpotqa(fx("nq_simplified.jsonl")); }, {"nq_simplified.jsonl:", "bad JSON"});
}

// ---- ELI5 ----------------------------------------------------------------------------------------------------

TEST(ELI5, HuggingFaceJsonl) {
  const auto qs = load_eli5(fx("eli5.jsonl"));
  ASSERT_EQ(qs.size(), 2u);
  EXPECT_EQ(qs[0].id, "8houtx");
  EXPECT_EQ(qs[0].question, "Why does water boil at lower temperatures at altitude?");
  EXPECT_EQ(qs[0].golden_answers.size(), 2u);
  EXPECT_EQ(meta<RawJson>(qs[0], "answer_scores").text, "[12,3]");
  EXPECT_EQ(meta<std::string>(qs[0], "subreddit"), "explainlikeimfive");
  EXPECT_EQ(qs[1].question, "How do magnets work?");
  EXPECT_EQ(load_eli5(fx("eli5.jsonl"), {true})[1].question, "How do magnets work?\nLike, actually.");
  expect_data_error([] { load_eli5(fx("eli5_bad.jsonl")); }, {"eli5_bad.jsonl:1:", "same length", "2, 1, 2"});
}

// ---- summarization -------------------------------------------------------------------------------------------

TEST(Summarization, ArxivCohan) {
  const auto xs = load_arxiv_summarization(fx("arxiv.jsonl"));
  ASSERT_EQ(xs.size(), 1u);
  EXPECT_EQ(xs[0].id, "1001.0001");
  EXPECT_EQ(xs[0].document, "we study retrieval .\nresults are good .");
  EXPECT_EQ(xs[0].summary, "we study retrieval .\nit works .");
  EXPECT_EQ(std::get<RawJson>(xs[0].metadata.at("section_names")).text, R"(["introduction","results"])");
  expect_data_error([] { load_arxiv_summarization(fx("arxiv_bad.jsonl")); },
                    {"arxiv_bad.jsonl:2:", "'article_text' must be an array", "string"});
}

TEST(Summarization, GovReport) {
  const auto crs = load_govreport_file(fx("govreport/crs/R45461.json"));
  EXPECT_EQ(crs.id, "R45461");
  EXPECT_EQ(crs.document, "The federal budget is large.\nSpending\nMandatory spending grows.");  // empty title skipped
  EXPECT_EQ(crs.summary, "The budget is large.\nSpending grows.");
  EXPECT_EQ(std::get<std::string>(crs.metadata.at("subset")), "crs");
  const auto gao = load_govreport_split(fx("govreport"), "gao", "test");
  ASSERT_EQ(gao.size(), 1u);
  EXPECT_EQ(gao[0].document, "Letter\nAgencies award grants.");
  EXPECT_EQ(gao[0].summary, "Oversight is weak.\nCongress asked.");
  EXPECT_EQ(load_govreport_split(fx("govreport"), "crs", "test").size(), 1u);
  expect_data_error([] { load_govreport_split(fx("govreport"), "crs", "valid"); },
                    {"crs_valid.ids:2:", "R99999.json", "does not exist"});
  expect_data_error([] { load_govreport_file(fx("govreport/crs_bad_summary.json")); },
                    {"crs_bad_summary.json:1:", "'summary' must be an array"});
  EXPECT_THROW(load_govreport_split(fx("govreport"), "xyz", "test"), dysra::ConfigError);
  const auto flat = load_govreport_jsonl(fx("govreport_flat.jsonl"));
  ASSERT_EQ(flat.size(), 2u);
  EXPECT_EQ(flat[0].id, "1");
  EXPECT_EQ(flat[1].id, "x2");
  EXPECT_EQ(flat[1].summary, "Short.");
}

// ---- news stream ---------------------------------------------------------------------------------------------

TEST(NewsStream, GroupedByDate) {
  const auto days = load_news_stream(fx("news_stream.tsv"));
  ASSERT_EQ(days.size(), 3u);
  EXPECT_EQ(days[0].date, "2019-02-28");
  EXPECT_EQ(days[1].articles.size(), 2u);
  EXPECT_EQ(days[1].articles[0].text, "A new law passed.\tWith a tab inside.");
  EXPECT_EQ(days[1].articles[1].text, "Rain is expected.");  // "\r\n" handled
  EXPECT_EQ(days[1].articles[1].id, "2019-03-01/1");
  EXPECT_EQ(days[1].articles[1].line, 3);
  EXPECT_EQ(days[1].day - days[0].day, 1);         // 2019 is not a leap year
  EXPECT_EQ(days[2].day - days[1].day, 365);       // 2019-03-01 → 2020-02-29
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(days_from_civil(2000, 3, 1), 11017);
  EXPECT_THROW(days_from_civil(1900, 2, 29), dysra::Error);
}

TEST(NewsStream, Malformed) {
  expect_data_error([] { load_news_stream(fx("news_bad_date.tsv")); }, {"news_bad_date.tsv:2:", "2019-02-30"});
  expect_data_error([] { load_news_stream(fx("news_unsorted.tsv")); },
                    {"news_unsorted.tsv:2:", "2019-03-01", "comes after", "line 1"});
  expect_data_error([] { load_news_stream(fx("news_no_tab.tsv")); }, {"news_no_tab.tsv:2:", "no tab"});
  expect_data_error([] { load_news_stream(fx("news_empty_text.tsv")); }, {"news_empty_text.tsv:2:", "empty article"});
  // Unsorted input is accepted when asked, grouped by date, file order kept within a date.
  const auto days = load_news_stream(fx("news_unsorted.tsv"), {false});
  ASSERT_EQ(days.size(), 2u);
  EXPECT_EQ(days[0].articles[0].text, "earlier");
  EXPECT_EQ(days[1].articles[1].text, "later again");
}
