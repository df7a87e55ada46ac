// dysra/data/streaming.h — an endless text stream with questions about facts placed at chosen distances back,
// for compressive-cache and streaming experiments (kvcache.md §7.4 "streaming-specific recommendation").
//
// The stream is a sequence of items (filler sentences and facts), each followed by one space. Question q
// (q = 0, 1, …) is due at position T_q = (q + 1) · question_interval; its fact "The special magic number for
// <key> is: <value>." is due at T_q − d_q, where d_q cycles through `distances` (or is drawn from them). Items
// are never split, so a fact starts at the first item boundary at or after its due position and the question
// is asked at the first boundary at or after T_q; `StreamQuestion` reports the realised positions (the realised
// distance differs from the requested one by less than one item plus the facts emitted in between).
//
// Kinds of facts (`kind`): "needle" (one fact, above); "chain" — the HotpotQA bridging pattern in stream form:
// `hops` facts "The partner of <k0> is <k1>." … "The special magic number for <k_{h−1}> is: <v>." spread over the
// distance window (the value fact first, the link naming k0 last), asked as "What is the special magic number for
// the partner of <k0>?"; "variables" — RULER's variable tracking: "VAR A = 12345." then `hops` − 1 assignments
// "VAR B = VAR A." …, asked "Find all variables that are assigned the value 12345." (answer: every name, in
// order). Part i of question q is due at T_q − d_q + i·⌊d_q / parts⌋; a question is asked once all its parts are
// in the stream (`fact` / `fact_position` describe the first part).
// Positions are bytes of stream text, or tokens when `count_tokens` is set (each item counted on its own).
// Keys are unique within any window of 90,000 consecutive questions (words/numbers) or random uuids.
// Memory per step is O(1) beyond the facts already placed whose question is still to come. The state is a
// few integers plus those pending facts: `state()` / `restore()` resume exactly; `seek()` replays from 0.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dysra/data/synthetic.h"

namespace dysra::data {

struct FactStreamOptions {
  uint64_t seed = 42;
  std::string split = "stream";
  size_t chunk_size = 1024;          ///< a chunk ends once it holds at least this many position units
  size_t question_interval = 4096;   ///< a question every this many units
  std::vector<size_t> distances = {1024};  ///< how far back (in units) each question's fact is placed
  bool random_distance = false;      ///< false: cycle through `distances`; true: draw from them per question
  Haystack filler = Haystack::noise; ///< noise (RULER's sentence) or essay (real / generated prose,
                                     ///< starting at a seed-dependent sentence)
  std::string essay_path = "auto";   ///< as SyntheticCommon::essay_path
  std::string kind = "needle";       ///< needle | chain | variables (see above)
  size_t hops = 2;                   ///< chain: facts in the chain (>= 2); variables: assignments (>= 1)
  NeedleType key_type = NeedleType::words;
  NeedleType value_type = NeedleType::numbers;
  TokenCounter count_tokens;         ///< empty: positions are bytes
};

struct StreamQuestion {
  uint64_t id = 0;                 ///< question number q
  std::string question;            ///< e.g. "What is the special magic number for calm-river?"
  std::vector<std::string> answers;
  std::string fact;                ///< the fact sentence placed earlier in the stream (the first part)
  uint64_t fact_position = 0;      ///< stream position where the fact starts (the first part)
  std::vector<std::string> parts;  ///< every fact sentence of the question, in stream order
  std::vector<uint64_t> part_positions;  ///< where each part starts
  std::string answer_prefix;       ///< what follows the question before the answer, e.g. "… for calm-river is: "
  uint64_t position = 0;           ///< stream position where the question is asked (all text before it read)
  uint64_t requested_distance = 0; ///< d_q
  uint64_t distance() const { return position - fact_position; }
};

struct StreamChunk {
  uint64_t position = 0;  ///< stream position of the first character of `text`
  std::string text;       ///< whole items, each followed by one space
  std::vector<StreamQuestion> questions;  ///< asked right after `text` (a due question ends the chunk)
};

/// Everything needed to resume: save it with the checkpoint.
struct FactStreamState {
  uint64_t position = 0;       ///< units emitted so far
  uint64_t unit_index = 0;     ///< filler sentences emitted so far
  uint64_t next_question = 0;  ///< first question not yet asked
  /// (question id · kMaxParts + part, position) of fact parts placed whose question is not yet asked
  std::vector<std::pair<uint64_t, uint64_t>> placed;
  bool operator==(const FactStreamState& o) const {
    return position == o.position && unit_index == o.unit_index && next_question == o.next_question &&
           placed == o.placed;
  }
};

class FactStream {
 public:
  static constexpr uint64_t kMaxParts = 16;
  explicit FactStream(FactStreamOptions opt);
  FactStream(FactStreamOptions opt, const FactStreamState& state);

  /// The next chunk of text, with the questions due right after it.
  StreamChunk next();
  uint64_t position() const { return st_.position; }
  const FactStreamState& state() const { return st_; }
  void restore(const FactStreamState& state);
  /// Replays from position 0 to the first item boundary at or after `pos` (O(pos)).
  void seek(uint64_t pos);

  /// The fact and question for question q (pure function of the options and q).
  StreamQuestion question_template(uint64_t q) const;

 private:
  uint64_t distance_for(uint64_t q) const;
  uint64_t size_of(const std::string& item) const;
  uint64_t due_fact_position(uint64_t q, uint64_t part = 0) const;
  size_t parts() const;

  FactStreamOptions opt_;
  FactStreamState st_;
  std::unique_ptr<EssayText> essay_;
  uint64_t max_distance_ = 0;
  uint64_t filler_offset_ = 0;  ///< essay sentences start at a seed-dependent index
};

}  // namespace dysra::data
