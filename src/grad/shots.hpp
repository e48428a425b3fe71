// Expectations estimated from measurement shots, as a device gives them.
//
// shot_forward samples `shots` basis states of each sample's final state
// (every qubit measured in Z) and estimates each diagonal observable (a Z
// string) as the mean of its +-1 outcome; the standard error of an estimate
// is sqrt((1 - <O>^2) / shots). The draws come from a hash of (seed, the
// sample's features), so the numbers depend neither on the thread count nor
// on how a data set is cut into batches.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>

#include "circuit/circuit.hpp"
#include "grad/adjoint.hpp"
#include "sim/rng.hpp"

namespace qmoe {

// The hash a sample's random draws start from: (salt, seed, its features).
inline std::uint64_t input_key(std::uint64_t salt, std::uint64_t seed, const double* x, int n_features) {
  std::uint64_t h = sim::mix64(salt, seed);
  for (int f = 0; f < n_features; ++f) {
    std::uint64_t bits;
    std::memcpy(&bits, &x[f], sizeof bits);
    h = sim::mix64(h, bits);
  }
  return h;
}

// The +-1 value of the diagonal Pauli string p (p.x == 0) on basis state v.
inline double z_string_value(const PauliString& p, std::uint64_t v) {
  return (std::popcount(v & p.z) & 1) ? -1.0 : 1.0;
}

// expvals[b * K + k]: the mean of obs[k]'s outcome over `shots` samples of
// sample b's final state. Every observable must be diagonal (Z strings);
// throws std::invalid_argument otherwise or for shots < 1.
template <class T>
void shot_forward(const Circuit& c, const std::vector<double>& theta, const double* x, int batch,
                  const std::vector<PauliString>& obs, long shots, std::uint64_t seed, double* expvals);

}  // namespace qmoe
