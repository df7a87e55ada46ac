// Tests for dysra/data/corpora.h on fixture snippets in the packages' on-disk formats
// (tests/fixtures/corpora/pkgroot; binary ones written by make_fixtures.py there).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dysra/core/error.h"
#include "dysra/data/corpora.h"

namespace dd = dysra::data;
namespace fs = std::filesystem;

namespace {
const std::string kRoot = std::string(DYSRA_SOURCE_DIR) + "/tests/fixtures/corpora/pkgroot";

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("dysra_test_corpora_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string write_temp(const fs::path& dir, const std::string& name, const std::string& text) {
  const fs::path p = dir / name;
  std::ofstream(p) << text;
  return p.string();
}

std::vector<nlohmann::json> read_jsonl(const fs::path& p) {
  std::ifstream in(p);
  EXPECT_TRUE(in.good()) << p;
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const dysra::DataError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Corpora, WordNetDataFile) {
  const auto s = dd::read_wordnet_data(kRoot + "/usr/share/wordnet/data.noun");
  ASSERT_EQ(s.size(), 4u);  // licence header skipped
  const auto& dog = s[2];
  EXPECT_EQ(dog.id, "wn-n-02084071");
  EXPECT_EQ(dog.lexfile, 5);
  EXPECT_EQ(dog.lemmas, (std::vector<std::string>{"dog", "domestic dog", "Canis familiaris"}));
  EXPECT_EQ(dog.hypernyms(), std::vector<std::string>{"wn-n-02083346"});
  EXPECT_EQ(dog.definition,
            "a member of the genus Canis (probably descended from the common wolf) that has been domesticated by "
            "man since prehistoric times; occurs in many breeds");
  EXPECT_EQ(dog.examples, std::vector<std::string>{"the dog barked all night"});
  EXPECT_EQ(s[3].examples.size(), 2u);
  const auto adj = dd::read_wordnet_data(kRoot + "/usr/share/wordnet/data.adj");
  ASSERT_EQ(adj.size(), 2u);
  EXPECT_EQ(adj[1].lemmas, std::vector<std::string>{"unable"});  // "(p)" marker removed
  EXPECT_EQ(adj[1].pos, 's');
  EXPECT_EQ(adj[1].id, "wn-a-00002098");
}

TEST(Corpora, WordNetMalformedNamesFileAndLine) {
  const auto dir = temp_dir("wn");
  const auto p = write_temp(dir, "data.noun", "  1 header\n00001740 03 n 0x entity 0 000 | gloss\n");
  EXPECT_NE(error_of([&] { dd::read_wordnet_data(p); }).find("data.noun:2: bad word count"), std::string::npos);
  const auto q = write_temp(dir, "data.verb", "00001740 03 v 02 run 0 | gloss\n");
  EXPECT_NE(error_of([&] { dd::read_wordnet_data(q); }).find("data.verb:1:"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Corpora, DictdBase64AndEntries) {
  EXPECT_EQ(dd::dictd_b64("A"), 0u);
  EXPECT_EQ(dd::dictd_b64("B"), 1u);
  EXPECT_EQ(dd::dictd_b64("BA"), 64u);
  EXPECT_EQ(dd::dictd_b64("/"), 63u);
  EXPECT_EQ(dd::dictd_b64("5I"), 57u * 64 + 8);
  EXPECT_THROW(dd::dictd_b64("a*"), dysra::DataError);
  const auto e = dd::read_dictd(kRoot + "/usr/share/dictd/gcide.index", kRoot + "/usr/share/dictd/gcide.dict.dz");
  ASSERT_EQ(e.size(), 3u);  // database info skipped, duplicate (offset, length) merged
  EXPECT_EQ(e[0].headword, "Apple");
  EXPECT_EQ(e[0].body, "Apple \\Ap\"ple\\, n.\n   The fleshy pome or fruit of a rosaceous tree.\n");
  EXPECT_EQ(e[2].headword, "Candle");
  // An index entry past the end of the dictionary is an error naming the index line.
  const auto dir = temp_dir("dict");
  const auto idx = write_temp(dir, "x.index", "Apple\tA\tB\nBig\tBA\tZ\n");
  const auto dict = write_temp(dir, "x.dict", "AB");
  EXPECT_NE(error_of([&] { dd::read_dictd(idx, dict); }).find("x.index:2"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Corpora, KjvVerses) {
  const auto v = dd::read_kjv(kRoot + "/kjv.txt");
  ASSERT_EQ(v.size(), 7u);
  EXPECT_EQ(v[0].key, "Ge1:1");
  EXPECT_EQ(v[0].book, "Ge");
  EXPECT_EQ(v[5].book, "1Sm");
  EXPECT_EQ(v[5].chapter, 3);
  EXPECT_EQ(v[5].verse, 10);
  EXPECT_EQ(v[6].text, "The grace of our Lord Jesus Christ be with you all. Amen.");
  const auto dir = temp_dir("kjv");
  const auto p = write_temp(dir, "kjv.txt", "Ge1:1 ok\nnot a verse\n");
  EXPECT_NE(error_of([&] { dd::read_kjv(p); }).find("kjv.txt:2"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Corpora, PodSectionsAndCodes) {
  EXPECT_EQ(dd::strip_pod_codes("Use C<reverse()> and L<Text::Soundex>, C<< $a <=> $b >>, E<lt>xE<gt>, "
                                "L<the docs|perlfunc/reverse>, B<I<nested>>."),
            "Use reverse() and Text::Soundex, $a <=> $b, <x>, the docs, nested.");
  const auto s = dd::read_pod_sections(kRoot + "/usr/share/perl/5.36.0/pod/perlfaq4.pod");
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[2].level, 2);
  EXPECT_EQ(s[2].heading, "How do I find the soundex value of a string?");
  EXPECT_NE(s[2].body.find("L<Text::Soundex>"), std::string::npos);
  EXPECT_EQ(s[3].body.find("=cut"), std::string::npos);
}

TEST(Corpora, RLazyLoadNovels) {
  const std::string d = kRoot + "/usr/lib/R/site-library/janeaustenr/data/";
  const auto objs = dd::read_r_lazyload_strings(d + "Rdata.rdx", d + "Rdata.rdb");
  ASSERT_EQ(objs.size(), 6u);
  const auto& emma = objs.at("emma");
  EXPECT_EQ(emma[0], "EMMA");
  EXPECT_EQ(emma[1], "");  // NA
  const auto nv = dd::parse_novel("emma", emma);
  ASSERT_EQ(nv.chapters.size(), 3u);
  EXPECT_EQ(nv.title, "Emma");
  EXPECT_EQ(nv.chapters[0].label, "Volume I, Chapter 1");
  EXPECT_EQ(nv.chapters[2].label, "Volume II, Chapter 1");
  EXPECT_EQ(nv.chapters[2].id, "austen/emma/v2c1");
  EXPECT_EQ(nv.chapters[0].paragraphs.size(), 3u);
  // Restarted numbering without VOLUME lines still gives distinct chapters.
  const auto mp = dd::parse_novel("mansfieldpark", objs.at("mansfieldpark"));
  ASSERT_EQ(mp.chapters.size(), 3u);
  EXPECT_EQ(mp.chapters[0].label, "Volume I, Chapter 1");
  EXPECT_EQ(mp.chapters[2].label, "Volume II, Chapter 1");
  const auto pp = dd::parse_novel("prideprejudice", objs.at("prideprejudice"));
  EXPECT_EQ(pp.chapters[1].label, "Chapter 2");
  // Corrupt record: a clear error naming the file.
  const auto dir = temp_dir("rdb");
  fs::copy_file(d + "Rdata.rdx", dir / "Rdata.rdx");
  write_temp(dir, "Rdata.rdb", std::string(4000, 'x'));
  EXPECT_NE(error_of([&] { dd::read_r_lazyload_strings((dir / "Rdata.rdx").string(), (dir / "Rdata.rdb").string()); })
                .find("Rdata.rdb"),
            std::string::npos);
  EXPECT_THROW(dd::parse_novel("x", {"no chapters here"}), dysra::DataError);
  fs::remove_all(dir);
}

TEST(Corpora, BuildFromFixturePackages) {
  const auto out = temp_dir("build");
  dd::CorporaOptions o;
  o.pkgroot = kRoot;
  o.out_dir = out.string();
  o.wordnet_haystack_size = 3;
  o.austen_needles_per_novel = 2;
  o.dev_fraction = 0;
  o.test_fraction = 1;  // everything in test.jsonl, to check every item
  const auto counts = dd::build_corpora(o);
  EXPECT_EQ(counts.at("corpus/wordnet"), 8u);
  EXPECT_EQ(counts.at("corpus/kjv"), 7u);
  EXPECT_EQ(counts.at("perlfaq/test"), 2u);
  EXPECT_EQ(counts.at("lm/gcide/train") + counts.at("lm/gcide/validation") + counts.at("lm/gcide/test"), 3u);
  EXPECT_EQ(counts.at("corpus/austen"), 15u);
  EXPECT_EQ(counts.at("austen_needle/test"), 12u);
  // KJV reverse excludes the duplicated Psalm text.
  EXPECT_EQ(counts.at("kjv_lookup/test"), 7u);
  EXPECT_EQ(counts.at("kjv_reverse/test"), 5u);
  // Every gold document exists in its corpus and holds the answer where the task is extractive.
  std::map<std::string, std::map<std::string, std::string>> corpora;
  for (const char* c : {"wordnet", "kjv", "austen", "austen_needle", "perl_pod"})
    for (const auto& j : read_jsonl(out / "corpora" / (std::string(c) + ".jsonl")))
      corpora["corpora/" + std::string(c) + ".jsonl"][j["id"]] = j["contents"];
  for (const char* task : {"wordnet_define", "wordnet_reverse", "wordnet_cloze", "wordnet_hypernym", "kjv_lookup",
                           "kjv_reverse", "perlfaq", "austen_locate", "austen_first_mention", "austen_needle"}) {
    const auto qs = read_jsonl(out / task / "test.jsonl");
    EXPECT_FALSE(qs.empty()) << task;
    for (const auto& q : qs) {
      const auto& docs = corpora.at(q["metadata"]["corpus"]);
      for (const auto& g : q["metadata"]["gold_doc_ids"]) EXPECT_TRUE(docs.count(g)) << task << " " << g;
      const std::string gold = q["metadata"]["gold_doc_ids"][0];
      const std::string ans = q["golden_answers"][0];
      if (std::string(task) == "wordnet_define" || std::string(task) == "kjv_lookup" ||
          std::string(task) == "austen_needle") {
        EXPECT_NE(docs.at(gold).find(ans), std::string::npos) << task << ": " << ans;
      }
    }
  }
  // WordNet: define only for monosemous single words; hypernym needs the second entry.
  const auto hyp = read_jsonl(out / "wordnet_hypernym/test.jsonl");
  bool saw_dog = false;
  for (const auto& q : hyp)
    if (q["question"] == "In the dictionary, \"dog\" is a kind of what?") {
      saw_dog = true;
      EXPECT_EQ(q["golden_answers"], nlohmann::json({"canine", "canid"}));
      EXPECT_EQ(q["metadata"]["gold_doc_ids"], nlohmann::json({"wn-n-02084071", "wn-n-02083346"}));
    }
  EXPECT_TRUE(saw_dog);
  EXPECT_EQ(corpora["corpora/wordnet.jsonl"]["wn-n-01322604"],
            "[wn-n-01322604] puppy (noun): a young dog; kind of: [wn-n-02084071]");
  // Haystacks hold every question's gold documents.
  std::map<std::string, std::set<std::string>> hay;
  for (const auto& h : read_jsonl(out / "wordnet/haystacks.jsonl"))
    for (const auto& id : h["doc_ids"]) hay[h["id"]].insert(id);
  for (const auto& q : hyp)
    for (const auto& g : q["metadata"]["gold_doc_ids"]) EXPECT_TRUE(hay[q["metadata"]["haystack_id"]].count(g));
  // Cloze: the blank replaces the lemma, which the corpus entry does not quote.
  for (const auto& q : read_jsonl(out / "wordnet_cloze/test.jsonl"))
    EXPECT_NE(q["question"].get<std::string>().find("___"), std::string::npos);
  // Austen: first mention of Wickham is chapter 2; needles sit at their recorded offsets.
  bool saw_wickham = false;
  for (const auto& q : read_jsonl(out / "austen_first_mention/test.jsonl"))
    if (q["metadata"]["name"] == "Wickham") {
      saw_wickham = true;
      EXPECT_EQ(q["golden_answers"][0], "Chapter 2");
    }
  EXPECT_TRUE(saw_wickham);
  for (const auto& q : read_jsonl(out / "austen_needle/test.jsonl")) {
    const std::string text = corpora["corpora/austen_needle.jsonl"][q["metadata"]["gold_doc_ids"][0]];
    const std::string needle = q["metadata"]["needle"];
    EXPECT_EQ(text.compare(q["metadata"]["needle_char_offset"].get<size_t>(), needle.size(), needle), 0);
  }
  for (const auto& q : read_jsonl(out / "austen_locate/test.jsonl")) {
    const std::string qs = q["question"];
    const std::string sent = qs.substr(qs.find(": \"") + 3, qs.size() - qs.find(": \"") - 5);
    EXPECT_NE(corpora["corpora/austen.jsonl"][q["metadata"]["gold_doc_ids"][0]].find(sent), std::string::npos);
  }
  // perlfaq: gold section holds the answer but not the question.
  for (const auto& q : read_jsonl(out / "perlfaq/test.jsonl")) {
    const std::string doc = corpora["corpora/perl_pod.jsonl"][q["golden_answers"][0]];
    EXPECT_EQ(doc.find(q["question"].get<std::string>()), std::string::npos);
    if (q["question"] == "How do I find the soundex value of a string?") {
      EXPECT_EQ(q["metadata"]["key_phrases"], nlohmann::json({"Text::Soundex"}));
    }
  }
  // Deterministic: a second build gives identical files.
  const auto out2 = temp_dir("build2");
  o.out_dir = out2.string();
  dd::build_corpora(o);
  for (const char* f : {"wordnet_define/test.jsonl", "austen_needle/test.jsonl", "lm/gcide/train.jsonl"}) {
    std::ifstream a(out / f), b(out2 / f);
    std::stringstream sa, sb;
    sa << a.rdbuf();
    sb << b.rdbuf();
    EXPECT_EQ(sa.str(), sb.str()) << f;
  }
  fs::remove_all(out);
  fs::remove_all(out2);
}

TEST(Corpora, MissingPackagesAndBadOptions) {
  dd::CorporaOptions o;
  o.pkgroot = "/nonexistent/pkgroot";
  o.out_dir = temp_dir("missing").string();
  o.only = {"kjv"};
  EXPECT_NE(error_of([&] { dd::build_corpora(o); }).find("/nonexistent/pkgroot/kjv.txt"), std::string::npos);
  o.only = {"bible"};
  EXPECT_THROW(dd::build_corpora(o), dysra::ConfigError);
  fs::remove_all(o.out_dir);
}
