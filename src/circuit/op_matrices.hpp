// The 2x2 matrices of a plan's ops (internal to circuit/ and grad/): a fused
// op's product of gate matrices, shared or one per sample, in double, and
// their storage as kernel arguments. The executor (executor.cpp) and the
// adjoint steps (grad/adjoint_ops.cpp) both build on these.
#pragma once

#include <cmath>
#include <vector>

#include "circuit/circuit.hpp"
#include "circuit/execute.hpp"
#include "circuit/plan.hpp"
#include "sim/state.hpp"

namespace qmoe::detail {

using M2 = Mat2Parts;

constexpr M2 kIdentity{{1, 0, 0, 1}, {0, 0, 0, 0}};

// a * b
inline M2 mul(const M2& a, const M2& b) {
  M2 c;
  for (int row = 0; row < 2; ++row)
    for (int col = 0; col < 2; ++col) {
      const int x = 2 * row, y = col;
      c.r[x + y] = a.r[x] * b.r[y] - a.i[x] * b.i[y] + a.r[x + 1] * b.r[y + 2] - a.i[x + 1] * b.i[y + 2];
      c.i[x + y] = a.r[x] * b.i[y] + a.i[x] * b.r[y] + a.r[x + 1] * b.i[y + 2] + a.i[x + 1] * b.r[y + 2];
    }
  return c;
}

inline M2 dag(const M2& a) {
  return {{a.r[0], a.r[2], a.r[1], a.r[3]}, {-a.i[0], -a.i[2], -a.i[1], -a.i[3]}};
}

// RX / RY / RZ from c = cos(a/2), s = sin(a/2).
inline M2 rotation(GateKind k, double c, double s) {
  switch (k) {
    case GateKind::RX: return {{c, 0, 0, c}, {0, -s, -s, 0}};
    case GateKind::RY: return {{c, -s, s, c}, {0, 0, 0, 0}};
    default: return {{c, 0, 0, c}, {-s, 0, 0, s}};  // RZ
  }
}

inline bool is_rotation(GateKind k) { return k == GateKind::RX || k == GateKind::RY || k == GateKind::RZ; }

// gate_matrix for one gate, with the common rotations written out (the same
// formulas as circuit.cpp, without std::complex).
inline M2 matrix_of(const Gate& g, const double* theta, const double* x) {
  const auto a = resolve_angles(g, theta, x);
  switch (g.kind) {
    case GateKind::RX:
    case GateKind::RY:
    case GateKind::RZ:
      return rotation(g.kind, std::cos(a[0] / 2), std::sin(a[0] / 2));
    default: {
      const Mat2 m = gate_matrix(g.kind, a.data(), g.matrix);
      M2 o;
      for (int k = 0; k < 4; ++k) o.r[k] = m[k].real(), o.i[k] = m[k].imag();
      return o;
    }
  }
}

// The fused matrix of op for sample features x (null if none).
inline M2 fused_matrix(const Circuit& c, const PlanOp& op, const double* theta, const double* x, bool inverse) {
  M2 m = matrix_of(c.gates[op.gates[0]], theta, x);
  for (std::size_t k = 1; k < op.gates.size(); ++k) m = mul(matrix_of(c.gates[op.gates[k]], theta, x), m);
  return inverse ? dag(m) : m;
}

// The matrices of gate g for samples b < B (features row b at x + b * x_stride):
// out[b]. Rotations by a feature angle take a vectorised sine and cosine.
void sample_matrices(const Gate& g, const double* theta, const double* x, int x_stride, int B, M2* out,
                     MatrixScratch& scratch);

// The fused matrix of a per-sample op for every sample b < B (inverse: its
// dagger), in scratch.fused (returned). Each run of shared gates is
// multiplied out once, so only the feature gates' matrices are per sample.
M2* fused_matrices(const Circuit& c, const PlanOp& op, const double* theta, const double* x, int x_stride,
                   int B, bool inverse, MatrixScratch& scratch);

// Scratch slot `slot` as the per-sample matrices of op (su2 as op says).
template <class T>
sim::BatchMat<T> op_matrices(GateScratch<T>& scratch, int slot, int batch, const PlanOp& op) {
  sim::BatchMat<T> m = scratch.mat(slot, batch);
  m.su2 = op.su2;
  return m;
}

// Write sample b's matrix m into scratch slot `slot`.
template <class T>
void store(GateScratch<T>& scratch, int batch, int b, const M2& m, int slot = 0) {
  T* base = scratch.data.data() + std::size_t(slot) * 8 * batch + b;
  for (int k = 0; k < 4; ++k) {
    base[std::size_t(k) * batch] = T(m.r[k]);
    base[std::size_t(4 + k) * batch] = T(m.i[k]);
  }
}

// m as a shared kernel matrix.
template <class T>
sim::Mat<T> kernel_matrix(const M2& m) {
  sim::Mat<T> k;
  for (int j = 0; j < 4; ++j) k.re[j] = T(m.r[j]), k.im[j] = T(m.i[j]);
  return k;
}

}  // namespace qmoe::detail
