// The adjoint method's steps through plan ops (adjoint_ops.hpp).
#include "grad/adjoint_ops.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>

#include "circuit/op_matrices.hpp"

namespace qmoe {
namespace {

using namespace detail;
using u64 = std::uint64_t;

// Bloch vector n of A P A^dagger (= n . sigma) for the Pauli P of a rotation kind.
inline void conjugated_pauli(const M2& a, GateKind k, double* n) {
  static constexpr M2 kX{{0, 1, 1, 0}, {0, 0, 0, 0}}, kY{{0, 0, 0, 0}, {0, -1, 1, 0}},
      kZ{{1, 0, 0, -1}, {0, 0, 0, 0}};
  const M2& p = k == GateKind::RX ? kX : k == GateKind::RY ? kY : kZ;
  const M2 q = mul(mul(a, p), dag(a));
  n[0] = q.r[2], n[1] = q.i[2], n[2] = q.r[0];  // q = [[nz, nx - i ny], [nx + i ny, -nz]]
}

// For sample b < B (only b = 0 if op is shared): the Bloch vectors of op's
// differentiable gates, nv[(j * 3 + t) * nb + b] (nb = B or 1), and, if inv is
// given, the op's inverse inv[b].
void bloch_vectors(const Circuit& c, const PlanOp& op, const char* diff, const double* theta,
                   const double* x, int x_stride, int B, int nd, double* nv, M2* inv, MatrixScratch& scratch) {
  const int m = int(op.gates.size());
  const std::size_t nb = op.per_sample ? std::size_t(B) : 1;
  // The matrices of the gates after the first differentiable one (all, for
  // the inverse): g[k * nb + b] (shared gates once). A rotation last in its
  // run (the bench layers' RX) needs none.
  int from = 0;
  if (!inv)
    while (from < m && !diff[op.gates[std::size_t(from)]]) ++from;
  std::vector<M2>& g = scratch.gates;
  g.resize(std::size_t(m) * nb);
  for (int k = from + (inv ? 0 : 1); k < m; ++k) {
    const Gate& gate = c.gates[std::size_t(op.gates[std::size_t(k)])];
    M2* gk = g.data() + std::size_t(k) * nb;
    if (is_per_sample(gate))
      sample_matrices(gate, theta, x, x_stride, B, gk, scratch);
    else
      std::fill_n(gk, nb, matrix_of(gate, theta, nullptr));
  }
  // Per sample, walk the gates backwards: A = product of the gates after gate k.
  for (std::size_t b = 0; b < nb; ++b) {
    M2 a = kIdentity;
    int j = nd;
    for (int k = m - 1; k >= 0; --k) {
      const int gi = op.gates[std::size_t(k)];
      if (diff[gi]) {
        double n[3];
        conjugated_pauli(a, c.gates[std::size_t(gi)].kind, n);
        --j;
        for (int t = 0; t < 3; ++t) nv[std::size_t(j * 3 + t) * nb + b] = n[t];
      }
      if (k > from || inv) a = mul(a, g[std::size_t(k) * nb + b]);
    }
    if (inv) inv[b] = dag(a);
  }
}

// Sets ov[t] to null for the Pauli axes t that no Bloch vector n_j has (for
// any sample), so the kernels skip them: a rotation last in its run, or RYs
// only, needs one of the three overlaps.
void drop_unused_axes(int nd, std::size_t nb, const double* nv, double** ov) {
  for (int t = 0; t < 3; ++t) {
    bool used = false;
    for (int j = 0; j < nd && !used; ++j)
      for (std::size_t b = 0; b < nb && !used; ++b) used = nv[std::size_t(j * 3 + t) * nb + b] != 0.0;
    if (!used) ov[t] = nullptr;
  }
}

// grad[j * B + b] = n_j . overlap of sample b (axes dropped above count as 0).
void combine(int nd, int B, bool per_sample, const double* nv, const double* const* ov, double* grad) {
  const std::size_t nb = per_sample ? std::size_t(B) : 1;
  for (int j = 0; j < nd; ++j)
    for (int b = 0; b < B; ++b) {
      const std::size_t i = per_sample ? std::size_t(b) : 0;
      double g = 0;
      for (int t = 0; t < 3; ++t)
        if (ov[t]) g += nv[std::size_t(j * 3 + t) * nb + i] * ov[t][b];
      grad[std::size_t(j) * B + b] = g;
    }
}

int count_diff(const PlanOp& op, const char* diff) {
  int nd = 0;
  for (int gi : op.gates) nd += diff[gi] ? 1 : 0;
  return nd;
}

}  // namespace

template <class T>
void adjoint_op(sim::State<T>& phi, sim::State<T>& lam, const Circuit& c, const PlanOp& op,
                const char* diff, const double* theta, const double* x, int x_stride,
                GateScratch<T>& scratch, double* grad) {
  if (op.kind != PlanOp::Kind::Fused || !op.perm.empty())
    throw std::logic_error("adjoint_op: needs a fused op without a folded permutation");
  const int B = phi.batch, nd = count_diff(op, diff);
  const std::size_t nb = op.per_sample ? std::size_t(B) : 1;
  // work: overlaps ov[k][b] (3 x B), then Bloch vectors.
  auto& w = scratch.work;
  w.assign(std::size_t(3) * B + std::size_t(3 * nd) * nb, 0.0);
  double* ov[3] = {w.data(), w.data() + B, w.data() + 2 * B};
  double* nv = w.data() + std::size_t(3) * B;
  scratch.matrices.fused.resize(std::size_t(B));
  M2* inv = scratch.matrices.fused.data();
  bloch_vectors(c, op, diff, theta, x, x_stride, B, nd, nv, inv, scratch.matrices);
  drop_unused_axes(nd, nb, nv, ov);
  if (!op.per_sample) {
    sim::adjoint_step_overlaps(phi, lam, op.target, op.controls, kernel_matrix<T>(inv[0]), ov);
  } else {
    scratch.reserve(B);
    for (int b = 0; b < B; ++b) store(scratch, B, b, inv[b]);
    sim::adjoint_step_overlaps(phi, lam, op.target, op.controls, op_matrices(scratch, 0, B, op), ov);
  }
  combine(nd, B, op.per_sample, nv, ov, grad);
}

PauliConjugation affine_conjugation(const Circuit& c, const PlanOp& op) {
  PauliConjugation none;
  if (op.kind != PlanOp::Kind::Permutation) return none;
  const int n = c.n_qubits;
  // f(i) = A i ^ k, A by its columns col[q] = A e_q; each gate g maps y to g(y).
  std::vector<u64> col(static_cast<std::size_t>(n));
  for (int q = 0; q < n; ++q) col[std::size_t(q)] = u64(1) << q;
  u64 k = 0;
  for (int gi : op.gates) {
    const Gate& g = c.gates[std::size_t(gi)];
    if (g.controls.size() > 1) return none;  // a Toffoli is not affine
    const u64 t = u64(1) << g.target;
    if (g.kind == GateKind::Swap) {
      if (!g.controls.empty()) return none;
      const u64 t2 = u64(1) << g.target2;
      auto swap_bits = [&](u64 y) { return ((y & t) != 0) == ((y & t2) != 0) ? y : y ^ t ^ t2; };
      for (u64& v : col) v = swap_bits(v);
      k = swap_bits(k);
    } else if (g.kind == GateKind::X && g.controls.empty()) {
      k ^= t;
    } else if (g.kind == GateKind::X) {  // y ^= (bit ctl of y, or its negation) at t
      const Control& ctl = g.controls[0];
      const u64 cb = u64(1) << ctl.qubit;
      for (u64& v : col)
        if (v & cb) v ^= t;
      if (((k & cb) != 0) == ctl.on_one) k ^= t;
    } else {
      return none;
    }
  }
  // A^-1 by Gauss-Jordan elimination over GF(2) on the rows of [A | I].
  std::vector<u64> row(static_cast<std::size_t>(n), 0), inv(static_cast<std::size_t>(n), 0);
  for (int r = 0; r < n; ++r) {
    for (int q = 0; q < n; ++q)
      if ((col[std::size_t(q)] >> r) & 1) row[std::size_t(r)] |= u64(1) << q;
    inv[std::size_t(r)] = u64(1) << r;
  }
  for (int q = 0; q < n; ++q) {
    int p = q;
    while (p < n && !((row[std::size_t(p)] >> q) & 1)) ++p;
    if (p == n) return none;  // not invertible: cannot happen for gates
    std::swap(row[std::size_t(p)], row[std::size_t(q)]);
    std::swap(inv[std::size_t(p)], inv[std::size_t(q)]);
    for (int r = 0; r < n; ++r)
      if (r != q && ((row[std::size_t(r)] >> q) & 1))
        row[std::size_t(r)] ^= row[std::size_t(q)], inv[std::size_t(r)] ^= inv[std::size_t(q)];
  }
  // P X_q P^dagger |i> = |f(f^-1(i) ^ e_q)> = |i ^ A e_q>; P Z_q P^dagger |i> =
  // (-1)^(bit q of f^-1(i)) |i>, with f^-1(i) = A^-1 i ^ A^-1 k: the string of
  // row q of A^-1, negated when bit q of A^-1 k is set.
  PauliConjugation p;
  for (int q = 0; q < n; ++q) {
    const u64 w = inv[std::size_t(q)];
    p.x.push_back({col[std::size_t(q)], 0, 0});
    p.z.push_back({0, w, (std::popcount(w & k) & 1) ? 2 : 0});
  }
  return p;
}

sim::PauliMask conjugated_y(const PauliConjugation& p, int q) {
  const sim::PauliMask& a = p.x[std::size_t(q)];
  const sim::PauliMask& b = p.z[std::size_t(q)];
  return {a.x, b.z, (1 + b.phase) % 4};  // i X^a (+-Z^w)
}

template <class T>
void layer_gradients(const sim::State<T>& phi, const sim::State<T>& lam, const Circuit& c,
                     const PlanOp* ops, std::size_t count, const char* diff, const double* theta,
                     const double* x, int x_stride, GateScratch<T>& scratch, double* grad,
                     const PauliConjugation* through) {
  const int B = phi.batch;
  // work: per op with gradients, its overlaps (3 x B), then its Bloch vectors (3 nd x nb).
  std::size_t size = 0;
  for (std::size_t k = 0; k < count; ++k) {
    const PlanOp& op = ops[k];
    if (op.kind != PlanOp::Kind::Fused || !op.perm.empty())
      throw std::logic_error("layer_gradients: needs fused ops");
    if (op.controls.mask != ops[0].controls.mask || op.controls.value != ops[0].controls.value)
      throw std::logic_error("layer_gradients: a layer's ops share their controls");
    const std::size_t nd = std::size_t(count_diff(op, diff)), nb = op.per_sample ? std::size_t(B) : 1;
    if (nd > 0) size += 3 * std::size_t(B) + 3 * nd * nb;
  }
  auto& w = scratch.work;
  w.assign(size, 0.0);
  std::vector<int> targets;
  std::vector<double*> ov;  // 3 per target, null for an axis no gradient needs
  double* at = w.data();
  for (std::size_t k = 0; k < count; ++k) {
    const PlanOp& op = ops[k];
    const int nd = count_diff(op, diff);
    if (nd == 0) continue;
    const std::size_t nb = op.per_sample ? std::size_t(B) : 1;
    double* o[3] = {at, at + B, at + 2 * B};
    bloch_vectors(c, op, diff, theta, x, x_stride, B, nd, at + 3 * B, nullptr, scratch.matrices);
    drop_unused_axes(nd, nb, at + 3 * B, o);
    targets.push_back(op.target);
    ov.insert(ov.end(), o, o + 3);
    at += 3 * std::size_t(B) + 3 * std::size_t(nd) * nb;
  }
  // All the layer's overlaps in shared sweeps (the ops sit on different targets).
  if (!through) {
    sim::layer_overlaps(phi, lam, targets.data(), int(targets.size()), ops[0].controls, ov.data());
  } else {
    if (ops[0].controls.mask != 0) throw std::logic_error("layer_gradients: a layer under controls");
    std::vector<sim::PauliMask> str;
    std::vector<double*> to;
    for (int axis = 0; axis < 3; ++axis)  // by axis: strings of one kind share sweeps
      for (std::size_t t = 0; t < targets.size(); ++t) {
        double* o = ov[3 * t + std::size_t(axis)];
        if (!o) continue;
        const int q = targets[t];
        str.push_back(axis == 0 ? through->x[std::size_t(q)] : axis == 1 ? conjugated_y(*through, q) : through->z[std::size_t(q)]);
        to.push_back(o);
      }
    sim::string_overlaps(phi, lam, str.data(), int(str.size()), ops[0].controls, to.data());
  }
  at = w.data();
  std::size_t t = 0;
  for (std::size_t k = 0; k < count; ++k) {
    const PlanOp& op = ops[k];
    const int nd = count_diff(op, diff);
    if (nd == 0) continue;
    const std::size_t nb = op.per_sample ? std::size_t(B) : 1;
    combine(nd, B, op.per_sample, at + 3 * B, ov.data() + 3 * t++, grad);
    grad += std::size_t(nd) * B;
    at += 3 * std::size_t(B) + 3 * std::size_t(nd) * nb;
  }
}

#define QMOE_INSTANTIATE(T)                                                                     \
  template void adjoint_op<T>(sim::State<T>&, sim::State<T>&, const Circuit&, const PlanOp&,    \
                              const char*, const double*, const double*, int, GateScratch<T>&,  \
                              double*);                                                         \
  template void layer_gradients<T>(const sim::State<T>&, const sim::State<T>&, const Circuit&,  \
                                   const PlanOp*, std::size_t, const char*, const double*,      \
                                   const double*, int, GateScratch<T>&, double*,                \
                                   const PauliConjugation*);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe
