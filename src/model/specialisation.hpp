// Do experts specialise? The mutual information between the class of a sample
// and the expert that routing picks for it, and the experts' usage.
//
// The joint distribution p(c, k) comes from either
//  - soft routing: p(c) * the mean routing probability p_k over samples of
//    class c (what a measurement of the routing register would pick), or
//  - hard routing: counts of the experts actually chosen per class.
// Both are a table [class][expert] of non-negative weights; the functions
// normalise it. Mass on routing states that select no expert (L < 2^r) is not
// in the table, so it is dropped (as scripts/report.py does).
#pragma once

#include <cstddef>
#include <vector>

namespace qmoe::model {

// I(C; K) = sum_{c,k} p(c,k) log2(p(c,k) / (p(c) p(k))) in bits, from any
// table of non-negative weights (normalised here). 0 for an empty or all-zero
// table. Throws std::invalid_argument on negative or non-finite entries or
// ragged rows.
double mutual_information_bits(const std::vector<std::vector<double>>& joint);

// The joint table of soft routing: joint[c][k] = counts[c] * mean_p[c][k]
// (mean_p = Evaluation::routing_by_class, counts = samples per class).
std::vector<std::vector<double>> routing_joint(const std::vector<std::vector<double>>& mean_p,
                                               const std::vector<std::size_t>& counts);

// Share of each expert: the column sums of the joint table, normalised.
std::vector<double> expert_usage(const std::vector<std::vector<double>>& joint);

}  // namespace qmoe::model
