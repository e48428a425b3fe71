// The simulator's fast kernels against the generic kernel and the dense
// reference: X (slot swap), diagonal, permutation, product-state, pair and
// permuted kernels, the adjoint overlap step, the SU(2) per-sample accessors.
#include <gtest/gtest.h>
#include <omp.h>

#include "circuit/execute.hpp"
#include "circuit/executor.hpp"
#include "circuit/plan.hpp"
#include "grad/adjoint.hpp"
#include "grad/adjoint_ops.hpp"
#include "test_helpers.hpp"

using namespace qmoe;
using namespace qmoe::testing;

namespace {

sim::Controls random_controls(std::mt19937_64& rng, int n, int target, int max_ctrl) {
  sim::Controls c;
  const int nc = int(rng() % (max_ctrl + 1));
  for (int i = 0; i < nc; ++i) {
    const int q = int(rng() % n);
    if (q == target) continue;
    c.mask |= std::uint64_t(1) << q;
    if (rng() & 1) c.value |= std::uint64_t(1) << q;
    else c.value &= ~(std::uint64_t(1) << q);
  }
  return c;
}

// Per-sample matrices stored as BatchMat / BatchDiag views.
template <class T>
struct PerSample {
  std::vector<T> data;
  sim::BatchMat<T> m;
  PerSample(std::mt19937_64& rng, int batch, bool diagonal) : data(std::size_t(8) * batch) {
    std::uniform_real_distribution<double> u(-M_PI, M_PI);
    for (int b = 0; b < batch; ++b) {
      const double a = u(rng);
      Mat2 g = diagonal ? gate_matrix(GateKind::RZ, &a) : random_unitary(rng);
      for (int k = 0; k < 4; ++k) {
        data[std::size_t(k) * batch + b] = T(g[k].real());
        data[std::size_t(4 + k) * batch + b] = T(g[k].imag());
      }
    }
    for (int k = 0; k < 4; ++k) {
      m.re[k] = data.data() + std::size_t(k) * batch;
      m.im[k] = data.data() + std::size_t(4 + k) * batch;
    }
  }
};

template <class T>
void check_kernels(double tol) {
  std::mt19937_64 rng(3);
  // (n, batch): small batched states and single states large enough for the threaded path.
  const int shapes[][2] = {{1, 3}, {3, 1}, {5, 7}, {6, 32}, {17, 1}, {12, 20}};
  for (const auto& sh : shapes) {
    const int n = sh[0], batch = sh[1];
    for (int trial = 0; trial < 6; ++trial) {
      const int target = int(rng() % n);
      const sim::Controls c = random_controls(rng, n, target, 3);
      const sim::State<T> s0 = random_state<T>(rng, n, batch);
      // X == generic matrix [[0,1],[1,0]]
      {
        auto a = s0, b = s0;
        sim::apply_x(a, target, c);
        sim::apply_matrix(b, target, c, sim::Mat<T>{{0, 1, 1, 0}, {0, 0, 0, 0}});
        EXPECT_EQ(max_diff(a, b), 0.0) << "X n=" << n;
      }
      // shared diagonal == generic
      {
        std::uniform_real_distribution<double> u(-M_PI, M_PI);
        const double ang = u(rng);
        const sim::Mat<T> m = to_kernel<T>(gate_matrix(GateKind::U1, &ang));
        auto a = s0, b = s0;
        sim::apply_diagonal(a, target, c, sim::Diag<T>{{m.re[0], m.re[3]}, {m.im[0], m.im[3]}});
        sim::apply_matrix(b, target, c, m);
        EXPECT_LE(max_diff(a, b), tol) << "diag n=" << n;
      }
      // per-sample diagonal == generic per-sample
      {
        PerSample<T> ps(rng, batch, true);
        auto a = s0, b = s0;
        sim::apply_diagonal(a, target, c,
                            sim::BatchDiag<T>{{ps.m.re[0], ps.m.re[3]}, {ps.m.im[0], ps.m.im[3]}});
        sim::apply_matrix(b, target, c, ps.m);
        EXPECT_LE(max_diff(a, b), tol) << "batch diag n=" << n;
      }
      // a real shared matrix (its own kernel) == the same matrix per sample (complex kernel),
      // alone and in a pair
      {
        std::uniform_real_distribution<double> u(-M_PI, M_PI);
        const double ang = u(rng), ang2 = u(rng);
        const Mat2 ry = gate_matrix(GateKind::RY, &ang), h = gate_matrix(GateKind::H, nullptr);
        Mat2 g;  // RY . H: real
        for (int r = 0; r < 2; ++r)
          for (int col = 0; col < 2; ++col) g[2 * r + col] = ry[2 * r] * h[col] + ry[2 * r + 1] * h[2 + col];
        const Mat2 g2 = gate_matrix(GateKind::RY, &ang2);
        const sim::Mat<T> m = to_kernel<T>(g), m2 = to_kernel<T>(g2);
        std::vector<T> data(std::size_t(16) * batch);
        sim::BatchMat<T> pm, pm2;
        for (int k = 0; k < 4; ++k) {
          pm.re[k] = data.data() + std::size_t(k) * batch, pm.im[k] = pm.re[k] + 4 * batch;
          pm2.re[k] = pm.re[k] + 8 * batch, pm2.im[k] = pm.re[k] + 12 * batch;
          for (int b2 = 0; b2 < batch; ++b2) {
            const_cast<T*>(pm.re[k])[b2] = T(g[k].real()), const_cast<T*>(pm.im[k])[b2] = T(g[k].imag());
            const_cast<T*>(pm2.re[k])[b2] = T(g2[k].real()), const_cast<T*>(pm2.im[k])[b2] = T(g2[k].imag());
          }
        }
        auto a = s0, b = s0;
        sim::apply_matrix(a, target, c, m);
        sim::apply_matrix(b, target, c, pm);
        EXPECT_LE(max_diff(a, b), tol) << "real n=" << n;
        if (n >= 2) {
          const int other = (target + 1) % n;
          auto a2 = s0, b2 = s0, a3 = s0;
          sim::apply_matrix_pair(a2, target, m, other, m2);
          sim::apply_matrix_pair(a3, target, pm, other, m2);
          sim::apply_matrix_pair(b2, target, pm, other, pm2);
          EXPECT_LE(max_diff(a2, b2), tol) << "real pair n=" << n;
          EXPECT_LE(max_diff(a3, b2), tol) << "per-sample + real pair n=" << n;
        }
      }
      // two 1-qubit matrices in one pass == one after the other (shared / per
      // sample), without and with controls common to both
      if (n >= 2) {
        const int other = (target + 1 + int(rng() % (n - 1))) % n;
        PerSample<T> pa(rng, batch, false), pb(rng, batch, false);
        const sim::Mat<T> ma = to_kernel<T>(random_unitary(rng)), mb = to_kernel<T>(random_unitary(rng));
        sim::Controls pc = random_controls(rng, n, target, 2);
        pc.mask &= ~(std::uint64_t(1) << other), pc.value &= pc.mask;
        for (int mode = 0; mode < 6; ++mode) {
          const sim::Controls cc = mode >= 3 ? pc : sim::Controls{};
          auto a = s0, b = s0;
          if (mode % 3 == 0) {
            sim::apply_matrix_pair(a, target, ma, other, mb, cc);
            sim::apply_matrix(b, target, cc, ma);
            sim::apply_matrix(b, other, cc, mb);
          } else if (mode % 3 == 1) {
            sim::apply_matrix_pair(a, target, pa.m, other, mb, cc);
            sim::apply_matrix(b, target, cc, pa.m);
            sim::apply_matrix(b, other, cc, mb);
          } else {
            sim::apply_matrix_pair(a, target, pa.m, other, pb.m, cc);
            sim::apply_matrix(b, target, cc, pa.m);
            sim::apply_matrix(b, other, cc, pb.m);
          }
          EXPECT_LE(max_diff(a, b), tol) << "pair n=" << n << " mode " << mode;
          // out of place, keeping the input: the same numbers, and the input kept exactly
          auto k = s0;
          sim::State<T> kept;
          if (mode % 3 == 0) sim::apply_matrix_pair(k, target, ma, other, mb, cc, &kept);
          if (mode % 3 == 1) sim::apply_matrix_pair(k, target, pa.m, other, mb, cc, &kept);
          if (mode % 3 == 2) sim::apply_matrix_pair(k, target, pa.m, other, pb.m, cc, &kept);
          EXPECT_EQ(max_diff(k, a), 0.0) << "pair keep n=" << n << " mode " << mode;
          EXPECT_EQ(max_diff(kept, s0), 0.0) << "pair keep n=" << n << " mode " << mode;
        }
      }
      // permutation of several controlled X == those X one by one; inverse undoes it
      if (n >= 2 && n <= 12) {
        std::vector<std::uint32_t> perm(std::size_t(1) << n);
        std::vector<std::pair<int, sim::Controls>> xs;
        for (int k = 0; k < 4; ++k) {
          const int t = int(rng() % n);
          xs.push_back({t, random_controls(rng, n, t, 2)});
        }
        for (std::size_t i = 0; i < perm.size(); ++i) {
          std::uint64_t j = i;
          for (auto& [t, cc] : xs)
            if ((j & cc.mask) == cc.value) j ^= std::uint64_t(1) << t;
          perm[i] = std::uint32_t(j);
        }
        auto a = s0, b = s0;
        sim::State<T> buf;
        sim::apply_permutation(a, perm.data(), false, buf);
        for (auto& [t, cc] : xs) sim::apply_x(b, t, cc);
        EXPECT_EQ(max_diff(a, b), 0.0) << "perm n=" << n;
        sim::apply_permutation(a, perm.data(), true, buf);
        EXPECT_EQ(max_diff(a, s0), 0.0) << "inverse perm n=" << n;
        // the in-place version for the moved amplitudes, cycle by cycle: the same, both ways
        const std::vector<std::uint32_t> moved = sim::permutation_cycles(perm.data(), perm.size());
        std::size_t n_moved = 0;
        for (std::size_t i = 0; i < perm.size(); ++i) n_moved += perm[i] != i;
        EXPECT_EQ(moved.size(), n_moved);
        if (n == 3) {  // cycles (0 1) and (2 3): listed cycle by cycle; out of order is refused
          const std::uint32_t p4[8] = {1, 0, 3, 2, 4, 5, 6, 7}, bad[4] = {0, 3, 2, 1};
          EXPECT_EQ(sim::permutation_cycles(p4, 8), (std::vector<std::uint32_t>{0, 1, 2, 3}));
          auto m0 = s0;
          EXPECT_THROW(sim::apply_permutation(m0, p4, bad, 4, false, buf), std::invalid_argument);
        }
        auto m1 = s0;
        sim::apply_permutation(m1, perm.data(), moved.data(), moved.size(), false, buf);
        EXPECT_EQ(max_diff(m1, b), 0.0) << "moved-only perm n=" << n;
        sim::apply_permutation(m1, perm.data(), moved.data(), moved.size(), true, buf);
        EXPECT_EQ(max_diff(m1, s0), 0.0) << "moved-only inverse perm n=" << n;
        // a 1-qubit matrix and then the permutation in one pass (shared and
        // per sample); the inverse call with the dagger undoes it
        PerSample<T> ps(rng, batch, false), psd = ps;
        for (int k = 0; k < 4; ++k)
          for (int b2 = 0; b2 < batch; ++b2) {
            const int kt = k == 1 ? 2 : k == 2 ? 1 : k;  // transpose
            psd.data[std::size_t(k) * batch + b2] = ps.data[std::size_t(kt) * batch + b2];
            psd.data[std::size_t(4 + k) * batch + b2] = -ps.data[std::size_t(4 + kt) * batch + b2];
          }
        for (int k = 0; k < 4; ++k)
          psd.m.re[k] = psd.data.data() + std::size_t(k) * batch,
          psd.m.im[k] = psd.data.data() + std::size_t(4 + k) * batch;
        const Mat2 u = random_unitary(rng);
        const sim::Mat<T> mu = to_kernel<T>(u), mud = to_kernel<T>(dagger(u));
        for (bool per : {false, true}) {
          auto a2 = s0, b2 = s0;
          if (per) {
            sim::apply_matrix_permute(a2, target, ps.m, perm.data(), false, buf);
            sim::apply_matrix(b2, target, {}, ps.m);
          } else {
            sim::apply_matrix_permute(a2, target, mu, perm.data(), false, buf);
            sim::apply_matrix(b2, target, {}, mu);
          }
          sim::apply_permutation(b2, perm.data(), false, buf);
          EXPECT_EQ(max_diff(a2, b2), 0.0) << "matrix+perm n=" << n;
          if (per)
            sim::apply_matrix_permute(a2, target, psd.m, perm.data(), true, buf);
          else
            sim::apply_matrix_permute(a2, target, mud, perm.data(), true, buf);
          EXPECT_LE(max_diff(a2, s0), 10 * tol) << "inverse matrix+perm n=" << n;
        }
      }
    }
    // product state == 1-qubit matrices applied to |0...0>
    if (n <= 12) {
      std::vector<T> amp(std::size_t(4) * n * batch);
      auto ref = sim::make_state<T>(n, batch);
      for (int q = 0; q < n; ++q) {
        PerSample<T> ps(rng, batch, false);
        for (int b = 0; b < batch; ++b)
          for (int k = 0; k < 4; ++k)  // column 0: m00, m10
            amp[std::size_t(q * 4 + k) * batch + b] =
                (k % 2 == 0 ? ps.m.re : ps.m.im)[k < 2 ? 0 : 2][b];
        sim::apply_matrix(ref, q, {}, ps.m);
      }
      auto s = sim::make_state<T>(n, batch);
      sim::set_product_state(s, amp.data());
      EXPECT_LE(max_diff(s, ref), tol) << "product n=" << n;
      // and with a permutation (a CNOT ring) in the same pass
      std::vector<std::uint32_t> perm(std::size_t(1) << n);
      for (std::size_t i = 0; i < perm.size(); ++i) {
        std::uint64_t j = i;
        for (int q = 0; q < n && n > 1; ++q)
          if ((j >> q) & 1) j ^= std::uint64_t(1) << ((q + 1) % n);
        perm[i] = std::uint32_t(j);
      }
      sim::State<T> buf;
      sim::apply_permutation(ref, perm.data(), false, buf);
      auto moved = s;  // the product state, permuted separately: the same numbers exactly
      sim::apply_permutation(moved, perm.data(), false, buf);
      sim::set_product_state_permuted(s, amp.data(), perm.data(), buf);
      EXPECT_EQ(max_diff(s, moved), 0.0) << "product + permutation n=" << n;
      EXPECT_LE(max_diff(s, ref), tol) << "product + permutation n=" << n;
    }
  }
}


// The overlap kernel on one rotation: n . overlap with n the rotation's own
// axis is the gradient of adjoint_step_rotation, and the undo is the same.
template <class T>
void check_overlap_kernel(double tol) {
  std::mt19937_64 rng(17);
  const GateKind kinds[3] = {GateKind::RX, GateKind::RY, GateKind::RZ};
  const int shapes[][2] = {{1, 3}, {4, 1}, {5, 8}, {7, 5}};
  for (const auto& sh : shapes) {
    const int n = sh[0], batch = sh[1];
    for (int trial = 0; trial < 9; ++trial) {
      const int target = int(rng() % n), kind = trial % 3;
      const sim::Controls c = random_controls(rng, n, target, 2);
      const sim::State<T> phi0 = random_state<T>(rng, n, batch), lam0 = random_state<T>(rng, n, batch);
      std::vector<double> ov(std::size_t(3) * batch, 0.0), g(std::size_t(batch), 0.0);
      double* ovp[3] = {ov.data(), ov.data() + batch, ov.data() + 2 * batch};
      const char pauli = "XYZ"[kind];
      auto p1 = phi0, l1 = lam0, p2 = phi0, l2 = lam0;
      if (trial % 2) {
        PerSample<T> ps(rng, batch, false);
        sim::adjoint_step_overlaps(p1, l1, target, c, ps.m, ovp);
        sim::adjoint_step_rotation(p2, l2, target, c, ps.m, pauli, g.data());
      } else {
        const double a = 0.7 * trial - 1;
        const sim::Mat<T> inv = to_kernel<T>(dagger(gate_matrix(kinds[kind], &a)));
        sim::adjoint_step_overlaps(p1, l1, target, c, inv, ovp);
        sim::adjoint_step_rotation(p2, l2, target, c, inv, pauli, g.data());
      }
      // (a real inverse, RY's, takes the real kernel in one and the complex one in the other)
      EXPECT_LE(max_diff(p1, p2), tol);
      EXPECT_LE(max_diff(l1, l2), tol);
      for (int b = 0; b < batch; ++b) EXPECT_NEAR(ov[std::size_t(kind) * batch + b], g[b], tol * (1 + std::abs(g[b])));
      // Only some axes (null pointers skip the others): the same sums for those.
      const int axes = 1 + trial % 7;
      std::vector<double> full(std::size_t(3) * batch, 0.0), part(std::size_t(3) * batch, -7.0);
      double* fp[3] = {full.data(), full.data() + batch, full.data() + 2 * batch};
      double* pp[3];
      for (int t = 0; t < 3; ++t) {
        pp[t] = (axes >> t) & 1 ? part.data() + std::size_t(t) * batch : nullptr;
        if (pp[t]) std::fill_n(pp[t], batch, 0.0);
      }
      sim::pauli_overlaps(phi0, lam0, target, c, fp);
      sim::pauli_overlaps(phi0, lam0, target, c, pp);
      for (std::size_t i = 0; i < part.size(); ++i)
        EXPECT_EQ(part[i], (axes >> (i / batch)) & 1 ? full[i] : -7.0) << "axes " << axes;
    }
  }
}

}  // namespace

TEST(Kernels, KernelsMatchGenericDouble) { check_kernels<double>(1e-14); }
TEST(Kernels, KernelsMatchGenericFloat) { check_kernels<float>(1e-6); }

TEST(Kernels, OverlapKernelMatchesRotationStepDouble) { check_overlap_kernel<double>(1e-13); }
TEST(Kernels, OverlapKernelMatchesRotationStepFloat) { check_overlap_kernel<float>(1e-5); }

// Per-sample SU(2) matrices (BatchMat::su2, products of RX, RY, RZ): the
// kernels that read only a and b agree with the ones that read all 8 arrays,
// for a single gate, pairs, a folded permutation and the overlap step.
TEST(Kernels, SU2KernelsMatchGeneralPerSample) {
  std::mt19937_64 rng(21);
  const int n = 5, B = 6;
  std::vector<double> data(std::size_t(2) * 8 * B);
  auto make = [&](int slot) {
    for (int b = 0; b < B; ++b) {
      const auto a = random_vector(rng, 3);
      const Mat2 u = gate_matrix(GateKind::RX, &a[0]);  // a product of rotations: in SU(2)
      const Mat2 v = gate_matrix(GateKind::RY, &a[1]), w = gate_matrix(GateKind::RZ, &a[2]);
      Mat2 m{};
      for (int r = 0; r < 2; ++r)
        for (int c = 0; c < 2; ++c) {
          cplx uv = 0, s = 0;
          for (int k = 0; k < 2; ++k) {
            uv = 0;
            for (int l = 0; l < 2; ++l) uv += u[r * 2 + l] * v[l * 2 + k];
            s += uv * w[k * 2 + c];
          }
          m[r * 2 + c] = s;
        }
      for (int k = 0; k < 4; ++k) {
        data[(std::size_t(slot) * 8 + k) * B + b] = m[k].real();
        data[(std::size_t(slot) * 8 + 4 + k) * B + b] = m[k].imag();
      }
    }
    sim::BatchMat<double> bm;
    for (int k = 0; k < 4; ++k) {
      bm.re[k] = data.data() + (std::size_t(slot) * 8 + k) * B;
      bm.im[k] = data.data() + (std::size_t(slot) * 8 + 4 + k) * B;
    }
    return bm;
  };
  const sim::BatchMat<double> m0 = make(0), m1 = make(1);
  auto su2 = [](sim::BatchMat<double> m) { return m.su2 = true, m; };
  auto expect_equal = [](const sim::State<double>& a, const sim::State<double>& b, const char* what) {
    for (std::size_t i = 0; i < a.re.size(); ++i) {
      ASSERT_NEAR(a.re[i], b.re[i], 1e-14) << what << " " << i;
      ASSERT_NEAR(a.im[i], b.im[i], 1e-14) << what << " " << i;
    }
  };
  const sim::State<double> s0 = random_state<double>(rng, n, B);
  {
    auto a = s0, b = s0;
    sim::apply_matrix(a, 2, sim::Controls{0b1, 0b1}, m0);
    sim::apply_matrix(b, 2, sim::Controls{0b1, 0b1}, su2(m0));
    expect_equal(a, b, "single");
  }
  {
    auto a = s0, b = s0, c = s0;
    sim::apply_matrix_pair(a, 1, m0, 3, m1);
    sim::apply_matrix_pair(b, 1, su2(m0), 3, su2(m1));
    sim::apply_matrix_pair(c, 1, su2(m0), 3, m1);  // mixed: the general kernel
    expect_equal(a, b, "pair");
    expect_equal(a, c, "mixed pair");
    const double shared_a[3] = {0.3, -0.2, 0.7};
    const sim::Mat<double> sh = to_kernel<double>(gate_matrix(GateKind::U3, shared_a));
    auto d = s0, e = s0;
    sim::apply_matrix_pair(d, 1, m0, 4, sh);
    sim::apply_matrix_pair(e, 1, su2(m0), 4, sh);
    expect_equal(d, e, "pair with a shared matrix");
  }
  {
    std::vector<std::uint32_t> perm(std::size_t(1) << n);
    for (std::uint32_t i = 0; i < perm.size(); ++i) perm[i] = (i * 7 + 3) % perm.size();
    auto a = s0, b = s0;
    sim::State<double> buf;
    sim::apply_matrix_permute(a, 0, m0, perm.data(), false, buf);
    sim::apply_matrix_permute(b, 0, su2(m0), perm.data(), false, buf);
    expect_equal(a, b, "permuted");
  }
  {
    auto pa = s0, la = random_state<double>(rng, n, B), pb = pa, lb = la;
    std::vector<double> oa(3 * B, 0.0), ob(3 * B, 0.0);
    double* ova[3] = {&oa[0], &oa[B], &oa[2 * B]};
    double* ovb[3] = {&ob[0], &ob[B], &ob[2 * B]};
    sim::adjoint_step_overlaps(pa, la, 4, sim::Controls{}, m0, ova);
    sim::adjoint_step_overlaps(pb, lb, 4, sim::Controls{}, su2(m0), ovb);
    expect_equal(pa, pb, "overlap step phi");
    expect_equal(la, lb, "overlap step lam");
    for (std::size_t i = 0; i < oa.size(); ++i) EXPECT_NEAR(oa[i], ob[i], 1e-14);
  }
}

