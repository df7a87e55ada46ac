// src/metrics/porter.cpp — NLTK's PorterStemmer, NLTK_EXTENSIONS mode (nltk/stem/porter.py), the stemmer
// rouge_score uses (`porter.PorterStemmer()` with the default mode). Rule order and the "first matching
// suffix decides, even when its condition fails" behaviour of `_apply_rule_list` are kept exactly.
#include <cctype>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "dysra/metrics/rouge.h"

namespace dysra::metrics {
namespace {

using Cond = std::function<bool(const std::string&)>;

struct Rule {
  std::string suffix;       // "*d" = ends with a double consonant
  std::string replacement;
  Cond cond;                // empty = unconditional
};

bool ends_with(const std::string& w, const std::string& s) {
  return w.size() >= s.size() && w.compare(w.size() - s.size(), s.size(), s) == 0;
}

bool is_vowel_letter(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

// consonant flags: 'y' is a consonant iff it starts the word or follows a vowel.
std::vector<bool> consonant_flags(const std::string& w) {
  std::vector<bool> f(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    if (is_vowel_letter(w[i])) f[i] = false;
    else if (w[i] == 'y') f[i] = (i == 0) ? true : !f[i - 1];
    else f[i] = true;
  }
  return f;
}

bool is_consonant(const std::string& w, size_t i) { return consonant_flags(w.substr(0, i + 1))[i]; }

int measure(const std::string& stem) {
  const auto f = consonant_flags(stem);
  int m = 0;
  for (size_t i = 0; i + 1 < f.size(); ++i)
    if (!f[i] && f[i + 1]) ++m;  // count "vc"
  return m;
}

bool positive_measure(const std::string& s) { return measure(s) > 0; }

bool contains_vowel(const std::string& s) {
  for (bool c : consonant_flags(s))
    if (!c) return true;
  return false;
}

bool ends_double_consonant(const std::string& w) {
  return w.size() >= 2 && w[w.size() - 1] == w[w.size() - 2] && is_consonant(w, w.size() - 1);
}

bool ends_cvc(const std::string& w) {
  const size_t n = w.size();
  if (n >= 3 && is_consonant(w, n - 3) && !is_consonant(w, n - 2) && is_consonant(w, n - 1) && w[n - 1] != 'w' &&
      w[n - 1] != 'x' && w[n - 1] != 'y')
    return true;
  return n == 2 && !is_consonant(w, 0) && is_consonant(w, 1);  // NLTK extension
}

std::string replace_suffix(const std::string& w, const std::string& suffix, const std::string& rep) {
  return w.substr(0, w.size() - suffix.size()) + rep;
}

std::string apply_rules(const std::string& word, const std::vector<Rule>& rules) {
  for (const Rule& r : rules) {
    if (r.suffix == "*d" && ends_double_consonant(word)) {
      const std::string stem = word.substr(0, word.size() - 2);
      if (!r.cond || r.cond(stem)) return stem + r.replacement;
      return word;
    }
    if (ends_with(word, r.suffix)) {
      const std::string stem = replace_suffix(word, r.suffix, "");
      if (!r.cond || r.cond(stem)) return stem + r.replacement;
      return word;
    }
  }
  return word;
}

std::string step1a(const std::string& w) {
  if (ends_with(w, "ies") && w.size() == 4) return replace_suffix(w, "ies", "ie");
  return apply_rules(w, {{"sses", "ss", {}}, {"ies", "i", {}}, {"ss", "ss", {}}, {"s", "", {}}});
}

std::string step1b(const std::string& w) {
  if (ends_with(w, "ied")) return replace_suffix(w, "ied", w.size() == 4 ? "ie" : "i");
  if (ends_with(w, "eed")) {
    const std::string stem = replace_suffix(w, "eed", "");
    return measure(stem) > 0 ? stem + "ee" : w;
  }
  std::string inter;
  bool ok = false;
  for (const char* suf : {"ed", "ing"}) {
    if (ends_with(w, suf)) {
      inter = replace_suffix(w, suf, "");
      if (contains_vowel(inter)) {
        ok = true;
        break;
      }
    }
  }
  if (!ok) return w;
  const char last = inter.back();
  return apply_rules(inter, {{"at", "ate", {}},
                             {"bl", "ble", {}},
                             {"iz", "ize", {}},
                             {"*d", std::string(1, last),
                              [last](const std::string&) { return last != 'l' && last != 's' && last != 'z'; }},
                             {"", "e", [](const std::string& s) { return measure(s) == 1 && ends_cvc(s); }}});
}

std::string step1c(const std::string& w) {
  return apply_rules(w, {{"y", "i", [](const std::string& s) { return s.size() > 1 && is_consonant(s, s.size() - 1); }}});
}

std::string step2(const std::string& w) {
  if (ends_with(w, "alli") && positive_measure(replace_suffix(w, "alli", "")))
    return step2(replace_suffix(w, "alli", "al"));
  const Cond pm = positive_measure;
  const std::vector<Rule> rules = {
      {"ational", "ate", pm}, {"tional", "tion", pm}, {"enci", "ence", pm},  {"anci", "ance", pm},
      {"izer", "ize", pm},    {"bli", "ble", pm},     {"alli", "al", pm},     {"entli", "ent", pm},
      {"eli", "e", pm},       {"ousli", "ous", pm},   {"ization", "ize", pm}, {"ation", "ate", pm},
      {"ator", "ate", pm},    {"alism", "al", pm},    {"iveness", "ive", pm}, {"fulness", "ful", pm},
      {"ousness", "ous", pm}, {"aliti", "al", pm},    {"iviti", "ive", pm},   {"biliti", "ble", pm},
      {"fulli", "ful", pm},
      {"logi", "log", [w](const std::string&) { return positive_measure(w.substr(0, w.size() - 3)); }},
  };
  return apply_rules(w, rules);
}

std::string step3(const std::string& w) {
  const Cond pm = positive_measure;
  return apply_rules(w, {{"icate", "ic", pm}, {"ative", "", pm}, {"alize", "al", pm}, {"iciti", "ic", pm},
                         {"ical", "ic", pm}, {"ful", "", pm}, {"ness", "", pm}});
}

std::string step4(const std::string& w) {
  const Cond m1 = [](const std::string& s) { return measure(s) > 1; };
  return apply_rules(
      w, {{"al", "", m1},   {"ance", "", m1}, {"ence", "", m1}, {"er", "", m1},   {"ic", "", m1},
          {"able", "", m1}, {"ible", "", m1}, {"ant", "", m1},  {"ement", "", m1}, {"ment", "", m1},
          {"ent", "", m1},
          {"ion", "", [](const std::string& s) { return measure(s) > 1 && (s.back() == 's' || s.back() == 't'); }},
          {"ou", "", m1},   {"ism", "", m1},  {"ate", "", m1},  {"iti", "", m1},  {"ous", "", m1},
          {"ive", "", m1},  {"ize", "", m1}});
}

std::string step5a(const std::string& w) {
  if (ends_with(w, "e")) {
    const std::string stem = w.substr(0, w.size() - 1);
    const int m = measure(stem);
    if (m > 1) return stem;
    if (m == 1 && !ends_cvc(stem)) return stem;
  }
  return w;
}

std::string step5b(const std::string& w) {
  return apply_rules(w, {{"ll", "l", [w](const std::string&) { return measure(w.substr(0, w.size() - 1)) > 1; }}});
}

}  // namespace

std::string porter_stem(const std::string& word) {
  static const std::unordered_map<std::string, std::string> kPool = {
      {"sky", "sky"},         {"skies", "sky"},      {"dying", "die"},      {"lying", "lie"},
      {"tying", "tie"},       {"news", "news"},      {"innings", "inning"}, {"inning", "inning"},
      {"outings", "outing"},  {"outing", "outing"},  {"cannings", "canning"}, {"canning", "canning"},
      {"howe", "howe"},       {"proceed", "proceed"}, {"exceed", "exceed"}, {"succeed", "succeed"},
  };
  std::string stem = word;
  for (char& c : stem) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (auto it = kPool.find(stem); it != kPool.end()) return it->second;
  if (word.size() <= 2) return stem;
  stem = step1a(stem);
  stem = step1b(stem);
  stem = step1c(stem);
  stem = step2(stem);
  stem = step3(stem);
  stem = step4(stem);
  stem = step5a(stem);
  stem = step5b(stem);
  return stem;
}

}  // namespace dysra::metrics
