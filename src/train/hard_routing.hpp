// Hard routing in training: the routing register is measured, each sample goes
// to the experts it drew, and the router learns through the score function
// (docs/models.md, "Hard routing").
//
// The routing register is measured after G; every later gate is block-diagonal
// in the routing basis, so by the deferred-measurement principle the data
// register of a sample that measured k is in exactly the state that expert k
// alone would prepare (E_k U_d(z) |0>, then the aggregation for k). Its
// read-out is the branch value
//     f_k,d = <O_d Pi_k> / p_k,   p_k = <Pi_k>,   Pi_k = 2^-r sum_S (-1)^{|k & S|} Z_S,
// read from one forward pass of the whole circuit (Model::observables holds
// every read-out observable times every routing Z string). The simulation
// thus runs every branch, as the statevector does anyway; the estimator uses
// only the drawn branches' values and losses, as hardware would.
//
// Training (Routing::Sampled, top_k = K): per sample, K routing states drawn
// independently from p; the read-out is the mean of their f; loss l_b =
// NLL(logits(mean f)). The objective is J = E_draws[mean_b l_b]; its
// gradient is estimated without bias by
//     pathwise:        d l_b through f = a / p of the drawn states, plus
//     score function:  (l_b - baseline_b) * sum_i d log p_{k_i},
// with the leave-one-out baseline baseline_b = mean of the other samples'
// losses (independent of b's draws, so the estimate stays unbiased; it cuts
// the variance). Evaluation: the K most likely states (distinct), read-outs
// averaged; the most likely one is the sample's measured choice.
#pragma once

#include <cstdint>
#include <vector>

#include "data/data.hpp"
#include "model/model.hpp"

namespace qmoe::train {

// Routing branches of a batch: R = 2^r routing states, D read-out observables.
struct Branches {
  int R = 0, D = 0;
  std::vector<double> p;  // [b * R + k]       = <Pi_k>
  std::vector<double> a;  // [(b * R + k) * D + d] = <O_d Pi_k>
};
// From the forward pass's expectation values ev[b * K + j] of a model built
// with Routing::Sampled.
Branches branches(const model::Model& m, const double* ev, int B);
// Chain rule back: dev[b * K + j] += d/d<O_j> of (dp . p + da . a).
void branches_backward(const model::Model& m, const Branches& br, const double* dp, const double* da, int B,
                       double* dev);

// K routing states per sample, drawn from p (clamped to >= 0, renormalised),
// draw i of sample b from the hash of (seed, b, i): out[b * K + i].
std::vector<int> draw_routes(const Branches& br, int B, int K, std::uint64_t seed);

struct HardLoss {
  double loss = 0;  // mean over the batch
  int correct = 0;
};

// The sampled loss and its score-function estimate of dJ: dp[b * R + k] and
// da[(b * R + k) * D + d] are overwritten (sized here).
HardLoss sampled_routing_loss(const model::Model& m, const Branches& br, const int* labels, int B,
                              const std::vector<int>& draws, std::vector<double>& dp, std::vector<double>& da);

// The exact objective J (every R^K draw tuple enumerated, weighted by its
// probability) and its exact gradient into dp, da: the reference the
// estimator is checked and measured against.
double expected_routing_loss(const model::Model& m, const Branches& br, const int* labels, int B,
                             std::vector<double>& dp, std::vector<double>& da);

// Evaluation: logits[b * C + c] from the mean read-out of the top_k most likely
// routing states; choice[b] = the most likely state.
void routed_logits(const model::Model& m, const Branches& br, int B, double* logits, int* choice);

// The logits a model is evaluated by, from its expectations ev[b * K + k]
// (evaluate(), so `qmoe eval` and `predict`, and the Python package): the
// mixture's (model::logits) or, with sampled routing, routed_logits's; choice
// (nullable) as routed_logits's, untouched for soft routing.
void evaluation_logits(const model::Model& m, const double* ev, int B, double* logits, int* choice = nullptr);

// The estimator measured on one batch (the first `batch` rows of d): `draws`
// independent estimates of the gradient in theta against the exact gradient of
// J and the exact gradient of the soft model's loss (the mixture read-out of
// the same circuit). Norms are Euclidean over the parameters.
struct EstimatorStats {
  int draws = 0, batch = 0;
  double bias_vs_objective = 0;  // |mean estimate - grad J| / |grad J| (-> 0: unbiased)
  double bias_vs_soft = 0;       // |mean estimate - grad soft| / |grad soft|
  double exact_vs_soft = 0;      // |grad J - grad soft| / |grad soft|: the bias of hard routing itself
  double cosine_vs_soft = 0;     // cos(grad J, grad soft)
  double relative_std = 0;       // sqrt(mean |estimate - mean|^2) / |grad J|: one draw's spread
};
EstimatorStats estimator_statistics(const model::Model& m, const std::vector<double>& theta, const data::Dataset& d,
                                    int batch, int draws, std::uint64_t seed);

}  // namespace qmoe::train
