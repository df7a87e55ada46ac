// dysra/data/corpora.cpp — decoders for the Debian corpora and the FlashRAG JSONL builder.
#include "dysra/data/corpora.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "dysra/core/error.h"
#include "dysra/data/rng.h"
#include "dysra/data/synthetic.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace dysra::data {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DYSRA_CHECK_T(DataError, in, path, ": cannot open (run scripts/fetch_corpora.sh?)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

std::string collapse_ws(const std::string& s) {
  std::string t;
  bool sp = false;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      sp = !t.empty();
    } else {
      if (sp) t += ' ';
      sp = false;
      t += c;
    }
  }
  return t;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '\'' || c == '-'; }

// Position of `w` in `s` as a whole word (not inside a longer word), or npos.
size_t find_word(const std::string& s, const std::string& w, size_t from = 0) {
  for (size_t p = s.find(w, from); p != std::string::npos; p = s.find(w, p + 1)) {
    const bool l = p == 0 || !is_word_char(s[p - 1]);
    const bool r = p + w.size() >= s.size() || !is_word_char(s[p + w.size()]);
    if (l && r) return p;
  }
  return std::string::npos;
}

// ---- JSONL output --------------------------------------------------------------------------------------

class JsonlWriter {
 public:
  explicit JsonlWriter(const fs::path& p) : path_(p) {
    fs::create_directories(p.parent_path());
    out_.open(tmp(), std::ios::binary | std::ios::trunc);
    DYSRA_CHECK_T(DataError, out_, p.string(), ": cannot write");
  }
  void write(const json& j) {
    out_ << j.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
    ++n_;
  }
  size_t close() {  // write to a temp file, then rename: no half-written file is ever left under its name
    out_.close();
    DYSRA_CHECK_T(DataError, !out_.fail(), path_.string(), ": write failed");
    fs::rename(tmp(), path_);
    return n_;
  }
  ~JsonlWriter() {
    if (out_.is_open()) {
      out_.close();
      std::error_code ec;
      fs::remove(tmp(), ec);
    }
  }

 private:
  fs::path tmp() const { return path_.string() + ".tmp"; }
  fs::path path_;
  std::ofstream out_;
  size_t n_ = 0;
};

void write_text(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p.string() + ".tmp", std::ios::binary | std::ios::trunc);
  out << s;
  out.close();
  DYSRA_CHECK_T(DataError, !out.fail(), p.string(), ": write failed");
  fs::rename(p.string() + ".tmp", p);
}

struct Question {
  std::string question;
  std::vector<std::string> answers;
  json metadata;
};

using Counts = std::map<std::string, size_t>;

// Shuffle (seeded by task), cap, split into test / dev / train (test first), write.
void write_task(const CorporaOptions& opt, const std::string& task, std::vector<Question> qs, Counts& counts,
                bool all_test = false) {
  Rng r(seed_for(opt.seed, "select/" + task, 0));
  r.shuffle(qs);
  if (opt.max_questions_per_task && qs.size() > opt.max_questions_per_task) qs.resize(opt.max_questions_per_task);
  const size_t n = qs.size();
  const size_t n_test = all_test ? n : static_cast<size_t>(std::llround(opt.test_fraction * double(n)));
  const size_t n_dev = all_test ? 0 : static_cast<size_t>(std::llround(opt.dev_fraction * double(n)));
  const fs::path dir = fs::path(opt.out_dir) / task;
  JsonlWriter test(dir / "test.jsonl"), dev(dir / "dev.jsonl"), train(dir / "train.jsonl");
  for (size_t i = 0; i < n; ++i) {
    char id[64];
    std::snprintf(id, sizeof id, "%s-%06zu", task.c_str(), i);
    json j = {{"id", id}, {"question", qs[i].question}, {"golden_answers", qs[i].answers},
              {"metadata", qs[i].metadata}};
    (i < n_test ? test : i < n_test + n_dev ? dev : train).write(j);
  }
  counts[task + "/test"] = test.close();
  counts[task + "/dev"] = dev.close();
  counts[task + "/train"] = train.close();
}

// LM corpus: documents assigned to splits by a hash of their id.
void write_lm(const CorporaOptions& opt, const std::string& name,
              const std::vector<std::pair<std::string, std::string>>& docs, Counts& counts) {
  const fs::path dir = fs::path(opt.out_dir) / "lm" / name;
  const char* splits[] = {"train", "validation", "test"};
  std::unique_ptr<JsonlWriter> w[3];
  std::string txt[3];
  for (int s = 0; s < 3; ++s) w[s] = std::make_unique<JsonlWriter>(dir / (std::string(splits[s]) + ".jsonl"));
  for (const auto& [id, text] : docs) {
    uint64_t st = seed_for(opt.seed, "lm/" + name, fnv1a64(id));
    const double u = double(splitmix64(st) >> 11) * 0x1.0p-53;
    const int s = u < opt.lm_test_fraction ? 2 : u < opt.lm_test_fraction + opt.lm_validation_fraction ? 1 : 0;
    w[s]->write({{"id", id}, {"contents", text}});
    txt[s] += text;
    txt[s] += "\n\n";
  }
  for (int s = 0; s < 3; ++s) {
    counts["lm/" + name + "/" + splits[s]] = w[s]->close();
    write_text(dir / (std::string(splits[s]) + ".txt"), txt[s]);
  }
}

}  // namespace

// ---- gzip / zlib -----------------------------------------------------------------------------------------

std::string gunzip(const std::string& data, const std::string& what) {
  z_stream z{};
  DYSRA_CHECK_T(DataError, inflateInit2(&z, 15 + 32) == Z_OK, what, ": inflateInit failed");
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  char buf[1 << 16];
  int rc = Z_OK;
  while (true) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
    if (rc == Z_STREAM_END) {
      if (z.avail_in == 0) break;
      inflateReset(&z);  // concatenated gzip members
      continue;
    }
    if (rc != Z_OK) break;
  }
  inflateEnd(&z);
  DYSRA_CHECK_T(DataError, rc == Z_STREAM_END, what, ": corrupt or truncated compressed data (zlib code ", rc, ")");
  return out;
}

// ---- WordNet ---------------------------------------------------------------------------------------------

std::vector<std::string> WordNetSynset::hypernyms() const {
  std::vector<std::string> out;
  for (const auto& [sym, id] : pointers)
    if (sym == "@" || sym == "@i") out.push_back(id);
  return out;
}

namespace {
std::string wn_id(char pos, uint32_t offset) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "wn-%c-%08u", pos == 's' ? 'a' : pos, offset);
  return buf;
}
}  // namespace

std::vector<WordNetSynset> read_wordnet_data(const std::string& path) {
  std::vector<WordNetSynset> out;
  const auto lines = read_lines(path);
  for (size_t ln = 0; ln < lines.size(); ++ln) {
    const std::string& line = lines[ln];
    if (line.empty() || line[0] == ' ') continue;  // licence header
    auto fail = [&](const std::string& why) {
      return DataError(path + ":" + std::to_string(ln + 1) + ": " + why);
    };
    const size_t bar = line.find(" | ");
    const std::string head = bar == std::string::npos ? line : line.substr(0, bar);
    std::istringstream in(head);
    WordNetSynset s;
    std::string tok, pos, wcnt;
    if (!(in >> s.offset >> s.lexfile >> pos >> wcnt) || pos.size() != 1) throw fail("bad synset header");
    s.pos = pos[0];
    if (!std::strchr("nvasr", s.pos)) throw fail("bad part of speech '" + pos + "'");
    size_t nw = 0, used = 0;
    try {
      nw = std::stoul(wcnt, &used, 16);
    } catch (...) {
      used = 0;
    }
    if (used != wcnt.size() || nw == 0) throw fail("bad word count '" + wcnt + "' (two hex digits)");
    for (size_t i = 0; i < nw; ++i) {
      std::string w, lexid;
      if (!(in >> w >> lexid)) throw fail("truncated word list");
      const size_t paren = w.find('(');
      if (paren != std::string::npos && w.back() == ')') w = w.substr(0, paren);  // adjective marker
      std::replace(w.begin(), w.end(), '_', ' ');
      s.lemmas.push_back(w);
    }
    size_t np = 0;
    if (!(in >> np)) throw fail("missing pointer count");
    for (size_t i = 0; i < np; ++i) {
      std::string sym, off, ppos, st;
      if (!(in >> sym >> off >> ppos >> st) || ppos.size() != 1) throw fail("truncated pointer list");
      s.pointers.emplace_back(sym, wn_id(ppos[0], static_cast<uint32_t>(std::stoul(off))));
    }
    s.id = wn_id(s.pos, s.offset);
    if (bar != std::string::npos) s.gloss = trim(line.substr(bar + 3));
    // Split the gloss into clauses on "; " outside quotes; quoted clauses are examples.
    std::vector<std::string> defs;
    std::string cur;
    bool inq = false;
    for (size_t i = 0; i <= s.gloss.size(); ++i) {
      const char c = i < s.gloss.size() ? s.gloss[i] : ';';
      if (c == '"') inq = !inq;
      if (c == ';' && !inq) {
        const std::string t = trim(cur);
        if (!t.empty()) {
          if (t.front() == '"') {
            const size_t e = t.find('"', 1);
            s.examples.push_back(t.substr(1, (e == std::string::npos ? t.size() : e) - 1));
          } else {
            defs.push_back(t);
          }
        }
        cur.clear();
      } else {
        cur += c;
      }
    }
    for (size_t i = 0; i < defs.size(); ++i) s.definition += (i ? "; " : "") + defs[i];
    out.push_back(std::move(s));
  }
  return out;
}

// ---- dictd -----------------------------------------------------------------------------------------------

uint64_t dictd_b64(const std::string& s) {
  static const std::string B = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint64_t v = 0;
  DYSRA_CHECK_T(DataError, !s.empty(), "dictd: empty base-64 number");
  for (char c : s) {
    const size_t d = B.find(c);
    DYSRA_CHECK_T(DataError, d != std::string::npos, "dictd: bad base-64 digit '", c, "' in '", s, "'");
    v = v * 64 + d;
  }
  return v;
}

std::vector<DictEntry> read_dictd(const std::string& index_path, const std::string& dict_path) {
  std::string dict = read_file(dict_path);
  if (dict.size() >= 2 && static_cast<unsigned char>(dict[0]) == 0x1f && static_cast<unsigned char>(dict[1]) == 0x8b)
    dict = gunzip(dict, dict_path);
  const auto lines = read_lines(index_path);
  std::vector<DictEntry> out;
  std::set<std::pair<uint64_t, uint64_t>> seen;
  for (size_t ln = 0; ln < lines.size(); ++ln) {
    if (lines[ln].empty()) continue;
    const size_t t1 = lines[ln].find('\t');
    const size_t t2 = t1 == std::string::npos ? t1 : lines[ln].find('\t', t1 + 1);
    DYSRA_CHECK_T(DataError, t2 != std::string::npos, index_path, ":", ln + 1, ": expected headword<TAB>offset<TAB>length");
    DictEntry e;
    e.headword = lines[ln].substr(0, t1);
    size_t t3 = lines[ln].find('\t', t2 + 1);
    try {
      e.offset = dictd_b64(lines[ln].substr(t1 + 1, t2 - t1 - 1));
      e.length = dictd_b64(lines[ln].substr(t2 + 1, t3 == std::string::npos ? std::string::npos : t3 - t2 - 1));
    } catch (const DataError& err) {
      throw DataError(index_path + ":" + std::to_string(ln + 1) + ": " + err.what());
    }
    if (e.headword.rfind("00-database", 0) == 0 || e.headword.rfind("00database", 0) == 0) continue;
    DYSRA_CHECK_T(DataError, e.offset + e.length <= dict.size(), index_path, ":", ln + 1, ": entry '", e.headword,
                  "' points past the end of ", dict_path);
    if (!seen.insert({e.offset, e.length}).second) continue;
    e.body = dict.substr(e.offset, e.length);
    out.push_back(std::move(e));
  }
  return out;
}

// ---- KJV -------------------------------------------------------------------------------------------------

std::vector<Verse> read_kjv(const std::string& path) {
  static const std::regex re(R"(^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$)");
  std::vector<Verse> out;
  const auto lines = read_lines(path);
  for (size_t ln = 0; ln < lines.size(); ++ln) {
    if (trim(lines[ln]).empty()) continue;
    std::smatch m;
    DYSRA_CHECK_T(DataError, std::regex_match(lines[ln], m, re), path, ":", ln + 1,
                  ": expected '<Book><chapter>:<verse> <text>'");
    Verse v;
    v.book = m[1];
    v.chapter = std::stoi(m[2]);
    v.verse = std::stoi(m[3]);
    v.key = v.book + std::to_string(v.chapter) + ":" + std::to_string(v.verse);
    v.text = trim(m[4]);
    out.push_back(std::move(v));
  }
  return out;
}

// ---- POD -------------------------------------------------------------------------------------------------

std::string strip_pod_codes(const std::string& s) {
  // Handles nested codes, including the "C<< … >>" form.
  std::string out;
  size_t i = 0;
  std::function<std::string(size_t&, size_t)> parse = [&](size_t& p, size_t close_n) -> std::string {
    std::string r;
    while (p < s.size()) {
      if (close_n && s[p] == '>') {
        size_t k = 0;
        while (p + k < s.size() && s[p + k] == '>' && k < close_n) ++k;
        if (k == close_n) {
          // drop the space before ">>"
          if (close_n > 1 && !r.empty() && r.back() == ' ') r.pop_back();
          p += k;
          return r;
        }
      }
      if (std::isupper(static_cast<unsigned char>(s[p])) && p + 1 < s.size() && s[p + 1] == '<') {
        const char code = s[p];
        size_t q = p + 1, n = 0;
        while (q < s.size() && s[q] == '<') ++q, ++n;
        if (n > 1 && q < s.size() && s[q] == ' ') ++q;
        p = q;
        std::string inner = parse(p, n);
        if (code == 'E') {
          static const std::map<std::string, std::string> ents = {{"lt", "<"}, {"gt", ">"}, {"verbar", "|"},
                                                                  {"sol", "/"}, {"quot", "\""}, {"amp", "&"}};
          auto it = ents.find(inner);
          r += it != ents.end() ? it->second : "";
        } else if (code == 'L') {
          const size_t bar = inner.find('|');
          if (bar != std::string::npos) inner = inner.substr(0, bar);
          else if (inner.size() > 1 && inner[0] == '/') inner = inner.substr(1);
          r += inner;
        } else if (code == 'Z' || code == 'X') {
        } else {
          r += inner;
        }
        continue;
      }
      r += s[p++];
    }
    return r;
  };
  out = parse(i, 0);
  return out;
}

std::vector<PodSection> read_pod_sections(const std::string& path) {
  std::vector<PodSection> out;
  const auto lines = read_lines(path);
  PodSection* cur = nullptr;
  for (const auto& line : lines) {
    if (line.rfind("=head1 ", 0) == 0 || line.rfind("=head2 ", 0) == 0) {
      out.push_back(PodSection{});
      cur = &out.back();
      cur->level = line[5] - '0';
      cur->heading = trim(strip_pod_codes(line.substr(7)));
      continue;
    }
    if (cur) {
      if (line.rfind("=cut", 0) == 0) {
        cur = nullptr;
        continue;
      }
      cur->body += line;
      cur->body += '\n';
    }
  }
  for (auto& s : out) s.body = trim(s.body);
  return out;
}

// ---- R lazy-load database --------------------------------------------------------------------------------

namespace {
struct RObj {
  int type = 0;
  std::vector<std::string> strings;  // STRSXP, CHARSXP (1), SYMSXP (1)
  std::vector<int32_t> ints;         // INTSXP, LGLSXP
  std::vector<std::shared_ptr<RObj>> items;  // VECSXP, pairlist elements
  std::vector<std::string> tags;             // pairlist tags
  std::shared_ptr<RObj> attr;
};
using RPtr = std::shared_ptr<RObj>;

class RReader {
 public:
  RReader(const std::string& data, std::string what) : d_(data), what_(std::move(what)) {}

  RPtr read_all() {
    DYSRA_CHECK_T(DataError, d_.size() >= 2 && d_[0] == 'X' && d_[1] == '\n', what_,
                  ": not an XDR R serialisation (format '", d_.substr(0, 2), "')");
    p_ = 2;
    const int32_t version = i32();
    i32();
    i32();
    DYSRA_CHECK_T(DataError, version == 2 || version == 3, what_, ": unsupported R serialisation version ", version);
    if (version == 3) {
      const int32_t n = i32();
      bytes(static_cast<size_t>(n));
    }
    return item();
  }

 private:
  int32_t i32() {
    DYSRA_CHECK_T(DataError, p_ + 4 <= d_.size(), what_, ": truncated at byte ", p_);
    const auto* b = reinterpret_cast<const unsigned char*>(d_.data() + p_);
    p_ += 4;
    return static_cast<int32_t>((uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | b[3]);
  }
  std::string bytes(size_t n) {
    DYSRA_CHECK_T(DataError, p_ + n <= d_.size(), what_, ": truncated at byte ", p_);
    std::string s = d_.substr(p_, n);
    p_ += n;
    return s;
  }
  size_t length() {
    const int32_t n = i32();
    if (n != -1) return static_cast<size_t>(n);
    const uint64_t hi = static_cast<uint32_t>(i32()), lo = static_cast<uint32_t>(i32());
    return static_cast<size_t>((hi << 32) | lo);
  }
  RPtr item() {
    const uint32_t flags = static_cast<uint32_t>(i32());
    const int type = flags & 0xFF;
    const bool has_attr = flags & (1u << 9), has_tag = flags & (1u << 10);
    auto o = std::make_shared<RObj>();
    o->type = type;
    switch (type) {
      case 254: case 253: case 252: case 251: case 250: case 242: case 241: return o;  // special values
      case 255: {  // REFSXP
        size_t idx = flags >> 8;
        if (idx == 0) idx = static_cast<size_t>(i32());
        DYSRA_CHECK_T(DataError, idx >= 1 && idx <= refs_.size(), what_, ": bad reference ", idx);
        return refs_[idx - 1];
      }
      case 1: {  // SYMSXP
        auto c = item();
        o->strings = c->strings;
        refs_.push_back(o);
        return o;
      }
      case 2: case 6: case 3: case 5: case 17: case 239: case 240: {  // pairlists (flattened)
        if (has_attr) o->attr = item();
        auto cur = o;
        bool attr_done = true;
        (void)attr_done;
        std::string tag;
        if (has_tag) {
          auto t = item();
          tag = t->strings.empty() ? "" : t->strings[0];
        }
        o->tags.push_back(tag);
        o->items.push_back(item());
        auto rest = item();
        if (rest->type == 2 || rest->type == 6) {
          for (size_t i = 0; i < rest->items.size(); ++i) {
            o->items.push_back(rest->items[i]);
            o->tags.push_back(rest->tags[i]);
          }
        }
        return o;
      }
      case 9: {  // CHARSXP
        const int32_t n = i32();
        o->strings.push_back(n < 0 ? std::string() : bytes(static_cast<size_t>(n)));
        return o;
      }
      case 10: case 13: {
        const size_t n = length();
        o->ints.reserve(n);
        for (size_t i = 0; i < n; ++i) o->ints.push_back(i32());
        break;
      }
      case 14: bytes(length() * 8); break;
      case 15: bytes(length() * 16); break;
      case 24: bytes(length()); break;  // RAWSXP
      case 16: {
        const size_t n = length();
        o->strings.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          auto c = item();
          o->strings.push_back(c->strings.empty() ? std::string() : c->strings[0]);
        }
        break;
      }
      case 19: case 20: {
        const size_t n = length();
        for (size_t i = 0; i < n; ++i) o->items.push_back(item());
        break;
      }
      case 4: {  // ENVSXP
        refs_.push_back(o);
        i32();
        item();
        item();
        item();
        o->attr = item();
        return o;
      }
      default:
        throw DataError(what_ + ": unsupported R object type " + std::to_string(type) + " at byte " +
                        std::to_string(p_));
    }
    if (has_attr) o->attr = item();
    return o;
  }

  const std::string& d_;
  std::string what_;
  size_t p_ = 0;
  std::vector<RPtr> refs_;
};

std::vector<std::string> r_names(const RObj& o) {
  if (!o.attr) return {};
  for (size_t i = 0; i < o.attr->items.size(); ++i)
    if (o.attr->tags[i] == "names") return o.attr->items[i]->strings;
  return {};
}
}  // namespace

std::map<std::string, std::vector<std::string>> read_r_lazyload_strings(const std::string& rdx_path,
                                                                        const std::string& rdb_path) {
  const std::string idx_data = gunzip(read_file(rdx_path), rdx_path);
  RReader ir(idx_data, rdx_path);
  const RPtr idx = ir.read_all();
  const auto top = r_names(*idx);
  RPtr vars;
  for (size_t i = 0; i < top.size() && i < idx->items.size(); ++i)
    if (top[i] == "variables") vars = idx->items[i];
  DYSRA_CHECK_T(DataError, vars, rdx_path, ": no 'variables' element in the lazy-load index");
  const auto names = r_names(*vars);
  DYSRA_CHECK_T(DataError, names.size() == vars->items.size(), rdx_path, ": variables without names");
  const std::string rdb = read_file(rdb_path);
  std::map<std::string, std::vector<std::string>> out;
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& pos = vars->items[i]->ints;
    DYSRA_CHECK_T(DataError, pos.size() == 2 && pos[0] >= 0 && pos[1] > 4 &&
                                 size_t(pos[0]) + size_t(pos[1]) <= rdb.size(),
                  rdx_path, ": bad (offset, length) for '", names[i], "'");
    const std::string rec = rdb.substr(size_t(pos[0]), size_t(pos[1]));
    const auto* b = reinterpret_cast<const unsigned char*>(rec.data());
    const uLongf n = (uLongf(b[0]) << 24) | (uLongf(b[1]) << 16) | (uLongf(b[2]) << 8) | b[3];
    std::string raw(n, '\0');
    uLongf got = n;
    const int rc = uncompress(reinterpret_cast<Bytef*>(&raw[0]), &got,
                              reinterpret_cast<const Bytef*>(rec.data() + 4), static_cast<uLong>(rec.size() - 4));
    DYSRA_CHECK_T(DataError, rc == Z_OK && got == n, rdb_path, ": record '", names[i],
                  "' is not a zlib stream of the declared length (zlib code ", rc, ")");
    RReader rr(raw, rdb_path + "[" + names[i] + "]");
    const RPtr obj = rr.read_all();
    if (obj->type == 16) out[names[i]] = obj->strings;
  }
  return out;
}

// ---- novels ----------------------------------------------------------------------------------------------

namespace {
int roman_or_int(const std::string& s) {
  if (!s.empty() && std::isdigit(static_cast<unsigned char>(s[0]))) return std::stoi(s);
  static const std::map<char, int> v = {{'I', 1}, {'V', 5}, {'X', 10}, {'L', 50}, {'C', 100}};
  int total = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    auto it = v.find(s[i]);
    if (it == v.end()) return -1;
    const int cur = it->second;
    const int nxt = i + 1 < s.size() && v.count(s[i + 1]) ? v.at(s[i + 1]) : 0;
    total += cur < nxt ? -cur : cur;
  }
  return total;
}

std::string roman(int n) {
  static const std::pair<int, const char*> t[] = {{50, "L"}, {40, "XL"}, {10, "X"}, {9, "IX"},
                                                  {5, "V"},  {4, "IV"},  {1, "I"}};
  std::string s;
  for (const auto& [v, r] : t)
    while (n >= v) s += r, n -= v;
  return s;
}

const std::map<std::string, std::string>& austen_titles() {
  static const std::map<std::string, std::string> t = {
      {"emma", "Emma"}, {"mansfieldpark", "Mansfield Park"}, {"northangerabbey", "Northanger Abbey"},
      {"persuasion", "Persuasion"}, {"prideprejudice", "Pride and Prejudice"},
      {"sensesensibility", "Sense and Sensibility"}};
  return t;
}
}  // namespace

Novel parse_novel(const std::string& name, const std::vector<std::string>& lines) {
  static const std::regex chap(R"(^\s*(CHAPTER|Chapter)\s+([IVXLC]+|[0-9]+)\.?\s*$)");
  static const std::regex vol(R"(^\s*(VOLUME|Volume)\s+([IVXLC]+|[0-9]+)\.?\s*$)");
  Novel nv;
  nv.name = name;
  auto t = austen_titles().find(name);
  nv.title = t != austen_titles().end() ? t->second : name;
  struct Raw {
    int volume, number;
    std::string heading;
    std::vector<std::string> paragraphs;
  };
  std::vector<Raw> raw;
  int volume = 0, last = 0;
  bool explicit_volumes = false;
  std::string para;
  auto flush = [&] {
    if (!raw.empty() && !trim(para).empty()) raw.back().paragraphs.push_back(collapse_ws(para));
    para.clear();
  };
  for (const auto& line : lines) {
    std::smatch m;
    if (std::regex_match(line, m, vol)) {
      flush();
      volume = roman_or_int(m[2]);
      explicit_volumes = true;
      last = 0;
      continue;
    }
    if (std::regex_match(line, m, chap)) {
      flush();
      const int num = roman_or_int(m[2]);
      if (!explicit_volumes && num <= last) volume = volume == 0 ? 2 : volume + 1;  // numbering restarted
      last = num;
      raw.push_back({volume, num, trim(line), {}});
      continue;
    }
    if (trim(line).empty()) flush();
    else para += line + " ";
  }
  flush();
  DYSRA_CHECK_T(DataError, !raw.empty(), "novel '", name, "': no CHAPTER headings found");
  const bool volumes = explicit_volumes || std::any_of(raw.begin(), raw.end(), [](const Raw& r) { return r.volume > 0; });
  for (auto& r : raw) {
    if (volumes && r.volume == 0) r.volume = 1;
    NovelChapter c;
    if (volumes) {
      c.id = "austen/" + name + "/v" + std::to_string(r.volume) + "c" + std::to_string(r.number);
      c.label = "Volume " + roman(r.volume) + ", Chapter " + std::to_string(r.number);
    } else {
      c.id = "austen/" + name + "/c" + std::to_string(r.number);
      c.label = "Chapter " + std::to_string(r.number);
    }
    c.heading = r.heading;
    c.paragraphs = std::move(r.paragraphs);
    nv.chapters.push_back(std::move(c));
  }
  return nv;
}

// ---- builders ----------------------------------------------------------------------------------------------

namespace {

std::string pkg(const CorporaOptions& o, const std::string& rel) { return (fs::path(o.pkgroot) / rel).string(); }

const char* pos_name(char p) {
  switch (p) {
    case 'n': return "noun";
    case 'v': return "verb";
    case 'r': return "adverb";
    default: return "adjective";
  }
}

bool single_word(const std::string& w) {
  if (w.size() < 2) return false;
  for (char c : w)
    if (!std::isalpha(static_cast<unsigned char>(c)) && c != '-') return false;
  return true;
}

void build_wordnet(const CorporaOptions& opt, Counts& counts) {
  std::vector<WordNetSynset> all;
  for (const char* f : {"data.noun", "data.verb", "data.adj", "data.adv"}) {
    auto v = read_wordnet_data(pkg(opt, std::string("usr/share/wordnet/") + f));
    for (auto& s : v) all.push_back(std::move(s));
  }
  std::unordered_map<std::string, size_t> by_id;
  for (size_t i = 0; i < all.size(); ++i) by_id[all[i].id] = i;
  // Lemma → number of synsets containing it (monosemous lemmas give unambiguous questions).
  std::unordered_map<std::string, int> senses;
  for (const auto& s : all)
    for (const auto& l : s.lemmas) ++senses[lower(l)];
  std::unordered_map<std::string, int> def_count;
  for (const auto& s : all) ++def_count[s.definition];

  // Corpus: one document per synset, without its examples (so the cloze task is not lexical).
  const std::string corpus_file = "corpora/wordnet.jsonl";
  {
    JsonlWriter w(fs::path(opt.out_dir) / corpus_file);
    for (const auto& s : all) {
      std::string lem;
      for (size_t i = 0; i < s.lemmas.size(); ++i) lem += (i ? ", " : "") + s.lemmas[i];
      std::string c = "[" + s.id + "] " + lem + " (" + pos_name(s.pos) + "): " + s.definition;
      const auto h = s.hypernyms();
      if (!h.empty()) {
        c += "; kind of:";
        for (const auto& id : h) c += " [" + id + "]";
      }
      w.write({{"id", s.id}, {"contents", c}});
    }
    counts["corpus/wordnet"] = w.close();
  }
  // Haystacks: all synsets shuffled into groups of N; hypernym targets of a group's subjects are added.
  std::vector<size_t> order(all.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  Rng r(seed_for(opt.seed, "wordnet/haystacks", 0));
  r.shuffle(order);
  const size_t H = std::max<size_t>(1, opt.wordnet_haystack_size);
  std::vector<size_t> group_of(all.size());
  for (size_t k = 0; k < order.size(); ++k) group_of[order[k]] = k / H;
  const size_t n_groups = (order.size() + H - 1) / H;
  auto hay_id = [](size_t g) {
    char b[32];
    std::snprintf(b, sizeof b, "wn-hay-%04zu", g);
    return std::string(b);
  };
  std::vector<std::set<std::string>> extra(n_groups);

  std::vector<Question> define, reverse, cloze, hyper;
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& s = all[i];
    const std::string hid = hay_id(group_of[i]);
    auto meta = [&](std::vector<std::string> gold) {
      return json{{"gold_doc_ids", gold}, {"corpus", corpus_file}, {"haystack_id", hid},
                  {"haystack_file", "wordnet/haystacks.jsonl"}, {"pos", std::string(1, s.pos)}};
    };
    if (s.definition.empty()) continue;
    for (const auto& l : s.lemmas) {
      if (!single_word(l) || senses[lower(l)] != 1) continue;
      std::vector<std::string> ans = {s.definition};
      const size_t semi = s.definition.find("; ");
      if (semi != std::string::npos) ans.push_back(s.definition.substr(0, semi));
      define.push_back({"What is the definition of \"" + l + "\"?", ans, meta({s.id})});
      const auto h = s.hypernyms();
      if (!h.empty()) {
        std::vector<std::string> hans, gold = {s.id};
        for (const auto& hid2 : h) {
          auto it = by_id.find(hid2);
          if (it == by_id.end()) continue;
          gold.push_back(hid2);
          extra[group_of[i]].insert(hid2);
          for (const auto& hl : all[it->second].lemmas) hans.push_back(hl);
        }
        if (!hans.empty()) hyper.push_back({"In the dictionary, \"" + l + "\" is a kind of what?", hans, meta(gold)});
      }
      break;  // one define/hypernym question per synset
    }
    if (def_count[s.definition] == 1) reverse.push_back({"Which word means: \"" + s.definition + "\"?", s.lemmas, meta({s.id})});
    for (const auto& ex : s.examples) {
      bool done = false;
      for (const auto& l : s.lemmas) {
        if (!single_word(l)) continue;
        const size_t p = find_word(ex, l);
        if (p == std::string::npos) continue;
        std::string blank = ex.substr(0, p) + "___" + ex.substr(p + l.size());
        if (find_word(blank, l) != std::string::npos) continue;  // the word occurs twice
        json m = meta({s.id});
        m["example"] = ex;
        cloze.push_back({"Fill in the blank with one word: \"" + blank + "\"", {l}, m});
        done = true;
        break;
      }
      if (done) break;  // one cloze per synset
    }
  }
  {
    JsonlWriter w(fs::path(opt.out_dir) / "wordnet/haystacks.jsonl");
    std::vector<std::vector<std::string>> groups(n_groups);
    for (size_t k = 0; k < order.size(); ++k) groups[k / H].push_back(all[order[k]].id);
    for (size_t g = 0; g < n_groups; ++g) {
      std::set<std::string> have(groups[g].begin(), groups[g].end());
      for (const auto& e : extra[g])
        if (!have.count(e)) groups[g].push_back(e);
      w.write({{"id", hay_id(g)}, {"doc_ids", groups[g]}});
    }
    counts["wordnet/haystacks"] = w.close();
  }
  write_task(opt, "wordnet_define", std::move(define), counts);
  write_task(opt, "wordnet_reverse", std::move(reverse), counts);
  write_task(opt, "wordnet_cloze", std::move(cloze), counts);
  write_task(opt, "wordnet_hypernym", std::move(hyper), counts);
}

void build_kjv(const CorporaOptions& opt, Counts& counts) {
  const auto verses = read_kjv(pkg(opt, "kjv.txt"));
  DYSRA_CHECK_T(DataError, !verses.empty(), pkg(opt, "kjv.txt"), ": no verses");
  const std::string corpus_file = "corpora/kjv.jsonl";
  std::unordered_map<std::string, int> text_count;
  {
    JsonlWriter w(fs::path(opt.out_dir) / corpus_file);
    for (const auto& v : verses) {
      w.write({{"id", v.key}, {"contents", v.key + " " + v.text}});
      ++text_count[v.text];
    }
    counts["corpus/kjv"] = w.close();
  }
  std::vector<Question> lookup, reverse;
  for (const auto& v : verses) {
    json m = {{"gold_doc_ids", {v.key}}, {"corpus", corpus_file}, {"haystack", "book:" + v.book}};
    lookup.push_back({"Quote verse " + v.key + ".", {v.text}, m});
    if (text_count[v.text] == 1) reverse.push_back({"Which verse reads: \"" + v.text + "\"?", {v.key}, m});
  }
  write_task(opt, "kjv_lookup", std::move(lookup), counts);
  write_task(opt, "kjv_reverse", std::move(reverse), counts);
  // LM corpus: one document per chapter.
  std::vector<std::pair<std::string, std::string>> docs;
  for (const auto& v : verses) {
    const std::string id = "kjv/" + v.book + std::to_string(v.chapter);
    if (docs.empty() || docs.back().first != id) docs.emplace_back(id, "");
    docs.back().second += (docs.back().second.empty() ? "" : "\n") + v.key + " " + v.text;
  }
  write_lm(opt, "kjv", docs, counts);
}

void build_perlfaq(const CorporaOptions& opt, Counts& counts) {
  const fs::path poddir = fs::path(opt.pkgroot) / "usr/share/perl";
  DYSRA_CHECK_T(DataError, fs::exists(poddir), poddir.string(), ": missing (run scripts/fetch_corpora.sh)");
  std::vector<fs::path> pods;
  for (const auto& e : fs::recursive_directory_iterator(poddir))
    if (e.is_regular_file() && e.path().extension() == ".pod" && e.path().parent_path().filename() == "pod")
      pods.push_back(e.path());
  std::sort(pods.begin(), pods.end());
  DYSRA_CHECK_T(DataError, !pods.empty(), poddir.string(), ": no .pod files");
  const std::string corpus_file = "corpora/perl_pod.jsonl";
  static const std::regex faq_re(R"(^perlfaq[1-9]$)");
  static const std::regex module_re(R"([A-Z][A-Za-z0-9_]*(::[A-Za-z0-9_]+)+)");
  std::vector<Question> qs;
  JsonlWriter w(fs::path(opt.out_dir) / corpus_file);
  for (const auto& p : pods) {
    const std::string stem = p.stem().string();
    const bool faq = std::regex_match(stem, faq_re);
    const auto secs = read_pod_sections(p.string());
    for (size_t i = 0; i < secs.size(); ++i) {
      const std::string id = "pod/" + stem + "#" + std::to_string(i);
      const bool question = faq && secs[i].level == 2;
      // FAQ answers are stored without their question, so retrieval cannot match the question verbatim.
      const std::string contents = question ? secs[i].body : secs[i].heading + "\n" + secs[i].body;
      if (trim(contents).empty()) continue;
      w.write({{"id", id}, {"contents", contents}});
      if (question && !secs[i].body.empty()) {
        std::set<std::string> mods;
        const std::string body = strip_pod_codes(secs[i].body);
        for (auto it = std::sregex_iterator(body.begin(), body.end(), module_re); it != std::sregex_iterator(); ++it)
          mods.insert(it->str());
        qs.push_back({secs[i].heading, {id},
                      {{"gold_doc_ids", {id}}, {"corpus", corpus_file}, {"file", stem + ".pod"},
                       {"key_phrases", std::vector<std::string>(mods.begin(), mods.end())}}});
      }
    }
  }
  counts["corpus/perl_pod"] = w.close();
  write_task(opt, "perlfaq", std::move(qs), counts, /*all_test=*/true);
}

void build_gcide(const CorporaOptions& opt, Counts& counts) {
  const auto entries = read_dictd(pkg(opt, "usr/share/dictd/gcide.index"), pkg(opt, "usr/share/dictd/gcide.dict.dz"));
  std::vector<std::pair<std::string, std::string>> docs;
  docs.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "gcide-%06zu", i);
    docs.emplace_back(id, trim(entries[i].body));
  }
  write_lm(opt, "gcide", docs, counts);
}

void build_austen(const CorporaOptions& opt, Counts& counts) {
  const std::string dir = "usr/lib/R/site-library/janeaustenr/data/";
  const auto objs = read_r_lazyload_strings(pkg(opt, dir + "Rdata.rdx"), pkg(opt, dir + "Rdata.rdb"));
  std::vector<Novel> novels;
  for (const auto& [name, title] : austen_titles()) {
    auto it = objs.find(name);
    DYSRA_CHECK_T(DataError, it != objs.end(), pkg(opt, dir + "Rdata.rdx"), ": novel '", name, "' not found");
    novels.push_back(parse_novel(name, it->second));
  }
  const std::string corpus_file = "corpora/austen.jsonl", needle_file = "corpora/austen_needle.jsonl";
  std::vector<std::pair<std::string, std::string>> lm_docs;
  {
    JsonlWriter w(fs::path(opt.out_dir) / corpus_file);
    for (const auto& nv : novels)
      for (const auto& c : nv.chapters) {
        std::string text = c.heading;
        for (const auto& p : c.paragraphs) text += "\n\n" + p;
        w.write({{"id", c.id}, {"contents", text}});
        lm_docs.emplace_back(c.id, text);
      }
    counts["corpus/austen"] = w.close();
  }
  write_lm(opt, "austen", lm_docs, counts);

  std::vector<Question> locate, first, needle;
  JsonlWriter nw(fs::path(opt.out_dir) / needle_file);
  static const std::set<std::string> stop = {
      "Mr", "Mrs", "Miss", "Sir", "Lady", "Lord", "Dr", "I", "Chapter", "CHAPTER", "Volume", "The", "A", "He",
      "She", "It", "They", "We", "You", "But", "And", "In", "Of", "On", "At", "To", "My", "His", "Her", "Their",
      "Our", "Your", "This", "That", "There", "What", "When", "Where", "Which", "Who", "Why", "How", "If", "As",
      "So", "No", "Yes", "Oh", "Well", "Not", "Now", "Then", "Monday", "Tuesday", "Wednesday", "Thursday",
      "Friday", "Saturday", "Sunday", "January", "February", "March", "April", "May", "June", "July", "August",
      "September", "October", "November", "December", "God", "Heaven", "Christmas", "English", "England",
      "London", "Colonel", "Captain", "Admiral", "Madam", "Ma'am", "Do", "For", "Is", "Was", "Be", "Let"};
  for (const auto& nv : novels) {
    const std::string hay = "novel:" + nv.name;
    // -- locate: unique sentences of 80–250 characters
    std::string full;
    std::vector<std::pair<std::string, size_t>> sents;  // sentence, chapter index
    for (size_t ci = 0; ci < nv.chapters.size(); ++ci)
      for (const auto& p : nv.chapters[ci].paragraphs) {
        full += p + "\n";
        for (auto& s : split_sentences(p)) sents.emplace_back(std::move(s), ci);
      }
    std::vector<size_t> cand;
    for (size_t i = 0; i < sents.size(); ++i) {
      const auto& s = sents[i].first;
      if (s.size() < 80 || s.size() > 250) continue;
      const size_t f = full.find(s);
      if (f != std::string::npos && full.find(s, f + 1) == std::string::npos) cand.push_back(i);
    }
    Rng r(seed_for(opt.seed, "austen/locate/" + nv.name, 0));
    r.shuffle(cand);
    if (cand.size() > opt.austen_locate_per_novel) cand.resize(opt.austen_locate_per_novel);
    for (size_t i : cand) {
      const auto& c = nv.chapters[sents[i].second];
      locate.push_back({"In which chapter of " + nv.title + " does this sentence appear: \"" + sents[i].first + "\"?",
                        {c.label},
                        {{"gold_doc_ids", {c.id}}, {"corpus", corpus_file}, {"haystack", hay}, {"novel", nv.name}}});
    }
    // -- first mention: capitalised names that never appear in lower case, >= 10 mid-sentence occurrences
    std::map<std::string, size_t> mid;
    std::unordered_set<std::string> lower_words;
    {
      std::string w;
      char prev_nonspace = '.';
      for (size_t i = 0; i <= full.size(); ++i) {
        const char ch = i < full.size() ? full[i] : ' ';
        if (std::isalpha(static_cast<unsigned char>(ch))) {
          w += ch;
          continue;
        }
        if (!w.empty()) {
          if (std::islower(static_cast<unsigned char>(w[0]))) lower_words.insert(w);
          else if (prev_nonspace != '.' && prev_nonspace != '"' && prev_nonspace != '!' && prev_nonspace != '?' &&
                   std::all_of(w.begin() + 1, w.end(), [](char x) { return std::islower(static_cast<unsigned char>(x)); }))
            ++mid[w];
          prev_nonspace = w.back();
          w.clear();
        }
        if (!std::isspace(static_cast<unsigned char>(ch))) prev_nonspace = ch;
      }
    }
    std::vector<std::pair<size_t, std::string>> names;
    for (const auto& [w, n] : mid)
      if (n >= 10 && w.size() >= 3 && !stop.count(w) && !lower_words.count(lower(w))) names.emplace_back(n, w);
    std::sort(names.rbegin(), names.rend());
    if (names.size() > 40) names.resize(40);
    for (const auto& [n, w] : names) {
      for (size_t ci = 0; ci < nv.chapters.size(); ++ci) {
        bool found = false;
        for (const auto& p : nv.chapters[ci].paragraphs) found = found || find_word(p, w) != std::string::npos;
        if (!found) continue;
        const auto& c = nv.chapters[ci];
        first.push_back({"In which chapter of " + nv.title + " is " + w + " first mentioned?", {c.label},
                         {{"gold_doc_ids", {c.id}}, {"corpus", corpus_file}, {"haystack", hay}, {"novel", nv.name},
                          {"name", w}, {"mentions", n}}});
        break;
      }
    }
    // -- needles in real narrative at chosen depths (by paragraph over the whole novel)
    std::vector<std::pair<size_t, size_t>> paras;  // (chapter, paragraph)
    for (size_t ci = 0; ci < nv.chapters.size(); ++ci)
      for (size_t pi = 0; pi < nv.chapters[ci].paragraphs.size(); ++pi) paras.emplace_back(ci, pi);
    Rng nr(seed_for(opt.seed, "austen/needle/" + nv.name, 0));
    const size_t K = opt.austen_needles_per_novel;
    for (size_t k = 0; k < K; ++k) {
      const double depth = K > 1 ? double(k) / double(K - 1) : 0.5;
      const size_t at = std::min(paras.size() - 1, static_cast<size_t>(depth * double(paras.size() - 1)));
      const auto [ci, pi] = paras[at];
      const std::string thing = random_needle(nr, NeedleType::words);
      const std::string grams = std::to_string(nr.uniform_int(100, 999));
      const std::string sentence = "The secret ingredient in the " + thing + " pudding is " + grams + " grams of nutmeg.";
      const auto& c = nv.chapters[ci];
      std::string text = c.heading;
      size_t offset = 0;
      for (size_t j = 0; j < c.paragraphs.size(); ++j) {
        text += "\n\n" + c.paragraphs[j];
        if (j == pi) {
          text += "\n\n";
          offset = text.size();
          text += sentence;
        }
      }
      char nid[96];
      std::snprintf(nid, sizeof nid, "%s#needle-%03zu", c.id.c_str(), k);
      nw.write({{"id", nid}, {"contents", text}});
      needle.push_back({"According to " + nv.title + ", how many grams of nutmeg are in the " + thing + " pudding?",
                        {grams},
                        {{"gold_doc_ids", {nid}}, {"replaces_doc_id", c.id}, {"corpus", needle_file},
                         {"haystack", hay}, {"haystack_corpus", corpus_file}, {"novel", nv.name}, {"depth", depth},
                         {"needle", sentence}, {"needle_char_offset", offset}}});
    }
  }
  counts["corpus/austen_needle"] = nw.close();
  write_task(opt, "austen_locate", std::move(locate), counts);
  write_task(opt, "austen_first_mention", std::move(first), counts);
  write_task(opt, "austen_needle", std::move(needle), counts);
}

std::string deb_versions(const CorporaOptions& opt) {
  // The .debs sit beside pkgroot when fetch_corpora.sh made them: record their file names.
  std::string s;
  const fs::path debs = fs::path(opt.pkgroot).parent_path() / "debs";
  if (!fs::exists(debs)) return s;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(debs))
    if (e.path().extension() == ".deb") names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  for (const auto& n : names) s += (s.empty() ? "" : " ") + n;
  return s;
}

}  // namespace

std::map<std::string, size_t> build_corpora(const CorporaOptions& opt) {
  DYSRA_CHECK_T(ConfigError, opt.dev_fraction >= 0 && opt.test_fraction >= 0 && opt.dev_fraction + opt.test_fraction <= 1,
                "build_corpora: dev_fraction + test_fraction must be within [0, 1]");
  DYSRA_CHECK_T(ConfigError, opt.lm_validation_fraction >= 0 && opt.lm_test_fraction >= 0 &&
                                 opt.lm_validation_fraction + opt.lm_test_fraction <= 1,
                "build_corpora: lm_validation_fraction + lm_test_fraction must be within [0, 1]");
  DYSRA_CHECK_T(ConfigError, opt.wordnet_haystack_size > 0, "build_corpora: wordnet_haystack_size must be > 0");
  static const std::vector<std::string> known = {"wordnet", "austen", "kjv", "perlfaq", "gcide"};
  for (const auto& s : opt.only)
    DYSRA_CHECK_T(ConfigError, std::find(known.begin(), known.end(), s) != known.end(), "build_corpora: unknown source '",
                  s, "' (known: wordnet, austen, kjv, perlfaq, gcide)");
  auto want = [&](const std::string& s) {
    return opt.only.empty() || std::find(opt.only.begin(), opt.only.end(), s) != opt.only.end();
  };
  Counts counts;
  if (want("wordnet")) build_wordnet(opt, counts);
  if (want("kjv")) build_kjv(opt, counts);
  if (want("perlfaq")) build_perlfaq(opt, counts);
  if (want("gcide")) build_gcide(opt, counts);
  if (want("austen")) build_austen(opt, counts);
  json manifest = {{"packages", deb_versions(opt)},
                   {"options",
                    {{"seed", opt.seed}, {"max_questions_per_task", opt.max_questions_per_task},
                     {"dev_fraction", opt.dev_fraction}, {"test_fraction", opt.test_fraction},
                     {"lm_validation_fraction", opt.lm_validation_fraction}, {"lm_test_fraction", opt.lm_test_fraction},
                     {"wordnet_haystack_size", opt.wordnet_haystack_size},
                     {"austen_needles_per_novel", opt.austen_needles_per_novel},
                     {"austen_locate_per_novel", opt.austen_locate_per_novel}, {"only", opt.only}}},
                   {"counts", counts}};
  // Merge with an earlier manifest so a partial build (`only`) keeps the other sources' counts.
  const fs::path mpath = fs::path(opt.out_dir) / "manifest.json";
  if (!opt.only.empty() && fs::exists(mpath)) {
    try {
      json old = json::parse(read_file(mpath.string()));
      for (auto& [k, v] : old["counts"].items())
        if (!manifest["counts"].contains(k)) manifest["counts"][k] = v;
    } catch (const json::exception&) {
    }
  }
  write_text(mpath, manifest.dump(2) + "\n");
  return counts;
}

}  // namespace dysra::data
