// A layer's overlaps: Im <lam| P |phi> for many Pauli strings P at once
// (layer_overlaps, string_overlaps; contracts in state.hpp), the read-only
// sweeps the adjoint method takes a whole layer's gradients from.
#include <algorithm>
#include <bit>
#include <cstring>
#include <type_traits>
#include <vector>

#include "sim/clones.hpp"
#include "sim/pair_loop.hpp"
#include "sim/state.hpp"

namespace qmoe::sim {
namespace {

using namespace detail;

// The overlaps Im <lam| P |phi> of G Pauli strings P = i^k X^x Z^z over every
// row the controls select, for one tile of 8 lanes at a time, block by block
// of rows (grouped_overlaps): the sums stay in registers within a block and
// each row of lam is loaded once for the G strings. Per row i, with
// j = i ^ x, (P phi)[i] = i^k (-1)^popcount(j & z) phi[j], so the term is
// Im(i^k w) times that sign, w = conj(lam[i]) phi[j]: Im(w) for k = 0, Re(w)
// for k = 1 (Re), negated for k = 2 and 3 (at the end).
// The strings of one sweep share Re and whether any has a Z part (Signed).
// A single qubit's X, Y, Z are {bit, 0, 0}, {bit, bit, 1}, {0, bit, 0}.
constexpr int kOverlapLanes = 8;

// 32 bytes of T (4 doubles or 8 floats): GCC's vector extension, so the sums
// are plain registers in every clone (two SSE registers in the baseline one).
template <class T>
struct Lanes {
  typedef T V __attribute__((vector_size(32)));
  static constexpr int n = int(32 / sizeof(T));
};
// load is always inlined, so GCC's note that returning a vector by value
// changes the ABI without AVX (the baseline clone) concerns no real call.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
template <class T>
[[gnu::always_inline]] inline typename Lanes<T>::V load_lanes(const T* p) {
  typename Lanes<T>::V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// One block of rows [h0, h1): the sums of string g, lane b, go on in
// sum[g * B + b]. In double they stay in registers within the block and in
// sum between blocks (each lane adds its rows in order). In float the block's
// products are summed in float registers and each block's sum is added to sum
// in double (at most 64 terms in float; the sums over whole states are in
// double, as in a pass per string).
template <class T, bool Re, bool Signed, int G>
QMOE_CLONES __attribute__((flatten)) void overlap_group(const State<T>& phi, const State<T>& lam,
                                                       Controls c, const PauliMask* str, std::size_t h0,
                                                       std::size_t h1, double* sum) {
  using V = typename Lanes<T>::V;
  constexpr int N = Lanes<T>::n, NV = kOverlapLanes / N;  // vectors per tile
  constexpr bool carry = std::is_same_v<T, double>;  // the sums go on in registers from sum
  const std::size_t B = std::size_t(phi.batch);
  const T* pre = phi.re.data();
  const T* pim = phi.im.data();
  const T* lre = lam.re.data();
  const T* lim = lam.im.data();
  std::size_t xm[G], zm[G];
  for (int g = 0; g < G; ++g) xm[g] = str[g].x, zm[g] = str[g].z;
  for (std::size_t l0 = 0; l0 < B; l0 += kOverlapLanes) {
    V acc[G][NV];  // the sums of lanes l0 + v * N ..
    for (int g = 0; g < G; ++g)
      for (int v = 0; v < NV; ++v) {
        if constexpr (carry)
          acc[g][v] = load_lanes(sum + g * B + l0 + std::size_t(v) * N);
        else
          acc[g][v] = V{};
      }
    auto row = [&](std::size_t i) [[gnu::always_inline]] {
      const std::size_t o = i * B + l0;
      V lr[NV], li[NV];
      for (int v = 0; v < NV; ++v) lr[v] = load_lanes(lre + o + v * N), li[v] = load_lanes(lim + o + v * N);
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) {
        const std::size_t j = i ^ xm[g], q = j * B + l0;
        for (int v = 0; v < NV; ++v) {
          const V pr = load_lanes(pre + q + v * N), pi = load_lanes(pim + q + v * N);
          const V w = Re ? lr[v] * pr + li[v] * pi : lr[v] * pi - li[v] * pr;
          if constexpr (Signed)
            acc[g][v] += (__builtin_parityll(j & zm[g]) ? T(-1) : T(1)) * w;
          else
            acc[g][v] += w;
        }
      }
    };
    if (c.mask == 0) {  // the common case: no index arithmetic
      for (std::size_t h = h0; h < h1; ++h) row(h);
    } else {
      for (std::size_t h = h0; h < h1; ++h) row(controlled_index(h, c));
    }
    for (int g = 0; g < G; ++g)
      for (int v = 0; v < NV; ++v) {
        double* out = sum + g * B + l0 + std::size_t(v) * N;
        if constexpr (carry) {
          std::memcpy(out, &acc[g][v], sizeof acc[g][v]);
        } else {
          for (int k = 0; k < N; ++k) out[k] += double(acc[g][v][k]);
        }
      }
  }
}

#pragma GCC diagnostic pop

// Strings of one class, up to 4 per sweep of the block.
template <class T, bool Re, bool Signed>
void overlap_groups(const State<T>& phi, const State<T>& lam, Controls c, const PauliMask* str,
                    int n, std::size_t h0, std::size_t h1, double* sum) {
  const std::size_t B = std::size_t(phi.batch);
  while (n > 0) {
    const int g = n >= 4 ? 4 : n >= 2 ? 2 : 1;
    if (g == 4) overlap_group<T, Re, Signed, 4>(phi, lam, c, str, h0, h1, sum);
    else if (g == 2) overlap_group<T, Re, Signed, 2>(phi, lam, c, str, h0, h1, sum);
    else overlap_group<T, Re, Signed, 1>(phi, lam, c, str, h0, h1, sum);
    str += g, sum += std::size_t(g) * B, n -= g;
  }
}

// Runs of consecutive strings of the same class share sweeps. The rows go in
// blocks of max(32, 512 / B) rows (4 KiB per array in double up to batch
// 16, at most 64 rows as B >= 8 here), each block through every string before
// the next: lam's block and the partner blocks of phi (strings whose flips
// above the block's bits agree share one) are read from L2 once per block and
// then from L1, where sweeping the whole state per group read them once per
// group and string (12-14% less time for the ring-conjugated X strings of a
// 10-qubit layer, stand-alone). Each lane's sum still adds the rows in order.
template <class T>
void grouped_overlaps(const State<T>& phi, const State<T>& lam, Controls c, const PauliMask* str,
                      int n, double* const* ov) {
  const std::size_t B = std::size_t(phi.batch), rows = controlled_rows(phi.n_qubits, c);
  const std::size_t block = std::max<std::size_t>(32, 512 / B);
  std::vector<double> sums(std::size_t(n) * B, 0.0);
  auto kind = [&](int t) { return (str[t].phase & 1) * 2 + (str[t].z != 0); };
  for (std::size_t h0 = 0; h0 < rows; h0 += block) {
    const std::size_t h1 = std::min(rows, h0 + block);
    for (int t = 0, e; t < n; t = e) {
      for (e = t + 1; e < n && kind(e) == kind(t);) ++e;
      double* sum = sums.data() + std::size_t(t) * B;
      switch (kind(t)) {
        case 0: overlap_groups<T, false, false>(phi, lam, c, str + t, e - t, h0, h1, sum); break;
        case 1: overlap_groups<T, false, true>(phi, lam, c, str + t, e - t, h0, h1, sum); break;
        case 2: overlap_groups<T, true, false>(phi, lam, c, str + t, e - t, h0, h1, sum); break;
        default: overlap_groups<T, true, true>(phi, lam, c, str + t, e - t, h0, h1, sum); break;
      }
    }
  }
  for (int t = 0; t < n; ++t) {
    const double f = (str[t].phase & 2) ? -1.0 : 1.0;
    for (std::size_t b = 0; b < B; ++b) ov[t][b] += f * sums[std::size_t(t) * B + b];
  }
}

// One string, any precision and batch: a pass of its own.
template <class T>
QMOE_CLONES void string_overlap(const State<T>& phi, const State<T>& lam, Controls c, PauliMask str,
                                double* __restrict ov) {
  const std::size_t B = std::size_t(phi.batch), rows = controlled_rows(phi.n_qubits, c);
  const bool re = str.phase & 1;
  const double f = (str.phase & 2) ? -1.0 : 1.0;
  for (std::size_t h = 0; h < rows; ++h) {
    const std::size_t i = controlled_index(h, c), j = i ^ str.x;
    const double s = __builtin_parityll(j & str.z) ? -f : f;
    const T* lr = lam.re.data() + i * B;
    const T* li = lam.im.data() + i * B;
    const T* pr = phi.re.data() + j * B;
    const T* pi = phi.im.data() + j * B;
    if (re) {
#pragma omp simd
      for (std::size_t b = 0; b < B; ++b) ov[b] += s * (double(lr[b]) * pr[b] + double(li[b]) * pi[b]);
    } else {
#pragma omp simd
      for (std::size_t b = 0; b < B; ++b) ov[b] += s * (double(lr[b]) * pi[b] - double(li[b]) * pr[b]);
    }
  }
}
}  // namespace

template <class T>
void layer_overlaps(const State<T>& phi, const State<T>& lam, const int* targets, int n_targets,
                    Controls c, double* const* overlap) {
  check_same_shape(phi, lam);
  for (int t = 0; t < n_targets; ++t) {
    check_qubit(phi.n_qubits, targets[t], "layer_overlaps target");
    if ((c.mask >> targets[t]) & 1) throw std::invalid_argument("layer_overlaps: target is also a control");
  }
  controlled_rows(phi.n_qubits, c);  // checks the mask
  auto axes = [&](int k) {
    return (overlap[3 * k] ? 1 : 0) | (overlap[3 * k + 1] ? 2 : 0) | (overlap[3 * k + 2] ? 4 : 0);
  };
  // Runs of consecutive targets that want the same single axis share the
  // blocked sweeps of string_overlaps (with whole tiles of lanes); targets
  // with several axes take one pass each, which computes all their axes from
  // one read of each pair (as strings, the 3-axis expert layers of QMoE
  // training ran 1.5x slower).
  const bool grouped = phi.batch % kOverlapLanes == 0;
  std::vector<PauliMask> str;
  std::vector<double*> ov;
  for (int t = 0, e; t < n_targets; t = e) {
    const int a = axes(t);
    for (e = t + 1; e < n_targets && axes(e) == a;) ++e;
    if (grouped && (a == 1 || a == 2 || a == 4)) {
      const int k = a == 1 ? 0 : a == 2 ? 1 : 2;
      str.clear(), ov.clear();
      for (int u = t; u < e; ++u) {
        const std::uint64_t bit = std::uint64_t(1) << targets[u];
        str.push_back(k == 0 ? PauliMask{bit, 0, 0} : k == 1 ? PauliMask{bit, bit, 1} : PauliMask{0, bit, 0});
        ov.push_back(overlap[3 * u + k]);
      }
      grouped_overlaps(phi, lam, c, str.data(), e - t, ov.data());
      continue;
    }
    for (int k = t; k < e; ++k)  // one pass per target computes all its axes together
      if (a != 0) pauli_overlaps(phi, lam, targets[k], c, overlap + 3 * k);
  }
}

template <class T>
void string_overlaps(const State<T>& phi, const State<T>& lam, const PauliMask* strings, int n,
                     Controls c, double* const* overlap) {
  check_same_shape(phi, lam);
  controlled_rows(phi.n_qubits, c);  // checks the mask
  const std::uint64_t all = phi.n_qubits >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << phi.n_qubits) - 1;
  for (int t = 0; t < n; ++t) {
    const PauliMask& s = strings[t];
    if ((s.x | s.z) & ~all) throw std::invalid_argument("string_overlaps: string acts on a qubit the state lacks");
    if (s.x & c.mask) throw std::invalid_argument("string_overlaps: string flips a control");
    if (s.phase < 0 || s.phase > 3 || (s.phase & 1) != (std::popcount(s.x & s.z) & 1))
      throw std::invalid_argument("string_overlaps: string is not Hermitian");
  }
  if (phi.batch % kOverlapLanes == 0) {
    grouped_overlaps(phi, lam, c, strings, n, overlap);
    return;
  }
  for (int t = 0; t < n; ++t) string_overlap(phi, lam, c, strings[t], overlap[t]);
}

#define QMOE_INSTANTIATE(T)                                                                             \
  template void layer_overlaps<T>(const State<T>&, const State<T>&, const int*, int, Controls,          \
                                  double* const*);                                                      \
  template void string_overlaps<T>(const State<T>&, const State<T>&, const PauliMask*, int, Controls,   \
                                   double* const*);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe::sim
