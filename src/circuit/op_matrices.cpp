#include "circuit/op_matrices.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>

#include "sim/clones.hpp"

namespace qmoe::detail {
namespace {

// s[b] = sin(h[b]), c[b] = cos(h[b]) for |h| <= 1e5 in one vectorised loop:
// reduction by pi/2 in three parts (Cody-Waite) and the Cephes polynomials
// on [-pi/4, pi/4] (error ~1e-16, as libm's).
QMOE_CLONES void sincos_batch(const double* __restrict h, double* __restrict s,
                                     double* __restrict c, int n) {
  constexpr double kTwoOverPi = 0.63661977236758134308, kRound = 0x1.8p52;
  constexpr double kP1 = 1.57079625129699707031, kP2 = 7.54978941586159635336e-8,
                   kP3 = 5.39030285815811905290e-15;
#pragma omp simd
  for (int b = 0; b < n; ++b) {
    const double t = h[b] * kTwoOverPi + kRound;  // nearest integer j in the low mantissa bits
    const double j = t - kRound;
    const std::uint64_t q = std::bit_cast<std::uint64_t>(t);
    const double r = ((h[b] - j * kP1) - j * kP2) - j * kP3;
    const double z = r * r;
    const double sp = r + r * z * (((((1.58962301576546568060e-10 * z - 2.50507477628578072866e-8) * z +
                                      2.75573136213857245213e-6) * z - 1.98412698295895385996e-4) * z +
                                    8.33333333332211858878e-3) * z - 1.66666666666666307295e-1);
    const double cp = 1.0 - 0.5 * z + z * z * (((((-1.13585365213876817300e-11 * z + 2.08757008419747316778e-9) * z -
                                                   2.75573141792967388112e-7) * z + 2.48015872888517045348e-5) * z -
                                                 1.38888888888730564116e-3) * z + 4.16666666666665929218e-2);
    // quadrant j mod 4: (sin, cos) = (sp, cp), (cp, -sp), (-sp, -cp), (-cp, sp)
    const bool swap = q & 1;
    const double sv = swap ? cp : sp, cv = swap ? sp : cp;
    s[b] = (q & 2) ? -sv : sv;
    c[b] = ((q + 1) & 2) ? -cv : cv;
  }
}


}  // namespace

void sample_matrices(const Gate& g, const double* theta, const double* x, int x_stride, int B, M2* out,
                     MatrixScratch& scratch) {
  const Angle& a = g.angles[0];
  if (is_rotation(g.kind) && a.source == AngleSource::Feature) {
    std::vector<double>& buf = scratch.angles;
    buf.resize(std::size_t(3) * B);
    double *h = buf.data(), *s = h + B, *c = h + 2 * B;
    double big = 0;
    for (int b = 0; b < B; ++b) {
      h[b] = a.value * x[std::size_t(b) * x_stride + a.index] / 2;  // as resolve_angles, then / 2
      big = std::max(big, std::abs(h[b]));
    }
    if (big <= 1e5) {
      sincos_batch(h, s, c, B);
      for (int b = 0; b < B; ++b) out[b] = rotation(g.kind, c[b], s[b]);
      return;
    }
  }
  for (int b = 0; b < B; ++b) out[b] = matrix_of(g, theta, x + std::size_t(b) * x_stride);
}


M2* fused_matrices(const Circuit& c, const PlanOp& op, const double* theta, const double* x, int x_stride,
                   int B, bool inverse, MatrixScratch& scratch) {
  // The op's gates, each run of shared gates multiplied out.
  auto& f = scratch.factors;
  f.clear();
  for (int gi : op.gates) {
    const Gate& g = c.gates[std::size_t(gi)];
    if (is_per_sample(g))
      f.push_back({&g, kIdentity});
    else if (!f.empty() && !f.back().gate)
      f.back().m = mul(matrix_of(g, theta, nullptr), f.back().m);
    else
      f.push_back({nullptr, matrix_of(g, theta, nullptr)});
  }
  scratch.fused.resize(std::size_t(B));
  scratch.gates.resize(std::size_t(B));
  M2* out = scratch.fused.data();
  M2* g = scratch.gates.data();
  for (std::size_t k = 0; k < f.size(); ++k) {
    if (f[k].gate) sample_matrices(*f[k].gate, theta, x, x_stride, B, g, scratch);
    for (int b = 0; b < B; ++b) {
      const M2& m = f[k].gate ? g[b] : f[k].m;
      out[b] = k == 0 ? m : mul(m, out[b]);
    }
  }
  if (inverse)
    for (int b = 0; b < B; ++b) out[b] = dag(out[b]);
  return out;
}

}  // namespace qmoe::detail
