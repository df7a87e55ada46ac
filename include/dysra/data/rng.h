// dysra/data/rng.h — a small, portable, deterministic random number generator for data generation.
//
// Every generated example must be bit-identical on every platform and standard library, so nothing here
// uses <random>'s distributions (their output is implementation-defined). The engine is xoshiro256**
// (Blackman & Vigna), seeded through splitmix64; integers are drawn without modulo bias (Lemire's
// multiply-shift with rejection); reals use the top 53 bits.
//
// Random access: `seed_for(base_seed, split, index)` mixes a base seed, a split name and an example index
// into an independent seed, so example i of a split is generated without generating examples 0..i-1
// (exact resume, parallel generation, stable examples when the dataset size changes).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "dysra/core/error.h"

namespace dysra::data {

/// One step of splitmix64: advances `state` and returns the next output. Also a good 64-bit mixer.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// FNV-1a 64-bit hash of a byte string (stable across platforms; used to turn split names into numbers).
inline uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ULL;
  }
  return h;
}

/// An independent seed for example `index` of `split` under `base_seed`.
inline uint64_t seed_for(uint64_t base_seed, std::string_view split, uint64_t index) {
  uint64_t s = base_seed;
  uint64_t a = splitmix64(s);
  s = a ^ fnv1a64(split);
  uint64_t b = splitmix64(s);
  s = b ^ (index * 0xD1B54A32D192ED03ULL + 0x8CB92BA72F3D8DD7ULL);
  return splitmix64(s);
}

/// xoshiro256** with convenience draws. Copyable; its whole state is `state()` (4 words) for save/restore.
class Rng {
 public:
  using State = std::array<uint64_t, 4>;

  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  explicit Rng(const State& st) : s_(st) {
    DYSRA_CHECK(s_[0] | s_[1] | s_[2] | s_[3], "Rng: the all-zero state is invalid for xoshiro256**");
  }

  void reseed(uint64_t seed) {
    uint64_t sm = seed;
    for (auto& w : s_) w = splitmix64(sm);
  }
  const State& state() const { return s_; }

  /// Next raw 64-bit output.
  uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform integer in [0, n), n > 0, without modulo bias.
  uint64_t below(uint64_t n) {
    DYSRA_CHECK(n > 0, "Rng::below: n must be positive");
    // Lemire (2019): multiply-shift with rejection of the biased low region.
    uint64_t x = next_u64();
    unsigned __int128 m = static_cast<unsigned __int128>(x) * n;
    uint64_t l = static_cast<uint64_t>(m);
    if (l < n) {
      const uint64_t t = (0 - n) % n;
      while (l < t) {
        x = next_u64();
        m = static_cast<unsigned __int128>(x) * n;
        l = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  /// Uniform integer in the closed range [lo, hi].
  int64_t uniform_int(int64_t lo, int64_t hi) {
    DYSRA_CHECK(lo <= hi, "Rng::uniform_int: empty range [", lo, ", ", hi, "]");
    const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
    if (span == UINT64_MAX) return static_cast<int64_t>(next_u64());
    return static_cast<int64_t>(static_cast<uint64_t>(lo) + below(span + 1));
  }

  /// Uniform real in [0, 1) with 53 random bits.
  double uniform_real() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  /// Uniform real in [lo, hi).
  double uniform_real(double lo, double hi) { return lo + (hi - lo) * uniform_real(); }
  /// True with probability p.
  bool bernoulli(double p) { return uniform_real() < p; }

  /// Fisher–Yates shuffle (the same permutation on every platform).
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) {
      const size_t j = static_cast<size_t>(below(i));
      using std::swap;
      swap(v[i - 1], v[j]);
    }
  }

  /// A uniformly chosen element (by reference).
  template <class T>
  const T& choice(const std::vector<T>& v) {
    DYSRA_CHECK(!v.empty(), "Rng::choice: empty vector");
    return v[static_cast<size_t>(below(v.size()))];
  }

  /// k distinct indices from [0, n), in the order drawn (partial Fisher–Yates; O(n) memory).
  std::vector<size_t> sample_indices(size_t n, size_t k) {
    DYSRA_CHECK(k <= n, "Rng::sample_indices: cannot draw ", k, " distinct values from ", n);
    if (k <= 64 && k * 8 < n) {
      // Few draws from a large range: rejection keeps memory O(k).
      std::vector<size_t> out;
      out.reserve(k);
      while (out.size() < k) {
        const size_t x = static_cast<size_t>(below(n));
        bool seen = false;
        for (size_t y : out) seen = seen || (y == x);
        if (!seen) out.push_back(x);
      }
      return out;
    }
    std::vector<size_t> idx(n);
    for (size_t i = 0; i < n; ++i) idx[i] = i;
    for (size_t i = 0; i < k; ++i) {
      const size_t j = i + static_cast<size_t>(below(n - i));
      std::swap(idx[i], idx[j]);
    }
    idx.resize(k);
    return idx;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  State s_{};
};

}  // namespace dysra::data
