// src/data/loaders.cpp — Natural Questions, HotpotQA, ELI5, arXiv, GovReport and news-stream loaders.
#include "dysra/data/loaders.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "dysra/core/error.h"

namespace dysra::data {
namespace json_detail {  // defined in jsonl.cpp
using nlohmann::json;
struct JsonCtx {
  std::string file;
  int64_t line = 0;
  std::string where;
};
[[noreturn]] void data_error(const JsonCtx& c, const std::string& msg);
const json& field(const json& obj, const std::string& key, const JsonCtx& c);
const json* optional_field(const json& obj, const std::string& key, const JsonCtx& c);
std::string as_string(const json& v, const std::string& what, const JsonCtx& c);
std::string as_id(const json& v, const std::string& what, const JsonCtx& c);
int64_t as_int(const json& v, const std::string& what, const JsonCtx& c);
const json& as_array(const json& v, const std::string& what, const JsonCtx& c);
std::vector<std::string> as_string_list(const json& v, const std::string& what, const JsonCtx& c);
void for_each_line(const std::string& path, const std::function<void(int64_t, const std::string&)>& fn);
void for_each_jsonl(const std::string& path, const std::function<void(const json&, const JsonCtx&)>& fn);
json parse_json_file(const std::string& path, std::string* text_out);
std::vector<int64_t> top_level_element_lines(const std::string& text);
std::string read_text_file(const std::string& path);
}  // namespace json_detail

using namespace json_detail;

namespace {

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool is_html_token(const std::string& t) { return t.size() >= 2 && t.front() == '<' && t.back() == '>'; }

std::vector<std::string> split_spaces(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

void push_unique(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

}  // namespace

// ---- Natural Questions ---------------------------------------------------------------------------------------

std::vector<QAExample> load_natural_questions(const std::string& path, const NaturalQuestionsOptions& options) {
  std::vector<QAExample> out;
  for_each_jsonl(path, [&](const json& v, const JsonCtx& c) {
    QAExample ex;
    ex.id = as_id(field(v, "example_id", c), "example_id", c);
    ex.question = as_string(field(v, "question_text", c), "question_text", c);
    const std::vector<std::string> tokens = split_spaces(as_string(field(v, "document_text", c), "document_text", c));
    const int64_t n = static_cast<int64_t>(tokens.size());
    auto span_text = [&](int64_t b, int64_t e) {
      std::vector<std::string> kept;
      for (int64_t i = b; i < e; ++i)
        if (!options.strip_html || !is_html_token(tokens[i])) kept.push_back(tokens[i]);
      return join(kept, " ");
    };
    auto check_span = [&](const json& sp, const JsonCtx& ci) {
      const int64_t b = as_int(field(sp, "start_token", ci), "start_token", ci);
      const int64_t e = as_int(field(sp, "end_token", ci), "end_token", ci);
      if (!(0 <= b && b <= e && e <= n))
        data_error(ci, "token span [" + std::to_string(b) + ", " + std::to_string(e) + ") is outside the document (" +
                           std::to_string(n) + " tokens)");
      return std::make_pair(b, e);
    };
    bool have_long = false;
    if (const json* anns = optional_field(v, "annotations", c)) {
      as_array(*anns, "annotations", c);
      for (size_t a = 0; a < anns->size(); ++a) {
        const json& ann = (*anns)[a];
        JsonCtx ca{c.file, c.line, "annotations[" + std::to_string(a) + "]"};
        if (const json* yn = optional_field(ann, "yes_no_answer", ca)) {
          const std::string y = as_string(*yn, "yes_no_answer", ca);
          if (y == "YES") push_unique(ex.golden_answers, "yes");
          else if (y == "NO") push_unique(ex.golden_answers, "no");
          else if (y != "NONE") data_error(ca, "yes_no_answer must be NONE, YES or NO, got '" + y + "'");
        }
        const json& shorts = as_array(field(ann, "short_answers", ca), "short_answers", ca);
        for (size_t s = 0; s < shorts.size(); ++s) {
          JsonCtx cs{c.file, c.line, ca.where + ".short_answers[" + std::to_string(s) + "]"};
          const auto [b, e] = check_span(shorts[s], cs);
          const std::string t = span_text(b, e);
          if (!t.empty()) push_unique(ex.golden_answers, t);
        }
        if (const json* la = optional_field(ann, "long_answer", ca)) {
          JsonCtx cl{c.file, c.line, ca.where + ".long_answer"};
          const int64_t b = as_int(field(*la, "start_token", cl), "start_token", cl);
          if (b >= 0) {  // -1 marks "no long answer"
            const auto [lb, le] = check_span(*la, cl);
            if (!have_long) ex.metadata["long_answer"] = span_text(lb, le);
            have_long = true;
          }
        }
      }
    }
    Document d;
    d.id = ex.id;
    if (const json* t = optional_field(v, "document_title", c)) d.title = as_string(*t, "document_title", c);
    d.text = span_text(0, n);
    ex.contexts.push_back(std::move(d));
    if (!ex.golden_answers.empty() || have_long) ex.gold_doc_ids.push_back(ex.id);
    if (const json* u = optional_field(v, "document_url", c)) ex.metadata["document_url"] = as_string(*u, "document_url", c);
    out.push_back(std::move(ex));
  });
  return out;
}

// ---- HotpotQA ------------------------------------------------------------------------------------------------

std::vector<QAExample> load_hotpotqa(const std::string& path) {
  std::string text;
  const json root = parse_json_file(path, &text);
  if (!root.is_array()) data_error({path, 1, ""}, std::string("expected a JSON array of examples, got ") + root.type_name());
  const std::vector<int64_t> lines = top_level_element_lines(text);
  std::vector<QAExample> out;
  out.reserve(root.size());
  for (size_t i = 0; i < root.size(); ++i) {
    const json& v = root[i];
    const JsonCtx c{path, i < lines.size() ? lines[i] : 1, "element " + std::to_string(i)};
    QAExample ex;
    ex.id = as_id(field(v, "_id", c), "_id", c);
    ex.question = as_string(field(v, "question", c), "question", c);
    if (const json* a = optional_field(v, "answer", c)) ex.golden_answers.push_back(as_string(*a, "answer", c));
    const json& ctx = as_array(field(v, "context", c), "context", c);
    std::map<std::string, size_t> title_index;
    std::vector<size_t> n_sents;
    for (size_t p = 0; p < ctx.size(); ++p) {
      const std::string w = "context[" + std::to_string(p) + "]";
      if (!ctx[p].is_array() || ctx[p].size() != 2)
        data_error(c, w + " must be [title, [sentences]]");
      Document d;
      d.id = ex.id + "/" + std::to_string(p);
      d.title = as_string(ctx[p][0], w + "[0]", c);
      const std::vector<std::string> sents = as_string_list(ctx[p][1], w + "[1]", c);
      d.text = join(sents, "");
      title_index.emplace(d.title, p);
      n_sents.push_back(sents.size());
      ex.contexts.push_back(std::move(d));
    }
    if (const json* sf = optional_field(v, "supporting_facts", c)) {
      as_array(*sf, "supporting_facts", c);
      std::set<size_t> gold;
      for (size_t k = 0; k < sf->size(); ++k) {
        const std::string w = "supporting_facts[" + std::to_string(k) + "]";
        const json& f = (*sf)[k];
        if (!f.is_array() || f.size() != 2) data_error(c, w + " must be [title, sentence index]");
        const std::string title = as_string(f[0], w + "[0]", c);
        const int64_t sid = as_int(f[1], w + "[1]", c);
        auto it = title_index.find(title);
        if (it == title_index.end()) data_error(c, w + ": title '" + title + "' is not in the context");
        // HotpotQA's own data has a few facts pointing one past the last sentence; the index must be >= 0.
        if (sid < 0) data_error(c, w + ": negative sentence index " + std::to_string(sid));
        gold.insert(it->second);
      }
      for (size_t p : gold) ex.gold_doc_ids.push_back(ex.contexts[p].id);
      ex.metadata["supporting_facts"] = RawJson{sf->dump()};
    }
    if (const json* t = optional_field(v, "type", c)) ex.metadata["type"] = as_string(*t, "type", c);
    if (const json* l = optional_field(v, "level", c)) ex.metadata["level"] = as_string(*l, "level", c);
    out.push_back(std::move(ex));
  }
  return out;
}

// ---- ELI5 ----------------------------------------------------------------------------------------------------

std::vector<QAExample> load_eli5(const std::string& path, const Eli5Options& options) {
  std::vector<QAExample> out;
  for_each_jsonl(path, [&](const json& v, const JsonCtx& c) {
    QAExample ex;
    ex.id = as_id(field(v, "q_id", c), "q_id", c);
    const std::string title = as_string(field(v, "title", c), "title", c);
    const std::string selftext = as_string(field(v, "selftext", c), "selftext", c);
    ex.question = (options.append_selftext && !selftext.empty()) ? title + "\n" + selftext : title;
    const json& answers = field(v, "answers", c);
    if (!answers.is_object()) data_error(c, std::string("field 'answers' must be an object, got ") + answers.type_name());
    const JsonCtx ca{c.file, c.line, "answers"};
    ex.golden_answers = as_string_list(field(answers, "text", ca), "text", ca);
    const json& ids = as_array(field(answers, "a_id", ca), "a_id", ca);
    const json& scores = as_array(field(answers, "score", ca), "score", ca);
    if (ids.size() != ex.golden_answers.size() || scores.size() != ex.golden_answers.size())
      data_error(ca, "a_id, text and score must have the same length (got " + std::to_string(ids.size()) + ", " +
                         std::to_string(ex.golden_answers.size()) + ", " + std::to_string(scores.size()) + ")");
    for (size_t i = 0; i < scores.size(); ++i) as_int(scores[i], "score[" + std::to_string(i) + "]", ca);
    ex.metadata["selftext"] = selftext;
    if (const json* s = optional_field(v, "subreddit", c)) ex.metadata["subreddit"] = as_string(*s, "subreddit", c);
    ex.metadata["answer_scores"] = RawJson{scores.dump()};
    ex.metadata["answer_ids"] = RawJson{ids.dump()};
    out.push_back(std::move(ex));
  });
  return out;
}

// ---- arXiv / PubMed ------------------------------------------------------------------------------------------

std::vector<SummarizationExample> load_arxiv_summarization(const std::string& path) {
  std::vector<SummarizationExample> out;
  for_each_jsonl(path, [&](const json& v, const JsonCtx& c) {
    SummarizationExample ex;
    ex.id = as_id(field(v, "article_id", c), "article_id", c);
    ex.document = join(as_string_list(field(v, "article_text", c), "article_text", c), "\n");
    std::vector<std::string> abs = as_string_list(field(v, "abstract_text", c), "abstract_text", c);
    for (auto& s : abs) {
      s = trim(s);
      if (s.rfind("<S>", 0) == 0) s = s.substr(3);
      if (s.size() >= 4 && s.compare(s.size() - 4, 4, "</S>") == 0) s = s.substr(0, s.size() - 4);
      s = trim(s);
    }
    ex.summary = join(abs, "\n");
    if (const json* sn = optional_field(v, "section_names", c)) {
      as_string_list(*sn, "section_names", c);
      ex.metadata["section_names"] = RawJson{sn->dump()};
    }
    out.push_back(std::move(ex));
  });
  return out;
}

// ---- GovReport -----------------------------------------------------------------------------------------------

namespace {

void flatten_section(const json& s, const std::string& where, const JsonCtx& c, std::vector<std::string>& lines,
                     int depth = 0) {
  DYSRA_CHECK_T(DataError, depth < 64, c.file, ": ", where, ": sections nested deeper than 64 levels");
  if (!s.is_object()) data_error(c, where + " must be a section object, got " + s.type_name());
  const JsonCtx cs{c.file, c.line, where};
  const std::string title = trim(as_string(field(s, "section_title", cs), "section_title", cs));
  if (!title.empty()) lines.push_back(title);
  for (const auto& p : as_string_list(field(s, "paragraphs", cs), "paragraphs", cs)) lines.push_back(p);
  const json& subs = as_array(field(s, "subsections", cs), "subsections", cs);
  for (size_t i = 0; i < subs.size(); ++i)
    flatten_section(subs[i], where + ".subsections[" + std::to_string(i) + "]", c, lines, depth + 1);
}

}  // namespace

SummarizationExample load_govreport_file(const std::string& path) {
  const json v = parse_json_file(path, nullptr);
  const JsonCtx c{path, 1, ""};
  SummarizationExample ex;
  ex.id = as_id(field(v, "id", c), "id", c);
  std::vector<std::string> doc, sum;
  if (v.is_object() && v.contains("reports")) {  // CRS
    flatten_section(field(v, "reports", c), "reports", c, doc);
    sum = as_string_list(field(v, "summary", c), "summary", c);
    ex.metadata["subset"] = std::string("crs");
  } else if (v.is_object() && v.contains("report")) {  // GAO
    const json& rep = as_array(field(v, "report", c), "report", c);
    for (size_t i = 0; i < rep.size(); ++i) flatten_section(rep[i], "report[" + std::to_string(i) + "]", c, doc);
    const json& hl = as_array(field(v, "highlight", c), "highlight", c);
    for (size_t i = 0; i < hl.size(); ++i) {
      const JsonCtx ch{path, 1, "highlight[" + std::to_string(i) + "]"};
      for (const auto& p : as_string_list(field(hl[i], "paragraphs", ch), "paragraphs", ch)) sum.push_back(p);
    }
    ex.metadata["subset"] = std::string("gao");
  } else {
    data_error(c, "neither a CRS report (field 'reports') nor a GAO report (field 'report')");
  }
  if (const json* t = optional_field(v, "title", c)) ex.metadata["title"] = as_string(*t, "title", c);
  if (const json* d = optional_field(v, "released_date", c)) ex.metadata["released_date"] = as_string(*d, "released_date", c);
  ex.document = join(doc, "\n");
  ex.summary = join(sum, "\n");
  return ex;
}

std::vector<SummarizationExample> load_govreport_split(const std::string& root, const std::string& subset,
                                                       const std::string& split) {
  DYSRA_CHECK_T(ConfigError, subset == "crs" || subset == "gao", "load_govreport_split: subset '", subset,
                "' (known: crs, gao)");
  DYSRA_CHECK_T(ConfigError, split == "train" || split == "valid" || split == "test", "load_govreport_split: split '",
                split, "' (known: train, valid, test)");
  const std::string ids_path = root + "/split_ids/" + subset + "_" + split + ".ids";
  std::vector<SummarizationExample> out;
  for_each_line(ids_path, [&](int64_t line, const std::string& id) {
    const std::string file = root + "/" + subset + "/" + trim(id) + ".json";
    DYSRA_CHECK_T(DataError, std::filesystem::is_regular_file(file), ids_path, ":", line, ": report file '", file,
                  "' does not exist");
    out.push_back(load_govreport_file(file));
  });
  return out;
}

std::vector<SummarizationExample> load_govreport_jsonl(const std::string& path) {
  std::vector<SummarizationExample> out;
  for_each_jsonl(path, [&](const json& v, const JsonCtx& c) {
    SummarizationExample ex;
    const json* id = optional_field(v, "id", c);
    ex.id = id ? as_id(*id, "id", c) : std::to_string(c.line);
    ex.document = as_string(field(v, "report", c), "report", c);
    ex.summary = as_string(field(v, "summary", c), "summary", c);
    out.push_back(std::move(ex));
  });
  return out;
}

// ---- news stream ---------------------------------------------------------------------------------------------

int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  DYSRA_CHECK(m >= 1 && m <= 12, "invalid month ", m);
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  const int dim = kDays[m - 1] + (m == 2 && leap ? 1 : 0);
  DYSRA_CHECK(d >= 1 && d <= dim, "invalid day ", d, " for month ", m, " of ", y);
  // Howard Hinnant's days_from_civil.
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

std::vector<NewsDay> load_news_stream(const std::string& path, const NewsStreamOptions& options) {
  std::vector<NewsArticle> articles;
  for_each_line(path, [&](int64_t line_no, const std::string& line) {
    auto fail = [&](const std::string& msg) { throw DataError(path + ":" + std::to_string(line_no) + ": " + msg); };
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) fail("expected 'YYYY-MM-DD<TAB>text', found no tab");
    const std::string date = line.substr(0, tab);
    const bool shape = date.size() == 10 && date[4] == '-' && date[7] == '-' &&
                       std::all_of(date.begin(), date.end(), [](char ch) { return ch == '-' || (ch >= '0' && ch <= '9'); });
    if (!shape) fail("date '" + date + "' is not YYYY-MM-DD");
    NewsArticle a;
    try {
      a.day = days_from_civil(std::stoll(date.substr(0, 4)), std::stoll(date.substr(5, 2)), std::stoll(date.substr(8, 2)));
    } catch (const Error& e) {
      fail("date '" + date + "': " + e.what());
    }
    a.date = date;
    a.text = line.substr(tab + 1);
    if (trim(a.text).empty()) fail("empty article text");
    a.line = line_no;
    if (options.require_sorted && !articles.empty() && a.day < articles.back().day)
      fail("date " + date + " comes after " + articles.back().date + " (line " + std::to_string(articles.back().line) +
           "); the stream must be grouped by date in increasing order");
    articles.push_back(std::move(a));
  });
  std::stable_sort(articles.begin(), articles.end(),
                   [](const NewsArticle& x, const NewsArticle& y) { return x.day < y.day; });
  std::vector<NewsDay> days;
  for (auto& a : articles) {
    if (days.empty() || days.back().day != a.day) days.push_back({a.date, a.day, {}});
    a.id = a.date + "/" + std::to_string(days.back().articles.size());
    days.back().articles.push_back(std::move(a));
  }
  return days;
}

}  // namespace dysra::data
