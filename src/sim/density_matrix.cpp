#include "sim/density_matrix.hpp"

#include <bit>
#include <cmath>
#include <stdexcept>

namespace qmoe::sim {

using cd = std::complex<double>;

State<double> make_density(int n_qubits, int batch) {
  if (n_qubits < 1 || n_qubits > 14) throw std::invalid_argument("density matrix: 1..14 qubits");
  return make_state<double>(2 * n_qubits, batch);
}

void apply_channel(State<double>& rho, int q, const Kraus& kraus) {
  const int n = rho.n_qubits / 2;
  if (q < 0 || q >= n) throw std::invalid_argument("apply_channel: qubit out of range");
  // S[(a,b)][(c,d)] = sum_k K[a][c] conj(K[b][d]): row bit a, column bit b.
  cd S[4][4] = {};
  for (const auto& K : kraus)
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b)
        for (int c = 0; c < 2; ++c)
          for (int d = 0; d < 2; ++d) S[a * 2 + b][c * 2 + d] += K[std::size_t(a * 2 + c)] * std::conj(K[std::size_t(b * 2 + d)]);
  const std::size_t B = std::size_t(rho.batch), rbit = std::size_t(1) << q, cbit = std::size_t(1) << (q + n);
  const std::size_t off[4] = {0, cbit, rbit, rbit | cbit};  // (a, b) = 00, 01, 10, 11
  for (std::size_t i = 0; i < rho.dim(); ++i) {
    if (i & (rbit | cbit)) continue;
    for (std::size_t b = 0; b < B; ++b) {
      cd v[4], w[4];
      for (int k = 0; k < 4; ++k) v[k] = cd(rho.re[(i | off[k]) * B + b], rho.im[(i | off[k]) * B + b]);
      for (int r = 0; r < 4; ++r) {
        w[r] = 0;
        for (int k = 0; k < 4; ++k) w[r] += S[r][k] * v[k];
      }
      for (int k = 0; k < 4; ++k) rho.re[(i | off[k]) * B + b] = w[k].real(), rho.im[(i | off[k]) * B + b] = w[k].imag();
    }
  }
}

void density_expval_pauli(const State<double>& rho, std::uint64_t x, std::uint64_t z, double* out) {
  const int n = rho.n_qubits / 2;
  const std::size_t B = std::size_t(rho.batch), dim = std::size_t(1) << n;
  // P = i^{|x&z|} X^x Z^z, (X^x Z^z)|j> = (-1)^{|j&z|} |j^x>, so
  // Tr(P rho) = sum_j i^{|x&z|} (-1)^{|j&z|} rho[j][j^x].
  const int ys = std::popcount(x & z) & 3;
  const cd phase = ys == 0 ? cd(1) : ys == 1 ? cd(0, 1) : ys == 2 ? cd(-1) : cd(0, -1);
  for (std::size_t b = 0; b < B; ++b) {
    cd s = 0;
    for (std::size_t j = 0; j < dim; ++j) {
      const std::size_t idx = j + ((j ^ x) << n);
      const double sg = (std::popcount(j & z) & 1) ? -1.0 : 1.0;
      s += sg * cd(rho.re[idx * B + b], rho.im[idx * B + b]);
    }
    out[b] = (phase * s).real();
  }
}

void density_trace(const State<double>& rho, double* out) { density_expval_pauli(rho, 0, 0, out); }

Kraus depolarizing_kraus(double p) {
  const double a = std::sqrt(1 - p), b = std::sqrt(p / 3);
  return {{a, 0, 0, a}, {0, b, b, 0}, {0, cd(0, -b), cd(0, b), 0}, {b, 0, 0, -b}};
}

Kraus amplitude_damping_kraus(double g) { return {{1, 0, 0, std::sqrt(1 - g)}, {0, std::sqrt(g), 0, 0}}; }

Kraus phase_damping_kraus(double l) { return {{1, 0, 0, std::sqrt(1 - l)}, {0, 0, 0, std::sqrt(l)}}; }

}  // namespace qmoe::sim
