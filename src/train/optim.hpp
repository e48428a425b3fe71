// Adam (Kingma & Ba 2014) and the classification loss.
#pragma once

#include <cstdint>
#include <vector>

namespace qmoe::train {

struct Adam {
  double lr = 2e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  std::int64_t step_count = 0;
  std::vector<double> m, v;  // first and second moment estimates

  // theta <- theta - lr * mhat / (sqrt(vhat) + eps)
  void step(std::vector<double>& theta, const std::vector<double>& grad);
};

// Mean negative log-likelihood of log-softmax(logits) over a batch.
// Returns the loss; dlogits[b*C + c] = dLoss/dlogits (already divided by batch).
// correct (nullable) gets the number of argmax hits. mean_over > 0: the
// samples are part of a batch of that size (loss and dlogits divided by it).
double nll_log_softmax(const double* logits, const int* labels, int batch, int n_classes,
                       double* dlogits, int* correct, int mean_over = 0);

}  // namespace qmoe::train
