// Losses on the routing distribution p[b * L + k] (routing_probabilities), each
// with its own weight, added to the task loss (docs/models.md, "Routing losses"):
//
//   load balance  w_lb * L * sum_k pbar_k^2,       pbar = batch mean of p
//                 (the soft Switch-Transformer term: smallest when the batch
//                 uses the experts equally; spreads the load)
//   entropy       w_h * (1/B) sum_b H(p_b),        H(p) = -sum_k p_k ln p_k
//                 (per sample: smallest when each sample is sent to one
//                 expert; makes the choices confident)
//
// Both together ask for confident choices spread over the experts, which is
// what specialisation needs. p_k below 1e-12 (rounding can give -1e-17) is
// taken as 1e-12 in the logarithm.
#pragma once

namespace qmoe::model {

struct RoutingLossWeights {
  double load_balance = 0.0;
  double entropy = 0.0;
  bool any() const { return load_balance > 0 || entropy > 0; }
};

// Returns the weighted routing loss of a batch of B samples and L experts and
// adds its gradient d/dp to dp[b * L + k]. `mean_over` is the batch size the
// entropy's mean divides by (B when p is the whole batch; the whole batch's
// size when p is one chunk of it, so chunks add up to the batch's loss). The
// load balance couples the batch: pass the whole batch (mean_over = B).
double routing_loss(const double* p, int B, int L, const RoutingLossWeights& w, double* dp, int mean_over);

// The mean per-sample routing entropy in nats (no weight), for reports.
double mean_routing_entropy(const double* p, int B, int L);

}  // namespace qmoe::model
