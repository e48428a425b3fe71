#include "train/optim.hpp"

#include <cmath>
#include <stdexcept>

namespace qmoe::train {

void Adam::step(std::vector<double>& theta, const std::vector<double>& grad) {
  if (grad.size() != theta.size()) throw std::invalid_argument("Adam: gradient size differs from parameters");
  if (m.size() != theta.size()) m.assign(theta.size(), 0.0), v.assign(theta.size(), 0.0);
  ++step_count;
  const double c1 = 1.0 - std::pow(beta1, double(step_count));
  const double c2 = 1.0 - std::pow(beta2, double(step_count));
  for (std::size_t i = 0; i < theta.size(); ++i) {
    m[i] = beta1 * m[i] + (1 - beta1) * grad[i];
    v[i] = beta2 * v[i] + (1 - beta2) * grad[i] * grad[i];
    theta[i] -= lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + eps);
  }
}

double nll_log_softmax(const double* logits, const int* labels, int batch, int C, double* dlogits,
                       int* correct, int mean_over) {
  const int n = mean_over > 0 ? mean_over : batch;
  double loss = 0;
  int hits = 0;
  for (int b = 0; b < batch; ++b) {
    const double* z = logits + std::size_t(b) * C;
    const int y = labels[b];
    if (y < 0 || y >= C) throw std::invalid_argument("label out of range");
    double mx = z[0];
    int arg = 0;
    for (int c = 1; c < C; ++c)
      if (z[c] > mx) mx = z[c], arg = c;
    double sum = 0;
    for (int c = 0; c < C; ++c) sum += std::exp(z[c] - mx);
    const double lse = mx + std::log(sum);
    loss += lse - z[y];
    hits += arg == y;
    if (dlogits)
      for (int c = 0; c < C; ++c)
        dlogits[std::size_t(b) * C + c] = (std::exp(z[c] - lse) - (c == y ? 1.0 : 0.0)) / n;
  }
  if (correct) *correct = hits;
  return loss / n;
}

}  // namespace qmoe::train
