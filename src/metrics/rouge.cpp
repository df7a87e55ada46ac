// src/metrics/rouge.cpp — rouge_score's tokenizer, ROUGE-N, ROUGE-L and ROUGE-Lsum (rouge_scorer.py).
#include "dysra/metrics/rouge.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "dysra/core/error.h"
#include "metrics/unicode.h"

namespace dysra::metrics {
namespace {

double fmeasure(double p, double r) { return (p + r > 0) ? 2 * p * r / (p + r) : 0.0; }

// rouge_scorer._lcs_table
std::vector<std::vector<int64_t>> lcs_table(const std::vector<std::string>& ref, const std::vector<std::string>& can) {
  std::vector<std::vector<int64_t>> t(ref.size() + 1, std::vector<int64_t>(can.size() + 1, 0));
  for (size_t i = 1; i <= ref.size(); ++i)
    for (size_t j = 1; j <= can.size(); ++j)
      t[i][j] = (ref[i - 1] == can[j - 1]) ? t[i - 1][j - 1] + 1 : std::max(t[i - 1][j], t[i][j - 1]);
  return t;
}

// rouge_scorer._backtrack_norec: indices into `ref` of one LCS (the one rouge_score picks).
std::vector<size_t> lcs_indices(const std::vector<std::string>& ref, const std::vector<std::string>& can) {
  const auto t = lcs_table(ref, can);
  size_t i = ref.size(), j = can.size();
  std::vector<size_t> out;
  while (i > 0 && j > 0) {
    if (ref[i - 1] == can[j - 1]) {
      out.push_back(i - 1);
      --i, --j;
    } else if (t[i][j - 1] > t[i - 1][j]) {
      --j;
    } else {
      --i;
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

bool valid_type(const std::string& t, int* n) {
  if (t == "rougeL" || t == "rougeLsum") return true;
  if (t.size() == 6 && t.compare(0, 5, "rouge") == 0 && t[5] >= '0' && t[5] <= '9') {
    *n = t[5] - '0';
    return true;
  }
  return false;
}

std::vector<std::string> split_lines_nonempty(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    if (nl > start) out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

}  // namespace

std::vector<std::string> rouge_tokenize(const std::string& text, bool use_stemmer) {
  const std::u32string lowered = unicode::lower(unicode::decode(text));
  std::vector<std::string> tokens;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    tokens.push_back(use_stemmer && cur.size() > 3 ? porter_stem(cur) : cur);
    cur.clear();
  };
  for (char32_t c : lowered) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) cur.push_back(static_cast<char>(c));
    else flush();
  }
  flush();
  // The final ^[a-z0-9]+$ filter: stems of [a-z0-9] tokens are never empty, but keep the check.
  tokens.erase(std::remove_if(tokens.begin(), tokens.end(), [](const std::string& t) { return t.empty(); }),
               tokens.end());
  return tokens;
}

RougeScore rouge_n_tokens(const std::vector<std::string>& target, const std::vector<std::string>& prediction, int n) {
  DYSRA_CHECK(n > 0, "dysra::metrics::rouge_n_tokens: n must be positive, got ", n);
  auto ngrams = [n](const std::vector<std::string>& toks) {
    std::map<std::vector<std::string>, int64_t> c;
    for (size_t i = 0; i + n <= toks.size(); ++i) ++c[std::vector<std::string>(toks.begin() + i, toks.begin() + i + n)];
    return c;
  };
  const auto t = ngrams(target), p = ngrams(prediction);
  int64_t overlap = 0, nt = 0, np = 0;
  for (const auto& [g, c] : t) {
    nt += c;
    auto it = p.find(g);
    if (it != p.end()) overlap += std::min(c, it->second);
  }
  for (const auto& kv : p) np += kv.second;
  RougeScore s;
  s.precision = double(overlap) / double(std::max<int64_t>(np, 1));
  s.recall = double(overlap) / double(std::max<int64_t>(nt, 1));
  s.fmeasure = fmeasure(s.precision, s.recall);
  return s;
}

int64_t lcs_length(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return lcs_table(a, b).back().back();
}

RougeScore rouge_l_tokens(const std::vector<std::string>& target, const std::vector<std::string>& prediction) {
  RougeScore s;
  if (target.empty() || prediction.empty()) return s;
  const double lcs = double(lcs_length(target, prediction));
  s.precision = lcs / double(prediction.size());
  s.recall = lcs / double(target.size());
  s.fmeasure = fmeasure(s.precision, s.recall);
  return s;
}

RougeScore rouge_lsum_tokens(const std::vector<std::vector<std::string>>& ref_sents,
                             const std::vector<std::vector<std::string>>& can_sents) {
  RougeScore s;
  if (ref_sents.empty() || can_sents.empty()) return s;
  int64_t m = 0, n = 0;
  std::unordered_map<std::string, int64_t> cnt_r, cnt_c;
  for (const auto& r : ref_sents) {
    m += int64_t(r.size());
    for (const auto& t : r) ++cnt_r[t];
  }
  for (const auto& c : can_sents) {
    n += int64_t(c.size());
    for (const auto& t : c) ++cnt_c[t];
  }
  if (m == 0 || n == 0) return s;
  int64_t hits = 0;
  for (const auto& r : ref_sents) {
    std::set<size_t> uni;  // union of the LCS index sets, sorted
    for (const auto& c : can_sents) {
      const auto idx = lcs_indices(r, c);
      uni.insert(idx.begin(), idx.end());
    }
    for (size_t i : uni) {
      const std::string& t = r[i];
      if (cnt_c[t] > 0 && cnt_r[t] > 0) {
        ++hits;
        --cnt_c[t];
        --cnt_r[t];
      }
    }
  }
  s.recall = double(hits) / double(m);
  s.precision = double(hits) / double(n);
  s.fmeasure = fmeasure(s.precision, s.recall);
  return s;
}

std::map<std::string, RougeScore> rouge(const std::string& target, const std::string& prediction,
                                        const RougeOptions& options) {
  std::map<std::string, RougeScore> out;
  std::vector<std::string> tt, pt;
  bool tokenized = false;
  for (const std::string& type : options.types) {
    int n = 0;
    DYSRA_CHECK(valid_type(type, &n), "dysra::metrics::rouge: unknown ROUGE type '", type,
                "' (known: rouge1 ... rouge9, rougeL, rougeLsum)");
    DYSRA_CHECK(type == "rougeL" || type == "rougeLsum" || n > 0, "dysra::metrics::rouge: '", type,
                "': rougeN requires positive N");
    if (type == "rougeLsum") {
      std::vector<std::vector<std::string>> ts, ps;
      for (const auto& line : split_lines_nonempty(target)) ts.push_back(rouge_tokenize(line, options.use_stemmer));
      for (const auto& line : split_lines_nonempty(prediction)) ps.push_back(rouge_tokenize(line, options.use_stemmer));
      out[type] = rouge_lsum_tokens(ts, ps);
      continue;
    }
    if (!tokenized) {
      tt = rouge_tokenize(target, options.use_stemmer);
      pt = rouge_tokenize(prediction, options.use_stemmer);
      tokenized = true;
    }
    out[type] = (type == "rougeL") ? rouge_l_tokens(tt, pt) : rouge_n_tokens(tt, pt, n);
  }
  return out;
}

std::map<std::string, RougeScore> rouge_multi(const std::vector<std::string>& targets, const std::string& prediction,
                                              const RougeOptions& options) {
  DYSRA_CHECK(!targets.empty(), "dysra::metrics::rouge_multi: the list of targets is empty");
  std::vector<std::map<std::string, RougeScore>> all;
  for (const auto& t : targets) all.push_back(rouge(t, prediction, options));
  std::map<std::string, RougeScore> best;
  for (const std::string& type : options.types) {
    size_t arg = 0;
    for (size_t i = 1; i < all.size(); ++i)
      if (all[i].at(type).fmeasure > all[arg].at(type).fmeasure) arg = i;
    best[type] = all[arg].at(type);
  }
  return best;
}

}  // namespace dysra::metrics
