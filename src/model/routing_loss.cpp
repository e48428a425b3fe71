#include "model/routing_loss.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace qmoe::model {

namespace {
constexpr double kFloor = 1e-12;
}

double routing_loss(const double* p, int B, int L, const RoutingLossWeights& w, double* dp, int mean_over) {
  double loss = 0;
  if (w.load_balance > 0) {
    std::vector<double> pbar(std::size_t(L), 0.0);
    for (int b = 0; b < B; ++b)
      for (int k = 0; k < L; ++k) pbar[std::size_t(k)] += p[std::size_t(b) * L + k] / B;
    for (int k = 0; k < L; ++k) loss += w.load_balance * L * pbar[std::size_t(k)] * pbar[std::size_t(k)];
    for (int b = 0; b < B; ++b)
      for (int k = 0; k < L; ++k) dp[std::size_t(b) * L + k] += w.load_balance * L * 2 * pbar[std::size_t(k)] / B;
  }
  if (w.entropy > 0) {
    for (int b = 0; b < B; ++b)
      for (int k = 0; k < L; ++k) {
        const double v = std::max(kFloor, p[std::size_t(b) * L + k]);
        loss -= w.entropy * v * std::log(v) / mean_over;
        if (p[std::size_t(b) * L + k] > kFloor)  // below the floor the term is constant
          dp[std::size_t(b) * L + k] -= w.entropy * (std::log(v) + 1.0) / mean_over;
      }
  }
  return loss;
}

double mean_routing_entropy(const double* p, int B, int L) {
  double h = 0;
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < L; ++k) {
      const double v = std::max(kFloor, p[std::size_t(b) * L + k]);
      h -= v * std::log(v);
    }
  return B > 0 ? h / B : 0.0;
}

}  // namespace qmoe::model
