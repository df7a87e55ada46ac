// src/data/jsonl.cpp — FlashRAG JSONL read/write, and the JSON field helpers the dataset loaders share
// (namespace dysra::data::json_detail, declared again at the top of loaders.cpp; nlohmann stays out of headers).
#include "dysra/data/jsonl.h"

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "dysra/core/error.h"

namespace dysra::data {
namespace json_detail {

using nlohmann::json;

/// Where a JSON value came from, for error messages: "file:line: [where: ]message".
struct JsonCtx {
  std::string file;
  int64_t line = 0;
  std::string where;  // e.g. "element 3" or "annotations[0]"
};

[[noreturn]] void data_error(const JsonCtx& c, const std::string& msg) {
  throw DataError(c.file + ":" + std::to_string(c.line) + ": " + (c.where.empty() ? "" : c.where + ": ") + msg);
}

const char* type_name(const json& v) { return v.type_name(); }

const json& field(const json& obj, const std::string& key, const JsonCtx& c) {
  if (!obj.is_object()) data_error(c, std::string("expected a JSON object, got ") + type_name(obj));
  auto it = obj.find(key);
  if (it == obj.end()) data_error(c, "missing field '" + key + "'");
  return *it;
}

const json* optional_field(const json& obj, const std::string& key, const JsonCtx& c) {
  if (!obj.is_object()) data_error(c, std::string("expected a JSON object, got ") + type_name(obj));
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string as_string(const json& v, const std::string& what, const JsonCtx& c) {
  if (!v.is_string()) data_error(c, "field '" + what + "' must be a string, got " + type_name(v));
  return v.get<std::string>();
}

/// A string, or an integer written as its decimal text (ids are numbers in some datasets).
std::string as_id(const json& v, const std::string& what, const JsonCtx& c) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  data_error(c, "field '" + what + "' must be a string or an integer, got " + type_name(v));
}

int64_t as_int(const json& v, const std::string& what, const JsonCtx& c) {
  if (!v.is_number_integer()) data_error(c, "field '" + what + "' must be an integer, got " + type_name(v));
  return v.get<int64_t>();
}

const json& as_array(const json& v, const std::string& what, const JsonCtx& c) {
  if (!v.is_array()) data_error(c, "field '" + what + "' must be an array, got " + type_name(v));
  return v;
}

std::vector<std::string> as_string_list(const json& v, const std::string& what, const JsonCtx& c) {
  as_array(v, what, c);
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) out.push_back(as_string(v[i], what + "[" + std::to_string(i) + "]", c));
  return out;
}

MetaValue to_meta(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) return v.get<double>();
  return RawJson{v.dump()};
}

json from_meta(const MetaValue& m) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, RawJson>) return json::parse(x.text);
        else return json(x);
      },
      m);
}

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  DYSRA_CHECK_T(DataError, f.good(), path, ": cannot open for reading");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// Calls fn(line_number, line) for every line; '\r' before '\n' is dropped. A blank line is an error, except
/// the empty string after a final newline.
void for_each_line(const std::string& path, const std::function<void(int64_t, const std::string&)>& fn) {
  const std::string text = read_text_file(path);
  size_t start = 0;
  int64_t line_no = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    ++line_no;
    if (line.find_first_not_of(" \t") == std::string::npos)
      throw DataError(path + ":" + std::to_string(line_no) + ": blank line");
    fn(line_no, line);
    start = nl + 1;
  }
}

/// Parses each line as JSON (errors name file:line and the parser's message).
void for_each_jsonl(const std::string& path, const std::function<void(const json&, const JsonCtx&)>& fn) {
  for_each_line(path, [&](int64_t line_no, const std::string& line) {
    JsonCtx c{path, line_no, ""};
    json v;
    try {
      v = json::parse(line);
    } catch (const json::parse_error& e) {
      data_error(c, std::string("bad JSON: ") + e.what());
    }
    fn(v, c);
  });
}

int64_t line_of_offset(const std::string& text, size_t offset) {
  offset = std::min(offset, text.size());
  return 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n');
}

/// Parses a whole-file JSON document. `text_out` receives the file text (for element line lookup).
json parse_json_file(const std::string& path, std::string* text_out) {
  std::string text = read_text_file(path);
  json v;
  try {
    v = json::parse(text);
  } catch (const json::parse_error& e) {
    throw DataError(path + ":" + std::to_string(line_of_offset(text, e.byte ? e.byte - 1 : 0)) +
                    ": bad JSON: " + e.what());
  }
  if (text_out) *text_out = std::move(text);
  return v;
}

/// Line numbers where the elements of a top-level JSON array start (the text must already parse).
std::vector<int64_t> top_level_element_lines(const std::string& text) {
  std::vector<int64_t> lines;
  int depth = 0;
  bool in_string = false, escape = false, expect_value = false;
  int64_t line = 1;
  for (char ch : text) {
    if (ch == '\n') ++line;
    if (in_string) {
      if (escape) escape = false;
      else if (ch == '\\') escape = true;
      else if (ch == '"') in_string = false;
      continue;
    }
    if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') continue;
    if (depth == 1 && expect_value && ch != ']') {
      lines.push_back(line);
      expect_value = false;
    }
    if (ch == '"') in_string = true;
    else if (ch == '[' || ch == '{') {
      ++depth;
      if (depth == 1 && ch == '[') expect_value = true;
    } else if (ch == ']' || ch == '}') --depth;
    else if (ch == ',' && depth == 1) expect_value = true;
  }
  return lines;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream f(path, std::ios::binary);
  DYSRA_CHECK_T(DataError, f.good(), path, ": cannot open for writing");
  for (const auto& l : lines) f << l << '\n';
  DYSRA_CHECK_T(DataError, f.good(), path, ": write failed");
}

}  // namespace json_detail

using namespace json_detail;

std::vector<QAExample> read_flashrag_questions(const std::string& path) {
  std::vector<QAExample> out;
  for_each_jsonl(path, [&](const json& v, const JsonCtx& c) {
    QAExample ex;
    ex.id = as_id(field(v, "id", c), "id", c);
    ex.question = as_string(field(v, "question", c), "question", c);
    ex.golden_answers = as_string_list(field(v, "golden_answers", c), "golden_answers", c);
    if (const json* md = optional_field(v, "metadata", c)) {
      if (!md->is_object() && !md->is_null())
        data_error(c, std::string("field 'metadata' must be an object, got ") + type_name(*md));
      if (md->is_object()) {
        for (auto it = md->begin(); it != md->end(); ++it) {
          if (it.key() == "gold_doc_ids") {
            ex.gold_doc_ids = as_string_list(it.value(), "metadata.gold_doc_ids", c);
          } else if (it.key() == "contexts") {
            const json& arr = as_array(it.value(), "metadata.contexts", c);
            for (size_t i = 0; i < arr.size(); ++i) {
              JsonCtx ci{c.file, c.line, "metadata.contexts[" + std::to_string(i) + "]"};
              Document d;
              d.id = as_id(field(arr[i], "id", ci), "id", ci);
              if (const json* t = optional_field(arr[i], "title", ci)) d.title = as_string(*t, "title", ci);
              d.text = as_string(field(arr[i], "text", ci), "text", ci);
              ex.contexts.push_back(std::move(d));
            }
          } else {
            ex.metadata[it.key()] = to_meta(it.value());
          }
        }
      }
    }
    out.push_back(std::move(ex));
  });
  return out;
}

void write_flashrag_questions(const std::string& path, const std::vector<QAExample>& examples) {
  std::vector<std::string> lines;
  lines.reserve(examples.size());
  for (const auto& ex : examples) {
    json md = json::object();
    for (const auto& [k, v] : ex.metadata) {
      DYSRA_CHECK_T(DataError, k != "gold_doc_ids" && k != "contexts", path, ": example '", ex.id,
                    "': metadata key '", k, "' is reserved");
      md[k] = from_meta(v);
    }
    if (!ex.gold_doc_ids.empty()) md["gold_doc_ids"] = ex.gold_doc_ids;
    if (!ex.contexts.empty()) {
      json arr = json::array();
      for (const auto& d : ex.contexts) arr.push_back({{"id", d.id}, {"title", d.title}, {"text", d.text}});
      md["contexts"] = std::move(arr);
    }
    json j = {{"id", ex.id}, {"question", ex.question}, {"golden_answers", ex.golden_answers}, {"metadata", md}};
    try {
      lines.push_back(j.dump());
    } catch (const json::type_error& e) {
      throw DataError(path + ": example '" + ex.id + "': cannot write: " + e.what());
    }
  }
  write_lines(path, lines);
}

std::vector<Document> read_flashrag_corpus(const std::string& path, const CorpusReadOptions& options) {
  std::vector<Document> out;
  for_each_jsonl(path, [&](const json& v, const JsonCtx& c) {
    Document d;
    d.id = as_id(field(v, "id", c), "id", c);
    std::string contents = as_string(field(v, "contents", c), "contents", c);
    if (options.split_title) {
      const size_t nl = contents.find('\n');
      std::string title = contents.substr(0, nl);
      if (title.size() >= 2 && title.front() == '"' && title.back() == '"') title = title.substr(1, title.size() - 2);
      d.title = std::move(title);
      d.text = nl == std::string::npos ? "" : contents.substr(nl + 1);
    } else {
      d.text = std::move(contents);
    }
    out.push_back(std::move(d));
  });
  return out;
}

void write_flashrag_corpus(const std::string& path, const std::vector<Document>& documents) {
  std::vector<std::string> lines;
  lines.reserve(documents.size());
  for (const auto& d : documents) {
    const std::string contents = d.title.empty() ? d.text : "\"" + d.title + "\"\n" + d.text;
    try {
      lines.push_back(json({{"id", d.id}, {"contents", contents}}).dump());
    } catch (const json::type_error& e) {
      throw DataError(path + ": document '" + d.id + "': cannot write: " + e.what());
    }
  }
  write_lines(path, lines);
}

}  // namespace dysra::data
