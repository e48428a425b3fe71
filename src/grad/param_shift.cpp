#include "grad/param_shift.hpp"

#include <cmath>
#include <stdexcept>

namespace qmoe {
namespace {

// True when the angle's generator has eigenvalues {0, 1} (a phase), so the
// two-term rule holds even under controls.
bool is_phase_angle(GateKind kind, int j) {
  return kind == GateKind::U1 || kind == GateKind::U2 || (kind == GateKind::U3 && j > 0);
}

// d/d(angle) of f, where f(shift) evaluates with the angle moved by `shift`.
template <class F>
std::vector<double> shift_rule(const Gate& g, int j, F&& f) {
  const bool four_term = !g.controls.empty() && !is_phase_angle(g.kind, j);
  const double h = M_PI / 2;
  std::vector<double> plus = f(h), minus = f(-h);
  std::vector<double> out(plus.size());
  if (!four_term) {
    for (std::size_t k = 0; k < out.size(); ++k) out[k] = 0.5 * (plus[k] - minus[k]);
    return out;
  }
  const double dp = (std::sqrt(2.0) + 1) / (4 * std::sqrt(2.0));
  const double dm = (std::sqrt(2.0) - 1) / (4 * std::sqrt(2.0));
  std::vector<double> plus3 = f(3 * h), minus3 = f(-3 * h);
  for (std::size_t k = 0; k < out.size(); ++k)
    out[k] = dp * (plus[k] - minus[k]) - dm * (plus3[k] - minus3[k]);
  return out;
}

}  // namespace

std::vector<double> param_shift_jacobian(const Circuit& c, const std::vector<double>& theta,
                                         int n_obs, const ExpvalFn& expvals) {
  check_inputs(c, theta.size(), std::size_t(c.n_features), 1);
  std::vector<double> jac(std::size_t(n_obs) * c.n_params, 0.0);
  // The shifted occurrence reads a new parameter (index n_params) holding its
  // own angle, so the other occurrences of the same parameter stay put.
  Circuit shifted = c;
  shifted.n_params = c.n_params + 1;
  std::vector<double> th = theta;
  th.resize(std::size_t(c.n_params) + 1);
  for (std::size_t gi = 0; gi < c.gates.size(); ++gi) {
    const Gate& g = c.gates[gi];
    for (int j = 0; j < angle_count(g.kind); ++j) {
      const Angle a = g.angles[j];
      if (a.source != AngleSource::Param) continue;
      shifted.gates[gi].angles[j] = Angle::param(c.n_params);
      const double base = a.value * theta[std::size_t(a.index)];
      const std::vector<double> d = shift_rule(g, j, [&](double s) {
        th.back() = base + s;
        std::vector<double> v = expvals(shifted, th);
        if (v.size() != std::size_t(n_obs))
          throw std::logic_error("param_shift_jacobian: evaluator returned the wrong count");
        return v;
      });
      for (int k = 0; k < n_obs; ++k) jac[std::size_t(k) * c.n_params + a.index] += a.value * d[k];
      shifted.gates[gi].angles[j] = a;
    }
  }
  return jac;
}

std::vector<double> param_shift_jacobian(const Circuit& c, const std::vector<double>& theta,
                                         const double* x, const std::vector<PauliString>& obs) {
  Workspace<double> ws;
  return param_shift_jacobian(c, theta, int(obs.size()),
                              [&](const Circuit& cc, const std::vector<double>& th) {
                                std::vector<double> ev(obs.size());
                                forward(cc, th, x, 1, obs, ev.data(), ws);
                                return ev;
                              });
}

void param_shift_gradient(const Circuit& c, const std::vector<double>& theta, const double* x,
                          int batch, const std::vector<PauliString>& obs, const double* dL_dO,
                          double* dtheta) {
  const std::size_t K = obs.size(), F = std::size_t(c.n_features);
  for (int b = 0; b < batch; ++b) {
    const double* xb = x ? x + std::size_t(b) * F : nullptr;
    const std::vector<double> jac = param_shift_jacobian(c, theta, xb, obs);
    for (std::size_t k = 0; k < K; ++k)
      for (int j = 0; j < c.n_params; ++j)
        dtheta[j] += dL_dO[std::size_t(b) * K + k] * jac[k * c.n_params + j];
  }
}

}  // namespace qmoe
