// src/data/chunking.cpp — overlapping token windows with stable ids and byte offsets.
#include "dysra/data/chunking.h"

#include <algorithm>
#include <unordered_set>

#include "dysra/core/error.h"

namespace dysra::data {

std::vector<TokenSpan> word_spans(const std::string& text) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; };
  std::vector<TokenSpan> spans;
  const int64_t n = static_cast<int64_t>(text.size());
  int64_t i = 0;
  while (i < n) {
    while (i < n && ws(text[i])) ++i;
    int64_t j = i;
    while (j < n && !ws(text[j])) ++j;
    if (j > i) spans.push_back({i, j});
    i = j;
  }
  return spans;
}

std::vector<Chunk> chunk_text(const std::string& doc_id, const std::string& text, const ChunkOptions& options,
                              const Tokenizer* tokenizer) {
  DYSRA_CHECK_T(ConfigError, options.chunk_tokens > 0, "chunking: chunk_tokens must be > 0, got ",
                options.chunk_tokens);
  DYSRA_CHECK_T(ConfigError, options.overlap_tokens >= 0 && options.overlap_tokens < options.chunk_tokens,
                "chunking: overlap_tokens must be in [0, chunk_tokens = ", options.chunk_tokens, "), got ",
                options.overlap_tokens);
  DYSRA_CHECK(!doc_id.empty(), "chunking: empty document id");
  std::vector<TokenSpan> spans;
  std::vector<int32_t> ids;
  if (tokenizer) {
    ids = tokenizer->encode_with_spans(text, &spans);
    DYSRA_CHECK(ids.size() == spans.size(), "chunking: tokenizer '", tokenizer->name(), "' returned ", ids.size(),
                " ids but ", spans.size(), " spans");
  } else {
    spans = word_spans(text);
  }
  const int64_t n = static_cast<int64_t>(spans.size());
  const int64_t stride = options.chunk_tokens - options.overlap_tokens;
  std::vector<Chunk> chunks;
  for (int64_t start = 0; start < n; start += stride) {
    const int64_t stop = std::min(n, start + options.chunk_tokens);
    Chunk c;
    c.doc_id = doc_id;
    c.ordinal = static_cast<int64_t>(chunks.size());
    c.id = doc_id + "#" + std::to_string(c.ordinal);
    c.token_begin = start;
    c.token_end = stop;
    c.begin = spans[start].begin;
    c.end = c.begin;
    for (int64_t t = start; t < stop; ++t) c.end = std::max(c.end, spans[t].end);
    DYSRA_CHECK(c.begin >= 0 && c.end <= static_cast<int64_t>(text.size()), "chunking: token span [", c.begin, ", ",
                c.end, ") outside the text of '", doc_id, "' (", text.size(), " bytes)");
    c.text = text.substr(c.begin, c.end - c.begin);
    if (tokenizer) c.token_ids.assign(ids.begin() + start, ids.begin() + stop);
    chunks.push_back(std::move(c));
    if (stop == n) break;
  }
  return chunks;
}

std::vector<Chunk> chunk_documents(const std::vector<Document>& documents, const ChunkOptions& options,
                                   const Tokenizer* tokenizer) {
  std::unordered_set<std::string> seen;
  std::vector<Chunk> out;
  for (size_t i = 0; i < documents.size(); ++i) {
    const Document& d = documents[i];
    DYSRA_CHECK_T(DataError, seen.insert(d.id).second, "chunking: document ", i, " repeats the id '", d.id,
                  "'; chunk ids would collide");
    auto cs = chunk_text(d.id, d.text, options, tokenizer);
    out.insert(out.end(), std::make_move_iterator(cs.begin()), std::make_move_iterator(cs.end()));
  }
  return out;
}

}  // namespace dysra::data
