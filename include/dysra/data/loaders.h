// dysra/data/loaders.h — loaders for the public datasets, each in its published file format.
//
// Every loader reads the whole file or throws dysra::DataError "file:line: what is wrong" (bad JSON, missing
// field, wrong type, out-of-range span, bad date); a file is never half-loaded and no record is skipped.
// For whole-file JSON (HotpotQA, GovReport) the line is where the offending array element starts.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "dysra/data/jsonl.h"

namespace dysra::data {

// ---- Natural Questions (simplified jsonl: simplified-nq-train.jsonl, Kwiatkowski et al. 2019) -----------------
// One object per line: example_id (int or str), question_text, document_text (the page as space-separated tokens,
// HTML tags included), optional document_url, long_answer_candidates, annotations: [{yes_no_answer:
// "NONE"|"YES"|"NO", long_answer {start_token, end_token, candidate_index}, short_answers [{start_token,
// end_token}]}]. (The test file has no annotations: the example then has no answers.)
// golden_answers = distinct short answers in annotation order (document tokens [start, end) joined by ' '),
// "yes"/"no" for yes/no annotations. contexts = one Document (id = example_id, title = document_title if present,
// text = document tokens, HTML tags removed when strip_html); gold_doc_ids = {example_id} when answered.
// metadata: "long_answer" (text of the first annotated long answer), "document_url".
struct NaturalQuestionsOptions {
  bool strip_html = true;  ///< drop tokens that look like HTML tags ("<P>", "</Td>") from answers and context
};
std::vector<QAExample> load_natural_questions(const std::string& path, const NaturalQuestionsOptions& options = {});

// ---- HotpotQA (hotpot_dev_distractor_v1.json etc.: one JSON array) -------------------------------------------
// Elements: {_id, question, answer, supporting_facts: [[title, sent_id]], context: [[title, [sentences]]],
// type, level}. answer/supporting_facts/type/level are optional (the test set has none); when present they
// must be well-typed, and every supporting fact must name a context title and a sentence index >= 0 (not
// checked against the paragraph length: the released files have a few facts one past the last sentence).
// contexts = one Document per paragraph (id = "<_id>/<paragraph index>", title, text = sentences concatenated
// as in the original: "".join(sentences)); gold_doc_ids = ids of the paragraphs holding supporting facts.
// metadata: "type", "level", "supporting_facts" (RawJson).
std::vector<QAExample> load_hotpotqa(const std::string& path);

// ---- ELI5 (the Hugging Face `eli5` dataset exported to JSONL) ------------------------------------------------
// One object per line: q_id, title, selftext, answers {a_id: [...], text: [...], score: [...]} (parallel lists of
// equal length); optional subreddit, document. question = title (+ "\n" + selftext when append_selftext and
// selftext is non-empty); golden_answers = answers.text. metadata: "selftext", "subreddit", "answer_scores"
// (RawJson), "answer_ids" (RawJson).
struct Eli5Options {
  bool append_selftext = false;
};
std::vector<QAExample> load_eli5(const std::string& path, const Eli5Options& options = {});

// ---- Summarization ------------------------------------------------------------------------------------------
struct SummarizationExample {
  std::string id;
  std::string document;  ///< sentences / paragraphs joined by '\n'
  std::string summary;   ///< sentences / paragraphs joined by '\n' (ready for ROUGE-Lsum)
  Metadata metadata;
};

/// arXiv / PubMed of Cohan et al. 2018 (train.txt, val.txt, test.txt: one JSON object per line):
/// article_id, article_text [sentences], abstract_text [sentences wrapped as "<S> ... </S>"], optional
/// section_names, sections, labels. The <S>/</S> tags are removed and each sentence trimmed.
/// metadata: "section_names" (RawJson) when present.
std::vector<SummarizationExample> load_arxiv_summarization(const std::string& path);

/// GovReport (Huang et al. 2021, gov-report/{crs,gao}/<id>.json; layout as read by tfds gov_report):
///  CRS: {id, title, released_date, reports: SECTION, summary: [paragraphs]}
///  GAO: {id, url, title, released_date, published_date, fastfact: [..], report: [SECTION], highlight: [SECTION]}
///  SECTION = {section_title, paragraphs: [str], subsections: [SECTION]}.
/// document = section titles and paragraphs depth-first, one per line (empty titles skipped); summary = the CRS
/// summary paragraphs, or the paragraphs of every GAO highlight section. metadata: "subset" ("crs"|"gao"),
/// "title", "released_date".
SummarizationExample load_govreport_file(const std::string& path);
/// All reports of a split: reads <root>/split_ids/<subset>_<split>.ids (one id a line) and
/// <root>/<subset>/<id>.json. subset "crs"|"gao", split "train"|"valid"|"test".
std::vector<SummarizationExample> load_govreport_split(const std::string& root, const std::string& subset,
                                                       const std::string& split);
/// The flattened JSONL form (e.g. the Hugging Face ccdv/govreport-summarization export): {report: str,
/// summary: str, optional id}. Missing ids become "<line number>".
std::vector<SummarizationExample> load_govreport_jsonl(const std::string& path);

// ---- Timestamped news stream ---------------------------------------------------------------------------------
// A UTF-8 text file, one article per line:  YYYY-MM-DD <TAB> article text
// (News Crawl's per-year files turned into this form by prefixing each article's date). The date must be a
// valid Gregorian date; the text must be non-empty and may not contain a newline; further tabs belong to the
// text. Lines must be grouped by date in non-decreasing order (unless require_sorted = false, when articles are
// grouped by date in order of the dates). Blank lines are errors (a final newline is fine); "\r\n" accepted.
struct NewsArticle {
  std::string id;    ///< "<date>/<ordinal within the date>", e.g. "2019-03-01/0"
  std::string date;  ///< "YYYY-MM-DD"
  int64_t day = 0;   ///< days since 1970-01-01
  int64_t line = 0;  ///< 1-based line in the file
  std::string text;
};
struct NewsDay {
  std::string date;
  int64_t day = 0;
  std::vector<NewsArticle> articles;  ///< file order
};
struct NewsStreamOptions {
  bool require_sorted = true;
};
std::vector<NewsDay> load_news_stream(const std::string& path, const NewsStreamOptions& options = {});

/// Days since 1970-01-01 of a proleptic Gregorian date; throws dysra::Error for an invalid date.
int64_t days_from_civil(int64_t year, int64_t month, int64_t day);

}  // namespace dysra::data
