// src/metrics/qa.cpp — SQuAD EM/F1 (v1.1, v2 empty rule, HotpotQA yes/no rule), substring accuracy.
#include "dysra/metrics/qa.h"

#include <algorithm>
#include <unordered_map>

#include "dysra/core/error.h"
#include "metrics/unicode.h"

namespace dysra::metrics {
namespace {

bool is_ascii_punct(char32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

// re.sub(r"\b(a|an|the)\b", " ", s), evaluated on the original string as Python does.
std::u32string remove_articles(const std::u32string& s) {
  static const std::u32string kArticles[] = {U"a", U"an", U"the"};  // alternation order of the regex
  std::u32string out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    bool replaced = false;
    if (i == 0 || !unicode::is_word(s[i - 1])) {
      for (const auto& art : kArticles) {
        const size_t end = i + art.size();
        if (end <= n && s.compare(i, art.size(), art) == 0 && (end == n || !unicode::is_word(s[end]))) {
          out.push_back(U' ');
          i = end;
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(s[i++]);
  }
  return out;
}

std::vector<std::u32string> split_ws(const std::u32string& s) {
  std::vector<std::u32string> toks;
  std::u32string cur;
  for (char32_t c : s) {
    if (unicode::is_space(c)) {
      if (!cur.empty()) toks.push_back(std::move(cur)), cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) toks.push_back(std::move(cur));
  return toks;
}

std::vector<std::u32string> normalized_tokens(const std::string& text) {
  std::u32string s = unicode::lower(unicode::decode(text));
  s.erase(std::remove_if(s.begin(), s.end(), is_ascii_punct), s.end());
  return split_ws(remove_articles(s));
}

std::string join_tokens(const std::vector<std::u32string>& toks) {
  std::u32string joined;
  for (size_t i = 0; i < toks.size(); ++i) {
    if (i) joined.push_back(U' ');
    joined += toks[i];
  }
  return unicode::encode(joined);
}

void check_golds(const std::vector<std::string>& golds, const char* fn) {
  DYSRA_CHECK(!golds.empty(), "dysra::metrics::", fn, ": the list of gold answers is empty");
}

TokenF1 f1_from_tokens(const std::vector<std::string>& pred, const std::vector<std::string>& gold) {
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& t : gold) ++counts[t];
  int64_t same = 0;
  for (const auto& t : pred) {
    auto it = counts.find(t);
    if (it != counts.end() && it->second > 0) --it->second, ++same;
  }
  TokenF1 r;
  if (same == 0) return r;
  r.precision = double(same) / double(pred.size());
  r.recall = double(same) / double(gold.size());
  r.f1 = 2 * r.precision * r.recall / (r.precision + r.recall);
  return r;
}

}  // namespace

std::string normalize_answer(const std::string& text) { return join_tokens(normalized_tokens(text)); }

std::vector<std::string> answer_tokens(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& t : normalized_tokens(text)) out.push_back(unicode::encode(t));
  return out;
}

double exact_match(const std::string& prediction, const std::string& gold) {
  return normalize_answer(prediction) == normalize_answer(gold) ? 1.0 : 0.0;
}

double exact_match(const std::string& prediction, const std::vector<std::string>& golds) {
  check_golds(golds, "exact_match");
  const std::string p = normalize_answer(prediction);
  for (const auto& g : golds)
    if (normalize_answer(g) == p) return 1.0;
  return 0.0;
}

TokenF1 f1_score(const std::string& prediction, const std::string& gold, F1Variant variant) {
  const std::vector<std::string> pred = answer_tokens(prediction);
  const std::vector<std::string> ref = answer_tokens(gold);
  if (variant == F1Variant::Hotpot) {
    const std::string np = join_tokens(normalized_tokens(prediction));
    const std::string ng = join_tokens(normalized_tokens(gold));
    auto special = [](const std::string& s) { return s == "yes" || s == "no" || s == "noanswer"; };
    if ((special(np) || special(ng)) && np != ng) return {};
  }
  if (variant == F1Variant::SquadV2 && (pred.empty() || ref.empty())) {
    const double v = (pred.empty() && ref.empty()) ? 1.0 : 0.0;
    return {v, v, v};
  }
  return f1_from_tokens(pred, ref);
}

TokenF1 f1_score(const std::string& prediction, const std::vector<std::string>& golds, F1Variant variant,
                 bool independent_max) {
  check_golds(golds, "f1_score");
  TokenF1 best;
  bool first = true;
  for (const auto& g : golds) {
    const TokenF1 s = f1_score(prediction, g, variant);
    if (independent_max) {
      best.f1 = std::max(best.f1, s.f1);
      best.precision = std::max(best.precision, s.precision);
      best.recall = std::max(best.recall, s.recall);
    } else if (first || s.f1 > best.f1) {
      best = s;
    }
    first = false;
  }
  return best;
}

double substring_match(const std::string& prediction, const std::vector<std::string>& golds) {
  check_golds(golds, "substring_match");
  const std::string p = normalize_answer(prediction);
  for (const auto& g : golds)
    if (p.find(normalize_answer(g)) != std::string::npos) return 1.0;
  return 0.0;
}

std::optional<std::string> extract_last_answer(const std::string& text, int min_matches) {
  static const std::string kOpen = "<answer>", kClose = "</answer>";
  std::vector<std::string> matches;
  size_t pos = 0;
  while (true) {
    const size_t open = text.find(kOpen, pos);
    if (open == std::string::npos) break;
    const size_t close = text.find(kClose, open + kOpen.size());
    if (close == std::string::npos) break;
    matches.push_back(text.substr(open + kOpen.size(), close - open - kOpen.size()));
    pos = close + kClose.size();
  }
  if (matches.empty() || static_cast<int>(matches.size()) < min_matches) return std::nullopt;
  std::u32string s = unicode::decode(matches.back());
  size_t b = 0, e = s.size();
  while (b < e && unicode::is_space(s[b])) ++b;
  while (e > b && unicode::is_space(s[e - 1])) --e;
  return unicode::encode(std::u32string_view(s).substr(b, e - b));
}

void QAAccumulator::add(const std::string& prediction, const std::vector<std::string>& golds) {
  check_golds(golds, "QAAccumulator::add");
  em_ += exact_match(prediction, golds);
  const TokenF1 f = f1_score(prediction, golds, options_.f1_variant, options_.independent_max);
  f1_ += f.f1;
  p_ += f.precision;
  r_ += f.recall;
  sub_ += substring_match(prediction, golds);
  ++count_;
}

void QAAccumulator::add_missing() {
  ++count_;
  ++missing_;
}

QAScores QAAccumulator::result() const {
  QAScores s;
  s.count = count_;
  s.missing = missing_;
  if (count_ == 0) return s;
  const double k = 100.0 / double(count_);
  s.em = em_ * k;
  s.f1 = f1_ * k;
  s.precision = p_ * k;
  s.recall = r_ * k;
  s.substring = sub_ * k;
  return s;
}

QAScores evaluate_qa(const std::vector<std::string>& predictions, const std::vector<std::vector<std::string>>& golds,
                     const QAMetricOptions& options) {
  DYSRA_CHECK(predictions.size() == golds.size(), "dysra::metrics::evaluate_qa: ", predictions.size(),
              " predictions but ", golds.size(), " gold answer lists");
  QAAccumulator acc(options);
  for (size_t i = 0; i < predictions.size(); ++i) {
    DYSRA_CHECK(!golds[i].empty(), "dysra::metrics::evaluate_qa: question ", i, " has no gold answers");
    acc.add(predictions[i], golds[i]);
  }
  return acc.result();
}

}  // namespace dysra::metrics
