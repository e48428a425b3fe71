#include "grad/param_shift.hpp"

#include <cmath>
#include <stdexcept>

#include "grad/forward.hpp"
#include "grad/shots.hpp"
#include "sim/rng.hpp"

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

int param_shift_vjp(const Circuit& c, const std::vector<double>& theta, int batch, int n_obs,
                    const double* dL_dO, double* dtheta, const BatchExpvalFn& run) {
  if (theta.size() != std::size_t(c.n_params) || batch < 1 || n_obs < 0)
    throw std::invalid_argument("param_shift_vjp: theta size, batch or observable count does not fit the circuit");
  // The occurrence circuit: occurrence o (gate gi, angle j) reads th[o] = scale * theta[index].
  struct Occurrence {
    std::size_t gate;
    int angle, param;
    double scale;
  };
  std::vector<Occurrence> occ;
  Circuit oc = c;
  std::vector<double> th;
  for (std::size_t gi = 0; gi < c.gates.size(); ++gi)
    for (int j = 0; j < angle_count(c.gates[gi].kind); ++j) {
      const Angle a = c.gates[gi].angles[j];
      if (a.source != AngleSource::Param) continue;
      oc.gates[gi].angles[j] = Angle::param(int(occ.size()));
      occ.push_back({gi, j, a.index, a.value});
      th.push_back(a.value * theta[std::size_t(a.index)]);
    }
  oc.n_params = int(occ.size());
  const std::size_t n = std::size_t(batch) * std::size_t(n_obs);
  std::vector<double> ev(n);
  int calls = 0;
  for (std::size_t o = 0; o < occ.size(); ++o) {
    const double base = th[o];
    const std::vector<double> d = shift_rule(c.gates[occ[o].gate], occ[o].angle, [&](double s) {
      th[o] = base + s;
      run(oc, th, ev.data());
      ++calls;
      return ev;
    });
    th[o] = base;
    // Chain rule through angle = scale * theta[param]; samples and observables summed in order.
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += dL_dO[i] * d[i];
    dtheta[occ[o].param] += occ[o].scale * sum;
  }
  return calls;
}

void param_shift_gradient(const Circuit& c, const std::vector<double>& theta, const double* x,
                          int batch, const std::vector<PauliString>& obs, const double* dL_dO,
                          double* dtheta, Workspace<double>& ws) {
  check_inputs(c, theta.size(), x ? std::size_t(c.n_features) * batch : 0, batch);
  const bool keep = ws.keep_states;
  const int saved = ws.saved_layers;
  ws.keep_states = false;  // no backward follows a shifted run
  ws.saved_layers = 0;
  param_shift_vjp(c, theta, batch, int(obs.size()), dL_dO, dtheta,
                  [&](const Circuit& oc, const std::vector<double>& th, double* ev) {
                    forward(oc, th, x, batch, obs, ev, ws);
                  });
  ws.keep_states = keep;
  ws.saved_layers = saved;
}

void shot_param_shift_gradient(const Circuit& c, const std::vector<double>& theta, const double* x,
                               int batch, const std::vector<PauliString>& obs, long shots,
                               std::uint64_t seed, const double* dL_dO, double* dtheta) {
  std::uint64_t i = 0;
  param_shift_vjp(c, theta, batch, int(obs.size()), dL_dO, dtheta,
                  [&](const Circuit& oc, const std::vector<double>& th, double* ev) {
                    shot_forward<double>(oc, th, x, batch, obs, shots, sim::mix64(seed, ++i), ev);
                  });
}

}  // namespace qmoe
