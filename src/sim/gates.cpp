// Gate kernels: apply_matrix, apply_matrix_pair, apply_x, apply_diagonal,
// apply_swap, the fused matrix-then-permutation passes and the noise
// trajectories' per-sample Pauli errors (contracts: state.hpp). Each kernel is
// a core (its per-slot arithmetic) run in one of the frames of pair_loop.hpp.
#include <type_traits>
#include <utility>

#include "sim/coefficients.hpp"
#include "sim/pair_loop.hpp"
#include "sim/state.hpp"

namespace qmoe::sim {
namespace {

using namespace detail;

// ---- the cores ---------------------------------------------------------------

// (a0, a1) <- M (a0, a1): a general 2x2, shared or per sample.
template <class T, class M>
auto matrix_core(const M& m) {
  return [m](std::size_t b, T& a0r, T& a0i, T& a1r, T& a1i) [[gnu::always_inline]] {
    mul2<T>(m, b, a0r, a0i, a1r, a1i);
  };
}

// ma on the group's a-pairs and mb on its b-pairs: two gates, one pass.
template <class T, class MA, class MB>
auto matrix_pair_core(const MA& ma, const MB& mb) {
  return [ma, mb](std::size_t b, T& x00r, T& x00i, T& x01r, T& x01i, T& x10r, T& x10i, T& x11r,
                  T& x11i) [[gnu::always_inline]] {
    mul_pair<T>(ma, mb, b, x00r, x00i, x01r, x01i, x10r, x10i, x11r, x11i);
  };
}

// a0 *= d0, a1 *= d1: a diagonal matrix, half the arithmetic.
template <class T, class D>
auto diagonal_core(const D& d) {
  return [d](std::size_t b, T& a0r, T& a0i, T& a1r, T& a1i) [[gnu::always_inline]] {
    const T x0r = a0r, x0i = a0i, x1r = a1r, x1i = a1i;
    a0r = d.re(0, b) * x0r - d.im(0, b) * x0i;
    a0i = d.re(0, b) * x0i + d.im(0, b) * x0r;
    a1r = d.re(1, b) * x1r - d.im(1, b) * x1i;
    a1i = d.re(1, b) * x1i + d.im(1, b) * x1r;
  };
}

// X: exchange the two slots, no arithmetic.
template <class T>
auto swap_core() {
  return [](std::size_t, T& a0r, T& a0i, T& a1r, T& a1i) [[gnu::always_inline]] {
    const T xr = a0r, xi = a0i;
    a0r = a1r, a0i = a1i;
    a1r = xr, a1i = xi;
  };
}

template <class T, class Core>
void in_place(State<T>& s, const PairSpace& p, const Core& core) {
  run_pairs(Pairs<T, Core>{s.re.data(), s.im.data(), core}, p);
}

// Pairs of (a, b) with the same layout as a gate on a controlled by b (any
// value) and by c: index0 clears both bits and c's, tbit is a's.
inline PairSpace make_quads(int n, std::size_t batch, int a, int b, Controls c) {
  check_qubit(n, b, "gate pair");
  if (a == b) throw std::invalid_argument("gate pair: both on the same qubit");
  if ((c.mask >> b) & 1) throw std::invalid_argument("gate pair: target is also a control");
  return make_pairs(n, batch, a, Controls{c.mask | u64(1) << b, c.value}, false);
}

// With keep: out of place (no permutation) into keep's storage, then swapped;
// a controlled pair writes only its subspace, so it copies the state into keep
// and runs in place instead.
template <class T, class MA, class MB>
void matrix_pair(State<T>& s, int a, const MA& ma, int b, const MB& mb, Controls c, State<T>* keep) {
  const PairSpace p = make_quads(s.n_qubits, std::size_t(s.batch), a, b, c);
  const auto core = matrix_pair_core<T>(ma, mb);
  using Core = std::decay_t<decltype(core)>;
  if (keep && c.mask != 0) *keep = s;
  if (!keep || c.mask != 0) {
    run_pairs(Quads<T, Core>{s.re.data(), s.im.data(), u64(1) << b, core}, p);
    return;
  }
  shape_like(s, *keep);
  run_pairs(QuadsOut<T, Core>{s.re.data(), s.im.data(), keep->re.data(), keep->im.data(), u64(1) << b,
                              {nullptr, false}, core},
            p);
  std::swap(s.re, keep->re);
  std::swap(s.im, keep->im);
}

template <class T, class M>
void matrix_permute(State<T>& s, int target, const M& m, const std::uint32_t* perm, bool inverse,
                    State<T>& buffer) {
  const PairSpace p = make_pairs(s.n_qubits, std::size_t(s.batch), target, Controls{}, false);
  shape_like(s, buffer);
  const auto core = matrix_core<T>(m);
  run_pairs(PairsOut<T, std::decay_t<decltype(core)>>{s.re.data(), s.im.data(), buffer.re.data(),
                                                       buffer.im.data(), {perm, inverse}, core},
            p);
  std::swap(s.re, buffer.re);
  std::swap(s.im, buffer.im);
}

}  // namespace

template <class T>
void apply_matrix(State<T>& s, int target, Controls c, const Mat<T>& m) {
  const PairSpace p = make_pairs(s.n_qubits, std::size_t(s.batch), target, c, true);
  with_accessor(m, [&](const auto& a) { in_place(s, p, matrix_core<T>(a)); });
}

template <class T>
void apply_matrix(State<T>& s, int target, Controls c, const BatchMat<T>& m) {
  const PairSpace p = make_pairs(s.n_qubits, std::size_t(s.batch), target, c, false);
  with_accessor(m, [&](const auto& a) { in_place(s, p, matrix_core<T>(a)); });
}

template <class T>
void apply_matrix_pair(State<T>& s, int a, const Mat<T>& ma, int b, const Mat<T>& mb, Controls c,
                       State<T>* keep) {
  if (is_real(ma) && is_real(mb))
    matrix_pair(s, a, shared_real(ma), b, shared_real(mb), c, keep);
  else
    matrix_pair(s, a, shared(ma), b, shared(mb), c, keep);
}

template <class T>
void apply_matrix_pair(State<T>& s, int a, const BatchMat<T>& ma, int b, const Mat<T>& mb,
                       Controls c, State<T>* keep) {
  with_accessor(ma, [&](const auto& pa) {
    with_accessor(mb, [&](const auto& pb) { matrix_pair(s, a, pa, b, pb, c, keep); });
  });
}

template <class T>
void apply_matrix_pair(State<T>& s, int a, const BatchMat<T>& ma, int b, const BatchMat<T>& mb,
                       Controls c, State<T>* keep) {
  if (ma.su2 && mb.su2)  // the rotation layers' common case; mixed pairs take the general kernel
    matrix_pair(s, a, per_sample_su2(ma), b, per_sample_su2(mb), c, keep);
  else
    matrix_pair(s, a, per_sample(ma), b, per_sample(mb), c, keep);
}

template <class T>
void apply_x(State<T>& s, int target, Controls c) {
  in_place(s, make_pairs(s.n_qubits, std::size_t(s.batch), target, c, true), swap_core<T>());
}

template <class T>
void apply_diagonal(State<T>& s, int target, Controls c, const Diag<T>& d) {
  const PairSpace p = make_pairs(s.n_qubits, std::size_t(s.batch), target, c, true);
  in_place(s, p, diagonal_core<T>(SharedD<T>{{d.re[0], d.re[1]}, {d.im[0], d.im[1]}}));
}

template <class T>
void apply_diagonal(State<T>& s, int target, Controls c, const BatchDiag<T>& d) {
  const PairSpace p = make_pairs(s.n_qubits, std::size_t(s.batch), target, c, false);
  in_place(s, p, diagonal_core<T>(PerSampleD<T>{{d.re[0], d.re[1]}, {d.im[0], d.im[1]}}));
}

template <class T>
void apply_swap(State<T>& s, int q0, int q1, Controls c) {
  // SWAP = CX(q1->q0) CX(q0->q1) CX(q1->q0); the gate's own controls join each.
  check_qubit(s.n_qubits, q0, "swap");
  check_qubit(s.n_qubits, q1, "swap");
  if (q0 == q1) throw std::invalid_argument("swap: both targets are the same qubit");
  const Controls c0{c.mask | (u64(1) << q1), c.value | (u64(1) << q1)};
  const Controls c1{c.mask | (u64(1) << q0), c.value | (u64(1) << q0)};
  apply_x(s, q0, c0);
  apply_x(s, q1, c1);
  apply_x(s, q0, c0);
}

template <class T>
void apply_matrix_permute(State<T>& s, int target, const Mat<T>& m, const std::uint32_t* perm,
                          bool inverse, State<T>& buffer) {
  matrix_permute(s, target, shared(m), perm, inverse, buffer);
}

template <class T>
void apply_matrix_permute(State<T>& s, int target, const BatchMat<T>& m, const std::uint32_t* perm,
                          bool inverse, State<T>& buffer) {
  with_accessor(m, [&](const auto& a) { matrix_permute(s, target, a, perm, inverse, buffer); });
}

template <class T>
void apply_matrix_pair_permute(State<T>& s, int a, const BatchMat<T>& ma, int b, const BatchMat<T>& mb,
                               const std::uint32_t* perm, bool inverse, State<T>& buffer) {
  const PairSpace p = make_quads(s.n_qubits, std::size_t(s.batch), a, b, Controls{});
  shape_like(s, buffer);
  auto run = [&](const auto& pa, const auto& pb) {
    const auto core = matrix_pair_core<T>(pa, pb);
    run_pairs(QuadsOut<T, std::decay_t<decltype(core)>>{s.re.data(), s.im.data(), buffer.re.data(),
                                                         buffer.im.data(), u64(1) << b, {perm, inverse}, core},
              p);
  };
  if (ma.su2 && mb.su2)
    run(per_sample_su2(ma), per_sample_su2(mb));
  else
    run(per_sample(ma), per_sample(mb));
  std::swap(s.re, buffer.re);
  std::swap(s.im, buffer.im);
}

template <class T>
void apply_pauli_per_sample(State<T>& s, int target, const std::uint8_t* pauli) {
  // A noise channel's sampled errors: few samples are hit, so the loop runs
  // over the hit samples only (each a strided column of the state).
  check_qubit(s.n_qubits, target, "pauli error");
  const std::size_t B = std::size_t(s.batch), bit = std::size_t(1) << target;
  std::vector<std::size_t> hit;
  for (std::size_t b = 0; b < B; ++b) {
    if (pauli[b] > 3) throw std::invalid_argument("pauli error: code must be 0..3 (I X Y Z)");
    if (pauli[b]) hit.push_back(b);
  }
  if (hit.empty()) return;
  T* re = s.re.data();
  T* im = s.im.data();
  for (std::size_t i0 = 0; i0 < s.dim(); ++i0) {
    if (i0 & bit) continue;
    const std::size_t i1 = i0 | bit;
    for (std::size_t b : hit) {
      T& r0 = re[i0 * B + b];
      T& m0 = im[i0 * B + b];
      T& r1 = re[i1 * B + b];
      T& m1 = im[i1 * B + b];
      switch (pauli[b]) {
        case 1: std::swap(r0, r1), std::swap(m0, m1); break;  // X
        case 2: {                                             // Y: (a0, a1) -> (-i a1, i a0)
          const T a0r = r0, a0i = m0;
          r0 = m1, m0 = -r1;
          r1 = -a0i, m1 = a0r;
          break;
        }
        default: r1 = -r1, m1 = -m1; break;  // Z
      }
    }
  }
}

#define QMOE_INSTANTIATE(T)                                                                            \
  template void apply_matrix<T>(State<T>&, int, Controls, const Mat<T>&);                              \
  template void apply_matrix<T>(State<T>&, int, Controls, const BatchMat<T>&);                         \
  template void apply_matrix_pair<T>(State<T>&, int, const Mat<T>&, int, const Mat<T>&, Controls,      \
                                     State<T>*);                                                       \
  template void apply_matrix_pair<T>(State<T>&, int, const BatchMat<T>&, int, const Mat<T>&, Controls, \
                                     State<T>*);                                                       \
  template void apply_matrix_pair<T>(State<T>&, int, const BatchMat<T>&, int, const BatchMat<T>&,      \
                                     Controls, State<T>*);                                             \
  template void apply_swap<T>(State<T>&, int, int, Controls);                                          \
  template void apply_x<T>(State<T>&, int, Controls);                                                  \
  template void apply_diagonal<T>(State<T>&, int, Controls, const Diag<T>&);                           \
  template void apply_diagonal<T>(State<T>&, int, Controls, const BatchDiag<T>&);                      \
  template void apply_matrix_permute<T>(State<T>&, int, const Mat<T>&, const std::uint32_t*, bool,     \
                                        State<T>&);                                                    \
  template void apply_matrix_permute<T>(State<T>&, int, const BatchMat<T>&, const std::uint32_t*,      \
                                        bool, State<T>&);                                              \
  template void apply_matrix_pair_permute<T>(State<T>&, int, const BatchMat<T>&, int,                  \
                                             const BatchMat<T>&, const std::uint32_t*, bool, State<T>&); \
  template void apply_pauli_per_sample<T>(State<T>&, int, const std::uint8_t*);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe::sim
