// Drawing basis states from a sample's probabilities (shots; contracts in state.hpp).
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "sim/state.hpp"

namespace qmoe::sim {

template <class T>
BasisSampler make_sampler(const State<T>& s, int b, std::uint64_t seed) {
  BasisSampler smp{std::vector<double>(s.dim()), std::mt19937_64(seed)};
  probabilities(s, b, smp.cdf.data());
  for (std::size_t i = 1; i < smp.cdf.size(); ++i) smp.cdf[i] += smp.cdf[i - 1];
  return smp;
}

std::uint64_t BasisSampler::next() {
  // 53 random bits -> [0, 1), scaled by the total so rounding never falls off the end.
  const double u = double(rng() >> 11) * 0x1p-53 * cdf.back();
  const std::size_t i = std::size_t(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
  return std::min(i, cdf.size() - 1);
}

template <class T>
std::vector<std::uint64_t> sample_basis_states(const State<T>& s, int b, int shots,
                                               std::uint64_t seed) {
  if (shots < 0) throw std::invalid_argument("sample: shots must be >= 0");
  BasisSampler smp = make_sampler(s, b, seed);
  std::vector<std::uint64_t> out(static_cast<std::size_t>(shots));
  for (auto& o : out) o = smp.next();
  return out;
}

template BasisSampler make_sampler<double>(const State<double>&, int, std::uint64_t);
template BasisSampler make_sampler<float>(const State<float>&, int, std::uint64_t);
template std::vector<std::uint64_t> sample_basis_states<double>(const State<double>&, int, int, std::uint64_t);
template std::vector<std::uint64_t> sample_basis_states<float>(const State<float>&, int, int, std::uint64_t);

}  // namespace qmoe::sim
