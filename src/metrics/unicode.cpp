// src/metrics/unicode.cpp — UTF-8 decoding, Python-compatible lowercasing and character classes.
#include "metrics/unicode.h"

namespace dysra::metrics::unicode {

std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  auto cont = [&](size_t k) { return k < n && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80; };
  while (i < n) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    char32_t cp = 0;
    size_t len = 0;
    if (b < 0x80) {
      cp = b, len = 1;
    } else if (b >= 0xC2 && b <= 0xDF && cont(i + 1)) {
      cp = (char32_t(b & 0x1F) << 6) | (s[i + 1] & 0x3F), len = 2;
    } else if (b >= 0xE0 && b <= 0xEF && cont(i + 1) && cont(i + 2)) {
      cp = (char32_t(b & 0x0F) << 12) | (char32_t(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
      if (cp >= 0x800 && !(cp >= 0xD800 && cp <= 0xDFFF)) len = 3;
    } else if (b >= 0xF0 && b <= 0xF4 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
      cp = (char32_t(b & 0x07) << 18) | (char32_t(s[i + 1] & 0x3F) << 12) | (char32_t(s[i + 2] & 0x3F) << 6) |
           (s[i + 3] & 0x3F);
      if (cp >= 0x10000 && cp <= 0x10FFFF) len = 4;
    }
    if (len == 0) {  // invalid: keep the raw byte
      out.push_back(0xDC00 + b);
      i += 1;
    } else {
      out.push_back(cp);
      i += len;
    }
  }
  return out;
}

std::string encode(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t c : cps) {
    if (c >= 0xDC80 && c <= 0xDCFF) {
      out.push_back(static_cast<char>(c - 0xDC00));
    } else if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

namespace {

// Upper-case code point → lower-case code point (0 when `c` has no single lower-case mapping here).
char32_t lower_one(char32_t c) {
  auto even_pair = [&](char32_t lo, char32_t hi) { return c >= lo && c <= hi && (c % 2 == 0); };
  auto odd_pair = [&](char32_t lo, char32_t hi) { return c >= lo && c <= hi && (c % 2 == 1); };
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : 0;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c < 0x100) return 0;
  // Latin Extended-A
  if (even_pair(0x100, 0x12F) || even_pair(0x132, 0x137) || even_pair(0x14A, 0x177)) return c + 1;
  if (odd_pair(0x139, 0x148) || odd_pair(0x179, 0x17E)) return c + 1;
  if (c == 0x178) return 0xFF;
  // Latin Extended-B (irregular part)
  switch (c) {
    case 0x181: return 0x253; case 0x182: return 0x183; case 0x184: return 0x185; case 0x186: return 0x254;
    case 0x187: return 0x188; case 0x189: return 0x256; case 0x18A: return 0x257; case 0x18B: return 0x18C;
    case 0x18E: return 0x1DD; case 0x18F: return 0x259; case 0x190: return 0x25B; case 0x191: return 0x192;
    case 0x193: return 0x260; case 0x194: return 0x263; case 0x196: return 0x269; case 0x197: return 0x268;
    case 0x198: return 0x199; case 0x19C: return 0x26F; case 0x19D: return 0x272; case 0x19F: return 0x275;
    case 0x1A0: return 0x1A1; case 0x1A2: return 0x1A3; case 0x1A4: return 0x1A5; case 0x1A6: return 0x280;
    case 0x1A7: return 0x1A8; case 0x1A9: return 0x283; case 0x1AC: return 0x1AD; case 0x1AE: return 0x288;
    case 0x1AF: return 0x1B0; case 0x1B1: return 0x28A; case 0x1B2: return 0x28B; case 0x1B3: return 0x1B4;
    case 0x1B5: return 0x1B6; case 0x1B7: return 0x292; case 0x1B8: return 0x1B9; case 0x1BC: return 0x1BD;
    case 0x1C4: case 0x1C5: return 0x1C6; case 0x1C7: case 0x1C8: return 0x1C9;
    case 0x1CA: case 0x1CB: return 0x1CC; case 0x1F1: case 0x1F2: return 0x1F3;
    case 0x1F4: return 0x1F5; case 0x1F6: return 0x195; case 0x1F7: return 0x1BF; case 0x220: return 0x19E;
    case 0x23A: return 0x2C65; case 0x23B: return 0x23C; case 0x23D: return 0x19A; case 0x23E: return 0x2C66;
    case 0x241: return 0x242; case 0x243: return 0x180; case 0x244: return 0x289; case 0x245: return 0x28C;
    // Greek
    case 0x386: return 0x3AC; case 0x38C: return 0x3CC; case 0x38E: return 0x3CD; case 0x38F: return 0x3CE;
    case 0x3CF: return 0x3D7; case 0x4C0: return 0x4CF;
    // letter-like signs
    case 0x1E9E: return 0xDF; case 0x2126: return 0x3C9; case 0x212A: return 0x6B; case 0x212B: return 0xE5;
    default: break;
  }
  if (odd_pair(0x1CD, 0x1DC) || even_pair(0x1DE, 0x1EF) || even_pair(0x1F8, 0x21F) || even_pair(0x222, 0x233) ||
      even_pair(0x246, 0x24F))
    return c + 1;
  if (c >= 0x388 && c <= 0x38A) return c + 37;
  if ((c >= 0x391 && c <= 0x3A1) || (c >= 0x3A3 && c <= 0x3AB)) return c + 32;
  if (even_pair(0x3D8, 0x3EF)) return c + 1;
  // Cyrillic, Armenian
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (even_pair(0x460, 0x481) || even_pair(0x48A, 0x4BF) || odd_pair(0x4C1, 0x4CE) || even_pair(0x4D0, 0x52F))
    return c + 1;
  if (c >= 0x531 && c <= 0x556) return c + 48;
  // Latin Extended Additional
  if (even_pair(0x1E00, 0x1E95) || even_pair(0x1EA0, 0x1EFF)) return c + 1;
  // Roman numerals, circled letters, fullwidth Latin
  if (c >= 0x2160 && c <= 0x216F) return c + 16;
  if (c >= 0x24B6 && c <= 0x24CF) return c + 26;
  if (c >= 0xFF21 && c <= 0xFF3A) return c + 32;
  return 0;
}

// Python's _PyUnicode_IsCaseIgnorable, for the code points that matter around Latin/Greek/Cyrillic text.
bool case_ignorable(char32_t c) {
  return c == 0x27 || c == 0x2E || c == 0x3A || c == 0x5E || c == 0x60 || c == 0xA8 || c == 0xAD || c == 0xAF ||
         c == 0xB4 || c == 0xB7 || c == 0xB8 || (c >= 0x2B0 && c <= 0x36F) || c == 0x374 || c == 0x375 ||
         c == 0x37A || c == 0x384 || c == 0x385 || c == 0x387 || c == 0x2018 || c == 0x2019 || c == 0x2024 ||
         c == 0x2027;
}

// Python's _PyUnicode_IsCased, approximated by the scripts lower_one() knows.
bool cased(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  if (c <= 0xFF) return c == 0xAA || c == 0xB5 || c == 0xBA || (c >= 0xC0 && c != 0xD7 && c != 0xF7);
  return (c >= 0x100 && c <= 0x24F) || (c >= 0x250 && c <= 0x2AF) || (c >= 0x370 && c <= 0x3FF && c != 0x374 &&
         c != 0x375 && c != 0x37E && c != 0x384 && c != 0x385 && c != 0x387) ||
         (c >= 0x400 && c <= 0x52F && !(c >= 0x482 && c <= 0x489)) || (c >= 0x531 && c <= 0x587) ||
         (c >= 0x1E00 && c <= 0x1FFF) || (c >= 0x2160 && c <= 0x217F) || (c >= 0x24B6 && c <= 0x24E9) ||
         (c >= 0xFB00 && c <= 0xFB06) || (c >= 0xFB13 && c <= 0xFB17) || (c >= 0xFF21 && c <= 0xFF3A) ||
         (c >= 0xFF41 && c <= 0xFF5A);
}

// Σ lowers to final ς when preceded by a cased letter and not followed by one (case-ignorables skipped).
bool final_sigma(std::u32string_view s, size_t i) {
  size_t j = i;
  while (j > 0 && case_ignorable(s[j - 1])) --j;
  if (j == 0 || !cased(s[j - 1])) return false;
  size_t k = i + 1;
  while (k < s.size() && case_ignorable(s[k])) ++k;
  return k == s.size() || !cased(s[k]);
}

}  // namespace

std::u32string lower(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c == 0x3A3) {
      out.push_back(final_sigma(s, i) ? 0x3C2 : 0x3C3);
      continue;
    }
    if (c == 0x130) {  // İ → i + COMBINING DOT ABOVE (Python's full lowercase mapping)
      out.push_back(U'i');
      out.push_back(0x307);
      continue;
    }
    const char32_t l = lower_one(c);
    out.push_back(l ? l : c);
  }
  return out;
}

bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_word(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  if (c <= 0xFF) {
    if (c == 0xAA || c == 0xB2 || c == 0xB3 || c == 0xB5 || c == 0xB9 || c == 0xBA || (c >= 0xBC && c <= 0xBE))
      return true;
    return c >= 0xC0 && c != 0xD7 && c != 0xF7;
  }
  if (c >= 0xDC80 && c <= 0xDCFF) return false;  // raw invalid bytes
  if (is_space(c)) return false;
  struct Range { char32_t lo, hi; };
  static constexpr Range kNonWord[] = {
      {0x2C2, 0x2C5},   {0x2D2, 0x2DF},   {0x2E5, 0x2EB},   {0x2ED, 0x2ED},   {0x2EF, 0x36F},
      {0x375, 0x375},   {0x37E, 0x37E},   {0x384, 0x385},   {0x387, 0x387},   {0x3F6, 0x3F6},
      {0x482, 0x489},   {0x55A, 0x55F},   {0x589, 0x58A},   {0x591, 0x5C7},   {0x5F3, 0x5F4},
      {0x600, 0x61F},   {0x64B, 0x65F},   {0x66A, 0x66D},   {0x6D4, 0x6D4},   {0x964, 0x965},
      {0xE4F, 0xE4F},   {0xE5A, 0xE5B},   {0x2000, 0x206F}, {0x20A0, 0x20FF}, {0x2190, 0x245F},
      {0x249C, 0x24E9}, {0x2500, 0x2775}, {0x2794, 0x2BFF}, {0x2E00, 0x2E7F}, {0x3000, 0x3004}, {0x3008, 0x3020},
      {0x3030, 0x3030}, {0x303D, 0x303D}, {0x30FB, 0x30FB}, {0xFE10, 0xFE1F}, {0xFE30, 0xFE6F},
      {0xFF01, 0xFF0F}, {0xFF1A, 0xFF20}, {0xFF3B, 0xFF40}, {0xFF5B, 0xFF65}, {0x1F000, 0x1FAFF},
  };
  for (const Range& r : kNonWord)
    if (c >= r.lo && c <= r.hi) return false;
  return true;
}

}  // namespace dysra::metrics::unicode
