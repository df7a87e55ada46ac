// dysra/data/jsonl.h — QA examples and documents, and FlashRAG's JSONL schema for them.
//
// FlashRAG questions, one JSON object per line:
//   {"id": str, "question": str, "golden_answers": [str, ...], "metadata": {...}}      (metadata optional)
// dysra keeps two fields of QAExample inside metadata under reserved keys, so they survive a write/read:
//   "gold_doc_ids": [str, ...]          → QAExample::gold_doc_ids
//   "contexts": [{"id","title","text"}] → QAExample::contexts
// FlashRAG corpora, one JSON object per line: {"id": str, "contents": str}. FlashRAG's wiki corpora put the
// title on the first line of `contents` in double quotes ("\"Title\"\ntext"); `split_title` reads that form and
// the writer produces it for documents with a title.
// Every malformed line (bad JSON, missing field, wrong type) throws dysra::DataError "file:line: what"; nothing
// is skipped. Blank lines are errors too, except a final newline.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace dysra::data {

/// Nested JSON kept verbatim (compact text), for metadata values that are arrays or objects.
struct RawJson {
  std::string text;
  bool operator==(const RawJson& o) const { return text == o.text; }
};

/// A metadata value: string, integer, real, bool, or nested JSON. JSON null is stored as RawJson{"null"}.
using MetaValue = std::variant<std::string, int64_t, double, bool, RawJson>;
using Metadata = std::map<std::string, MetaValue>;

struct Document {
  std::string id;
  std::string title;  ///< may be empty
  std::string text;
  bool operator==(const Document& o) const { return id == o.id && title == o.title && text == o.text; }
};

struct QAExample {
  std::string id;
  std::string question;
  std::vector<std::string> golden_answers;  ///< may be empty (e.g. unanswerable NQ questions)
  std::vector<Document> contexts;           ///< reading-comprehension contexts (HotpotQA paragraphs, NQ page)
  std::vector<std::string> gold_doc_ids;    ///< ids of the contexts/corpus documents that support the answer
  Metadata metadata;
};

/// Reads FlashRAG question JSONL (see the file comment).
std::vector<QAExample> read_flashrag_questions(const std::string& path);
/// Writes FlashRAG question JSONL (UTF-8, one object per line, trailing newline).
void write_flashrag_questions(const std::string& path, const std::vector<QAExample>& examples);

struct CorpusReadOptions {
  /// Split `contents` into title (first line, surrounding double quotes removed) and text (the rest).
  bool split_title = false;
};
std::vector<Document> read_flashrag_corpus(const std::string& path, const CorpusReadOptions& options = {});
/// Writes {"id", "contents"}; contents = "\"title\"\ntext" when the title is non-empty, else text.
void write_flashrag_corpus(const std::string& path, const std::vector<Document>& documents);

}  // namespace dysra::data
