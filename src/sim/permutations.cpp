// Basis permutations (a CNOT ring in one pass) and product states, written
// straight into their permuted places (contracts in state.hpp).
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "sim/clones.hpp"
#include "sim/pair_loop.hpp"
#include "sim/state.hpp"

namespace qmoe::sim {

using detail::shape_like;

template <class T>
QMOE_CLONES void apply_permutation(State<T>& s, const std::uint32_t* perm, bool inverse, State<T>& buffer) {
  const std::size_t B = std::size_t(s.batch), dim = s.dim();
  shape_like(s, buffer);
  const T* __restrict ir = s.re.data();
  const T* __restrict ii = s.im.data();
  T* __restrict orr = buffer.re.data();
  T* __restrict oi = buffer.im.data();
  for (std::size_t i = 0; i < dim; ++i) {
    const std::size_t from = (inverse ? perm[i] : i) * B, to = (inverse ? i : perm[i]) * B;
#pragma omp simd
    for (std::size_t b = 0; b < B; ++b) orr[to + b] = ir[from + b], oi[to + b] = ii[from + b];
  }
  std::swap(s.re, buffer.re);
  std::swap(s.im, buffer.im);
}

std::vector<std::uint32_t> permutation_cycles(const std::uint32_t* perm, std::size_t dim) {
  std::vector<std::uint32_t> cycles;
  std::vector<char> seen(dim, 0);
  for (std::size_t i = 0; i < dim; ++i) {
    if (seen[i] || perm[i] == i) continue;
    for (std::uint32_t j = std::uint32_t(i);; j = perm[j]) {
      if (j >= dim) throw std::invalid_argument("permutation_cycles: index out of range");
      if (seen[j]) break;
      seen[j] = 1;
      cycles.push_back(j);
    }
  }
  return cycles;
}

// In place, one cycle at a time: each moved row is read once and written once,
// with one row of the cycle held aside (in buffer). (The row copies stay inline
// loops: see CMakeLists.txt.)
template <class T>
QMOE_CLONES void apply_permutation(State<T>& s, const std::uint32_t* perm, const std::uint32_t* moved,
                                   std::size_t n_moved, bool inverse, State<T>& buffer) {
  const std::size_t B = std::size_t(s.batch);
  if (buffer.re.size() < B) {  // (never shrink it: other kernels use it as a whole state)
    buffer.re.resize(B);
    buffer.im.resize(B);
  }
  T* __restrict sr = s.re.data();
  T* __restrict si = s.im.data();
  T* __restrict tr = buffer.re.data();
  T* __restrict ti = buffer.im.data();
  auto copy = [&](T* __restrict dr, T* __restrict di, const T* __restrict fr, const T* __restrict fi) {
#pragma omp simd
    for (std::size_t b = 0; b < B; ++b) dr[b] = fr[b], di[b] = fi[b];
  };
  auto row_re = [&](std::size_t k) { return sr + std::size_t(moved[k]) * B; };
  auto row_im = [&](std::size_t k) { return si + std::size_t(moved[k]) * B; };
  for (std::size_t first = 0; first < n_moved;) {
    std::size_t last = first;  // the cycle is moved[first..last]: perm takes each to the next
    while (perm[moved[last]] != moved[first]) {
      if (last + 1 >= n_moved || perm[moved[last]] != moved[last + 1])
        throw std::invalid_argument("apply_permutation: moved is not in cycle order");
      ++last;
    }
    if (!inverse) {  // new[perm[i]] = old[i]: each row to the next slot of its cycle
      copy(tr, ti, row_re(last), row_im(last));
      for (std::size_t k = last; k > first; --k) copy(row_re(k), row_im(k), row_re(k - 1), row_im(k - 1));
      copy(row_re(first), row_im(first), tr, ti);
    } else {  // new[i] = old[perm[i]]
      copy(tr, ti, row_re(first), row_im(first));
      for (std::size_t k = first; k < last; ++k) copy(row_re(k), row_im(k), row_re(k + 1), row_im(k + 1));
      copy(row_re(last), row_im(last), tr, ti);
    }
    first = last + 1;
  }
}

// The product state over qubits 0..n-1 in two steps: the factors of the low
// L = n/2 qubits into a table lo (2^L amplitudes) and those of the others into
// hi (2^(n-L)), each by doubling (in the caller's scratch: they stay in cache
// from chunk to chunk); then amplitude i = lo[i mod 2^L] * hi[i / 2^L], written once into
// the state in destination order (out + perm[i]; perm null: to i). One complex
// product and one store per amplitude; the tables cost about 2^(n/2 + 1).
template <class T>
QMOE_CLONES void product_state(State<T>& s, const T* amp, const std::uint32_t* perm, T* out_re,
                               T* out_im, ProductScratch<T>& scratch) {
  const std::size_t B = std::size_t(s.batch);
  const int n = s.n_qubits, L = n / 2;
  const std::size_t nlo = std::size_t(1) << L, nhi = std::size_t(1) << (n - L);
  std::vector<T>& tables = scratch.tables;
  tables.resize(2 * (nlo + nhi) * B);
  T* __restrict lo_re = tables.data();
  T* __restrict lo_im = lo_re + nlo * B;
  T* __restrict hi_re = lo_im + nlo * B;
  T* __restrict hi_im = hi_re + nhi * B;
  auto factor = [&](int q, int k) { return amp + std::size_t(q * 4 + k) * B; };
  // table over qubits q0 .. q0+m-1, doubling in place: sources i < 2^j, targets i and i + 2^j
  auto build = [&](T* __restrict re, T* __restrict im, int q0, int m) {
    std::fill_n(re, B, T(1));
    std::fill_n(im, B, T(0));
    for (int j = 0; j < m; ++j) {
      const std::size_t h = std::size_t(1) << j;
      const T *a0r = factor(q0 + j, 0), *a0i = factor(q0 + j, 1), *a1r = factor(q0 + j, 2), *a1i = factor(q0 + j, 3);
      for (std::size_t i = 0; i < h; ++i) {
        T* x0r = re + i * B;
        T* x0i = im + i * B;
        T* x1r = re + (i + h) * B;
        T* x1i = im + (i + h) * B;
#pragma omp simd
        for (std::size_t b = 0; b < B; ++b) {
          const T xr = x0r[b], xi = x0i[b];
          x1r[b] = a1r[b] * xr - a1i[b] * xi;
          x1i[b] = a1r[b] * xi + a1i[b] * xr;
          x0r[b] = a0r[b] * xr - a0i[b] * xi;
          x0i[b] = a0r[b] * xi + a0i[b] * xr;
        }
      }
    }
  };
  build(lo_re, lo_im, 0, L);
  build(hi_re, hi_im, L, n - L);
  // Destination d holds basis state source[d] (perm[i] = d).
  std::vector<std::uint32_t>& source = scratch.source;
  if (perm) {
    source.resize(nlo * nhi);
    for (std::size_t i = 0; i < nlo * nhi; ++i) source[perm[i]] = std::uint32_t(i);
  }
  for (std::size_t d = 0; d < nlo * nhi; ++d) {
    const std::size_t i = perm ? source[d] : d;
    const T* __restrict ar = lo_re + (i & (nlo - 1)) * B;
    const T* __restrict ai = lo_im + (i & (nlo - 1)) * B;
    const T* __restrict br = hi_re + (i >> L) * B;
    const T* __restrict bi = hi_im + (i >> L) * B;
    T* __restrict r = out_re + d * B;
    T* __restrict q = out_im + d * B;
#pragma omp simd
    for (std::size_t b = 0; b < B; ++b) {
      r[b] = ar[b] * br[b] - ai[b] * bi[b];
      q[b] = ar[b] * bi[b] + ai[b] * br[b];
    }
  }
}

template <class T>
void set_product_state(State<T>& s, const T* amp, ProductScratch<T>& scratch) {
  product_state(s, amp, nullptr, s.re.data(), s.im.data(), scratch);
}

template <class T>
void set_product_state_permuted(State<T>& s, const T* amp, const std::uint32_t* perm, State<T>& buffer,
                                ProductScratch<T>& scratch) {
  shape_like(s, buffer);
  product_state(s, amp, perm, buffer.re.data(), buffer.im.data(), scratch);
  std::swap(s.re, buffer.re);
  std::swap(s.im, buffer.im);
}

template <class T>
void set_product_state(State<T>& s, const T* amp) {
  ProductScratch<T> scratch;
  set_product_state(s, amp, scratch);
}

template <class T>
void set_product_state_permuted(State<T>& s, const T* amp, const std::uint32_t* perm, State<T>& buffer) {
  ProductScratch<T> scratch;
  set_product_state_permuted(s, amp, perm, buffer, scratch);
}

#define QMOE_INSTANTIATE(T)                                                                              \
  template void apply_permutation<T>(State<T>&, const std::uint32_t*, bool, State<T>&);                  \
  template void apply_permutation<T>(State<T>&, const std::uint32_t*, const std::uint32_t*, std::size_t, \
                                     bool, State<T>&);                                                   \
  template void set_product_state_permuted<T>(State<T>&, const T*, const std::uint32_t*, State<T>&);     \
  template void set_product_state<T>(State<T>&, const T*);                                              \
  template void set_product_state_permuted<T>(State<T>&, const T*, const std::uint32_t*, State<T>&,      \
                                              ProductScratch<T>&);                                       \
  template void set_product_state<T>(State<T>&, const T*, ProductScratch<T>&);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe::sim
