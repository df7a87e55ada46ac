// dysra/data/streaming.cpp — FactStream (see the header for the placement rules).
#include "dysra/data/streaming.h"

#include <algorithm>

#include "dysra/core/error.h"
#include "dysra/data/rng.h"

namespace dysra::data {

namespace {
// A bijection of [0, n) (multiplier coprime with n), so consecutive questions get distinct keys.
uint64_t permute(uint64_t q, uint64_t n, uint64_t seed) {
  const uint64_t mult = 7919;  // prime; coprime with 9,000,000 and 90,000
  return (q % n * mult + seed % n) % n;
}

std::string unique_key(uint64_t q, NeedleType t, uint64_t seed, Rng& r) {
  switch (t) {
    case NeedleType::uuids: return random_needle(r, t);
    case NeedleType::numbers: return std::to_string(1000000 + permute(q, 9000000, seed));
    case NeedleType::words: {
      // adjective-noun plus the permuted index: unique for 90,000 consecutive questions, order not revealed.
      const uint64_t idx = permute(q, 90000, seed);
      Rng kr(seed_for(seed, "stream-key", idx));
      return random_needle(kr, NeedleType::words) + "-" + std::to_string(idx);
    }
  }
  return {};
}
}  // namespace

FactStream::FactStream(FactStreamOptions opt) : opt_(std::move(opt)) {
  DYSRA_CHECK_T(ConfigError, opt_.question_interval > 0, "FactStream: question_interval must be > 0");
  DYSRA_CHECK_T(ConfigError, opt_.chunk_size > 0, "FactStream: chunk_size must be > 0");
  DYSRA_CHECK_T(ConfigError, !opt_.distances.empty(), "FactStream: distances must not be empty");
  for (size_t d : opt_.distances) {
    DYSRA_CHECK_T(ConfigError, d > 0, "FactStream: distances must be > 0");
    max_distance_ = std::max<uint64_t>(max_distance_, d);
  }
  DYSRA_CHECK_T(ConfigError, opt_.filler != Haystack::needle, "FactStream: filler must be noise or essay");
  DYSRA_CHECK_T(ConfigError, opt_.kind == "needle" || opt_.kind == "chain" || opt_.kind == "variables",
                "FactStream: kind must be needle, chain or variables, got \"", opt_.kind, "\"");
  DYSRA_CHECK_T(ConfigError, opt_.kind != "chain" || (opt_.hops >= 2 && opt_.hops <= kMaxParts),
                "FactStream: a chain needs 2 to ", kMaxParts, " hops, got ", opt_.hops);
  DYSRA_CHECK_T(ConfigError, opt_.kind != "variables" || (opt_.hops >= 1 && opt_.hops <= kMaxParts),
                "FactStream: variables needs 1 to ", kMaxParts, " assignments, got ", opt_.hops);
  if (opt_.filler == Haystack::essay) {
    essay_ = std::make_unique<EssayText>(opt_.essay_path);
    filler_offset_ = seed_for(opt_.seed, opt_.split + "/filler", 0) >> 24;
  }
}

FactStream::FactStream(FactStreamOptions opt, const FactStreamState& state) : FactStream(std::move(opt)) {
  restore(state);
}

void FactStream::restore(const FactStreamState& state) {
  for (const auto& p : state.placed)
    DYSRA_CHECK_T(DataError, p.first / kMaxParts >= state.next_question && p.first % kMaxParts < parts() &&
                                 p.second <= state.position,
                  "FactStream::restore: inconsistent state (placed fact for question ", p.first, ")");
  st_ = state;
}

void FactStream::seek(uint64_t pos) {
  st_ = FactStreamState{};
  const size_t saved = opt_.chunk_size;
  while (st_.position < pos) {
    // advance one item at a time so we stop at the first boundary >= pos
    opt_.chunk_size = 1;
    next();
  }
  opt_.chunk_size = saved;
}

uint64_t FactStream::distance_for(uint64_t q) const {
  if (!opt_.random_distance) return opt_.distances[q % opt_.distances.size()];
  Rng r(seed_for(opt_.seed, opt_.split + "/distance", q));
  return opt_.distances[r.below(opt_.distances.size())];
}

uint64_t FactStream::size_of(const std::string& item) const {
  return opt_.count_tokens ? opt_.count_tokens(item + " ") : item.size() + 1;
}

size_t FactStream::parts() const { return opt_.kind == "needle" ? 1 : opt_.hops; }

uint64_t FactStream::due_fact_position(uint64_t q, uint64_t part) const {
  const uint64_t t = (q + 1) * opt_.question_interval;
  const uint64_t d = distance_for(q);
  return (t > d ? t - d : 0) + part * (d / parts());
}

StreamQuestion FactStream::question_template(uint64_t q) const {
  Rng r(seed_for(opt_.seed, opt_.split + "/fact", q));
  const std::string key = unique_key(q, opt_.key_type, opt_.seed, r);
  const std::string value = random_needle(r, opt_.value_type);
  const char* tv = opt_.value_type == NeedleType::numbers ? "number"
                   : opt_.value_type == NeedleType::words ? "word"
                                                          : "uuid";
  StreamQuestion s;
  s.id = q;
  s.requested_distance = distance_for(q);
  if (opt_.kind == "needle") {
    s.answer_prefix = std::string("The special magic ") + tv + " for " + key + " is: ";
    s.parts = {s.answer_prefix + value + "."};
    s.question = std::string("What is the special magic ") + tv + " for " + key + "?";
    s.answers = {value};
  } else if (opt_.kind == "chain") {
    // k0 → k1 → … → k_{h−1} → value; intermediate keys are fresh words with a number (never a stream key)
    std::vector<std::string> keys{key};
    for (size_t j = 1; j < opt_.hops; ++j)
      keys.push_back(random_needle(r, NeedleType::words) + "-" + std::to_string(r.below(1000000)));
    std::string ref = keys[0];
    for (size_t j = 1; j < opt_.hops; ++j) ref = "the partner of " + ref;
    s.parts.push_back(std::string("The special magic ") + tv + " for " + keys.back() + " is: " + value + ".");
    for (size_t j = opt_.hops - 1; j-- > 0;) s.parts.push_back("The partner of " + keys[j] + " is " + keys[j + 1] + ".");
    s.question = std::string("What is the special magic ") + tv + " for " + ref + "?";
    s.answer_prefix = std::string("The special magic ") + tv + " for " + ref + " is: ";
    s.answers = {value};
  } else {  // variables (RULER vt): five upper-case letters per name, a five-digit value
    auto name = [&] {
      std::string n;
      for (int i = 0; i < 5; ++i) n += static_cast<char>('A' + r.below(26));
      return n;
    };
    const std::string v = std::to_string(10000 + r.below(90000));
    std::vector<std::string> names{name()};
    s.parts.push_back("VAR " + names[0] + " = " + v + ".");
    for (size_t j = 1; j < opt_.hops; ++j) {
      names.push_back(name());
      s.parts.push_back("VAR " + names[j] + " = VAR " + names[j - 1] + ".");
    }
    std::string all;
    for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
    s.question = "Find all variables that are assigned the value " + v + ".";
    s.answer_prefix = "They are: ";
    s.answers = {all};
  }
  s.fact = s.parts[0];
  return s;
}

StreamChunk FactStream::next() {
  StreamChunk chunk;
  chunk.position = st_.position;
  const uint64_t start = st_.position;
  const uint64_t n_parts = parts();
  auto placed_at = [&](uint64_t q, uint64_t part) {
    return std::find_if(st_.placed.begin(), st_.placed.end(), [&](const auto& p) { return p.first == q * kMaxParts + part; });
  };
  auto all_placed = [&](uint64_t q) {
    for (uint64_t j = 0; j < n_parts; ++j)
      if (placed_at(q, j) == st_.placed.end()) return false;
    return true;
  };
  while (true) {
    const uint64_t q = st_.next_question;
    const uint64_t t_q = (q + 1) * opt_.question_interval;
    // 1. A due question whose parts are all placed: ask it and end the chunk.
    if (st_.position >= t_q && all_placed(q)) {
      StreamQuestion s = question_template(q);
      for (uint64_t j = 0; j < n_parts; ++j) {
        auto it = placed_at(q, j);
        s.part_positions.push_back(it->second);
        st_.placed.erase(it);
      }
      s.fact_position = s.part_positions[0];
      s.position = st_.position;
      chunk.questions.push_back(std::move(s));
      ++st_.next_question;
      // further questions due at the same position are asked with this chunk too
      continue;
    }
    if (!chunk.questions.empty()) break;
    if (st_.position - start >= opt_.chunk_size) break;
    // 2. The lowest-numbered fact part that is due and not yet placed (every part of an overdue question is due).
    bool placed_one = false;
    const uint64_t q_hi = (st_.position + max_distance_) / opt_.question_interval + 1;
    for (uint64_t k = st_.next_question; k <= q_hi && !placed_one; ++k) {
      for (uint64_t j = 0; j < n_parts; ++j) {
        if (due_fact_position(k, j) > st_.position && !(k == q && st_.position >= t_q)) break;
        if (placed_at(k, j) != st_.placed.end()) continue;
        const std::string fact = question_template(k).parts[j];
        st_.placed.emplace_back(k * kMaxParts + j, st_.position);
        chunk.text += fact;
        chunk.text += ' ';
        st_.position += size_of(fact);
        placed_one = true;
        break;
      }
    }
    if (placed_one) continue;
    // 3. Filler.
    const std::string unit = essay_ ? essay_->sentence(filler_offset_ + st_.unit_index) : std::string(kNoiseSentence);
    ++st_.unit_index;
    chunk.text += unit;
    chunk.text += ' ';
    st_.position += size_of(unit);
  }
  return chunk;
}

}  // namespace dysra::data
