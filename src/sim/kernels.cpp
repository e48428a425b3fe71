// Gate kernels and read-out of the batched statevector (layout: state.hpp).
//
// Every gate kernel is the same shape: an outer loop over the amplitude pairs
// (i0, i1 = i0 | target bit) whose control bits match, and an inner loop over
// the `run` contiguous slots of each amplitude (the batch). The outer index h
// becomes i0 by inserting zero bits at the K sorted positions of the qubits
// the gate touches; K is a template argument for 1-3 qubits so the compiler
// unrolls that arithmetic. The inner loop is a plain loop the compiler
// vectorises. Each kernel is a small struct (MatrixKernel, DiagKernel, ...);
// run_range carries target_clones and flatten, so the same source is compiled
// for baseline x86-64, AVX2+FMA and AVX-512 and picked at run time, and
// run_pairs splits large states across OpenMP threads around it (so the
// threaded path uses the clones too).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <type_traits>
#include <stdexcept>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "sim/state.hpp"

#if defined(__clang__) || defined(QMOE_NO_CLONES)
// clang 14 rejects target_clones on templates; clang builds (the fuzzers) run baseline code.
// QMOE_NO_CLONES (cmake -DQMOE_TARGET_CLONES=OFF): the sanitizer build, a third of the compile.
#define QMOE_CLONES
#else
#define QMOE_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#endif

namespace qmoe::sim {
namespace {

using u64 = std::uint64_t;

// The amplitude pairs one gate touches.
struct PairSpace {
  int k = 0;        // number of qubits the gate touches (target + controls)
  int pos[64]{};    // their positions, ascending
  u64 set = 0;      // control bits that must be 1
  u64 tbit = 0;     // target bit
  u64 count = 0;    // number of pairs
  std::size_t run = 0;  // contiguous slots per amplitude

  template <int K>
  u64 index0(u64 h) const {
    const int kk = K > 0 ? K : k;
    for (int j = 0; j < kk; ++j) {
      const u64 low = h & ((u64(1) << pos[j]) - 1);
      h = ((h >> pos[j]) << (pos[j] + 1)) | low;
    }
    return h | set;
  }
};

void check_qubit(int n, int q, const char* what) {
  if (q < 0 || q >= n)
    throw std::invalid_argument(std::string(what) + ": qubit " + std::to_string(q) +
                                " out of range for " + std::to_string(n) + " qubits");
}

// fold_low: treat qubits below the lowest touched one as part of the
// contiguous run (only valid when the matrix is the same for every sample).
PairSpace make_pairs(int n, std::size_t batch, int target, Controls c, bool fold_low) {
  check_qubit(n, target, "gate target");
  if (c.mask >> n) throw std::invalid_argument("gate control: qubit out of range");
  if ((c.mask >> target) & 1) throw std::invalid_argument("gate: target is also a control");
  if (c.value & ~c.mask) throw std::invalid_argument("gate control: value outside mask");
  PairSpace p;
  const u64 involved = c.mask | (u64(1) << target);
  const int shift = fold_low ? std::countr_zero(involved) : 0;
  for (int q = 0; q < n; ++q)
    if ((involved >> q) & 1) p.pos[p.k++] = q - shift;
  p.set = c.value >> shift;
  p.tbit = u64(1) << (target - shift);
  p.count = u64(1) << (n - shift - p.k);
  p.run = batch << shift;
  return p;
}

// Coefficient accessors: N complex numbers (4 for a 2x2 matrix, 2 for a
// diagonal), the same for every slot or one per sample.
template <class T, int N>
struct SharedCoeffs {
  T r[N], i[N];
  T re(int k, std::size_t) const { return r[k]; }
  T im(int k, std::size_t) const { return i[k]; }
};
template <class T, int N>
struct PerSampleCoeffs {
  const T* __restrict r[N];
  const T* __restrict i[N];
  T re(int k, std::size_t b) const { return r[k][b]; }
  T im(int k, std::size_t b) const { return i[k][b]; }
};
// A shared matrix with real entries (RY and its products, H, controlled RY):
// mul2 skips the imaginary parts, half the arithmetic.
template <class T>
struct SharedRealM {
  T r[4];
  static constexpr bool real = true;
  T re(int k, std::size_t) const { return r[k]; }
};
template <class M>
constexpr bool is_real_coeffs = requires { M::real; };
// A per-sample SU(2) matrix [[a, -conj(b)], [b, conj(a)]] (products of RX, RY,
// RZ): 4 arrays to load per slot instead of 8; the per-sample kernels are
// bound by loads as much as by multiply-adds.
template <class T>
struct PerSampleSU2 {
  const T* __restrict ar;
  const T* __restrict ai;
  const T* __restrict br;
  const T* __restrict bi;
  T re(int k, std::size_t b) const { return k == 0 || k == 3 ? ar[b] : k == 1 ? -br[b] : br[b]; }
  T im(int k, std::size_t b) const { return k == 0 ? ai[b] : k == 3 ? -ai[b] : bi[b]; }
};

template <class T>
using SharedM = SharedCoeffs<T, 4>;
template <class T>
using PerSampleM = PerSampleCoeffs<T, 4>;
template <class T>
using SharedD = SharedCoeffs<T, 2>;
template <class T>
using PerSampleD = PerSampleCoeffs<T, 2>;

template <class T>
SharedM<T> shared(const Mat<T>& m) {
  SharedM<T> s;
  for (int k = 0; k < 4; ++k) s.r[k] = m.re[k], s.i[k] = m.im[k];
  return s;
}
template <class T>
PerSampleM<T> per_sample(const BatchMat<T>& m) {
  PerSampleM<T> s;
  for (int k = 0; k < 4; ++k) s.r[k] = m.re[k], s.i[k] = m.im[k];
  return s;
}
// f(accessor) with the SU(2) accessor when m.su2, else the general one.
template <class T, class F>
void with_per_sample(const BatchMat<T>& m, F&& f) {
  if (m.su2)
    f(PerSampleSU2<T>{m.re[0], m.im[0], m.re[2], m.im[2]});
  else
    f(per_sample(m));
}


// (a0, a1) <- M (a0, a1) for one slot; the heart of every kernel.
template <class T, class M>
[[gnu::always_inline]] inline void mul2(const M& m, std::size_t b, T& a0r, T& a0i, T& a1r,
                                        T& a1i) {
  const T x0r = a0r, x0i = a0i, x1r = a1r, x1i = a1i;
  if constexpr (is_real_coeffs<M>) {
    a0r = m.re(0, b) * x0r + m.re(1, b) * x1r;
    a0i = m.re(0, b) * x0i + m.re(1, b) * x1i;
    a1r = m.re(2, b) * x0r + m.re(3, b) * x1r;
    a1i = m.re(2, b) * x0i + m.re(3, b) * x1i;
  } else {
    a0r = m.re(0, b) * x0r - m.im(0, b) * x0i + m.re(1, b) * x1r - m.im(1, b) * x1i;
    a0i = m.re(0, b) * x0i + m.im(0, b) * x0r + m.re(1, b) * x1i + m.im(1, b) * x1r;
    a1r = m.re(2, b) * x0r - m.im(2, b) * x0i + m.re(3, b) * x1r - m.im(3, b) * x1i;
    a1i = m.re(2, b) * x0i + m.im(2, b) * x0r + m.re(3, b) * x1i + m.im(3, b) * x1r;
  }
}

// Two 2x2s on a group of 4 amplitudes x(a bit)(b bit): ma on the pairs that
// differ in a's bit, mb on those that differ in b's bit (they commute).
template <class T, class MA, class MB>
[[gnu::always_inline]] inline void mul_pair(const MA& ma, const MB& mb, std::size_t b, T& x00r, T& x00i, T& x01r,
                                            T& x01i, T& x10r, T& x10i, T& x11r, T& x11i) {
  mul2<T>(ma, b, x00r, x00i, x01r, x01i);
  mul2<T>(ma, b, x10r, x10i, x11r, x11i);
  mul2<T>(mb, b, x00r, x00i, x10r, x10i);
  mul2<T>(mb, b, x01r, x01i, x11r, x11i);
}

// ---- the kernels ---------------------------------------------------------------
// Each kernel is a small struct whose run<K>(p, h0, h1) is the loop over pairs
// [h0, h1); run_range below compiles it once per ISA and run_pairs splits the
// pairs across threads for large states.

// (a0, a1) <- M (a0, a1): a general 2x2, shared or per sample.
template <class T, class M>
struct MatrixKernel {
  T* re;
  T* im;
  M m;
  template <int K>
  [[gnu::always_inline]] void run(const PairSpace& p, u64 h0, u64 h1) const {
    const std::size_t run = p.run;
    for (u64 h = h0; h < h1; ++h) {
      const u64 i0 = p.index0<K>(h);
      T* __restrict r0 = re + i0 * run;
      T* __restrict q0 = im + i0 * run;
      T* __restrict r1 = re + (i0 | p.tbit) * run;
      T* __restrict q1 = im + (i0 | p.tbit) * run;
#pragma omp simd
      for (std::size_t b = 0; b < run; ++b) mul2<T>(m, b, r0[b], q0[b], r1[b], q1[b]);
    }
  }
};

// ma on qubit a and mb on qubit b in one pass: each group of four amplitudes
// (i00, i01 = i00 | a bit, i10 = i00 | b bit, i11) is loaded once, gets ma on
// its two a-pairs and mb on its two b-pairs, and is stored once.
template <class T, class MA, class MB>
struct PairMatrixKernel {
  T* re;
  T* im;
  MA ma;
  MB mb;
  u64 bbit;  // the b qubit's bit (p.tbit is a's)
  template <int K>
  [[gnu::always_inline]] void run(const PairSpace& p, u64 h0, u64 h1) const {
    const std::size_t run = p.run;
    for (u64 h = h0; h < h1; ++h) {
      const u64 i00 = p.index0<K>(h), i01 = i00 | p.tbit, i10 = i00 | bbit, i11 = i01 | bbit;
      T* __restrict r00 = re + i00 * run;
      T* __restrict q00 = im + i00 * run;
      T* __restrict r01 = re + i01 * run;
      T* __restrict q01 = im + i01 * run;
      T* __restrict r10 = re + i10 * run;
      T* __restrict q10 = im + i10 * run;
      T* __restrict r11 = re + i11 * run;
      T* __restrict q11 = im + i11 * run;
#pragma omp simd
      for (std::size_t b = 0; b < run; ++b) {
        T x00r = r00[b], x00i = q00[b], x01r = r01[b], x01i = q01[b];
        T x10r = r10[b], x10i = q10[b], x11r = r11[b], x11i = q11[b];
        mul_pair<T>(ma, mb, b, x00r, x00i, x01r, x01i, x10r, x10i, x11r, x11i);
        r00[b] = x00r, q00[b] = x00i, r01[b] = x01r, q01[b] = x01i;
        r10[b] = x10r, q10[b] = x10i, r11[b] = x11r, q11[b] = x11i;
      }
    }
  }
};

// a0 *= d0, a1 *= d1: a diagonal matrix, half the arithmetic.
template <class T, class D>
struct DiagKernel {
  T* re;
  T* im;
  D d;
  template <int K>
  [[gnu::always_inline]] void run(const PairSpace& p, u64 h0, u64 h1) const {
    const std::size_t run = p.run;
    for (u64 h = h0; h < h1; ++h) {
      const u64 i0 = p.index0<K>(h);
      T* __restrict r0 = re + i0 * run;
      T* __restrict q0 = im + i0 * run;
      T* __restrict r1 = re + (i0 | p.tbit) * run;
      T* __restrict q1 = im + (i0 | p.tbit) * run;
#pragma omp simd
      for (std::size_t b = 0; b < run; ++b) {
        const T x0r = r0[b], x0i = q0[b], x1r = r1[b], x1i = q1[b];
        r0[b] = d.re(0, b) * x0r - d.im(0, b) * x0i;
        q0[b] = d.re(0, b) * x0i + d.im(0, b) * x0r;
        r1[b] = d.re(1, b) * x1r - d.im(1, b) * x1i;
        q1[b] = d.re(1, b) * x1i + d.im(1, b) * x1r;
      }
    }
  }
};

// X: exchange the two slots, no arithmetic.
template <class T>
struct SwapKernel {
  T* re;
  T* im;
  template <int K>
  [[gnu::always_inline]] void run(const PairSpace& p, u64 h0, u64 h1) const {
    const std::size_t run = p.run;
    for (u64 h = h0; h < h1; ++h) {
      const u64 i0 = p.index0<K>(h);
      T* __restrict r0 = re + i0 * run;
      T* __restrict q0 = im + i0 * run;
      T* __restrict r1 = re + (i0 | p.tbit) * run;
      T* __restrict q1 = im + (i0 | p.tbit) * run;
#pragma omp simd
      for (std::size_t b = 0; b < run; ++b) {
        const T xr = r0[b], xi = q0[b];
        r0[b] = r1[b], q0[b] = q1[b];
        r1[b] = xr, q1[b] = xi;
      }
    }
  }
};

// One adjoint step with ND derivative matrices (see state.hpp). Runs serially:
// gradients are taken per chunk of samples, small enough for one thread.
template <int ND, class T, class M>
struct AdjointKernel {
  State<T>& phi;
  State<T>& lam;
  M m_inv;
  const M* d;
  double* const* g;
  template <int K>
  [[gnu::always_inline]] void run(const PairSpace& p, u64 h0, u64 h1) const {
    const std::size_t run = p.run;
    for (u64 h = h0; h < h1; ++h) {
      const u64 i0 = p.index0<K>(h), i1 = i0 | p.tbit;
      T* __restrict pr0 = phi.re.data() + i0 * run;
      T* __restrict pi0 = phi.im.data() + i0 * run;
      T* __restrict pr1 = phi.re.data() + i1 * run;
      T* __restrict pi1 = phi.im.data() + i1 * run;
      T* __restrict lr0 = lam.re.data() + i0 * run;
      T* __restrict li0 = lam.im.data() + i0 * run;
      T* __restrict lr1 = lam.re.data() + i1 * run;
      T* __restrict li1 = lam.im.data() + i1 * run;
#pragma omp simd
      for (std::size_t b = 0; b < run; ++b) {
        T a0r = pr0[b], a0i = pi0[b], a1r = pr1[b], a1i = pi1[b];
        mul2<T>(m_inv, b, a0r, a0i, a1r, a1i);
        pr0[b] = a0r, pi0[b] = a0i, pr1[b] = a1r, pi1[b] = a1i;
        const T l0r = lr0[b], l0i = li0[b], l1r = lr1[b], l1i = li1[b];
        for (int j = 0; j < ND; ++j) {
          T d0r = a0r, d0i = a0i, d1r = a1r, d1i = a1i;
          mul2<T>(d[j], b, d0r, d0i, d1r, d1i);
          g[j][b] += 2.0 * double(l0r * d0r + l0i * d0i + l1r * d1r + l1i * d1i);
        }
        T m0r = l0r, m0i = l0i, m1r = l1r, m1i = l1i;
        mul2<T>(m_inv, b, m0r, m0i, m1r, m1i);
        lr0[b] = m0r, li0[b] = m0i, lr1[b] = m1r, li1[b] = m1i;
      }
    }
  }
};

// The adjoint step of a rotation exp(-i a P/2) (P = X, Y, Z by Pauli = 0, 1, 2):
// dM/da M^-1 = -i/2 P, so the gradient 2 Re <lam| dM/da |M^-1 phi> is
// 2 Re <lam| -i/2 P |phi> before the undo: a few products instead of a
// third 2x2 multiply.
template <int Pauli, class T, class M>
struct RotationAdjointKernel {
  State<T>& phi;
  State<T>& lam;
  M m_inv;
  double* g;
  template <int K>
  [[gnu::always_inline]] void run(const PairSpace& p, u64 h0, u64 h1) const {
    const std::size_t run = p.run;
    for (u64 h = h0; h < h1; ++h) {
      const u64 i0 = p.index0<K>(h), i1 = i0 | p.tbit;
      T* __restrict pr0 = phi.re.data() + i0 * run;
      T* __restrict pi0 = phi.im.data() + i0 * run;
      T* __restrict pr1 = phi.re.data() + i1 * run;
      T* __restrict pi1 = phi.im.data() + i1 * run;
      T* __restrict lr0 = lam.re.data() + i0 * run;
      T* __restrict li0 = lam.im.data() + i0 * run;
      T* __restrict lr1 = lam.re.data() + i1 * run;
      T* __restrict li1 = lam.im.data() + i1 * run;
#pragma omp simd
      for (std::size_t b = 0; b < run; ++b) {
        T a0r = pr0[b], a0i = pi0[b], a1r = pr1[b], a1i = pi1[b];
        T l0r = lr0[b], l0i = li0[b], l1r = lr1[b], l1i = li1[b];
        T v;
        if constexpr (Pauli == 0)  // Im(conj(l0) a1 + conj(l1) a0)
          v = l0r * a1i - l0i * a1r + l1r * a0i - l1i * a0r;
        else if constexpr (Pauli == 1)  // Re(conj(l1) a0 - conj(l0) a1)
          v = l1r * a0r + l1i * a0i - l0r * a1r - l0i * a1i;
        else  // Im(conj(l0) a0 - conj(l1) a1)
          v = l0r * a0i - l0i * a0r - l1r * a1i + l1i * a1r;
        g[b] += double(v);
        mul2<T>(m_inv, b, a0r, a0i, a1r, a1i);
        pr0[b] = a0r, pi0[b] = a0i, pr1[b] = a1r, pi1[b] = a1i;
        mul2<T>(m_inv, b, l0r, l0i, l1r, l1i);
        lr0[b] = l0r, li0[b] = l0i, lr1[b] = l1r, li1[b] = l1i;
      }
    }
  }
};

// (a0, a1) <- M (a0, a1) read from one state and written to another, with a
// basis permutation on one side: scatter (forward) writes amplitude i to
// perm[i]; gather (inverse) reads amplitude i from perm[i].
template <class T, class M>
struct PermutedMatrixKernel {
  const T* in_re;
  const T* in_im;
  T* out_re;
  T* out_im;
  M m;
  const std::uint32_t* perm;
  bool gather;
  template <int K>
  [[gnu::always_inline]] void run(const PairSpace& p, u64 h0, u64 h1) const {
    const std::size_t run = p.run;
    for (u64 h = h0; h < h1; ++h) {
      const u64 i0 = p.index0<K>(h), i1 = i0 | p.tbit;
      const u64 s0 = gather ? perm[i0] : i0, s1 = gather ? perm[i1] : i1;
      const u64 d0 = gather ? i0 : perm[i0], d1 = gather ? i1 : perm[i1];
      const T* __restrict r0 = in_re + s0 * run;
      const T* __restrict q0 = in_im + s0 * run;
      const T* __restrict r1 = in_re + s1 * run;
      const T* __restrict q1 = in_im + s1 * run;
      T* __restrict w0 = out_re + d0 * run;
      T* __restrict v0 = out_im + d0 * run;
      T* __restrict w1 = out_re + d1 * run;
      T* __restrict v1 = out_im + d1 * run;
#pragma omp simd
      for (std::size_t b = 0; b < run; ++b) {
        T a0r = r0[b], a0i = q0[b], a1r = r1[b], a1i = q1[b];
        mul2<T>(m, b, a0r, a0i, a1r, a1i);
        w0[b] = a0r, v0[b] = a0i, w1[b] = a1r, v1[b] = a1i;
      }
    }
  }
};

// Two 2x2s (on a and b, as PairMatrixKernel) and a permutation in one
// out-of-place pass: scatter (out[perm[i]] <- (A B in)[i]) or, for the
// inverse, gather (out[i] <- A B in[perm[i]], with A, B the inverse matrices).
// A separate kernel from the in-place one on purpose: sharing one body for
// both (in and out possibly equal, so no __restrict) cost 15% (RESULTS.md).
template <class T, class MA, class MB>
struct PairPermutedKernel {
  const T* in_re;
  const T* in_im;
  T* out_re;
  T* out_im;
  MA ma;
  MB mb;
  u64 bbit;
  const std::uint32_t* perm;
  bool gather;
  template <int K>
  [[gnu::always_inline]] void run(const PairSpace& p, u64 h0, u64 h1) const {
    const std::size_t run = p.run;
    for (u64 h = h0; h < h1; ++h) {
      const u64 i00 = p.index0<K>(h), i01 = i00 | p.tbit, i10 = i00 | bbit, i11 = i01 | bbit;
      const u64 at[4] = {i00, i01, i10, i11};
      u64 src[4], dst[4];
      for (int k = 0; k < 4; ++k) {
        const u64 moved = perm ? perm[at[k]] : at[k];  // no perm: out of place only (matrix_pair's keep)
        src[k] = gather ? moved : at[k], dst[k] = gather ? at[k] : moved;
      }
      const T* __restrict r00 = in_re + src[0] * run;
      const T* __restrict q00 = in_im + src[0] * run;
      const T* __restrict r01 = in_re + src[1] * run;
      const T* __restrict q01 = in_im + src[1] * run;
      const T* __restrict r10 = in_re + src[2] * run;
      const T* __restrict q10 = in_im + src[2] * run;
      const T* __restrict r11 = in_re + src[3] * run;
      const T* __restrict q11 = in_im + src[3] * run;
      T* __restrict w00 = out_re + dst[0] * run;
      T* __restrict v00 = out_im + dst[0] * run;
      T* __restrict w01 = out_re + dst[1] * run;
      T* __restrict v01 = out_im + dst[1] * run;
      T* __restrict w10 = out_re + dst[2] * run;
      T* __restrict v10 = out_im + dst[2] * run;
      T* __restrict w11 = out_re + dst[3] * run;
      T* __restrict v11 = out_im + dst[3] * run;
#pragma omp simd
      for (std::size_t b = 0; b < run; ++b) {
        T x00r = r00[b], x00i = q00[b], x01r = r01[b], x01i = q01[b];
        T x10r = r10[b], x10i = q10[b], x11r = r11[b], x11i = q11[b];
        mul_pair<T>(ma, mb, b, x00r, x00i, x01r, x01i, x10r, x10i, x11r, x11i);
        w00[b] = x00r, v00[b] = x00i, w01[b] = x01r, v01[b] = x01i;
        w10[b] = x10r, v10[b] = x10i, w11[b] = x11r, v11[b] = x11i;
      }
    }
  }
};

// The backward step through a fused run of gates (see adjoint_step_overlaps in
// state.hpp): the Pauli overlaps Im <lam| X, Y, Z |phi> on the target before
// the undo, then phi <- M^-1 phi and lam <- M^-1 lam. Every rotation of the run
// takes its gradient from these sums, so a run of several gates costs one pass
// over phi and lam. Axes (bits X = 1, Y = 2, Z = 4): the overlaps wanted; a
// trainable rotation last in its run needs one axis, a third of the arithmetic
// and of the sums' loads and stores. Undo = false: the overlaps only.
template <bool Undo, int Axes, class T, class M>
struct OverlapAdjointKernel {
  State<T>& phi;
  State<T>& lam;
  M m_inv;
  double* ov[3];
  template <int K>
  [[gnu::always_inline]] void run(const PairSpace& p, u64 h0, u64 h1) const {
    const std::size_t run = p.run;
    double* __restrict ox = ov[0];
    double* __restrict oy = ov[1];
    double* __restrict oz = ov[2];
    for (u64 h = h0; h < h1; ++h) {
      const u64 i0 = p.index0<K>(h), i1 = i0 | p.tbit;
      T* __restrict pr0 = phi.re.data() + i0 * run;
      T* __restrict pi0 = phi.im.data() + i0 * run;
      T* __restrict pr1 = phi.re.data() + i1 * run;
      T* __restrict pi1 = phi.im.data() + i1 * run;
      T* __restrict lr0 = lam.re.data() + i0 * run;
      T* __restrict li0 = lam.im.data() + i0 * run;
      T* __restrict lr1 = lam.re.data() + i1 * run;
      T* __restrict li1 = lam.im.data() + i1 * run;
#pragma omp simd
      for (std::size_t b = 0; b < run; ++b) {
        T a0r = pr0[b], a0i = pi0[b], a1r = pr1[b], a1i = pi1[b];
        T l0r = lr0[b], l0i = li0[b], l1r = lr1[b], l1i = li1[b];
        // u = conj(l0) a1, w = conj(l1) a0; z0, z1 = Im conj(l0) a0, Im conj(l1) a1
        if constexpr ((Axes & 1) != 0) ox[b] += double((l0r * a1i - l0i * a1r) + (l1r * a0i - l1i * a0r));
        if constexpr ((Axes & 2) != 0) oy[b] += double((l1r * a0r + l1i * a0i) - (l0r * a1r + l0i * a1i));
        if constexpr ((Axes & 4) != 0) oz[b] += double((l0r * a0i - l0i * a0r) - (l1r * a1i - l1i * a1r));
        if constexpr (Undo && is_real_coeffs<M>) {  // e.g. a controlled RY: half the arithmetic
          mul2<T>(m_inv, b, a0r, a0i, a1r, a1i);
          pr0[b] = a0r, pi0[b] = a0i, pr1[b] = a1r, pi1[b] = a1i;
          mul2<T>(m_inv, b, l0r, l0i, l1r, l1i);
          lr0[b] = l0r, li0[b] = l0i, lr1[b] = l1r, li1[b] = l1i;
        } else if constexpr (Undo) {
          // the matrix once into registers, for both states
          const SharedM<T> u{{m_inv.re(0, b), m_inv.re(1, b), m_inv.re(2, b), m_inv.re(3, b)},
                             {m_inv.im(0, b), m_inv.im(1, b), m_inv.im(2, b), m_inv.im(3, b)}};
          mul2<T>(u, b, a0r, a0i, a1r, a1i);
          pr0[b] = a0r, pi0[b] = a0i, pr1[b] = a1r, pi1[b] = a1i;
          mul2<T>(u, b, l0r, l0i, l1r, l1i);
          lr0[b] = l0r, li0[b] = l0i, lr1[b] = l1r, li1[b] = l1i;
        }
      }
    }
  }
};

// Pairs [h0, h1) of one kernel, compiled for each ISA (flatten inlines the
// kernel into every clone), with the number of touched qubits K a template
// argument so index0 is unrolled.
template <class Kernel>
QMOE_CLONES __attribute__((flatten)) void run_range(const Kernel& kern, const PairSpace& p, u64 h0,
                                                    u64 h1) {
  switch (p.k) {
    case 1: kern.template run<1>(p, h0, h1); break;
    case 2: kern.template run<2>(p, h0, h1); break;
    case 3: kern.template run<3>(p, h0, h1); break;
    default: kern.template run<0>(p, h0, h1); break;
  }
}

// All pairs, split across threads (static contiguous ranges: deterministic and
// cache friendly) when the state is large.
template <class Kernel>
void run_pairs(const Kernel& kern, const PairSpace& p) {
  if (p.count * p.run < kParallelAmplitudes || p.count < 2) {
    run_range(kern, p, 0, p.count);
    return;
  }
#pragma omp parallel
  {
    int nt = 1, id = 0;
#ifdef _OPENMP
    nt = omp_get_num_threads();
    id = omp_get_thread_num();
#endif
    const u64 chunk = (p.count + nt - 1) / nt;
    const u64 b = std::min<u64>(p.count, chunk * id), e = std::min<u64>(p.count, b + chunk);
    run_range(kern, p, b, e);
  }
}

template <class T>
void check_batch_state(const State<T>& a, const State<T>& b) {
  if (a.n_qubits != b.n_qubits || a.batch != b.batch)
    throw std::invalid_argument("adjoint_step: states differ in shape");
}

template <class T, class M>
void adjoint_dispatch(State<T>& phi, State<T>& lam, int target, Controls c, const M& m_inv,
                      int n_deriv, const M* d, double* const* g) {
  check_batch_state(phi, lam);
  if (n_deriv < 0 || n_deriv > 3) throw std::invalid_argument("adjoint_step: 0-3 derivatives");
  const PairSpace p = make_pairs(phi.n_qubits, std::size_t(phi.batch), target, c, false);
  switch (n_deriv) {
    case 0: run_range(AdjointKernel<0, T, M>{phi, lam, m_inv, d, g}, p, 0, p.count); break;
    case 1: run_range(AdjointKernel<1, T, M>{phi, lam, m_inv, d, g}, p, 0, p.count); break;
    case 2: run_range(AdjointKernel<2, T, M>{phi, lam, m_inv, d, g}, p, 0, p.count); break;
    default: run_range(AdjointKernel<3, T, M>{phi, lam, m_inv, d, g}, p, 0, p.count); break;
  }
}

template <class T, class M>
void rotation_adjoint_dispatch(State<T>& phi, State<T>& lam, int target, Controls c,
                               const M& m_inv, char pauli, double* g) {
  check_batch_state(phi, lam);
  const PairSpace p = make_pairs(phi.n_qubits, std::size_t(phi.batch), target, c, false);
  switch (pauli) {
    case 'X': run_range(RotationAdjointKernel<0, T, M>{phi, lam, m_inv, g}, p, 0, p.count); break;
    case 'Y': run_range(RotationAdjointKernel<1, T, M>{phi, lam, m_inv, g}, p, 0, p.count); break;
    case 'Z': run_range(RotationAdjointKernel<2, T, M>{phi, lam, m_inv, g}, p, 0, p.count); break;
    default: throw std::invalid_argument("adjoint_step_rotation: Pauli must be X, Y or Z");
  }
}

template <bool Undo, class T, class M>
void overlap_adjoint_dispatch(State<T>& phi, State<T>& lam, int target, Controls c,
                              const M& m_inv, double* const* ov) {
  check_batch_state(phi, lam);
  const PairSpace p = make_pairs(phi.n_qubits, std::size_t(phi.batch), target, c, false);
  const int axes = (ov[0] ? 1 : 0) | (ov[1] ? 2 : 0) | (ov[2] ? 4 : 0);
  auto go = [&]<int Axes>() {
    run_range(OverlapAdjointKernel<Undo, Axes, T, M>{phi, lam, m_inv, {ov[0], ov[1], ov[2]}}, p, 0, p.count);
  };
  switch (axes) {
    case 0: if constexpr (Undo) go.template operator()<0>(); break;  // nothing to read otherwise
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

// ---- state ------------------------------------------------------------------

template <class T>
State<T> make_state(int n_qubits, int batch) {
  if (n_qubits < 1 || n_qubits > 40)
    throw std::invalid_argument("state: qubit count must be 1..40, got " + std::to_string(n_qubits));
  if (batch < 1) throw std::invalid_argument("state: batch must be >= 1");
  State<T> s;
  s.n_qubits = n_qubits;
  s.batch = batch;
  s.re.assign(s.dim() * std::size_t(batch), T(0));
  s.im.assign(s.dim() * std::size_t(batch), T(0));
  for (int b = 0; b < batch; ++b) s.re[b] = T(1);
  return s;
}

template <class T>
void set_zero_state(State<T>& s) {
  std::fill(s.re.begin(), s.re.end(), T(0));
  std::fill(s.im.begin(), s.im.end(), T(0));
  std::fill(s.re.begin(), s.re.begin() + s.batch, T(1));
}

// ---- gates ------------------------------------------------------------------

template <class T>
bool is_real(const Mat<T>& m) {
  return m.im[0] == 0 && m.im[1] == 0 && m.im[2] == 0 && m.im[3] == 0;
}
template <class T>
SharedRealM<T> shared_real(const Mat<T>& m) {
  return {{m.re[0], m.re[1], m.re[2], m.re[3]}};
}

template <class T>
void apply_matrix(State<T>& s, int target, Controls c, const Mat<T>& m) {
  const PairSpace p = make_pairs(s.n_qubits, std::size_t(s.batch), target, c, true);
  if (is_real(m))
    run_pairs(MatrixKernel<T, SharedRealM<T>>{s.re.data(), s.im.data(), shared_real(m)}, p);
  else
    run_pairs(MatrixKernel<T, SharedM<T>>{s.re.data(), s.im.data(), shared(m)}, p);
}

template <class T>
void apply_matrix(State<T>& s, int target, Controls c, const BatchMat<T>& m) {
  const PairSpace p = make_pairs(s.n_qubits, std::size_t(s.batch), target, c, false);
  with_per_sample(m, [&](const auto& pm) {
    run_pairs(MatrixKernel<T, std::decay_t<decltype(pm)>>{s.re.data(), s.im.data(), pm}, p);
  });
}

// Pairs of (a, b) with the same layout as a gate on a controlled by b (any
// value) and by c: index0 clears both bits and c's, tbit is a's. With keep:
// out of place (the permuted kernel with no permutation) into keep's storage,
// then swapped; a controlled pair writes only its subspace, so it copies the
// state into keep and runs in place instead.
template <class T, class MA, class MB>
void matrix_pair(State<T>& s, int a, const MA& ma, int b, const MB& mb, Controls c, State<T>* keep) {
  check_qubit(s.n_qubits, b, "gate pair");
  if (a == b) throw std::invalid_argument("gate pair: both on the same qubit");
  if ((c.mask >> b) & 1) throw std::invalid_argument("gate pair: target is also a control");
  PairSpace p = make_pairs(s.n_qubits, std::size_t(s.batch), a, Controls{c.mask | u64(1) << b, c.value}, false);
  if (keep && c.mask != 0) *keep = s;
  if (!keep || c.mask != 0) {
    run_pairs(PairMatrixKernel<T, MA, MB>{s.re.data(), s.im.data(), ma, mb, u64(1) << b}, p);
    return;
  }
  keep->n_qubits = s.n_qubits;
  keep->batch = s.batch;
  keep->re.resize(s.re.size());
  keep->im.resize(s.im.size());
  run_pairs(PairPermutedKernel<T, MA, MB>{s.re.data(), s.im.data(), keep->re.data(), keep->im.data(),
                                          ma, mb, u64(1) << b, nullptr, false},
            p);
  std::swap(s.re, keep->re);
  std::swap(s.im, keep->im);
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
  with_per_sample(ma, [&](const auto& pa) {
    if (is_real(mb))
      matrix_pair(s, a, pa, b, shared_real(mb), c, keep);
    else
      matrix_pair(s, a, pa, b, shared(mb), c, keep);
  });
}
template <class T>
void apply_matrix_pair(State<T>& s, int a, const BatchMat<T>& ma, int b, const BatchMat<T>& mb,
                       Controls c, State<T>* keep) {
  if (ma.su2 && mb.su2)  // the rotation layers' common case; mixed pairs take the general kernel
    matrix_pair(s, a, PerSampleSU2<T>{ma.re[0], ma.im[0], ma.re[2], ma.im[2]}, b,
                PerSampleSU2<T>{mb.re[0], mb.im[0], mb.re[2], mb.im[2]}, c, keep);
  else
    matrix_pair(s, a, per_sample(ma), b, per_sample(mb), c, keep);
}

template <class T>
void apply_x(State<T>& s, int target, Controls c) {
  const PairSpace p = make_pairs(s.n_qubits, std::size_t(s.batch), target, c, true);
  run_pairs(SwapKernel<T>{s.re.data(), s.im.data()}, p);
}

template <class T>
void apply_diagonal(State<T>& s, int target, Controls c, const Diag<T>& d) {
  const PairSpace p = make_pairs(s.n_qubits, std::size_t(s.batch), target, c, true);
  const SharedD<T> dd{{d.re[0], d.re[1]}, {d.im[0], d.im[1]}};
  run_pairs(DiagKernel<T, SharedD<T>>{s.re.data(), s.im.data(), dd}, p);
}

template <class T>
void apply_diagonal(State<T>& s, int target, Controls c, const BatchDiag<T>& d) {
  const PairSpace p = make_pairs(s.n_qubits, std::size_t(s.batch), target, c, false);
  const PerSampleD<T> dd{{d.re[0], d.re[1]}, {d.im[0], d.im[1]}};
  run_pairs(DiagKernel<T, PerSampleD<T>>{s.re.data(), s.im.data(), dd}, p);
}

template <class T>
QMOE_CLONES void apply_permutation(State<T>& s, const std::uint32_t* perm, bool inverse, State<T>& buffer) {
  const std::size_t B = std::size_t(s.batch), dim = s.dim();
  buffer.n_qubits = s.n_qubits;
  buffer.batch = s.batch;
  buffer.re.resize(s.re.size());
  buffer.im.resize(s.im.size());
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

template <class T, class M>
void matrix_permute(State<T>& s, int target, const M& m, const std::uint32_t* perm, bool inverse,
                    State<T>& buffer) {
  const PairSpace p = make_pairs(s.n_qubits, std::size_t(s.batch), target, Controls{}, false);
  buffer.n_qubits = s.n_qubits;
  buffer.batch = s.batch;
  buffer.re.resize(s.re.size());
  buffer.im.resize(s.im.size());
  run_pairs(PermutedMatrixKernel<T, M>{s.re.data(), s.im.data(), buffer.re.data(), buffer.im.data(),
                                       m, perm, inverse},
            p);
  std::swap(s.re, buffer.re);
  std::swap(s.im, buffer.im);
}

template <class T>
void apply_matrix_permute(State<T>& s, int target, const Mat<T>& m, const std::uint32_t* perm,
                          bool inverse, State<T>& buffer) {
  matrix_permute(s, target, shared(m), perm, inverse, buffer);
}

template <class T>
void apply_matrix_pair_permute(State<T>& s, int a, const BatchMat<T>& ma, int b, const BatchMat<T>& mb,
                               const std::uint32_t* perm, bool inverse, State<T>& buffer) {
  check_qubit(s.n_qubits, b, "gate pair");
  if (a == b) throw std::invalid_argument("gate pair: both on the same qubit");
  const PairSpace p = make_pairs(s.n_qubits, std::size_t(s.batch), a, Controls{u64(1) << b, 0}, false);
  buffer.n_qubits = s.n_qubits;
  buffer.batch = s.batch;
  buffer.re.resize(s.re.size());
  buffer.im.resize(s.im.size());
  auto run = [&](const auto& pa, const auto& pb) {
    using K = PairPermutedKernel<T, std::decay_t<decltype(pa)>, std::decay_t<decltype(pb)>>;
    run_pairs(K{s.re.data(), s.im.data(), buffer.re.data(), buffer.im.data(), pa, pb, u64(1) << b, perm, inverse}, p);
  };
  if (ma.su2 && mb.su2)
    run(PerSampleSU2<T>{ma.re[0], ma.im[0], ma.re[2], ma.im[2]}, PerSampleSU2<T>{mb.re[0], mb.im[0], mb.re[2], mb.im[2]});
  else
    run(per_sample(ma), per_sample(mb));
  std::swap(s.re, buffer.re);
  std::swap(s.im, buffer.im);
}

template <class T>
void apply_matrix_permute(State<T>& s, int target, const BatchMat<T>& m, const std::uint32_t* perm,
                          bool inverse, State<T>& buffer) {
  with_per_sample(m, [&](const auto& pm) { matrix_permute(s, target, pm, perm, inverse, buffer); });
}

// The product state over qubits 0..n-1 in two steps: the factors of the low
// L = n/2 qubits into a table lo (2^L amplitudes) and those of the others into
// hi (2^(n-L)), each by doubling (thread-local: they stay in cache from chunk
// to chunk); then amplitude i = lo[i mod 2^L] * hi[i / 2^L], written once into
// the state in destination order (out + perm[i]; perm null: to i). One complex
// product and one store per amplitude; the tables cost about 2^(n/2 + 1).
template <class T>
QMOE_CLONES void product_state(State<T>& s, const T* amp, const std::uint32_t* perm, T* out_re,
                               T* out_im) {
  const std::size_t B = std::size_t(s.batch);
  const int n = s.n_qubits, L = n / 2;
  const std::size_t nlo = std::size_t(1) << L, nhi = std::size_t(1) << (n - L);
  thread_local std::vector<T> tables;
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
  thread_local std::vector<std::uint32_t> source;
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
void set_product_state(State<T>& s, const T* amp) {
  product_state(s, amp, nullptr, s.re.data(), s.im.data());
}

template <class T>
void set_product_state_permuted(State<T>& s, const T* amp, const std::uint32_t* perm,
                                State<T>& buffer) {
  buffer.n_qubits = s.n_qubits;
  buffer.batch = s.batch;
  buffer.re.resize(s.re.size());
  buffer.im.resize(s.im.size());
  product_state(s, amp, perm, buffer.re.data(), buffer.im.data());
  std::swap(s.re, buffer.re);
  std::swap(s.im, buffer.im);
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
void adjoint_step(State<T>& phi, State<T>& lam, int target, Controls c,
                              const Mat<T>& m_inv, int n_deriv, const Mat<T>* deriv,
                              double* const* grad) {
  SharedM<T> d[3];
  for (int j = 0; j < n_deriv && j < 3; ++j) d[j] = shared(deriv[j]);
  adjoint_dispatch(phi, lam, target, c, shared(m_inv), n_deriv, d, grad);
}

template <class T>
void adjoint_step(State<T>& phi, State<T>& lam, int target, Controls c,
                              const BatchMat<T>& m_inv, int n_deriv, const BatchMat<T>* deriv,
                              double* const* grad) {
  PerSampleM<T> d[3];
  // Constructed in place: clang 14 cannot compile PerSampleM's implicit assignment (__restrict arrays).
  for (int j = 0; j < n_deriv && j < 3; ++j) new (&d[j]) PerSampleM<T>(per_sample(deriv[j]));
  adjoint_dispatch(phi, lam, target, c, per_sample(m_inv), n_deriv, d, grad);
}

template <class T>
void adjoint_step_rotation(State<T>& phi, State<T>& lam, int target, Controls c,
                           const Mat<T>& m_inv, char pauli, double* grad) {
  rotation_adjoint_dispatch(phi, lam, target, c, shared(m_inv), pauli, grad);
}

template <class T>
void adjoint_step_rotation(State<T>& phi, State<T>& lam, int target, Controls c,
                           const BatchMat<T>& m_inv, char pauli, double* grad) {
  rotation_adjoint_dispatch(phi, lam, target, c, per_sample(m_inv), pauli, grad);
}

template <class T>
void adjoint_step_overlaps(State<T>& phi, State<T>& lam, int target, Controls c,
                           const Mat<T>& m_inv, double* const* overlap) {
  if (is_real(m_inv))
    overlap_adjoint_dispatch<true>(phi, lam, target, c, shared_real(m_inv), overlap);
  else
    overlap_adjoint_dispatch<true>(phi, lam, target, c, shared(m_inv), overlap);
}

template <class T>
void adjoint_step_overlaps(State<T>& phi, State<T>& lam, int target, Controls c,
                           const BatchMat<T>& m_inv, double* const* overlap) {
  with_per_sample(m_inv, [&](const auto& pm) { overlap_adjoint_dispatch<true>(phi, lam, target, c, pm, overlap); });
}

template <class T>
void pauli_overlaps(const State<T>& phi, const State<T>& lam, int target, Controls c,
                    double* const* overlap) {
  // With Undo = false the kernel only reads the states.
  overlap_adjoint_dispatch<false>(const_cast<State<T>&>(phi), const_cast<State<T>&>(lam), target, c,
                                  SharedM<T>{}, overlap);
}

// ---- read-out ---------------------------------------------------------------

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

// ---- parts of a state ----------------------------------------------------------

namespace {
// Check c against n qubits; the number of amplitudes it selects.
std::size_t controlled_rows(int n, Controls c) {
  if (n < 1 || n > 40 || (c.mask >> n) != 0 || (c.value & ~c.mask) != 0)
    throw std::invalid_argument("controlled part: bad control mask for " + std::to_string(n) + " qubits");
  return std::size_t(1) << (n - std::popcount(c.mask));
}
// The h-th index whose bits at mask equal value: h's bits spread over the other positions.
u64 controlled_index(u64 h, Controls c) {
  for (u64 m = c.mask; m != 0; m &= m - 1) {
    const int p = std::countr_zero(m);
    h = ((h >> p) << (p + 1)) | (h & ((u64(1) << p) - 1));
  }
  return h | c.value;
}
}  // namespace

template <class T>
void copy_controlled(const State<T>& s, Controls c, State<T>& part) {
  const std::size_t rows = controlled_rows(s.n_qubits, c), B = std::size_t(s.batch);
  part.n_qubits = s.n_qubits - std::popcount(c.mask);
  part.batch = s.batch;
  part.re.resize(rows * B);
  part.im.resize(rows * B);
  for (std::size_t h = 0; h < rows; ++h) {
    const std::size_t i = controlled_index(h, c);
    std::copy_n(s.re.data() + i * B, B, part.re.data() + h * B);
    std::copy_n(s.im.data() + i * B, B, part.im.data() + h * B);
  }
}

template <class T>
void restore_controlled(const State<T>& part, Controls c, State<T>& s) {
  const std::size_t rows = controlled_rows(s.n_qubits, c), B = std::size_t(s.batch);
  if (part.batch != s.batch || part.re.size() != rows * B || part.im.size() != rows * B)
    throw std::invalid_argument("restore_controlled: part does not match the state");
  for (std::size_t h = 0; h < rows; ++h) {
    const std::size_t i = controlled_index(h, c);
    std::copy_n(part.re.data() + h * B, B, s.re.data() + i * B);
    std::copy_n(part.im.data() + h * B, B, s.im.data() + i * B);
  }
}

// ---- a layer's overlaps ----------------------------------------------------------

namespace {
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
  check_batch_state(phi, lam);
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
  check_batch_state(phi, lam);
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

template <class T>
BasisSampler make_sampler(const State<T>& s, int b, std::uint64_t seed) {
  BasisSampler smp{std::vector<double>(s.dim()), std::mt19937_64(seed)};
  probabilities(s, b, smp.cdf.data());
  for (std::size_t i = 1; i < smp.cdf.size(); ++i) smp.cdf[i] += smp.cdf[i - 1];
  return smp;
}

std::uint64_t BasisSampler::next() {
  // 53 random bits -> [0, 1), scaled by the total so rounding never falls off the end.
  const double u = double(rng() >> 11) * 0x1p-53 * cdf.back();
  const std::size_t i = std::size_t(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
  return std::min(i, cdf.size() - 1);
}

template <class T>
std::vector<std::uint64_t> sample_basis_states(const State<T>& s, int b, int shots,
                                               std::uint64_t seed) {
  if (shots < 0) throw std::invalid_argument("sample: shots must be >= 0");
  BasisSampler smp = make_sampler(s, b, seed);
  std::vector<std::uint64_t> out(static_cast<std::size_t>(shots));
  for (auto& o : out) o = smp.next();
  return out;
}

// ---- instantiations -----------------------------------------------------------
#define QMOE_INSTANTIATE(T)                                                                   \
  template State<T> make_state<T>(int, int);                                                  \
  template void set_zero_state<T>(State<T>&);                                                 \
  template void apply_matrix<T>(State<T>&, int, Controls, const Mat<T>&);                     \
  template void apply_matrix<T>(State<T>&, int, Controls, const BatchMat<T>&);                \
  template void apply_matrix_pair<T>(State<T>&, int, const Mat<T>&, int, const Mat<T>&,      \
                                     Controls, State<T>*);                                     \
  template void apply_matrix_pair<T>(State<T>&, int, const BatchMat<T>&, int, const Mat<T>&, \
                                     Controls, State<T>*);                                     \
  template void apply_matrix_pair<T>(State<T>&, int, const BatchMat<T>&, int,                  \
                                     const BatchMat<T>&, Controls, State<T>*);                 \
  template void apply_swap<T>(State<T>&, int, int, Controls);                                 \
  template void apply_x<T>(State<T>&, int, Controls);                                         \
  template void apply_diagonal<T>(State<T>&, int, Controls, const Diag<T>&);                  \
  template void apply_diagonal<T>(State<T>&, int, Controls, const BatchDiag<T>&);             \
  template void apply_permutation<T>(State<T>&, const std::uint32_t*, bool, State<T>&);       \
  template void apply_permutation<T>(State<T>&, const std::uint32_t*, const std::uint32_t*,   \
                                     std::size_t, bool, State<T>&);                           \
  template void apply_matrix_permute<T>(State<T>&, int, const Mat<T>&, const std::uint32_t*,  \
                                        bool, State<T>&);                                     \
  template void apply_matrix_pair_permute<T>(State<T>&, int, const BatchMat<T>&, int,           \
                                             const BatchMat<T>&, const std::uint32_t*, bool, State<T>&); \
  template void apply_matrix_permute<T>(State<T>&, int, const BatchMat<T>&,                   \
                                        const std::uint32_t*, bool, State<T>&);               \
  template void set_product_state_permuted<T>(State<T>&, const T*, const std::uint32_t*,     \
                                              State<T>&);                                     \
  template void set_product_state<T>(State<T>&, const T*);                                    \
  template void adjoint_step<T>(State<T>&, State<T>&, int, Controls, const Mat<T>&, int,      \
                                const Mat<T>*, double* const*);                               \
  template void adjoint_step<T>(State<T>&, State<T>&, int, Controls, const BatchMat<T>&, int, \
                                const BatchMat<T>*, double* const*);                          \
  template void adjoint_step_rotation<T>(State<T>&, State<T>&, int, Controls, const Mat<T>&,  \
                                         char, double*);                                      \
  template void adjoint_step_rotation<T>(State<T>&, State<T>&, int, Controls,                 \
                                         const BatchMat<T>&, char, double*);                  \
  template void adjoint_step_overlaps<T>(State<T>&, State<T>&, int, Controls, const Mat<T>&,  \
                                         double* const*);                                     \
  template void adjoint_step_overlaps<T>(State<T>&, State<T>&, int, Controls,                 \
                                         const BatchMat<T>&, double* const*);                 \
  template void layer_overlaps<T>(const State<T>&, const State<T>&, const int*, int, Controls,  \
                                  double* const*);                                            \
  template void string_overlaps<T>(const State<T>&, const State<T>&, const PauliMask*, int,     \
                                   Controls, double* const*);                                  \
  template void pauli_overlaps<T>(const State<T>&, const State<T>&, int, Controls,            \
                                  double* const*);                                            \
  template void expval_z_all<T>(const State<T>&, double*);                                    \
  template void expval_pauli<T>(const State<T>&, std::uint64_t, std::uint64_t, double*);      \
  template void apply_weighted_z<T>(const State<T>&, const double*, State<T>&);               \
  template void add_weighted_pauli<T>(const State<T>&, std::uint64_t, std::uint64_t,          \
                                      const double*, State<T>&);                              \
  template void probabilities<T>(const State<T>&, int, double*);                              \
  template void marginal_probabilities<T>(const State<T>&, const std::vector<int>&, double*); \
  template void norms<T>(const State<T>&, double*);                                           \
  template void apply_pauli_per_sample<T>(State<T>&, int, const std::uint8_t*);               \
  template void copy_controlled<T>(const State<T>&, Controls, State<T>&);                     \
  template void restore_controlled<T>(const State<T>&, Controls, State<T>&);                  \
  template BasisSampler make_sampler<T>(const State<T>&, int, std::uint64_t);                 \
  template std::vector<std::uint64_t> sample_basis_states<T>(const State<T>&, int, int,       \
                                                             std::uint64_t);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe::sim
