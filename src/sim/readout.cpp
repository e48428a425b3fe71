// Read-out of a batched state: expectations of Z and of Pauli strings, the
// adjoint method's starting state (an observable applied to psi),
// probabilities and norms (contracts in state.hpp).
#include <algorithm>
#include <bit>
#include <vector>

#include "sim/clones.hpp"
#include "sim/pair_loop.hpp"
#include "sim/state.hpp"

namespace qmoe::sim {

using detail::check_qubit;

template <class T>
QMOE_CLONES void expval_z_all(const State<T>& s, double* out) {
  // Split i = (hi, lo) with lo the low L bits: lo_sum[lo] sums |psi|^2 over hi
  // and hi_sum[hi] over lo, in one pass with two adds per amplitude; then
  // P(bit q = 1) comes from the small table holding q.
  const int n = s.n_qubits, L = n / 2;
  const std::size_t B = std::size_t(s.batch), nlo = std::size_t(1) << L, nhi = std::size_t(1) << (n - L);
  std::vector<double> lo_sum(nlo * B, 0.0), hi_sum(nhi * B, 0.0);
  for (std::size_t hi = 0; hi < nhi; ++hi) {
    double* __restrict hs = hi_sum.data() + hi * B;
    for (std::size_t lo = 0; lo < nlo; ++lo) {
      const T* r = s.re.data() + ((hi << L) | lo) * B;
      const T* m = s.im.data() + ((hi << L) | lo) * B;
      double* __restrict ls = lo_sum.data() + lo * B;
#pragma omp simd
      for (std::size_t b = 0; b < B; ++b) {
        const double p = double(r[b]) * r[b] + double(m[b]) * m[b];
        ls[b] += p;
        hs[b] += p;
      }
    }
  }
  // <Z_q> = total - 2 P(bit q = 1).
  for (int q = 0; q < n; ++q) {
    const bool low = q < L;
    const std::vector<double>& sum = low ? lo_sum : hi_sum;
    const std::size_t count = low ? nlo : nhi, bit = std::size_t(1) << (low ? q : q - L);
    for (std::size_t b = 0; b < B; ++b) {
      double total = 0, one = 0;
      for (std::size_t k = 0; k < count; ++k) {
        total += sum[k * B + b];
        if (k & bit) one += sum[k * B + b];
      }
      out[b * n + q] = total - 2.0 * one;
    }
  }
}

template <class T>
void expval_pauli(const State<T>& s, std::uint64_t x_mask, std::uint64_t z_mask, double* out) {
  // P|i> = i^ny (-1)^popcount(i & z) |i ^ x>, so <P> = sum_i conj(psi[i^x]) phase(i) psi[i].
  const std::size_t B = std::size_t(s.batch);
  const int ny = std::popcount(x_mask & z_mask);
  std::vector<double> re(B, 0.0), im(B, 0.0);
  for (std::size_t i = 0; i < s.dim(); ++i) {
    const std::size_t j = i ^ x_mask;
    const double sign = (std::popcount(i & z_mask) & 1) ? -1.0 : 1.0;
    for (std::size_t b = 0; b < B; ++b) {
      const double ar = s.re[j * B + b], ai = s.im[j * B + b];
      const double cr = s.re[i * B + b], ci = s.im[i * B + b];
      re[b] += sign * (ar * cr + ai * ci);  // conj(a) * c
      im[b] += sign * (ar * ci - ai * cr);
    }
  }
  for (std::size_t b = 0; b < B; ++b) {
    // multiply by i^ny and keep the real part (the imaginary part is 0 for Hermitian P)
    switch (ny & 3) {
      case 0: out[b] = re[b]; break;
      case 1: out[b] = -im[b]; break;
      case 2: out[b] = -re[b]; break;
      default: out[b] = im[b]; break;
    }
  }
}

template <class T>
QMOE_CLONES void apply_weighted_z(const State<T>& psi, const double* weight, State<T>& lam) {
  const int n = psi.n_qubits, L = n / 2;
  const std::size_t B = std::size_t(psi.batch), nlo = std::size_t(1) << L, nhi = std::size_t(1) << (n - L);
  if (lam.n_qubits != n || lam.batch != psi.batch) lam = make_state<T>(n, psi.batch);
  // w_b(i) = w_lo[lo] + w_hi[hi] for i = (hi, lo): the low L and the high
  // qubits' parts of sum_q w_bq z_q(i), tabulated once.
  std::vector<T> w_lo(nlo * B), w_hi(nhi * B);
  for (int part = 0; part < 2; ++part) {
    const int q0 = part ? L : 0, q1 = part ? n : L;
    T* w = part ? w_hi.data() : w_lo.data();
    for (std::size_t k = 0; k < (part ? nhi : nlo); ++k)
      for (std::size_t b = 0; b < B; ++b) {
        double sum = 0;
        for (int q = q0; q < q1; ++q) sum += ((k >> (q - q0)) & 1 ? -1.0 : 1.0) * weight[b * n + q];
        w[k * B + b] = T(sum);
      }
  }
  for (std::size_t hi = 0; hi < nhi; ++hi) {
    const T* wh = w_hi.data() + hi * B;
    for (std::size_t lo = 0; lo < nlo; ++lo) {
      const std::size_t i = (hi << L) | lo;
      const T* wl = w_lo.data() + lo * B;
      const T* pr = psi.re.data() + i * B;
      const T* pi = psi.im.data() + i * B;
      T* __restrict lr = lam.re.data() + i * B;
      T* __restrict li = lam.im.data() + i * B;
#pragma omp simd
      for (std::size_t b = 0; b < B; ++b) {
        const T w = wl[b] + wh[b];
        lr[b] = w * pr[b], li[b] = w * pi[b];
      }
    }
  }
}

template <class T>
void add_weighted_pauli(const State<T>& psi, std::uint64_t x_mask, std::uint64_t z_mask,
                        const double* weight, State<T>& lam) {
  const std::size_t B = std::size_t(psi.batch);
  const int ny = std::popcount(x_mask & z_mask);
  // i^ny as (re, im)
  const double pr[4] = {1, 0, -1, 0}, pim[4] = {0, 1, 0, -1};
  const double fr = pr[ny & 3], fi = pim[ny & 3];
  for (std::size_t i = 0; i < psi.dim(); ++i) {
    const std::size_t j = i ^ x_mask;
    const double sign = (std::popcount(i & z_mask) & 1) ? -1.0 : 1.0;
    for (std::size_t b = 0; b < B; ++b) {
      const double w = sign * weight[b];
      const double ar = psi.re[i * B + b], ai = psi.im[i * B + b];
      lam.re[j * B + b] += T(w * (fr * ar - fi * ai));
      lam.im[j * B + b] += T(w * (fr * ai + fi * ar));
    }
  }
}

template <class T>
void probabilities(const State<T>& s, int b, double* out) {
  if (b < 0 || b >= s.batch) throw std::invalid_argument("probabilities: sample out of range");
  const std::size_t B = std::size_t(s.batch);
  for (std::size_t i = 0; i < s.dim(); ++i) {
    const double r = s.re[i * B + b], m = s.im[i * B + b];
    out[i] = r * r + m * m;
  }
}

template <class T>
void marginal_probabilities(const State<T>& s, const std::vector<int>& qubits, double* out) {
  for (int q : qubits) check_qubit(s.n_qubits, q, "marginal_probabilities");
  const std::size_t B = std::size_t(s.batch), k = qubits.size();
  std::fill(out, out + B * (std::size_t(1) << k), 0.0);
  for (std::size_t i = 0; i < s.dim(); ++i) {
    std::size_t o = 0;
    for (std::size_t j = 0; j < k; ++j) o |= ((i >> qubits[j]) & 1) << j;
    for (std::size_t b = 0; b < B; ++b) {
      const double r = s.re[i * B + b], m = s.im[i * B + b];
      out[(b << k) + o] += r * r + m * m;
    }
  }
}

template <class T>
void norms(const State<T>& s, double* out) {
  const std::size_t B = std::size_t(s.batch);
  std::fill(out, out + B, 0.0);
  for (std::size_t i = 0; i < s.dim(); ++i)
    for (std::size_t b = 0; b < B; ++b) {
      const double r = s.re[i * B + b], m = s.im[i * B + b];
      out[b] += r * r + m * m;
    }
}

#define QMOE_INSTANTIATE(T)                                                                         \
  template void expval_z_all<T>(const State<T>&, double*);                                          \
  template void expval_pauli<T>(const State<T>&, std::uint64_t, std::uint64_t, double*);            \
  template void apply_weighted_z<T>(const State<T>&, const double*, State<T>&);                     \
  template void add_weighted_pauli<T>(const State<T>&, std::uint64_t, std::uint64_t, const double*, \
                                      State<T>&);                                                   \
  template void probabilities<T>(const State<T>&, int, double*);                                    \
  template void marginal_probabilities<T>(const State<T>&, const std::vector<int>&, double*);       \
  template void norms<T>(const State<T>&, double*);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe::sim
