#include "model/specialisation.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace qmoe::model {

namespace {
// Total weight, after checking the table's shape and entries.
double checked_total(const std::vector<std::vector<double>>& joint) {
  double total = 0;
  for (const auto& row : joint) {
    if (row.size() != joint.front().size()) throw std::invalid_argument("mutual information: ragged joint table");
    for (double v : row) {
      if (!(v >= 0) || !std::isfinite(v))
        throw std::invalid_argument("mutual information: joint weights must be finite and >= 0");
      total += v;
    }
  }
  return total;
}
}  // namespace

double mutual_information_bits(const std::vector<std::vector<double>>& joint) {
  if (joint.empty()) return 0.0;
  const double total = checked_total(joint);
  if (total <= 0) return 0.0;
  const std::size_t C = joint.size(), K = joint.front().size();
  std::vector<double> pc(C, 0.0), pk(K, 0.0);
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t k = 0; k < K; ++k) {
      pc[c] += joint[c][k] / total;
      pk[k] += joint[c][k] / total;
    }
  double mi = 0;
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t k = 0; k < K; ++k) {
      const double v = joint[c][k] / total;
      if (v > 0) mi += v * std::log2(v / (pc[c] * pk[k]));
    }
  return std::max(0.0, mi);  // rounding can leave -1e-17 for independent tables
}

std::vector<std::vector<double>> routing_joint(const std::vector<std::vector<double>>& mean_p,
                                               const std::vector<std::size_t>& counts) {
  if (mean_p.size() != counts.size())
    throw std::invalid_argument("routing_joint: one count per class is needed");
  std::vector<std::vector<double>> joint = mean_p;
  for (std::size_t c = 0; c < joint.size(); ++c)
    for (double& v : joint[c]) v = std::max(0.0, v) * double(counts[c]);  // p_k may round to -1e-17
  return joint;
}

std::vector<double> expert_usage(const std::vector<std::vector<double>>& joint) {
  if (joint.empty()) return {};
  const double total = checked_total(joint);
  std::vector<double> u(joint.front().size(), 0.0);
  for (const auto& row : joint)
    for (std::size_t k = 0; k < row.size(); ++k) u[k] += total > 0 ? row[k] / total : 0.0;
  return u;
}

}  // namespace qmoe::model
