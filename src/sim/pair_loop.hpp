// The loop frame every gate kernel runs in (internal to src/sim).
//
// A gate on `target` with controls touches amplitude pairs (i0, i1 = i0 |
// target bit) whose control bits match. PairSpace lists them: the outer index
// h becomes i0 by inserting zero bits at the K sorted positions of the qubits
// the gate touches (K a template argument for 1-3 qubits, so the compiler
// unrolls that arithmetic), and each amplitude is a run of `run` contiguous
// slots (the batch; for a shared matrix also the qubits below the lowest one
// touched, so a single large state vectorises across amplitudes).
//
// As in PennyLane Lightning's applyNC1, the frame is written once per shape
// and each kernel is only its per-slot arithmetic, a `core` callable:
//   Pairs       one state in place, core(b, a0r, a0i, a1r, a1i)
//   StatePairs  phi and lam in place (the adjoint sweep), core(b, phi's 4, lam's 4)
//   Quads       one state in place, groups (i, i|a, i|b, i|a|b) for two qubits
//               at once, core(b, x00r, x00i, x01r, x01i, x10r, x10i, x11r, x11i)
//   PairsOut / QuadsOut  the same out of place through a basis permutation
// The core gets references to local copies of the slot's values, which the
// frame loads before and stores after it: with references into the state the
// compiler must assume the matrix pointers alias it and store after every
// partial product (2x slower, bench/RESULTS.md). So one core serves the
// in-place and the permuted frames. run_pairs compiles a frame with its core for
// baseline x86-64, AVX2+FMA and AVX-512 (target_clones, picked at run time) and
// splits large states across OpenMP threads around it.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <stdexcept>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "sim/clones.hpp"
#include "sim/state.hpp"

namespace qmoe::sim::detail {

using u64 = std::uint64_t;

// The amplitude pairs one gate touches.
struct PairSpace {
  int k = 0;            // number of qubits the gate touches (target + controls)
  int pos[64]{};        // their positions, ascending
  u64 set = 0;          // control bits that must be 1
  u64 tbit = 0;         // target bit
  u64 count = 0;        // number of pairs
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

inline void check_qubit(int n, int q, const char* what) {
  if (q < 0 || q >= n)
    throw std::invalid_argument(std::string(what) + ": qubit " + std::to_string(q) +
                                " out of range for " + std::to_string(n) + " qubits");
}

template <class T>
void check_same_shape(const State<T>& a, const State<T>& b) {
  if (a.n_qubits != b.n_qubits || a.batch != b.batch)
    throw std::invalid_argument("adjoint_step: states differ in shape");
}

// fold_low: treat qubits below the lowest touched one as part of the
// contiguous run (only valid when the matrix is the same for every sample).
inline PairSpace make_pairs(int n, std::size_t batch, int target, Controls c, bool fold_low) {
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

// The rows whose bits at c.mask equal c.value: check c against n qubits and
// count them; controlled_index(h, c) is the h-th (h's bits spread over the
// other positions).
inline std::size_t controlled_rows(int n, Controls c) {
  if (n < 1 || n > 40 || (c.mask >> n) != 0 || (c.value & ~c.mask) != 0)
    throw std::invalid_argument("controlled part: bad control mask for " + std::to_string(n) + " qubits");
  return std::size_t(1) << (n - std::popcount(c.mask));
}
inline u64 controlled_index(u64 h, Controls c) {
  for (u64 m = c.mask; m != 0; m &= m - 1) {
    const int p = std::countr_zero(m);
    h = ((h >> p) << (p + 1)) | (h & ((u64(1) << p) - 1));
  }
  return h | c.value;
}

// Give `out` the shape of `s` (out-of-place kernels write into it, then swap).
template <class T>
void shape_like(const State<T>& s, State<T>& out) {
  out.n_qubits = s.n_qubits;
  out.batch = s.batch;
  out.re.resize(s.re.size());
  out.im.resize(s.im.size());
}

// ---- the frames --------------------------------------------------------------

template <class T, class Core>
struct Pairs {
  T* re;
  T* im;
  Core core;
  template <int K>
  [[gnu::always_inline]] void run(const PairSpace& p, u64 h0, u64 h1) const {
    const std::size_t run = p.run;
    for (u64 h = h0; h < h1; ++h) {
      const u64 i0 = p.index0<K>(h), i1 = i0 | p.tbit;
      T* __restrict r0 = re + i0 * run;
      T* __restrict q0 = im + i0 * run;
      T* __restrict r1 = re + i1 * run;
      T* __restrict q1 = im + i1 * run;
#pragma omp simd
      for (std::size_t b = 0; b < run; ++b) {
        T a0r = r0[b], a0i = q0[b], a1r = r1[b], a1i = q1[b];
        core(b, a0r, a0i, a1r, a1i);
        r0[b] = a0r, q0[b] = a0i, r1[b] = a1r, q1[b] = a1i;
      }
    }
  }
};

template <class T, class Core>
struct StatePairs {
  T* phi_re;
  T* phi_im;
  T* lam_re;
  T* lam_im;
  Core core;
  template <int K>
  [[gnu::always_inline]] void run(const PairSpace& p, u64 h0, u64 h1) const {
    const std::size_t run = p.run;
    for (u64 h = h0; h < h1; ++h) {
      const u64 i0 = p.index0<K>(h), i1 = i0 | p.tbit;
      T* __restrict pr0 = phi_re + i0 * run;
      T* __restrict pi0 = phi_im + i0 * run;
      T* __restrict pr1 = phi_re + i1 * run;
      T* __restrict pi1 = phi_im + i1 * run;
      T* __restrict lr0 = lam_re + i0 * run;
      T* __restrict li0 = lam_im + i0 * run;
      T* __restrict lr1 = lam_re + i1 * run;
      T* __restrict li1 = lam_im + i1 * run;
#pragma omp simd
      for (std::size_t b = 0; b < run; ++b) {
        T p0r = pr0[b], p0i = pi0[b], p1r = pr1[b], p1i = pi1[b];
        T l0r = lr0[b], l0i = li0[b], l1r = lr1[b], l1i = li1[b];
        core(b, p0r, p0i, p1r, p1i, l0r, l0i, l1r, l1i);
        pr0[b] = p0r, pi0[b] = p0i, pr1[b] = p1r, pi1[b] = p1i;
        lr0[b] = l0r, li0[b] = l0i, lr1[b] = l1r, li1[b] = l1i;
      }
    }
  }
};

// The rows of a group of four: i00, i01 = i00 | a bit (p.tbit), i10 = i00 | b bit, i11.
template <class T, class Core>
struct Quads {
  T* re;
  T* im;
  u64 bbit;
  Core core;
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
        core(b, x00r, x00i, x01r, x01i, x10r, x10i, x11r, x11i);
        r00[b] = x00r, q00[b] = x00i, r01[b] = x01r, q01[b] = x01i;
        r10[b] = x10r, q10[b] = x10i, r11[b] = x11r, q11[b] = x11i;
      }
    }
  }
};

// Out of place with a basis permutation on one side: scatter (gather = false)
// writes row i to perm[i]; gather reads row i from perm[i]; perm null: rows
// stay where they are (a pass into another state). Separate frames from the
// in-place ones on purpose: one body for both (in and out possibly equal, so
// no __restrict) cost 15% (bench/RESULTS.md).
struct Permutation {
  const std::uint32_t* perm;
  bool gather;
  // The row read from and the row written to for row i.
  [[gnu::always_inline]] void rows(u64 i, u64& src, u64& dst) const {
    const u64 moved = perm ? perm[i] : i;
    src = gather ? moved : i, dst = gather ? i : moved;
  }
};

template <class T, class Core>
struct PairsOut {
  const T* in_re;
  const T* in_im;
  T* out_re;
  T* out_im;
  Permutation perm;
  Core core;
  template <int K>
  [[gnu::always_inline]] void run(const PairSpace& p, u64 h0, u64 h1) const {
    const std::size_t run = p.run;
    for (u64 h = h0; h < h1; ++h) {
      const u64 i0 = p.index0<K>(h), i1 = i0 | p.tbit;
      u64 s0, s1, d0, d1;
      perm.rows(i0, s0, d0), perm.rows(i1, s1, d1);
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
        core(b, a0r, a0i, a1r, a1i);
        w0[b] = a0r, v0[b] = a0i, w1[b] = a1r, v1[b] = a1i;
      }
    }
  }
};

template <class T, class Core>
struct QuadsOut {
  const T* in_re;
  const T* in_im;
  T* out_re;
  T* out_im;
  u64 bbit;
  Permutation perm;
  Core core;
  template <int K>
  [[gnu::always_inline]] void run(const PairSpace& p, u64 h0, u64 h1) const {
    const std::size_t run = p.run;
    for (u64 h = h0; h < h1; ++h) {
      const u64 i00 = p.index0<K>(h), i01 = i00 | p.tbit, i10 = i00 | bbit, i11 = i01 | bbit;
      u64 s[4], d[4];
      perm.rows(i00, s[0], d[0]), perm.rows(i01, s[1], d[1]);
      perm.rows(i10, s[2], d[2]), perm.rows(i11, s[3], d[3]);
      const T* __restrict r00 = in_re + s[0] * run;
      const T* __restrict q00 = in_im + s[0] * run;
      const T* __restrict r01 = in_re + s[1] * run;
      const T* __restrict q01 = in_im + s[1] * run;
      const T* __restrict r10 = in_re + s[2] * run;
      const T* __restrict q10 = in_im + s[2] * run;
      const T* __restrict r11 = in_re + s[3] * run;
      const T* __restrict q11 = in_im + s[3] * run;
      T* __restrict w00 = out_re + d[0] * run;
      T* __restrict v00 = out_im + d[0] * run;
      T* __restrict w01 = out_re + d[1] * run;
      T* __restrict v01 = out_im + d[1] * run;
      T* __restrict w10 = out_re + d[2] * run;
      T* __restrict v10 = out_im + d[2] * run;
      T* __restrict w11 = out_re + d[3] * run;
      T* __restrict v11 = out_im + d[3] * run;
#pragma omp simd
      for (std::size_t b = 0; b < run; ++b) {
        T x00r = r00[b], x00i = q00[b], x01r = r01[b], x01i = q01[b];
        T x10r = r10[b], x10i = q10[b], x11r = r11[b], x11i = q11[b];
        core(b, x00r, x00i, x01r, x01i, x10r, x10i, x11r, x11i);
        w00[b] = x00r, v00[b] = x00i, w01[b] = x01r, v01[b] = x01i;
        w10[b] = x10r, v10[b] = x10i, w11[b] = x11r, v11[b] = x11i;
      }
    }
  }
};

// ---- running a frame ------------------------------------------------------------

// Pairs [h0, h1) of one frame, compiled for each instruction set (flatten
// inlines the frame and its core into every clone), with the number of
// touched qubits K a template argument so index0 is unrolled.
template <class Frame>
QMOE_CLONES __attribute__((flatten)) void run_range(const Frame& f, const PairSpace& p, u64 h0, u64 h1) {
  switch (p.k) {
    case 1: f.template run<1>(p, h0, h1); break;
    case 2: f.template run<2>(p, h0, h1); break;
    case 3: f.template run<3>(p, h0, h1); break;
    default: f.template run<0>(p, h0, h1); break;
  }
}

// All pairs, split across threads (static contiguous ranges: deterministic and
// cache friendly) when the state is large.
template <class Frame>
void run_pairs(const Frame& f, const PairSpace& p) {
  if (p.count * p.run < kParallelAmplitudes || p.count < 2) {
    run_range(f, p, 0, p.count);
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
    run_range(f, p, b, e);
  }
}

}  // namespace qmoe::sim::detail
