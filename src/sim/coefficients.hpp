// How a kernel reads its matrix (internal to src/sim): N complex numbers (4
// for a 2x2 matrix, 2 for a diagonal), the same for every slot or one per
// sample, behind one accessor interface re(k, b), im(k, b), so a kernel core
// is written once for all of them. mul2 and mul_pair are the arithmetic at
// the heart of every gate kernel.
#pragma once

#include <cstddef>

#include "sim/state.hpp"

namespace qmoe::sim::detail {

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
template <class T>
PerSampleSU2<T> per_sample_su2(const BatchMat<T>& m) {
  return {m.re[0], m.im[0], m.re[2], m.im[2]};
}
template <class T>
bool is_real(const Mat<T>& m) {
  return m.im[0] == 0 && m.im[1] == 0 && m.im[2] == 0 && m.im[3] == 0;
}
template <class T>
SharedRealM<T> shared_real(const Mat<T>& m) {
  return {{m.re[0], m.re[1], m.re[2], m.re[3]}};
}
// f(accessor) with the cheapest accessor that reads m exactly: real, SU(2) or general.
template <class T, class F>
void with_accessor(const Mat<T>& m, F&& f) {
  if (is_real(m))
    f(shared_real(m));
  else
    f(shared(m));
}
template <class T, class F>
void with_accessor(const BatchMat<T>& m, F&& f) {
  if (m.su2)
    f(per_sample_su2(m));
  else
    f(per_sample(m));
}

// (a0, a1) <- M (a0, a1) for one slot; the heart of every kernel.
template <class T, class M>
[[gnu::always_inline]] inline void mul2(const M& m, std::size_t b, T& a0r, T& a0i, T& a1r, T& a1i) {
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

// Two 2x2s on a group of 4 amplitudes x(b bit)(a bit): ma on the pairs that
// differ in a's bit, mb on those that differ in b's bit (they commute).
template <class T, class MA, class MB>
[[gnu::always_inline]] inline void mul_pair(const MA& ma, const MB& mb, std::size_t b, T& x00r, T& x00i,
                                            T& x01r, T& x01i, T& x10r, T& x10i, T& x11r, T& x11i) {
  mul2<T>(ma, b, x00r, x00i, x01r, x01i);
  mul2<T>(ma, b, x10r, x10i, x11r, x11i);
  mul2<T>(mb, b, x00r, x00i, x10r, x10i);
  mul2<T>(mb, b, x01r, x01i, x11r, x11i);
}

}  // namespace qmoe::sim::detail
