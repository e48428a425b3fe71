#include "circuit/execute.hpp"

#include "circuit/executor.hpp"
#include "circuit/plan.hpp"

#include <stdexcept>
#include <string>

namespace qmoe {

template <class T>
sim::BatchMat<T> GateScratch<T>::mat(int slot, int batch) {
  sim::BatchMat<T> m;
  T* base = data.data() + std::size_t(slot) * 8 * std::size_t(batch);
  for (int k = 0; k < 4; ++k) {
    m.re[k] = base + std::size_t(k) * batch;
    m.im[k] = base + std::size_t(4 + k) * batch;
  }
  return m;
}

template <class T>
void GateScratch<T>::set(int slot, int batch, int b, const Mat2& m) {
  T* base = data.data() + std::size_t(slot) * 8 * std::size_t(batch) + b;
  for (int k = 0; k < 4; ++k) {
    base[std::size_t(k) * batch] = T(m[k].real());
    base[std::size_t(4 + k) * batch] = T(m[k].imag());
  }
}

bool is_diagonal(GateKind k) {
  switch (k) {
    case GateKind::I: case GateKind::Z: case GateKind::S: case GateKind::Sdg:
    case GateKind::T: case GateKind::Tdg: case GateKind::RZ: case GateKind::U1:
      return true;
    default:
      return false;
  }
}

sim::Controls control_mask(const Gate& g) {
  sim::Controls c;
  for (const Control& ctl : g.controls) {
    c.mask |= std::uint64_t(1) << ctl.qubit;
    if (ctl.on_one) c.value |= std::uint64_t(1) << ctl.qubit;
  }
  return c;
}

template <class T>
sim::Mat<T> to_kernel(const Mat2& m) {
  sim::Mat<T> k;
  for (int i = 0; i < 4; ++i) k.re[i] = T(m[i].real()), k.im[i] = T(m[i].imag());
  return k;
}

template <class T>
void apply_gate(sim::State<T>& s, const Gate& g, const double* theta, const double* x,
                int x_stride, bool inverse, GateScratch<T>& scratch) {
  const sim::Controls c = control_mask(g);
  if (g.kind == GateKind::Swap) {
    sim::apply_swap(s, g.target, g.target2, c);  // its own inverse
    return;
  }
  if (g.kind == GateKind::X) {
    sim::apply_x(s, g.target, c);  // a permutation of slots, its own inverse
    return;
  }
  const bool diagonal = is_diagonal(g.kind);
  if (!is_per_sample(g)) {
    const auto a = resolve_angles(g, theta, nullptr);
    const Mat2 m0 = gate_matrix(g.kind, a.data(), g.matrix);
    const sim::Mat<T> m = to_kernel<T>(inverse ? dagger(m0) : m0);
    if (diagonal)
      sim::apply_diagonal(s, g.target, c, sim::Diag<T>{{m.re[0], m.re[3]}, {m.im[0], m.im[3]}});
    else
      sim::apply_matrix(s, g.target, c, m);
    return;
  }
  scratch.reserve(s.batch);
  for (int b = 0; b < s.batch; ++b) {
    const auto a = resolve_angles(g, theta, x + std::size_t(b) * x_stride);
    const Mat2 m = gate_matrix(g.kind, a.data(), g.matrix);
    scratch.set(0, s.batch, b, inverse ? dagger(m) : m);
  }
  const sim::BatchMat<T> m = scratch.mat(0, s.batch);
  if (diagonal)
    sim::apply_diagonal(s, g.target, c, sim::BatchDiag<T>{{m.re[0], m.re[3]}, {m.im[0], m.im[3]}});
  else
    sim::apply_matrix(s, g.target, c, m);
}

template <class T>
void run_circuit(const Circuit& c, const double* theta, const double* x, sim::State<T>& s,
                 GateScratch<T>& scratch) {
  if (s.n_qubits != c.n_qubits) throw std::invalid_argument("run_circuit: state has wrong qubit count");
  run_plan(c, make_plan(c), theta, x, s, scratch);  // one-off runs: plan afresh
}

void check_inputs(const Circuit& c, std::size_t n_theta, std::size_t n_x, int batch) {
  if (batch < 1) throw std::invalid_argument("batch must be >= 1");
  if (n_theta < std::size_t(c.n_params))
    throw std::invalid_argument("circuit needs " + std::to_string(c.n_params) +
                                " parameters, got " + std::to_string(n_theta));
  if (n_x < std::size_t(c.n_features) * std::size_t(batch))
    throw std::invalid_argument("circuit needs " + std::to_string(c.n_features) +
                                " features per sample for " + std::to_string(batch) +
                                " samples, got " + std::to_string(n_x) + " values");
}

#define QMOE_INSTANTIATE(T)                                                              \
  template struct GateScratch<T>;                                                        \
  template sim::Mat<T> to_kernel<T>(const Mat2&);                                        \
  template void apply_gate<T>(sim::State<T>&, const Gate&, const double*, const double*, \
                              int, bool, GateScratch<T>&);                               \
  template void run_circuit<T>(const Circuit&, const double*, const double*,             \
                               sim::State<T>&, GateScratch<T>&);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe
