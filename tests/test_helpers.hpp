// Shared test helpers: random circuits and a slow dense-matrix reference.
#pragma once

#include <bit>
#include <complex>
#include <random>
#include <string>
#include <vector>

#include "circuit/circuit.hpp"
#include "grad/adjoint.hpp"
#include "sim/state.hpp"

namespace qmoe::testing {

inline const std::vector<GateKind>& all_one_qubit_kinds() {
  static const std::vector<GateKind> k = {
      GateKind::I,  GateKind::H,  GateKind::X,  GateKind::Y,  GateKind::Z,  GateKind::S,
      GateKind::Sdg, GateKind::T, GateKind::Tdg, GateKind::SX, GateKind::RX, GateKind::RY,
      GateKind::RZ, GateKind::U1, GateKind::U2, GateKind::U3, GateKind::Matrix};
  return k;
}

// A random 2x2 unitary (for GateKind::Matrix).
inline Mat2 random_unitary(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-M_PI, M_PI);
  const double a[3] = {u(rng), u(rng), u(rng)};
  Mat2 m = gate_matrix(GateKind::U3, a);
  const cplx ph = std::polar(1.0, u(rng));
  for (auto& e : m) e *= ph;
  return m;
}

// Random gate on n qubits with up to max_ctrl controls. Angles: Param, Feature
// or Constant at random (indices < n_params / n_features).
inline Gate random_gate(std::mt19937_64& rng, int n, int max_ctrl, int n_params, int n_features,
                        bool allow_swap = true) {
  const auto& kinds = all_one_qubit_kinds();
  std::uniform_int_distribution<int> pick_kind(0, int(kinds.size()) - (allow_swap ? 0 : 1));
  std::uniform_real_distribution<double> ang(-M_PI, M_PI);
  std::vector<int> qubits(n);
  for (int q = 0; q < n; ++q) qubits[q] = q;
  std::shuffle(qubits.begin(), qubits.end(), rng);
  Gate g;
  const int ki = pick_kind(rng);
  g.kind = ki == int(kinds.size()) ? GateKind::Swap : kinds[ki];
  int used = 0;
  g.target = qubits[used++];
  if (g.kind == GateKind::Swap) g.target2 = qubits[used++];
  const int nc = std::uniform_int_distribution<int>(0, std::min(max_ctrl, n - used))(rng);
  for (int i = 0; i < nc; ++i) g.controls.push_back({qubits[used++], bool(rng() & 1)});
  if (g.kind == GateKind::Matrix) g.matrix = random_unitary(rng);
  for (int j = 0; j < angle_count(g.kind); ++j) {
    const int src = int(rng() % 3);
    if (src == 0 && n_params > 0)
      g.angles[j] = Angle::param(int(rng() % n_params), 0.5 + ang(rng) / M_PI);
    else if (src == 1 && n_features > 0)
      g.angles[j] = Angle::feature(int(rng() % n_features), 0.5 + ang(rng) / M_PI);
    else
      g.angles[j] = Angle::constant(ang(rng));
  }
  return g;
}

inline Circuit random_circuit(std::mt19937_64& rng, int n, int n_gates, int max_ctrl,
                              int n_params, int n_features, bool allow_swap = true) {
  Circuit c;
  c.n_qubits = n;
  c.n_params = n_params;
  c.n_features = n_features;
  for (int i = 0; i < n_gates; ++i)
    add_gate(c, random_gate(rng, n, max_ctrl, n_params, n_features, allow_swap));
  return c;
}

// The observables most tests read out: Z on each of the n qubits, then the
// given Pauli strings ("X0 Y1").
inline std::vector<PauliString> z_each_then(int n, const std::vector<std::string>& more) {
  std::vector<PauliString> obs;
  for (int q = 0; q < n; ++q) obs.push_back(PauliString::Z(q));
  for (const std::string& p : more) obs.push_back(PauliString::parse(p));
  return obs;
}

// A circuit on n qubits made of the given gates, in order.
inline Circuit circuit_of(int n, const std::vector<Gate>& gates) {
  Circuit c;
  c.n_qubits = n;
  for (const Gate& g : gates) add_gate(c, g);
  return c;
}

inline std::vector<double> random_vector(std::mt19937_64& rng, std::size_t n, double lo = -M_PI,
                                         double hi = M_PI) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (auto& e : v) e = u(rng);
  return v;
}

// A random normalised batch state.
template <class T>
sim::State<T> random_state(std::mt19937_64& rng, int n, int batch) {
  sim::State<T> s = sim::make_state<T>(n, batch);
  std::normal_distribution<double> g;
  std::vector<double> norm(batch, 0.0);
  for (std::size_t i = 0; i < s.re.size(); ++i) {
    s.re[i] = T(g(rng)), s.im[i] = T(g(rng));
    norm[i % batch] += double(s.re[i]) * s.re[i] + double(s.im[i]) * s.im[i];
  }
  for (std::size_t i = 0; i < s.re.size(); ++i) {
    s.re[i] = T(s.re[i] / std::sqrt(norm[i % batch]));
    s.im[i] = T(s.im[i] / std::sqrt(norm[i % batch]));
  }
  return s;
}

// Dense reference: psi <- U psi for one gate (slow; n <= ~8).
inline void dense_apply(int n, const Gate& g, const double* angles, std::vector<cplx>& psi) {
  const std::vector<cplx> u = dense_gate_matrix(n, g, angles);
  const std::size_t dim = psi.size();
  std::vector<cplx> out(dim, 0.0);
  for (std::size_t r = 0; r < dim; ++r)
    for (std::size_t c = 0; c < dim; ++c) out[r] += u[r * dim + c] * psi[c];
  psi = out;
}

// Dense reference run of a whole circuit for one sample.
inline std::vector<cplx> dense_run(const Circuit& c, const std::vector<double>& theta,
                                   const double* x) {
  std::vector<cplx> psi(std::size_t(1) << c.n_qubits, 0.0);
  psi[0] = 1.0;
  for (const Gate& g : c.gates) {
    const auto a = resolve_angles(g, theta.data(), x);
    dense_apply(c.n_qubits, g, a.data(), psi);
  }
  return psi;
}

inline double dense_expval(const std::vector<cplx>& psi, const PauliString& p) {
  // <psi| P |psi> with P = i^ny X^x Z^z (Z first): P|i> = i^ny (-1)^{|i&z|} |i^x>
  const int ny = std::popcount(p.x & p.z);
  cplx phase = 1.0;
  for (int k = 0; k < ny; ++k) phase *= cplx(0, 1);
  cplx acc = 0.0;
  for (std::size_t i = 0; i < psi.size(); ++i) {
    const double sign = (std::popcount(i & p.z) & 1) ? -1.0 : 1.0;
    acc += std::conj(psi[i ^ p.x]) * phase * sign * psi[i];
  }
  return acc.real();
}

// L = sum_b sum_k w[b, k] <O_k>_b over a batch (features of sample b at
// x[b * n_features]), with the dense reference: the loss whose gradient the
// adjoint and parameter-shift tests check.
inline double dense_loss(const Circuit& c, const std::vector<double>& theta, const std::vector<double>& x,
                         int batch, const std::vector<PauliString>& obs, const std::vector<double>& w) {
  double L = 0;
  for (int b = 0; b < batch; ++b) {
    const auto psi = dense_run(c, theta, x.data() + std::size_t(b) * c.n_features);
    for (std::size_t k = 0; k < obs.size(); ++k) L += w[b * obs.size() + k] * dense_expval(psi, obs[k]);
  }
  return L;
}

// The central finite difference (f(v + h e_i) - f(v - h e_i)) / 2h: the
// reference every gradient test compares against.
template <class F>
double central_difference(F f, const std::vector<double>& v, std::size_t i, double h) {
  std::vector<double> vp = v, vm = v;
  vp[i] += h, vm[i] -= h;
  return (f(vp) - f(vm)) / (2 * h);
}

// A random gradient problem: a circuit on n qubits with P parameters and F
// features, theta, a batch of features x (sample b at x[b * F]) and loss
// weights w[b, k] for the observables, drawn from rng in that order.
struct GradProblem {
  Circuit c;
  int batch = 0;
  std::vector<double> theta, x;
  std::vector<PauliString> obs;
  std::vector<double> w;
};
inline GradProblem random_grad_problem(std::mt19937_64& rng, int n, int n_gates, int max_ctrl, int P, int F,
                                       int batch, std::vector<PauliString> obs, bool allow_swap = true) {
  GradProblem p;
  p.c = random_circuit(rng, n, n_gates, max_ctrl, P, F, allow_swap);
  p.batch = batch;
  p.theta = random_vector(rng, std::size_t(P));
  p.x = random_vector(rng, std::size_t(F) * batch);
  p.obs = std::move(obs);
  p.w = random_vector(rng, p.obs.size() * batch, -1, 1);
  return p;
}

// s.phase i^phase X^x Z^z applied to a dense vector gate by gate: the Z's,
// then the X's, then the phase.
inline std::vector<cplx> dense_pauli_mask(int n, const sim::PauliMask& s, std::vector<cplx> v) {
  for (int q = 0; q < n; ++q)
    if ((s.z >> q) & 1) dense_apply(n, make_gate(GateKind::Z, q), nullptr, v);
  for (int q = 0; q < n; ++q)
    if ((s.x >> q) & 1) dense_apply(n, make_gate(GateKind::X, q), nullptr, v);
  cplx phase = 1.0;
  for (int k = 0; k < s.phase; ++k) phase *= cplx(0, 1);
  for (cplx& a : v) a *= phase;
  return v;
}

template <class T>
std::vector<cplx> sample_amplitudes(const sim::State<T>& s, int b) {
  std::vector<cplx> v(s.dim());
  for (std::size_t i = 0; i < s.dim(); ++i)
    v[i] = cplx(s.re[i * s.batch + b], s.im[i * s.batch + b]);
  return v;
}


// Largest difference between two states' amplitudes.
template <class T>
double max_diff(const sim::State<T>& a, const sim::State<T>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.re.size(); ++i)
    d = std::max({d, std::abs(double(a.re[i]) - b.re[i]), std::abs(double(a.im[i]) - b.im[i])});
  return d;
}

// A circuit with every fusion opportunity: an encoder prefix, rotation runs
// between CNOT rings, controlled rotations, SWAPs, diagonal runs, and random gates.
inline Circuit structured_circuit(std::mt19937_64& rng, int n) {
  Circuit c;
  c.n_qubits = n;
  c.n_params = 6;
  c.n_features = 5;
  const GateKind enc[4] = {GateKind::RY, GateKind::RZ, GateKind::RX, GateKind::RY};
  for (int l = 0; l < 5; ++l)
    for (int q = 0; q < n; ++q) add_gate(c, make_gate(enc[l % 4], q, {}, {Angle::feature((l + q) % 5, 0.7)}));
  for (int layer = 0; layer < 2; ++layer) {
    for (int q = 0; q < n; ++q) {
      add_gate(c, make_gate(GateKind::RX, q, {}, {Angle::param((q + layer) % 6)}));
      add_gate(c, make_gate(GateKind::RZ, q, {}, {Angle::constant(0.3 * q)}));
      add_gate(c, make_gate(GateKind::T, q));
    }
    for (int q = 0; q < n; ++q) add_gate(c, make_gate(GateKind::X, (q + 1) % n, {{q, true}}));
    if (n >= 3) {
      add_gate(c, make_gate(GateKind::RY, 2, {{0, false}, {1, true}}, {Angle::param(layer)}));
      add_gate(c, make_gate(GateKind::RX, 2, {{0, false}, {1, true}}, {Angle::feature(1)}));
      Gate sw = make_gate(GateKind::Swap, 0, {{2, true}});
      sw.target2 = 1;
      add_gate(c, sw);
      add_gate(c, make_gate(GateKind::X, 1, {{0, true}, {2, false}}));
      // an expert-style layer: rotations on qubits 1.. all controlled by qubit 0 on |0>
      // (controlled pairs in the forward plan, a controlled layer in the adjoint sweep)
      for (int q = 1; q < n; ++q) {
        add_gate(c, make_gate(GateKind::RX, q, {{0, false}}, {Angle::param((q + 2) % 6)}));
        add_gate(c, make_gate(GateKind::RY, q, {{0, false}}, {Angle::feature(q % 5)}));
      }
    }
  }
  for (int i = 0; i < 20; ++i) add_gate(c, random_gate(rng, n, 2, c.n_params, c.n_features));
  return c;
}


// Layered circuits for the layer sweep: an encoder, uncontrolled ansatz
// layers with rings, and expert-like layers whose gates all carry the same
// controls on qubit 0 (targets 1..n-1), then random gates.
inline Circuit layered_circuit(std::mt19937_64& rng, int n, bool controlled) {
  Circuit c = structured_circuit(rng, n);
  const int p0 = c.n_params;
  for (int layer = 0; layer < 3; ++layer) {
    const std::vector<Control> ctl =
        controlled && n > 2 ? std::vector<Control>{{0, layer % 2 == 0}} : std::vector<Control>{};
    for (int q = ctl.empty() ? 0 : 1; q < n; ++q) {
      add_gate(c, make_gate(GateKind::RY, q, ctl, {Angle::param(p0 + 2 * layer, 0.9)}));
      add_gate(c, make_gate(GateKind::RZ, q, ctl, {Angle::feature(q % c.n_features)}));
      add_gate(c, make_gate(GateKind::H, q, ctl));
      add_gate(c, make_gate(GateKind::RX, q, ctl, {Angle::param(p0 + 2 * layer + 1)}));
    }
    for (int q = 0; q < n; ++q) add_gate(c, make_gate(GateKind::X, (q + 1) % n, {{q, true}}));
  }
  for (int i = 0; i < 6; ++i) add_gate(c, random_gate(rng, n, 1, c.n_params, c.n_features));
  return c;
}



// ---- dense density-matrix references (tests of noise and the density matrix) ----
using Dense = std::vector<cplx>;  // row-major dim x dim

// M rho M^dagger for dense dim x dim matrices.
inline Dense dense_conj(const Dense& m, const Dense& rho, std::size_t dim) {
  Dense t(dim * dim, 0.0), out(dim * dim, 0.0);
  for (std::size_t r = 0; r < dim; ++r)
    for (std::size_t k = 0; k < dim; ++k)
      for (std::size_t c = 0; c < dim; ++c) t[r * dim + c] += m[r * dim + k] * rho[k * dim + c];
  for (std::size_t r = 0; r < dim; ++r)
    for (std::size_t k = 0; k < dim; ++k)
      for (std::size_t c = 0; c < dim; ++c) out[r * dim + c] += t[r * dim + k] * std::conj(m[c * dim + k]);
  return out;
}

// The qubits a gate touches: its target (and a SWAP's second), then its controls.
inline std::vector<int> gate_qubits(const Gate& g) {
  std::vector<int> qs{g.target};
  if (g.kind == GateKind::Swap) qs.push_back(g.target2);
  for (const Control& ctl : g.controls) qs.push_back(ctl.qubit);
  return qs;
}

// The dense noisy run of one sample: rho starts as |0><0|; after each gate's
// U rho U^dagger, noise(rho, q, touched) acts on every qubit q the gate
// touches (touched: how many it touches, 1 for a one-qubit gate). The noise
// is the caller's, so each test keeps its own independent channel reference.
template <class Noise>
Dense dense_noisy_run(const Circuit& c, const std::vector<double>& theta, const double* x, Noise noise) {
  const int n = c.n_qubits;
  const std::size_t dim = std::size_t(1) << n;
  Dense rho(dim * dim, 0.0);
  rho[0] = 1.0;
  for (const Gate& g : c.gates) {
    const auto a = resolve_angles(g, theta.data(), x);
    rho = dense_conj(dense_gate_matrix(n, g, a.data()), rho, dim);
    const std::vector<int> qs = gate_qubits(g);
    for (int q : qs) noise(rho, q, int(qs.size()));
  }
  return rho;
}

// tr(rho P) of an n-qubit density matrix: P|j> = phase(j) |j ^ x>.
inline double dense_pauli(const Dense& rho, int n, const PauliString& p) {
  const std::size_t dim = std::size_t(1) << n;
  cplx ph = 1.0;
  for (int k = 0; k < std::popcount(p.x & p.z); ++k) ph *= cplx(0, 1);
  cplx acc = 0.0;
  for (std::size_t j = 0; j < dim; ++j)
    acc += rho[j * dim + (j ^ p.x)] * ph * ((std::popcount(j & p.z) & 1) ? -1.0 : 1.0);
  return acc.real();
}

}  // namespace qmoe::testing
