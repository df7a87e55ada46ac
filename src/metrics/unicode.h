// src/metrics/unicode.h — the small slice of Unicode the text metrics need (internal header).
//
// Text is UTF-8. Bytes that are not valid UTF-8 decode to U+DC80+byte (Python's "surrogateescape"), so every
// input survives a decode/encode round trip unchanged.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dysra::metrics::unicode {

/// UTF-8 → code points (invalid bytes → U+DC80+byte).
std::u32string decode(std::string_view utf8);
/// Code points → UTF-8 (U+DC80..U+DCFF → the raw byte).
std::string encode(std::u32string_view cps);

/// Python `str.lower()` for ASCII, Latin-1 Supplement, Latin Extended-A/B (the case pairs), Latin Extended
/// Additional, Greek (with the final-sigma rule), Cyrillic and a few letter-like signs (K, Å, Ω). "İ" lowers to
/// "i̇" (two code points), as in
/// Python. Other scripts are returned unchanged.
std::u32string lower(std::u32string_view s);

/// Python `str.isspace()` (the code points `str.split()` splits on).
bool is_space(char32_t c);

/// Python 3 `re` word character (`\w` on str): letters, digits, numerics and '_'. Exact for ASCII and Latin-1;
/// above U+00FF every code point counts as a word character except whitespace and the punctuation/symbol
/// blocks (General Punctuation, currency, arrows, math, box drawing, CJK punctuation, fullwidth ASCII
/// punctuation, enclosed letters such as Ⓐ, emoji).
bool is_word(char32_t c);

}  // namespace dysra::metrics::unicode
