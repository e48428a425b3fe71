// Counter-based random numbers: a value is a hash of a seed and the indices of
// what it is for (sample, gate, qubit, ...), so results do not depend on the
// order or the thread in which they are drawn.
#pragma once

#include <cstdint>

namespace qmoe::sim {

// splitmix64-style combine of a running hash h with a value v.
inline std::uint64_t mix64(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

// A uniform double in [0, 1) from a hash (its top 53 bits).
inline double unit_double(std::uint64_t h) { return double(h >> 11) * 0x1p-53; }

}  // namespace qmoe::sim
