// dysra/core/random.h — a small portable generator (splitmix64) and a seed mixer, used wherever dysra needs
// reproducible randomness outside LibTorch (data order, example generation). std:: distributions are
// implementation-defined, so dysra draws its own.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace dysra {

struct SplitMix64 {
  uint64_t s;
  explicit SplitMix64(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  ///< [0, 1)
  /// Uniform integer in [0, n), n >= 1 (Lemire's multiply-shift; bias < 2^-64·n).
  int64_t below(int64_t n) {
    return static_cast<int64_t>((static_cast<unsigned __int128>(next()) * static_cast<uint64_t>(n)) >> 64);
  }
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(below(static_cast<int64_t>(i)))]);
  }
};

/// Independent stream seed for item `index` of stream `stream` under `seed`.
inline uint64_t mix_seed(uint64_t seed, uint64_t stream, uint64_t index) {
  SplitMix64 a(seed ^ 0xD1B54A32D192ED03ull);
  SplitMix64 b(a.next() ^ (stream * 0x9E3779B97F4A7C15ull));
  SplitMix64 c(b.next() ^ (index * 0xBF58476D1CE4E5B9ull + 0x94D049BB133111EBull));
  return c.next();
}

}  // namespace dysra
