// The adjoint sweep's kernels: one backward step through a gate on phi and lam
// together (adjoint_step, adjoint_step_rotation, adjoint_step_overlaps) and
// the read-only Pauli overlaps (pauli_overlaps); contracts in state.hpp. They
// run serially (run_range, not run_pairs): gradients are taken per chunk of
// samples, small enough for one thread.
#include <type_traits>

#include "sim/coefficients.hpp"
#include "sim/pair_loop.hpp"
#include "sim/state.hpp"

namespace qmoe::sim {
namespace {

using namespace detail;

template <class T, class Core>
void run_on_both(State<T>& phi, State<T>& lam, int target, Controls c, const Core& core) {
  check_same_shape(phi, lam);
  const PairSpace p = make_pairs(phi.n_qubits, std::size_t(phi.batch), target, c, false);
  run_range(StatePairs<T, Core>{phi.re.data(), phi.im.data(), lam.re.data(), lam.im.data(), core}, p, 0,
            p.count);
}

// phi <- M^-1 phi; g[j][b] += 2 Re <lam| D_j |phi> for ND derivative matrices; lam <- M^-1 lam.
template <int ND, class T, class M>
auto adjoint_core(const M& m_inv, const M* d, double* const* g) {
  return [m_inv, d, g](std::size_t b, T& a0r, T& a0i, T& a1r, T& a1i, T& l0r, T& l0i, T& l1r,
                       T& l1i) [[gnu::always_inline]] {
    mul2<T>(m_inv, b, a0r, a0i, a1r, a1i);
    for (int j = 0; j < ND; ++j) {
      T d0r = a0r, d0i = a0i, d1r = a1r, d1i = a1i;
      mul2<T>(d[j], b, d0r, d0i, d1r, d1i);
      g[j][b] += 2.0 * double(l0r * d0r + l0i * d0i + l1r * d1r + l1i * d1i);
    }
    mul2<T>(m_inv, b, l0r, l0i, l1r, l1i);
  };
}

// The step of a rotation exp(-i a P/2) (P = X, Y, Z by Pauli = 0, 1, 2):
// dM/da M^-1 = -i/2 P, so the gradient 2 Re <lam| dM/da |M^-1 phi> is
// 2 Re <lam| -i/2 P |phi> before the undo: a few products instead of a third
// 2x2 multiply.
template <int Pauli, class T, class M>
auto rotation_core(const M& m_inv, double* g) {
  return [m_inv, g](std::size_t b, T& a0r, T& a0i, T& a1r, T& a1i, T& l0r, T& l0i, T& l1r,
                    T& l1i) [[gnu::always_inline]] {
    T v;
    if constexpr (Pauli == 0)  // Im(conj(l0) a1 + conj(l1) a0)
      v = l0r * a1i - l0i * a1r + l1r * a0i - l1i * a0r;
    else if constexpr (Pauli == 1)  // Re(conj(l1) a0 - conj(l0) a1)
      v = l1r * a0r + l1i * a0i - l0r * a1r - l0i * a1i;
    else  // Im(conj(l0) a0 - conj(l1) a1)
      v = l0r * a0i - l0i * a0r - l1r * a1i + l1i * a1r;
    g[b] += double(v);
    mul2<T>(m_inv, b, a0r, a0i, a1r, a1i);
    mul2<T>(m_inv, b, l0r, l0i, l1r, l1i);
  };
}

// The step through a fused run of gates: the Pauli overlaps Im <lam| X, Y, Z
// |phi> on the target before the undo, then phi <- M^-1 phi, lam <- M^-1 lam.
// Every rotation of the run takes its gradient from these sums, so a run of
// several gates costs one pass over phi and lam. Axes (bits X = 1, Y = 2,
// Z = 4): the overlaps wanted; a trainable rotation last in its run needs one
// axis, a third of the arithmetic and of the sums' loads and stores.
// Undo = false: the overlaps only (the states are only read).
template <bool Undo, int Axes, class T, class M>
auto overlap_core(const M& m_inv, double* const* ov) {
  return [m_inv, ox = ov[0], oy = ov[1], oz = ov[2]](std::size_t b, T& a0r, T& a0i, T& a1r, T& a1i, T& l0r,
                                                     T& l0i, T& l1r, T& l1i) [[gnu::always_inline]] {
    // u = conj(l0) a1, w = conj(l1) a0; z0, z1 = Im conj(l0) a0, Im conj(l1) a1
    if constexpr ((Axes & 1) != 0) ox[b] += double((l0r * a1i - l0i * a1r) + (l1r * a0i - l1i * a0r));
    if constexpr ((Axes & 2) != 0) oy[b] += double((l1r * a0r + l1i * a0i) - (l0r * a1r + l0i * a1i));
    if constexpr ((Axes & 4) != 0) oz[b] += double((l0r * a0i - l0i * a0r) - (l1r * a1i - l1i * a1r));
    if constexpr (Undo && is_real_coeffs<M>) {  // e.g. a controlled RY: half the arithmetic
      mul2<T>(m_inv, b, a0r, a0i, a1r, a1i);
      mul2<T>(m_inv, b, l0r, l0i, l1r, l1i);
    } else if constexpr (Undo) {
      // the matrix once into registers, for both states
      const SharedM<T> u{{m_inv.re(0, b), m_inv.re(1, b), m_inv.re(2, b), m_inv.re(3, b)},
                         {m_inv.im(0, b), m_inv.im(1, b), m_inv.im(2, b), m_inv.im(3, b)}};
      mul2<T>(u, b, a0r, a0i, a1r, a1i);
      mul2<T>(u, b, l0r, l0i, l1r, l1i);
    }
  };
}

template <class T, class M>
void adjoint_dispatch(State<T>& phi, State<T>& lam, int target, Controls c, const M& m_inv, int n_deriv,
                      const M* d, double* const* g) {
  auto go = [&]<int ND>() { run_on_both(phi, lam, target, c, adjoint_core<ND, T>(m_inv, d, g)); };
  switch (n_deriv) {
    case 0: go.template operator()<0>(); break;
    case 1: go.template operator()<1>(); break;
    case 2: go.template operator()<2>(); break;
    case 3: go.template operator()<3>(); break;
    default: throw std::invalid_argument("adjoint_step: 0-3 derivatives");
  }
}

template <class T, class M>
void rotation_dispatch(State<T>& phi, State<T>& lam, int target, Controls c, const M& m_inv, Pauli axis,
                       double* g) {
  switch (axis) {
    case Pauli::X: run_on_both(phi, lam, target, c, rotation_core<0, T>(m_inv, g)); break;
    case Pauli::Y: run_on_both(phi, lam, target, c, rotation_core<1, T>(m_inv, g)); break;
    case Pauli::Z: run_on_both(phi, lam, target, c, rotation_core<2, T>(m_inv, g)); break;
    default: throw std::invalid_argument("adjoint_step_rotation: Pauli must be X, Y or Z");
  }
}

template <bool Undo, class T, class M>
void overlap_dispatch(State<T>& phi, State<T>& lam, int target, Controls c, const M& m_inv,
                      double* const* ov) {
  const int axes = (ov[0] ? 1 : 0) | (ov[1] ? 2 : 0) | (ov[2] ? 4 : 0);
  auto go = [&]<int Axes>() { run_on_both(phi, lam, target, c, overlap_core<Undo, Axes, T>(m_inv, ov)); };
  switch (axes) {
    case 0:
      if constexpr (Undo) go.template operator()<0>();  // nothing to read otherwise
      else check_same_shape(phi, lam), make_pairs(phi.n_qubits, std::size_t(phi.batch), target, c, false);
      break;
    case 1: go.template operator()<1>(); break;
    case 2: go.template operator()<2>(); break;
    case 3: go.template operator()<3>(); break;
    case 4: go.template operator()<4>(); break;
    case 5: go.template operator()<5>(); break;
    case 6: go.template operator()<6>(); break;
    default: go.template operator()<7>(); break;
  }
}

}  // namespace

Pauli pauli_axis(char letter) {
  switch (letter) {
    case 'X': return Pauli::X;
    case 'Y': return Pauli::Y;
    case 'Z': return Pauli::Z;
    default: throw std::invalid_argument("adjoint_step_rotation: Pauli must be X, Y or Z");
  }
}

template <class T>
void adjoint_step(State<T>& phi, State<T>& lam, int target, Controls c, const Mat<T>& m_inv, int n_deriv,
                  const Mat<T>* deriv, double* const* grad) {
  SharedM<T> d[3];
  for (int j = 0; j < n_deriv && j < 3; ++j) d[j] = shared(deriv[j]);
  adjoint_dispatch(phi, lam, target, c, shared(m_inv), n_deriv, d, grad);
}

template <class T>
void adjoint_step(State<T>& phi, State<T>& lam, int target, Controls c, const BatchMat<T>& m_inv,
                  int n_deriv, const BatchMat<T>* deriv, double* const* grad) {
  // Initialised, not assigned: clang 14 cannot compile PerSampleM's implicit
  // assignment (an array of __restrict pointers).
  auto at = [&](int j) { return j < n_deriv ? per_sample(deriv[j]) : PerSampleM<T>{}; };
  const PerSampleM<T> d[3] = {at(0), at(1), at(2)};
  adjoint_dispatch(phi, lam, target, c, per_sample(m_inv), n_deriv, d, grad);
}

template <class T>
void adjoint_step_rotation(State<T>& phi, State<T>& lam, int target, Controls c, const Mat<T>& m_inv,
                           Pauli axis, double* grad) {
  rotation_dispatch(phi, lam, target, c, shared(m_inv), axis, grad);
}

template <class T>
void adjoint_step_rotation(State<T>& phi, State<T>& lam, int target, Controls c, const BatchMat<T>& m_inv,
                           Pauli axis, double* grad) {
  rotation_dispatch(phi, lam, target, c, per_sample(m_inv), axis, grad);
}

template <class T>
void adjoint_step_rotation(State<T>& phi, State<T>& lam, int target, Controls c, const Mat<T>& m_inv,
                           char pauli, double* grad) {
  adjoint_step_rotation(phi, lam, target, c, m_inv, pauli_axis(pauli), grad);
}

template <class T>
void adjoint_step_rotation(State<T>& phi, State<T>& lam, int target, Controls c, const BatchMat<T>& m_inv,
                           char pauli, double* grad) {
  adjoint_step_rotation(phi, lam, target, c, m_inv, pauli_axis(pauli), grad);
}

template <class T>
void adjoint_step_overlaps(State<T>& phi, State<T>& lam, int target, Controls c, const Mat<T>& m_inv,
                           double* const* overlap) {
  with_accessor(m_inv, [&](const auto& m) { overlap_dispatch<true>(phi, lam, target, c, m, overlap); });
}

template <class T>
void adjoint_step_overlaps(State<T>& phi, State<T>& lam, int target, Controls c, const BatchMat<T>& m_inv,
                           double* const* overlap) {
  with_accessor(m_inv, [&](const auto& m) { overlap_dispatch<true>(phi, lam, target, c, m, overlap); });
}

template <class T>
void pauli_overlaps(const State<T>& phi, const State<T>& lam, int target, Controls c, double* const* overlap) {
  // With Undo = false the core only reads the states.
  overlap_dispatch<false>(const_cast<State<T>&>(phi), const_cast<State<T>&>(lam), target, c, SharedM<T>{},
                          overlap);
}

#define QMOE_INSTANTIATE(T)                                                                             \
  template void adjoint_step<T>(State<T>&, State<T>&, int, Controls, const Mat<T>&, int, const Mat<T>*, \
                                double* const*);                                                        \
  template void adjoint_step<T>(State<T>&, State<T>&, int, Controls, const BatchMat<T>&, int,           \
                                const BatchMat<T>*, double* const*);                                    \
  template void adjoint_step_rotation<T>(State<T>&, State<T>&, int, Controls, const Mat<T>&, Pauli,     \
                                         double*);                                                      \
  template void adjoint_step_rotation<T>(State<T>&, State<T>&, int, Controls, const BatchMat<T>&,       \
                                         Pauli, double*);                                               \
  template void adjoint_step_rotation<T>(State<T>&, State<T>&, int, Controls, const Mat<T>&, char,      \
                                         double*);                                                      \
  template void adjoint_step_rotation<T>(State<T>&, State<T>&, int, Controls, const BatchMat<T>&, char, \
                                         double*);                                                      \
  template void adjoint_step_overlaps<T>(State<T>&, State<T>&, int, Controls, const Mat<T>&,            \
                                         double* const*);                                               \
  template void adjoint_step_overlaps<T>(State<T>&, State<T>&, int, Controls, const BatchMat<T>&,       \
                                         double* const*);                                               \
  template void pauli_overlaps<T>(const State<T>&, const State<T>&, int, Controls, double* const*);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe::sim
