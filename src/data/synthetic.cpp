// dysra/data/synthetic.cpp — the synthetic long-context suite (see the header for the rules followed).
#include "dysra/data/synthetic.h"

#include "dysra/data/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <sstream>
#include <unordered_set>

#include "dysra/core/error.h"
#include "dysra/core/registry.h"
#include "dysra/data/rng.h"

namespace dysra::data {

const char* const kNoiseSentence =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

// ---- built-in word lists (keys, CWE words, generated prose, names) ----------------------------------
namespace words {
namespace {
std::vector<std::string> split_ws(const char* s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}
}  // namespace
const std::vector<std::string>& adjectives() {
  static const auto v = split_ws(
      "abandoned able absurd acidic actual adorable adventurous afraid agreeable alert alive amused ancient "
      "angry anxious arrogant ashamed attractive average awful bad beautiful better bewildered big bitter black "
      "bloody blue blushing bored brainy brave breakable bright broad broken busy calm careful cautious charming "
      "cheerful chilly clean clever cloudy clumsy colorful comfortable common cooperative courageous crazy creepy "
      "crooked cruel curious cute damp dangerous dark dead deep defiant delicate delightful determined different "
      "difficult dizzy doubtful drab dry dull dusty eager early easy elated elegant empty enchanting energetic "
      "envious evil excited expensive faint fair faithful famous fancy fantastic fast fierce filthy fine foolish "
      "fragile frail frantic fresh friendly frightened funny fuzzy gentle giant gifted glamorous gleaming glorious "
      "golden good gorgeous graceful green grieving grumpy handsome happy hard harsh healthy heavy helpful "
      "helpless hilarious hollow homeless honest hungry icy ideal immense innocent itchy jealous jolly joyous "
      "juicy kind large lazy light little lively lonely long loud lovely lucky magnificent massive mellow "
      "messy mighty misty modern motionless muddy mushy mysterious narrow nasty naughty nervous new nice noisy "
      "numerous obedient odd old orange ordinary outrageous pale perfect plain pleasant polite poor powerful "
      "precious pretty prickly proud puzzled quaint quick quiet rapid rare red rich rotten rough round royal "
      "rustic sad scary selfish serious shaggy sharp shiny short shy silent silly silver simple skinny sleepy "
      "slim slippery slow small smiling smooth soft solid sore sparkling spicy splendid spotless square stale "
      "steady steep sticky stormy strange strong stupid successful sweet swift tall tame tasty tender tense "
      "terrible thankful thick thin thirsty thoughtful tidy tiny tired tough troubled ugly uneven unusual "
      "upset useful vast victorious violet vivacious wandering warm weak wealthy weary wet wicked wide wild "
      "wise witty wonderful worried wrong yellow young zany zealous");
  return v;
}
const std::vector<std::string>& nouns() {
  static const auto v = split_ws(
      "account acorn actor airport alarm album anchor angle animal answer apple apron arch arm army arrow "
      "artist attic aunt avenue baby badge bag bakery ball balloon banana band bank barn basket bat bath beach "
      "bean bear bed bee bell belt bench berry bicycle bird blanket boat bone book boot bottle box boy bracelet "
      "branch bread brick bridge broom brother brush bubble bucket building bulb bus butter button cabbage cabin "
      "cake camera camp canal candle cannon canvas cap car card carpet carriage carrot castle cat cattle cave "
      "chain chair chalk cheese cherry chicken child chimney church circle city clock cloud coast coat coffee "
      "coin comb copper corn cottage cousin cow crayon cream crow crown cup curtain cushion daisy dancer desert "
      "desk diamond dinner doctor dog doll dolphin door dragon drawer dream dress drum duck eagle ear egg "
      "elephant engine envelope eye fairy farm feather fence field finger fire fish flag flame flower flute fog "
      "forest fork fountain fox frog fruit garden gate ghost giraffe glass glove goat gold grape grass guitar "
      "hammer hand harbor hat hawk heart hill honey horse hospital house island jacket jam jar jewel judge "
      "kettle key king kitchen kite knee knife ladder lake lamp lantern leaf lemon letter library lily lion "
      "lizard lock machine magnet map market meadow mirror monkey moon mountain mouse museum needle nest net "
      "ocean office onion orchard owl ox painter palace pancake paper parrot pear pebble pencil pepper piano "
      "picture pig pillow pilot pipe planet plate pocket poet pond potato puppet queen rabbit radio rain "
      "ribbon ring river road robin rock roof rose sailor salt sand saucer scarf school scissors sea seed sheep "
      "shell ship shirt shoe shop shovel singer sister skate sky snail snake snow soap sock soldier spider "
      "spoon spring squirrel stable star station statue stone storm stove stream street sugar sun swan sword "
      "table tailor teacher tent thread throne tiger toast tomato tower town toy tractor train treasure tree "
      "trumpet tulip tunnel turtle umbrella valley vase village violin wagon wall wallet watch water wave "
      "whale wheel whistle window wizard wolf wool yard zebra");
  return v;
}
const std::vector<std::string>& past_verbs() {
  static const auto v = split_ws(
      "admired answered arranged borrowed buried carried chased cleaned collected covered crossed described "
      "discovered dragged earned emptied examined filled followed gathered guarded handled hugged ignored "
      "imagined joined kicked lifted loaded measured mended noticed opened ordered packed painted passed "
      "pictured planted pleased polished pulled pushed questioned raised reached recorded repaired rescued "
      "returned rolled saved searched shared signed sketched sorted spotted studied supported surrounded "
      "tested touched traced trapped visited warned washed watched welcomed wrapped");
  return v;
}
const std::vector<std::string>& all_words() {
  static const auto v = [] {
    std::set<std::string> s;
    for (const auto* l : {&adjectives(), &nouns(), &past_verbs()}) s.insert(l->begin(), l->end());
    return std::vector<std::string>(s.begin(), s.end());
  }();
  return v;
}
const std::vector<std::string>& first_names() {
  static const auto v = split_ws(
      "Ada Alma Anton Arlo Basil Bea Bram Cora Cyril Dara Dmitri Edda Elio Enzo Faye Felix Greta Gideon Hana "
      "Hugo Ida Ilya Ines Ivo Jonah Juno Kasimir Klara Lars Lena Luca Mara Milo Nadia Nils Noor Olga Oren "
      "Pavel Petra Quinn Rafa Rhea Rosa Sami Selma Silas Tamar Teo Una Uri Vera Viggo Wren Xavi Yara Yusuf Zara "
      "Zeno");
  return v;
}
const std::vector<std::string>& last_names() {
  static const auto v = split_ws(
      "Abara Bellweather Castellan Dunmore Eckhart Falkner Garrow Halloran Ingersoll Jaskolski Kettering "
      "Lindqvist Marwood Nakashima Ostrander Pellegrini Quarrington Ravensworth Szabo Thornbury Umberfield "
      "Vantongeren Whitcombe Yarborough Zabrowski Ashdown Blackwood Crowhurst Delacroix Everly Fairbanks "
      "Greenhalgh Hollister Iversen Jablonski Kowalczyk Lockhart Merriweather Northcott Oyelaran Pemberton "
      "Rutherford Sandoval Tillinghast Underhill Villanueva Winterbourne Yoshida Zimmerly");
  return v;
}
}  // namespace words

namespace {

// ---- token counting --------------------------------------------------------------------------------

size_t count_words(const std::string& s) {
  size_t n = 0;
  bool in_word = false;
  for (unsigned char c : s) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

struct Counter {
  explicit Counter(const SyntheticCommon& c)
      : fn(c.count_tokens ? c.count_tokens : word_token_counter(c.tokens_per_word)) {
    DYSRA_CHECK_T(ConfigError, c.count_tokens || c.tokens_per_word > 0,
                  "synthetic: tokens_per_word must be > 0, got ", c.tokens_per_word);
  }
  size_t operator()(const std::string& s) const { return fn(s); }
  TokenCounter fn;
};

// ---- random values -----------------------------------------------------------------------------------

std::string uuid4(Rng& r) {
  uint64_t hi = r.next_u64(), lo = r.next_u64();
  hi = (hi & ~0xF000ULL) | 0x4000ULL;                       // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // variant 10xx
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

std::string random_needle_value(Rng& r, NeedleType t) {
  switch (t) {
    case NeedleType::numbers: return std::to_string(r.uniform_int(1000000, 9999999));
    case NeedleType::words: {
      const auto& a = words::adjectives();
      const auto& n = words::nouns();
      return a[r.below(a.size())] + "-" + n[r.below(n.size())];
    }
    case NeedleType::uuids: return uuid4(r);
  }
  return {};
}

const char* type_name(NeedleType t, bool plural) {
  switch (t) {
    case NeedleType::numbers: return plural ? "numbers" : "number";
    case NeedleType::words: return plural ? "words" : "word";
    case NeedleType::uuids: return plural ? "uuids" : "uuid";
  }
  return "";
}

// A pseudo-word of 3 (i < 80^3) or 4 consonant-vowel syllables; distinct for distinct i.
std::string pseudo_word(uint64_t i) {
  static const char* kC = "bcdfghjklmnprstv";
  static const char* kV = "aeiou";
  const int syl = i < 512000ULL ? 3 : 4;
  if (syl == 4) i -= 512000ULL;
  std::string w;
  for (int k = 0; k < syl; ++k) {
    const uint64_t s = i % 80;
    i /= 80;
    w += kC[s / 5];
    w += kV[s % 5];
  }
  return w;
}

// n distinct words: real words first (from the built-in lists), then pseudo-words; in random order.
std::vector<std::string> distinct_words(Rng& r, size_t n) {
  const auto& real = words::all_words();
  std::vector<std::string> out;
  if (n <= real.size()) {
    for (size_t i : r.sample_indices(real.size(), n)) out.push_back(real[i]);
    return out;
  }
  out = real;
  std::unordered_set<std::string> seen(real.begin(), real.end());
  const uint64_t space = 512000ULL + 80ULL * 80 * 80 * 80;
  DYSRA_CHECK_T(ConfigError, n < space / 2, "synthetic: ", n, " distinct words requested (too many)");
  while (out.size() < n) {
    std::string w = pseudo_word(r.below(space));
    if (seen.insert(w).second) out.push_back(std::move(w));
  }
  r.shuffle(out);
  return out;
}

std::string capitalized(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

// ---- generated prose (essay haystack without a corpus) ---------------------------------------------

std::string generated_sentence(uint64_t i) {
  Rng r(seed_for(0x5EEDE55AULL, "prose", i));
  const auto& adj = words::adjectives();
  const auto& noun = words::nouns();
  const auto& verb = words::past_verbs();
  auto A = [&] { return adj[r.below(adj.size())]; };
  auto N = [&] { return noun[r.below(noun.size())]; };
  auto V = [&] { return verb[r.below(verb.size())]; };
  switch (r.below(8)) {
    case 0: return "The " + A() + " " + N() + " " + V() + " the " + A() + " " + N() + ".";
    case 1: { std::string a = N(), b = N(); return "A " + a + " near the " + b + " seemed " + A() + "."; }
    case 2: return "Every morning the " + N() + " " + V() + " a " + A() + " " + N() + " by the " + N() + ".";
    case 3: return "They " + V() + " the " + N() + " and the " + N() + " before the " + A() + " evening.";
    case 4: return "Nobody could say why the " + N() + " was so " + A() + " that year.";
    case 5: return "In the " + A() + " " + N() + ", an old " + N() + " " + V() + " again.";
    case 6: return "She " + V() + " her " + A() + " " + N() + " and walked toward the " + N() + ".";
    default: return "Later, the " + A() + " " + N() + " " + V() + " every " + N() + " in the " + N() + ".";
  }
}

// ---- essay files ---------------------------------------------------------------------------------------

std::shared_ptr<const std::vector<std::string>> load_essay(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const std::vector<std::string>>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(path);
  if (it != cache.end()) return it->second;
  std::ifstream in(path, std::ios::binary);
  DYSRA_CHECK_T(DataError, in, path, ": cannot open essay text");
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  auto sents = std::make_shared<std::vector<std::string>>();
  // Paragraphs are separated by blank lines; sentences never span paragraphs.
  size_t p = 0;
  while (p < text.size()) {
    size_t q = text.find("\n\n", p);
    if (q == std::string::npos) q = text.size();
    for (auto& s : split_sentences(text.substr(p, q - p))) sents->push_back(std::move(s));
    p = q + 2;
  }
  DYSRA_CHECK_T(DataError, !sents->empty(), path, ": no sentences in essay text");
  cache[path] = sents;
  return sents;
}

bool file_exists(const std::string& p) { return std::ifstream(p).good(); }

// ---- haystack assembly and length fitting -----------------------------------------------------------

using UnitFn = std::function<std::string(size_t)>;

struct Frame {
  std::string instruction, question, answer_prefix;
  size_t tokens_to_generate = 0;
};

struct Built {
  std::string context;
  std::vector<size_t> offsets;  // per needle
  size_t n_units = 0;
  size_t prompt_tokens = 0;
};

// Units 0..n-1 joined by `sep`; needle j goes before unit pos[j] (pos[j] == n: at the end); items next to a
// needle are separated by `needle_sep`.
Built assemble(size_t n, const UnitFn& unit, const std::string& sep, const std::string& needle_sep,
               const std::vector<std::string>& needles, const std::vector<size_t>& pos,
               const std::string& open = "", const std::string& close = "") {
  std::vector<size_t> order(needles.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return pos[a] < pos[b]; });
  Built b;
  b.n_units = n;
  b.offsets.assign(needles.size(), 0);
  std::string& s = b.context;
  s = open;
  bool first = true, prev_needle = false;
  size_t k = 0;
  auto emit = [&](const std::string& t, bool is_needle) {
    if (!first) s += (is_needle || prev_needle) ? needle_sep : sep;
    first = false;
    prev_needle = is_needle;
    s += t;
  };
  for (size_t i = 0; i <= n; ++i) {
    while (k < order.size() && pos[order[k]] == i) {
      if (!first) s += needle_sep;
      first = false;
      prev_needle = true;
      b.offsets[order[k]] = s.size();
      s += needles[order[k]];
      ++k;
    }
    if (i < n) emit(unit(i), false);
  }
  s += close;
  return b;
}

// The largest haystack (in units) whose prompt + tokens_to_generate fits max_seq_length.
Built fit(const SyntheticCommon& common, const Counter& count, const Frame& f, const UnitFn& unit,
          bool constant_unit, const std::string& sep, const std::string& needle_sep,
          const std::vector<std::string>& needles, size_t min_units,
          const std::function<std::vector<size_t>(size_t)>& positions, const std::string& open = "",
          const std::string& close = "") {
  const size_t max_len = common.max_seq_length;
  size_t fixed = count(f.instruction) + count(f.question) + count(f.answer_prefix) + count(open) +
                 count(close) + f.tokens_to_generate;
  for (const auto& nd : needles) fixed += count(nd) + count(needle_sep);
  DYSRA_CHECK_T(ConfigError, fixed < max_len, "synthetic: max_seq_length ", max_len,
                " is too small: the task's fixed text alone takes ", fixed, " tokens");
  const size_t budget = max_len - fixed;
  const size_t sep_t = count(sep);
  size_t n = 0;
  if (constant_unit) {
    const size_t ut = count(unit(0)) + sep_t;
    DYSRA_CHECK(ut > 0, "synthetic: a haystack unit counts zero tokens");
    n = budget / ut;
  } else {
    size_t acc = 0;
    while (true) {
      const size_t t = count(unit(n)) + sep_t;
      if (acc + t > budget) break;
      acc += t;
      ++n;
    }
  }
  n = std::max(n, min_units);
  auto prompt_tokens = [&](const Built& b) {
    return count(f.instruction + b.context + f.question + f.answer_prefix);
  };
  // Guarded secant search on n: lo = largest feasible n seen, hi = smallest infeasible n seen.
  bool have_lo = false;
  size_t lo = 0, hi = SIZE_MAX;
  Built best;
  for (int it = 0; it < 40; ++it) {
    Built b = assemble(n, unit, sep, needle_sep, needles, positions(n), open, close);
    b.prompt_tokens = prompt_tokens(b);
    const size_t total = b.prompt_tokens + f.tokens_to_generate;
    const double per_unit = n ? std::max(1.0, double(b.prompt_tokens - std::min(b.prompt_tokens, fixed - f.tokens_to_generate)) / n) : 1.0;
    if (total <= max_len) {
      if (!have_lo || n >= lo) {
        lo = n;
        have_lo = true;
        best = std::move(b);
      }
      const size_t grow = static_cast<size_t>(double(max_len - total) / per_unit);
      if (grow == 0 || n + 1 >= hi) break;
      n = std::min(n + grow, hi - 1);
    } else {
      hi = n;
      const size_t shrink = std::max<size_t>(1, static_cast<size_t>(std::ceil(double(total - max_len) / per_unit)));
      size_t next = n > shrink ? n - shrink : 0;
      if (have_lo) {
        if (lo + 1 >= hi) break;
        next = std::max(next, lo + 1);
      }
      DYSRA_CHECK_T(ConfigError, next >= min_units || (have_lo && lo + 1 >= hi), "synthetic: max_seq_length ",
                    max_len, " is too small for ", min_units, " haystack units");
      if (next == n) break;
      n = std::max(next, min_units);
    }
  }
  DYSRA_CHECK_T(ConfigError, have_lo, "synthetic: could not fit the task into max_seq_length ", max_len);
  return best;
}

// Needle positions (unit indices in [0, n]) from depths in [0, 1].
size_t depth_to_pos(double d, size_t n) {
  DYSRA_CHECK_T(ConfigError, d >= 0.0 && d <= 1.0, "synthetic: depth must be in [0, 1], got ", d);
  return std::min(n, static_cast<size_t>(std::floor(d * static_cast<double>(n))));
}

std::vector<size_t> sorted_distinct_positions(Rng& r, size_t n, size_t k) {
  DYSRA_CHECK_T(ConfigError, k <= n, "synthetic: ", k, " needles need at least as many haystack units, got ", n,
                " (increase max_seq_length)");
  auto v = r.sample_indices(n, k);
  std::sort(v.begin(), v.end());
  return v;
}

SyntheticExample finish(std::string task, uint64_t index, const Frame& f, Built b,
                        const std::vector<std::string>& needles, const std::vector<size_t>& gold,
                        std::vector<std::string> answers, std::string haystack, size_t distractors) {
  SyntheticExample e;
  e.task = std::move(task);
  e.index = index;
  e.instruction = f.instruction;
  e.question = f.question;
  e.answer_prefix = f.answer_prefix;
  e.tokens_to_generate = f.tokens_to_generate;
  e.answers = std::move(answers);
  e.haystack = std::move(haystack);
  e.num_distractors = distractors;
  e.prompt_tokens = b.prompt_tokens;
  std::vector<size_t> g = gold;
  std::sort(g.begin(), g.end(), [&](size_t a, size_t c) { return b.offsets[a] < b.offsets[c]; });
  for (size_t j : g) {
    e.needles.push_back(needles[j]);
    e.needle_char_offsets.push_back(b.offsets[j]);
  }
  e.context = std::move(b.context);
  for (size_t off : e.needle_char_offsets)
    e.needle_depths.push_back(e.context.empty() ? 0.0 : double(off) / double(e.context.size()));
  return e;
}

uint64_t example_seed(const SyntheticCommon& c, const std::string& task, uint64_t index) {
  return seed_for(c.seed, c.split + "/" + task, index);
}

// Haystack unit functions.
struct HaystackUnits {
  UnitFn unit;
  bool constant = false;
  std::string sep;
  std::string name;
};

HaystackUnits noise_units() { return {[](size_t) { return std::string(kNoiseSentence); }, true, "\n", "noise"}; }

HaystackUnits essay_units(const SyntheticCommon& c) {
  auto essay = std::make_shared<EssayText>(c.essay_path);
  return {[essay](size_t i) { return essay->sentence(i); }, false, " ", essay->name()};
}

}  // namespace

// ---- public helpers ----------------------------------------------------------------------------------

TokenCounter byte_token_counter() {
  return [](const std::string& s) { return s.size(); };
}

TokenCounter tokenizer_token_counter(const Tokenizer& tok) {
  if (tok.name() == "byte") return byte_token_counter();
  const Tokenizer* t = &tok;
  return [t](const std::string& s) { return t->encode(s).size(); };
}

TokenCounter word_token_counter(double tokens_per_word) {
  DYSRA_CHECK_T(ConfigError, tokens_per_word > 0, "word_token_counter: tokens_per_word must be > 0");
  return [tokens_per_word](const std::string& s) {
    return static_cast<size_t>(std::ceil(tokens_per_word * static_cast<double>(count_words(s)) - 1e-9));
  };
}

std::string random_needle(Rng& rng, NeedleType type) { return random_needle_value(rng, type); }

std::string SyntheticExample::prompt() const { return instruction + context + question + answer_prefix; }

std::vector<std::string> split_sentences(const std::string& text) {
  // Normalise whitespace first.
  std::string t;
  t.reserve(text.size());
  bool space = false;
  for (char c : text) {
    const bool ws = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (ws) {
      space = !t.empty();
    } else {
      if (space) t += ' ';
      space = false;
      t += c;
    }
  }
  static const std::set<std::string> kAbbrev = {"Mr", "Mrs", "Ms", "Dr", "St", "Mt", "Jr", "Sr", "Col",
                                                 "Gen", "Capt", "Rev", "Esq", "Messrs", "Lt", "No", "vs"};
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (c != '.' && c != '!' && c != '?') continue;
    size_t j = i + 1;
    while (j < t.size() && (t[j] == '"' || t[j] == '\'' || t[j] == ')' || t[j] == '.' || t[j] == '!' || t[j] == '?')) ++j;
    if (j >= t.size() || t[j] != ' ') continue;
    const size_t k = j + 1;
    if (k >= t.size()) continue;
    const char nx = t[k];
    if (!((nx >= 'A' && nx <= 'Z') || nx == '"' || nx == '\'' || (nx >= '0' && nx <= '9') || nx == '(' || nx == '_'))
      continue;
    if (c == '.') {
      size_t w = i;
      while (w > start && t[w - 1] != ' ') --w;
      const std::string word = t.substr(w, i - w);
      if (kAbbrev.count(word) || (word.size() == 1 && word[0] >= 'A' && word[0] <= 'Z')) continue;
    }
    out.push_back(t.substr(start, j - start));
    start = k;
    i = j;
  }
  if (start < t.size()) out.push_back(t.substr(start));
  return out;
}

EssayText::EssayText(const std::string& essay_path) {
  std::string path = essay_path;
  if (path == "auto") {
    path.clear();
    const char* env = std::getenv("DYSRA_DATA_DIR");
    const std::string cands[] = {env ? std::string(env) + "/lm/austen/train.txt" : std::string(),
                                 "data/generated/lm/austen/train.txt"};
    for (const auto& p : cands)
      if (!p.empty() && file_exists(p)) {
        path = p;
        break;
      }
  }
  if (path.empty()) {
    name_ = "essay:generated";
    return;
  }
  sentences_ = load_essay(path);
  name_ = "essay:" + path;
}

std::string EssayText::sentence(uint64_t i) const {
  if (!sentences_) return generated_sentence(i);
  return (*sentences_)[i % sentences_->size()];
}

// ---- passkey -------------------------------------------------------------------------------------------

SyntheticExample generate_passkey(const PasskeyOptions& opt, uint64_t index) {
  const auto& c = opt.common;
  Counter count(c);
  DYSRA_CHECK_T(ConfigError, opt.min_key <= opt.max_key, "passkey: min_key > max_key");
  DYSRA_CHECK_T(ConfigError, opt.depth <= 1.0, "passkey: depth must be in [0, 1] (or < 0 for random)");
  const uint64_t seed = example_seed(c, "passkey", index);
  Rng r(seed);
  const std::string key = std::to_string(r.uniform_int(opt.min_key, opt.max_key));
  Frame f;
  f.instruction =
      "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
      "I will quiz you about the important information there.\n";
  f.question = "\nWhat is the pass key? The pass key is";
  f.tokens_to_generate = 10;
  const std::vector<std::string> needles = {"The pass key is " + key + ". Remember it. " + key + " is the pass key."};
  const double u = r.uniform_real();
  auto positions = [&](size_t n) {
    if (opt.depth >= 0) return std::vector<size_t>{depth_to_pos(opt.depth, n)};
    return std::vector<size_t>{std::min(n, static_cast<size_t>(u * double(n + 1)))};
  };
  Built b = fit(c, count, f, [](size_t) { return std::string(kNoiseSentence); }, true, " ", "\n", needles, 0,
                positions);
  return finish("passkey", index, f, std::move(b), needles, {0}, {key}, "noise", 0);
}

// ---- NIAH ----------------------------------------------------------------------------------------------

NiahOptions niah_preset(const std::string& name, const SyntheticCommon& common) {
  NiahOptions o;
  o.common = common;
  using H = Haystack;
  using T = NeedleType;
  auto set = [&](H h, T k, T v, size_t nk, size_t nv, size_t nq) {
    o.haystack = h;
    o.key_type = k;
    o.value_type = v;
    o.num_keys = nk;
    o.num_values = nv;
    o.num_queries = nq;
  };
  if (name == "niah_single_1") set(H::noise, T::words, T::numbers, 1, 1, 1);
  else if (name == "niah_single_2") set(H::essay, T::words, T::numbers, 1, 1, 1);
  else if (name == "niah_single_3") set(H::essay, T::words, T::uuids, 1, 1, 1);
  else if (name == "niah_multikey_1") set(H::essay, T::words, T::numbers, 4, 1, 1);
  else if (name == "niah_multikey_2") set(H::needle, T::words, T::numbers, 1, 1, 1);
  else if (name == "niah_multikey_3") set(H::needle, T::uuids, T::uuids, 1, 1, 1);
  else if (name == "niah_multivalue") set(H::essay, T::words, T::numbers, 1, 4, 1);
  else if (name == "niah_multiquery") set(H::essay, T::words, T::numbers, 4, 1, 4);
  else
    throw ConfigError("unknown NIAH preset '" + name +
                      "' (known: niah_single_1, niah_single_2, niah_single_3, niah_multikey_1, niah_multikey_2, "
                      "niah_multikey_3, niah_multivalue, niah_multiquery)");
  return o;
}

namespace {
SyntheticExample niah_impl(const NiahOptions& opt, uint64_t index, const std::string& task) {
  const auto& c = opt.common;
  Counter count(c);
  DYSRA_CHECK_T(ConfigError, opt.num_keys >= 1 && opt.num_values >= 1 && opt.num_queries >= 1,
                "niah: num_keys, num_values and num_queries must be >= 1");
  const uint64_t seed = example_seed(c, task, index);
  Rng r(seed);
  const size_t nk = std::max(opt.num_keys, opt.num_queries);
  const bool singular = opt.num_queries * opt.num_values == 1;
  const std::string tv = type_name(opt.value_type, !singular);
  auto needle_text = [&](const std::string& k, const std::string& v) {
    return "One of the special magic " + tv + " for " + k + " is: " + v + ".";
  };
  std::vector<std::string> keys;
  std::vector<std::vector<std::string>> values;
  std::set<std::string> used;
  std::vector<std::string> needles;
  std::vector<size_t> needle_key;
  for (size_t i = 0; i < nk; ++i) {
    std::string k;
    do k = random_needle_value(r, opt.key_type);
    while (!used.insert(k).second);
    keys.push_back(k);
    values.emplace_back();
    for (size_t j = 0; j < opt.num_values; ++j) {
      std::string v;
      do v = random_needle_value(r, opt.value_type);
      while (!used.insert(v).second);
      values.back().push_back(v);
      needles.push_back(needle_text(k, v));
      needle_key.push_back(i);
    }
  }
  {  // shuffle needles (with their key ids)
    std::vector<size_t> perm(needles.size());
    std::iota(perm.begin(), perm.end(), 0);
    r.shuffle(perm);
    std::vector<std::string> n2;
    std::vector<size_t> k2;
    for (size_t p : perm) {
      n2.push_back(needles[p]);
      k2.push_back(needle_key[p]);
    }
    needles.swap(n2);
    needle_key.swap(k2);
  }
  std::vector<size_t> qidx = r.sample_indices(nk, opt.num_queries);
  std::vector<std::string> queries, answers;
  std::set<size_t> qset(qidx.begin(), qidx.end());
  for (size_t i : qidx) {
    queries.push_back(keys[i]);
    for (const auto& v : values[i]) answers.push_back(v);
  }
  std::string query = queries.size() == 1
                          ? queries[0]
                          : join(std::vector<std::string>(queries.begin(), queries.end() - 1), ", ") + ", and " +
                                queries.back();
  Frame f;
  if (singular) {
    f.instruction = "A special magic " + tv + " is hidden within the following text. Make sure to memorize it. "
                    "I will quiz you about the " + tv + " afterwards.\n";
    f.question = "\nWhat is the special magic " + tv + " for " + query + " mentioned in the provided text?";
    f.answer_prefix = " The special magic " + tv + " for " + query + " mentioned in the provided text is";
  } else {
    f.instruction = "Some special magic " + tv + " are hidden within the following text. Make sure to memorize "
                    "it. I will quiz you about the " + tv + " afterwards.\n";
    f.question = "\nWhat are all the special magic " + tv + " for " + query + " mentioned in the provided text?";
    f.answer_prefix = " The special magic " + tv + " for " + query + " mentioned in the provided text are";
  }
  f.tokens_to_generate = 128;

  HaystackUnits hs;
  if (opt.haystack == Haystack::noise) {
    hs = noise_units();
  } else if (opt.haystack == Haystack::essay) {
    hs = essay_units(c);
  } else {
    auto gold = std::make_shared<std::set<std::string>>(used);
    const NeedleType kt = opt.key_type, vt = opt.value_type;
    hs.unit = [seed, gold, kt, vt, needle_text](size_t i) {
      Rng dr(seed_for(seed, "distractor", i));
      std::string k, v;
      do k = random_needle_value(dr, kt);
      while (gold->count(k));
      do v = random_needle_value(dr, vt);
      while (gold->count(v));
      return needle_text(k, v);
    };
    hs.sep = "\n";
    hs.name = "needle";
  }
  for (double d : opt.depths)
    DYSRA_CHECK_T(ConfigError, d >= 0 && d <= 1, "niah: depth must be in [0, 1], got ", d);
  DYSRA_CHECK_T(ConfigError, opt.depths.size() <= 1 || opt.depths.size() == needles.size(), "niah: ",
                opt.depths.size(), " depths given for ", needles.size(), " needles (give 0, 1 or one per needle)");
  const bool essay = opt.haystack == Haystack::essay;
  auto positions = [&](size_t n) {
    Rng pr(seed_for(seed, "positions", 0));
    std::vector<size_t> pos;
    if (opt.depths.size() == 1) {
      pos.assign(needles.size(), depth_to_pos(opt.depths[0], n));
    } else if (!opt.depths.empty()) {
      for (double d : opt.depths) pos.push_back(depth_to_pos(d, n));
    } else if (essay) {
      // RULER: depths sampled without replacement from round(linspace(0, 100, 40)).
      std::vector<double> depths;
      for (int i = 0; i < 40; ++i) depths.push_back(std::round(100.0 * i / 39.0));
      const size_t k = needles.size();
      std::vector<size_t> pick = k <= depths.size() ? pr.sample_indices(depths.size(), k) : std::vector<size_t>{};
      for (size_t j = 0; j < k; ++j) {
        const double d = j < pick.size() ? depths[pick[j]] : depths[pr.below(depths.size())];
        pos.push_back(std::min(n, static_cast<size_t>(double(n) * d / 100.0)));
      }
      std::sort(pos.begin(), pos.end());
    } else {
      pos = sorted_distinct_positions(pr, n, needles.size());
    }
    return pos;
  };
  const size_t min_units = (opt.depths.empty() && !essay) ? needles.size() : 0;
  Built b = fit(c, count, f, hs.unit, hs.constant, hs.sep, hs.sep, needles, min_units, positions);
  std::vector<size_t> gold;
  for (size_t j = 0; j < needles.size(); ++j)
    if (qset.count(needle_key[j])) gold.push_back(j);
  size_t distractors = needles.size() - gold.size() + (opt.haystack == Haystack::needle ? b.n_units : 0);
  return finish(task, index, f, std::move(b), needles, gold, answers, hs.name, distractors);
}
}  // namespace

SyntheticExample generate_niah(const NiahOptions& opt, uint64_t index) { return niah_impl(opt, index, "niah"); }

// ---- variable tracking -------------------------------------------------------------------------------

namespace {
std::vector<std::vector<std::string>> make_chains(Rng& r, size_t num_chains, size_t num_hops, size_t name_len,
                                                  const std::vector<std::string>& values,
                                                  std::vector<std::vector<std::string>>* names) {
  std::set<std::string> seen;
  std::vector<std::vector<std::string>> chains;
  for (size_t c = 0; c < num_chains; ++c) {
    std::vector<std::string> vars;
    while (vars.size() < num_hops + 1) {
      std::string v;
      for (size_t i = 0; i < name_len; ++i) v += static_cast<char>('A' + r.below(26));
      if (seen.insert(v).second) vars.push_back(v);
    }
    std::vector<std::string> chain = {"VAR " + vars[0] + " = " + values[c]};
    for (size_t j = 0; j < num_hops; ++j) chain.push_back("VAR " + vars[j + 1] + " = VAR " + vars[j] + " ");
    chains.push_back(chain);
    names->push_back(vars);
  }
  return chains;
}

// Interleave chains at random, keeping each chain's order; returns (chain id, statement) pairs.
std::vector<std::pair<size_t, std::string>> interleave(Rng& r, const std::vector<std::vector<std::string>>& chains) {
  std::vector<size_t> next(chains.size(), 0);
  std::vector<std::pair<size_t, std::string>> out;
  size_t left = 0;
  for (const auto& ch : chains) left += ch.size();
  while (left) {
    // pick a chain with probability proportional to its remaining statements
    uint64_t t = r.below(left);
    size_t c = 0;
    while (t >= chains[c].size() - next[c]) {
      t -= chains[c].size() - next[c];
      ++c;
    }
    out.emplace_back(c, chains[c][next[c]++]);
    --left;
  }
  return out;
}

const char* kVtInstruction = "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n";
std::string vt_question(const std::string& v) {
  return "\nQuestion: Find all variables that are assigned the value " + v + " in the text above.";
}
std::string vt_prefix(size_t num_v, const std::string& v) {
  return " Answer: According to the chain(s) of variable assignment in the text above, " + std::to_string(num_v) +
         " variables are assigned the value " + v + ", they are: ";
}
}  // namespace

SyntheticExample generate_variable_tracking(const VariableTrackingOptions& opt, uint64_t index) {
  const auto& c = opt.common;
  Counter count(c);
  DYSRA_CHECK_T(ConfigError, opt.num_chains >= 1 && opt.num_hops >= 1, "vt: num_chains and num_hops must be >= 1");
  const uint64_t seed = example_seed(c, "vt", index);
  Rng r(seed);
  std::vector<std::string> vals;
  std::set<std::string> vseen = {"12345"};
  while (vals.size() < opt.num_chains) {
    std::string v = std::to_string(r.uniform_int(10000, 99999));
    if (vseen.insert(v).second) vals.push_back(v);
  }
  std::vector<std::vector<std::string>> names;
  auto chains = make_chains(r, opt.num_chains, opt.num_hops, 5, vals, &names);
  auto stmts = interleave(r, chains);
  std::vector<std::string> needles;
  std::vector<size_t> gold;
  for (size_t j = 0; j < stmts.size(); ++j) {
    needles.push_back(stmts[j].second);
    if (stmts[j].first == 0) gold.push_back(j);
  }
  Frame f;
  if (opt.icl_example) {
    // RULER's one-shot example: 3-letter names, value 12345, a short noise haystack.
    Rng ir(seed_for(seed, "icl", 0));
    std::vector<std::vector<std::string>> inames;
    auto ich = make_chains(ir, 1, std::min<size_t>(10, opt.num_hops), 3, {"12345"}, &inames);
    const size_t n_noise = 5;
    std::vector<size_t> ipos;
    for (size_t j = 0; j < ich[0].size(); ++j) ipos.push_back(ir.below(n_noise + 1));
    std::sort(ipos.begin(), ipos.end());
    Built ib = assemble(n_noise, [](size_t) { return std::string(kNoiseSentence); }, "\n", "\n", ich[0], ipos);
    f.instruction = kVtInstruction + ib.context + vt_question("12345") + vt_prefix(inames[0].size(), "12345") +
                    join(inames[0], " ") + "\n\n";
  }
  f.instruction += kVtInstruction;
  f.question = vt_question(vals[0]);
  f.answer_prefix = vt_prefix(names[0].size(), vals[0]);
  f.tokens_to_generate = 30;
  auto positions = [&](size_t n) {
    Rng pr(seed_for(seed, "positions", 0));
    return sorted_distinct_positions(pr, n, needles.size());
  };
  Built b = fit(c, count, f, [](size_t) { return std::string(kNoiseSentence); }, true, "\n", "\n", needles,
                needles.size(), positions);
  return finish("vt", index, f, std::move(b), needles, gold, names[0], "noise", opt.num_chains - 1);
}

// ---- CWE -----------------------------------------------------------------------------------------------

namespace {
std::string numbered(const std::vector<std::string>& w) {
  std::string s;
  for (size_t i = 0; i < w.size(); ++i) s += (i ? " " : "") + std::to_string(i + 1) + ". " + w[i];
  return s;
}

// num_words distinct words; the first num_common repeat fc times, the others fu times; shuffled.
std::pair<std::vector<std::string>, std::vector<std::string>> cwe_list(Rng& r, size_t num_words, size_t num_common,
                                                                       size_t fc, size_t fu) {
  auto w = distinct_words(r, num_words);
  std::vector<std::string> list;
  for (size_t i = 0; i < w.size(); ++i)
    for (size_t k = 0; k < (i < num_common ? fc : fu); ++k) list.push_back(w[i]);
  r.shuffle(list);
  return {list, std::vector<std::string>(w.begin(), w.begin() + std::min(num_common, w.size()))};
}

// Largest n in [lo, ...) with tokens(n) + gen ≤ max (tokens(n) nondecreasing in n up to noise).
template <class F>
size_t largest_fitting(size_t lo, size_t max_len, F&& total_tokens, const char* what) {
  DYSRA_CHECK_T(ConfigError, total_tokens(lo) <= max_len, what, ": max_seq_length ", max_len,
                " is too small for the smallest instance");
  size_t hi = lo + 1;
  while (total_tokens(hi) <= max_len) {
    lo = hi;
    hi = hi * 2;
  }
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    (total_tokens(mid) <= max_len ? lo : hi) = mid;
  }
  return lo;
}
}  // namespace

SyntheticExample generate_cwe(const CweOptions& opt, uint64_t index) {
  const auto& c = opt.common;
  Counter count(c);
  DYSRA_CHECK_T(ConfigError, opt.num_common >= 1, "cwe: num_common must be >= 1");
  const bool short_ctx = c.max_seq_length < 4096;
  const size_t fc = opt.freq_common ? opt.freq_common : (short_ctx ? 6 : 30);
  const size_t fu = opt.freq_uncommon ? opt.freq_uncommon : (short_ctx ? 1 : 3);
  DYSRA_CHECK_T(ConfigError, fc > fu, "cwe: freq_common (", fc, ") must exceed freq_uncommon (", fu, ")");
  const uint64_t seed = example_seed(c, "cwe", index);
  const std::string head =
      "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones "
      "that appear most often.\n";
  const std::string q = "\nQuestion: What are the " + std::to_string(opt.num_common) +
                        " most common words in the above list?";
  const std::string prefix = " Answer: The top " + std::to_string(opt.num_common) +
                             " words that appear most often in the list are:";
  Frame f;
  if (opt.icl_example) {
    Rng ir(seed_for(seed, "icl", 0));
    auto ex = short_ctx ? cwe_list(ir, 20, opt.num_common, 3, 1) : cwe_list(ir, 40, opt.num_common, 10, 3);
    f.instruction = head + numbered(ex.first) + q + prefix + " " + numbered(ex.second) + "\n";
  }
  f.instruction += head;
  f.question = q;
  f.answer_prefix = prefix;
  f.tokens_to_generate = 120;
  auto make = [&](size_t n) {
    Rng r(seed);
    return cwe_list(r, n, opt.num_common, fc, fu);
  };
  auto total = [&](size_t n) {
    return count(f.instruction + numbered(make(n).first) + f.question + f.answer_prefix) + f.tokens_to_generate;
  };
  const size_t n = largest_fitting(opt.num_common + 1, c.max_seq_length, total, "cwe");
  auto [list, common_words] = make(n);
  Built b;
  b.context = numbered(list);
  b.prompt_tokens = total(n) - f.tokens_to_generate;
  return finish("cwe", index, f, std::move(b), {}, {}, common_words, "list", n - opt.num_common);
}

// ---- FWE -----------------------------------------------------------------------------------------------

namespace {
double zeta(double a) {
  const int K = 100000;
  double s = 0;
  for (int k = K; k >= 1; --k) s += std::pow(double(k), -a);
  // Euler–Maclaurin tail beyond K.
  s += std::pow(double(K), 1 - a) / (a - 1) - 0.5 * std::pow(double(K), -a);
  return s;
}
}  // namespace

SyntheticExample generate_fwe(const FweOptions& opt, uint64_t index) {
  const auto& c = opt.common;
  Counter count(c);
  DYSRA_CHECK_T(ConfigError, opt.alpha > 1.0, "fwe: alpha must be > 1, got ", opt.alpha);
  DYSRA_CHECK_T(ConfigError, opt.vocab_size >= 5, "fwe: vocab_size must be >= 5");
  const uint64_t seed = example_seed(c, "fwe", index);
  Rng r(seed);
  std::set<std::string> vs;
  while (vs.size() < opt.vocab_size) {
    std::string w;
    for (int i = 0; i < 6; ++i) w += static_cast<char>('a' + r.below(26));
    vs.insert(w);
  }
  std::vector<std::string> vocab(vs.begin(), vs.end());  // sorted, as RULER
  r.shuffle(vocab);
  vocab[0] = "...";
  const double z = zeta(opt.alpha);
  auto counts = [&](size_t num_words) {
    std::vector<size_t> cnt(vocab.size());
    for (size_t k = 0; k < vocab.size(); ++k)
      cnt[k] = static_cast<size_t>(double(num_words) * std::pow(double(k + 1), -opt.alpha) / z);
    return cnt;
  };
  auto make = [&](size_t num_words) {
    auto cnt = counts(num_words);
    std::vector<const std::string*> list;
    for (size_t k = 0; k < vocab.size(); ++k)
      for (size_t i = 0; i < cnt[k]; ++i) list.push_back(&vocab[k]);
    Rng sr(seed_for(seed, "shuffle", num_words));
    sr.shuffle(list);
    std::string s;
    for (size_t i = 0; i < list.size(); ++i) {
      if (i) s += ' ';
      s += *list[i];
    }
    return s;
  };
  Frame f;
  f.instruction =
      "Read the following coded text and track the frequency of each coded word. Find the three most frequently "
      "appeared coded words. ";
  f.question =
      "\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What are the three most "
      "frequently appeared words in the above coded text?";
  f.answer_prefix = " Answer: According to the coded text above, the three most frequently appeared words are:";
  f.tokens_to_generate = 50;
  auto total = [&](size_t n) {
    return count(f.instruction + make(n) + f.question + f.answer_prefix) + f.tokens_to_generate;
  };
  const size_t n = largest_fitting(1, c.max_seq_length, total, "fwe");
  const auto cnt = counts(n);
  DYSRA_CHECK_T(ConfigError, cnt[3] > cnt[4], "fwe: max_seq_length ", c.max_seq_length,
                " is too small: the 3rd and 4th most frequent words tie (", n, " words)");
  Built b;
  b.context = make(n);
  b.prompt_tokens = total(n) - f.tokens_to_generate;
  return finish("fwe", index, f, std::move(b), {}, {}, {vocab[1], vocab[2], vocab[3]}, "list", 0);
}

// ---- KV retrieval ------------------------------------------------------------------------------------

SyntheticExample generate_kv_retrieval(const KvRetrievalOptions& opt, uint64_t index) {
  const auto& c = opt.common;
  Counter count(c);
  DYSRA_CHECK_T(ConfigError, opt.depth <= 1.0, "kv_retrieval: depth must be in [0, 1] (or < 0 for random)");
  const uint64_t seed = example_seed(c, "kv_retrieval", index);
  Rng r(seed);
  const std::string key = uuid4(r), value = uuid4(r);
  const double u = r.uniform_real();
  const std::vector<std::string> needles = {"\"" + key + "\": \"" + value + "\""};
  auto unit = [seed](size_t i) {
    Rng ur(seed_for(seed, "pair", i));
    std::string k = uuid4(ur), v = uuid4(ur);
    return "\"" + k + "\": \"" + v + "\"";
  };
  Frame f;
  f.instruction = "Extract the value corresponding to the specified key in the JSON object below.\n\n";
  f.question = "\n\nKey: \"" + key + "\"\nThe value associated with the specified key is:";
  f.tokens_to_generate = 50;
  auto positions = [&](size_t n) {
    if (opt.depth >= 0) return std::vector<size_t>{depth_to_pos(opt.depth, n)};
    return std::vector<size_t>{std::min(n, static_cast<size_t>(u * double(n + 1)))};
  };
  Built b = fit(c, count, f, unit, false, ", ", ", ", needles, 0, positions, "{", "}");
  const size_t n = b.n_units;
  return finish("kv_retrieval", index, f, std::move(b), needles, {0}, {value}, "json", n);
}

// ---- multi-hop chained facts -------------------------------------------------------------------------

SyntheticExample generate_multihop(const MultiHopOptions& opt, uint64_t index) {
  const auto& c = opt.common;
  Counter count(c);
  DYSRA_CHECK_T(ConfigError, opt.hops == 2 || opt.hops == 3, "multihop: hops must be 2 or 3, got ", opt.hops);
  DYSRA_CHECK_T(ConfigError, opt.haystack != Haystack::needle, "multihop: haystack must be noise or essay");
  const std::string task = "multihop_" + std::to_string(opt.hops);
  const uint64_t seed = example_seed(c, task, index);
  Rng r(seed);
  const auto& first = words::first_names();
  const auto& last = words::last_names();
  std::set<std::string> used;
  auto person = [&] {
    std::string p;
    do p = first[r.below(first.size())] + " " + last[r.below(last.size())];
    while (!used.insert(p).second);
    return p;
  };
  auto place = [&](const char* suffix) {
    std::string p;
    do p = capitalized(pseudo_word(r.below(512000))) + suffix;
    while (!used.insert(p).second);
    return p;
  };
  std::vector<std::string> needles;
  std::vector<size_t> gold;
  std::string subject, answer;
  const size_t chains = 1 + opt.num_distractor_chains;
  for (size_t ch = 0; ch < chains; ++ch) {
    const std::string p = person();
    const std::string city = place("");
    const std::string country = place("ia");
    std::vector<std::string> facts;
    std::string born = p;
    if (opt.hops == 3) {
      const std::string mentor = person();
      facts.push_back(p + "'s mentor was " + mentor + ".");
      born = mentor;
    }
    facts.push_back(born + " was born in the city of " + city + ".");
    facts.push_back("The city of " + city + " lies in the country of " + country + ".");
    for (auto& fct : facts) {
      if (ch == 0) gold.push_back(needles.size());
      needles.push_back(fct);
    }
    if (ch == 0) {
      subject = p;
      answer = country;
    }
  }
  // Shuffle fact order (keeping track of the gold ones).
  std::vector<size_t> perm(needles.size());
  std::iota(perm.begin(), perm.end(), 0);
  r.shuffle(perm);
  std::vector<std::string> shuffled;
  std::vector<size_t> gold2;
  std::set<size_t> gset(gold.begin(), gold.end());
  for (size_t j = 0; j < perm.size(); ++j) {
    shuffled.push_back(needles[perm[j]]);
    if (gset.count(perm[j])) gold2.push_back(j);
  }
  needles.swap(shuffled);
  gold.swap(gold2);
  for (double d : opt.depths)
    DYSRA_CHECK_T(ConfigError, d >= 0 && d <= 1, "multihop: depth must be in [0, 1], got ", d);
  DYSRA_CHECK_T(ConfigError, opt.depths.size() <= 1 || opt.depths.size() == gold.size(), "multihop: ",
                opt.depths.size(), " depths given for ", gold.size(), " gold facts");
  Frame f;
  f.instruction = "Answer the question using the facts hidden in the following text. The answer needs several "
                  "of these facts combined.\n";
  f.question = opt.hops == 2 ? "\nQuestion: In which country was " + subject + " born?"
                             : "\nQuestion: In which country was the mentor of " + subject + " born?";
  f.answer_prefix = " Answer:";
  f.tokens_to_generate = 32;
  HaystackUnits hs = opt.haystack == Haystack::noise ? noise_units() : essay_units(c);
  auto positions = [&](size_t n) {
    Rng pr(seed_for(seed, "positions", 0));
    std::vector<size_t> pos(needles.size());
    if (opt.depths.empty()) {
      const bool fits = needles.size() <= n;
      auto p = fits ? sorted_distinct_positions(pr, n, needles.size()) : std::vector<size_t>{};
      for (size_t j = 0; j < needles.size(); ++j) pos[j] = fits ? p[j] : pr.below(n + 1);
      return pos;
    }
    for (size_t j = 0; j < needles.size(); ++j) pos[j] = pr.below(n + 1);
    for (size_t g = 0; g < gold.size(); ++g)
      pos[gold[g]] = depth_to_pos(opt.depths.size() == 1 ? opt.depths[0] : opt.depths[g], n);
    return pos;
  };
  Built b = fit(c, count, f, hs.unit, hs.constant, hs.sep, hs.sep, needles, 0, positions);
  return finish(task, index, f, std::move(b), needles, gold, {answer}, hs.name, opt.num_distractor_chains);
}

// ---- registry ------------------------------------------------------------------------------------------

namespace {
using Factory = std::function<SyntheticGenerator(const SyntheticCommon&)>;
const Registry<Factory>& registry() {
  static const Registry<Factory> reg = [] {
    Registry<Factory> r("synthetic task");
    r.add("passkey", [](const SyntheticCommon& c) {
      PasskeyOptions o;
      o.common = c;
      return SyntheticGenerator([o](uint64_t i) { return generate_passkey(o, i); });
    });
    for (const char* name : {"niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1",
                             "niah_multikey_2", "niah_multikey_3", "niah_multivalue", "niah_multiquery"}) {
      const std::string n = name;
      r.add(n, [n](const SyntheticCommon& c) {
        NiahOptions o = niah_preset(n, c);
        return SyntheticGenerator([o, n](uint64_t i) { return niah_impl(o, i, n); });
      });
    }
    r.add("vt", [](const SyntheticCommon& c) {
      VariableTrackingOptions o;
      o.common = c;
      return SyntheticGenerator([o](uint64_t i) { return generate_variable_tracking(o, i); });
    });
    r.add("cwe", [](const SyntheticCommon& c) {
      CweOptions o;
      o.common = c;
      return SyntheticGenerator([o](uint64_t i) { return generate_cwe(o, i); });
    });
    r.add("fwe", [](const SyntheticCommon& c) {
      FweOptions o;
      o.common = c;
      return SyntheticGenerator([o](uint64_t i) { return generate_fwe(o, i); });
    });
    r.add("kv_retrieval", [](const SyntheticCommon& c) {
      KvRetrievalOptions o;
      o.common = c;
      return SyntheticGenerator([o](uint64_t i) { return generate_kv_retrieval(o, i); });
    });
    for (size_t hops : {2, 3}) {
      r.add("multihop_" + std::to_string(hops), [hops](const SyntheticCommon& c) {
        MultiHopOptions o;
        o.common = c;
        o.hops = hops;
        return SyntheticGenerator([o](uint64_t i) { return generate_multihop(o, i); });
      });
    }
    return r;
  }();
  return reg;
}
}  // namespace

SyntheticGenerator make_synthetic_task(const std::string& name, const SyntheticCommon& common) {
  return registry().get(name)(common);
}

std::vector<std::string> synthetic_task_names() { return registry().names(); }

}  // namespace dysra::data
