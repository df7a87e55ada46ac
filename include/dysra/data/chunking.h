// dysra/data/chunking.h — split documents into overlapping token windows with stable ids and byte offsets.
//
// Tokens are the tokenizer's tokens (with their byte spans), or, without a tokenizer, whitespace-separated words
// (maximal runs of non-ASCII-whitespace bytes). Windows of `chunk_tokens` tokens start every
// stride = chunk_tokens − overlap_tokens tokens: [0, C), [s, s+C), [2s, 2s+C), … ; the last window is the first
// one that reaches the end (it may be shorter), so no window lies inside its predecessor. An empty (or
// all-whitespace, in word mode) text gives no chunks.
// A chunk's id is "<doc_id>#<ordinal>" (ordinal from 0), stable for a fixed text, tokenizer and options.
// [begin, end) are byte offsets into the document text, from the first token's start to the last token's end,
// so text.substr(begin, end − begin) == chunk.text.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "dysra/data/jsonl.h"
#include "dysra/data/tokenizer.h"

namespace dysra::data {

struct ChunkOptions {
  int64_t chunk_tokens = 256;  ///< window size in tokens (> 0)
  int64_t overlap_tokens = 32; ///< tokens shared by consecutive windows (0 <= overlap < chunk_tokens)
};

struct Chunk {
  std::string id;       ///< "<doc_id>#<ordinal>"
  std::string doc_id;
  int64_t ordinal = 0;
  int64_t begin = 0;    ///< byte offset of the first token in the document text
  int64_t end = 0;      ///< byte offset one past the last token
  int64_t token_begin = 0;  ///< index of the first token in the document's token sequence
  int64_t token_end = 0;    ///< one past the last token
  std::string text;         ///< document text [begin, end)
  std::vector<int32_t> token_ids;  ///< the window's ids (tokenizer mode only; empty in word mode)
};

/// Byte spans of the whitespace-separated words of `text` (space, \t, \n, \v, \f, \r separate).
std::vector<TokenSpan> word_spans(const std::string& text);

/// Chunks one document. Throws dysra::ConfigError for bad options, dysra::Error for an empty doc_id.
std::vector<Chunk> chunk_text(const std::string& doc_id, const std::string& text, const ChunkOptions& options,
                              const Tokenizer* tokenizer = nullptr);

/// Chunks every document in order (Document::text; the title is not included). Throws dysra::DataError on a
/// duplicate document id, since chunk ids would collide.
std::vector<Chunk> chunk_documents(const std::vector<Document>& documents, const ChunkOptions& options,
                                   const Tokenizer* tokenizer = nullptr);

}  // namespace dysra::data
