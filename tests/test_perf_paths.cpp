// The fast paths against the generic kernel and the dense reference:
// X (slot swap), diagonal, permutation and product-state kernels; fused
// execution plans (1-qubit fusion, permutation tables, product-state prefix);
// the planned adjoint sweep.
#include <gtest/gtest.h>
#include <omp.h>

#include "circuit/execute.hpp"
#include "circuit/fusion.hpp"
#include "grad/adjoint.hpp"
#include "test_helpers.hpp"

using namespace qmoe;
using namespace qmoe::testing;

namespace {

template <class T>
double max_diff(const sim::State<T>& a, const sim::State<T>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.re.size(); ++i)
    d = std::max({d, std::abs(double(a.re[i]) - b.re[i]), std::abs(double(a.im[i]) - b.im[i])});
  return d;
}

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

// A circuit with every fusion opportunity: an encoder prefix, rotation runs
// between CNOT rings, controlled rotations, SWAPs, diagonal runs, and random gates.
Circuit structured_circuit(std::mt19937_64& rng, int n) {
  Circuit c;
  c.n_qubits = n;
  c.n_params = 6;
  c.n_features = 5;
  const GateKind enc[4] = {GateKind::RY, GateKind::RZ, GateKind::RX, GateKind::RY};
  for (int l = 0; l < 5; ++l)
    for (int q = 0; q < n; ++q) add_gate(c, make_gate(enc[l % 4], q, {}, {Angle::feature((l + q) % 5, 0.7)}));
  for (int layer = 0; layer < 2; ++layer) {
    for (int q = 0; q < n; ++q) {
      add_gate(c, make_gate(GateKind::RX, q, {}, {Angle::param((q + layer) % 6)}));
      add_gate(c, make_gate(GateKind::RZ, q, {}, {Angle::constant(0.3 * q)}));
      add_gate(c, make_gate(GateKind::T, q));
    }
    for (int q = 0; q < n; ++q) add_gate(c, make_gate(GateKind::X, (q + 1) % n, {{q, true}}));
    if (n >= 3) {
      add_gate(c, make_gate(GateKind::RY, 2, {{0, false}, {1, true}}, {Angle::param(layer)}));
      add_gate(c, make_gate(GateKind::RX, 2, {{0, false}, {1, true}}, {Angle::feature(1)}));
      Gate sw = make_gate(GateKind::Swap, 0, {{2, true}});
      sw.target2 = 1;
      add_gate(c, sw);
      add_gate(c, make_gate(GateKind::X, 1, {{0, true}, {2, false}}));
      // an expert-style layer: rotations on qubits 1.. all controlled by qubit 0 on |0>
      // (controlled pairs in the forward plan, a controlled layer in the adjoint sweep)
      for (int q = 1; q < n; ++q) {
        add_gate(c, make_gate(GateKind::RX, q, {{0, false}}, {Angle::param((q + 2) % 6)}));
        add_gate(c, make_gate(GateKind::RY, q, {{0, false}}, {Angle::feature(q % 5)}));
      }
    }
  }
  for (int i = 0; i < 20; ++i) add_gate(c, random_gate(rng, n, 2, c.n_params, c.n_features));
  return c;
}

}  // namespace

TEST(PerfPaths, KernelsMatchGenericDouble) { check_kernels<double>(1e-14); }
TEST(PerfPaths, KernelsMatchGenericFloat) { check_kernels<float>(1e-6); }

// Planned execution (every combination of options) == gate by gate to 1e-12,
// and == the dense reference.
TEST(PerfPaths, PlansMatchGateByGateAndDense) {
  bool saw_pair_permute = false, saw_controlled_pair = false;
  std::mt19937_64 rng(21);
  for (int trial = 0; trial < 16; ++trial) {
    const int n = 2 + trial % 5, batch = 1 + trial % 5;
    Circuit c = trial % 2 ? structured_circuit(rng, n)
                          : random_circuit(rng, n, 60, 2, 4, 3);
    const auto theta = random_vector(rng, std::size_t(c.n_params));
    const auto x = random_vector(rng, std::size_t(c.n_features) * batch);
    GateScratch<double> scratch;
    auto ref = sim::make_state<double>(n, batch);
    for (const Gate& g : c.gates) apply_gate(ref, g, theta.data(), x.data(), c.n_features, false, scratch);
    for (int mask = 0; mask < 8; ++mask) {
      PlanOptions o;
      o.fuse = mask & 1;
      o.permutations = mask & 2;
      o.product_prefix = mask & 4;
      const Plan p = make_plan(c, o);
      auto s = sim::make_state<double>(n, batch);
      run_plan(c, p, theta.data(), x.data(), s, scratch);
      EXPECT_LE(max_diff(s, ref), 1e-12) << "trial " << trial << " options " << mask;
      if (o.fuse && trial % 2) {
        EXPECT_LT(p.ops.size(), c.gates.size());
        // the CNOT ring after the rotation layer folds into the layer's last op
        if (o.permutations && n > 2) {
          EXPECT_TRUE(std::any_of(p.ops.begin(), p.ops.end(), [](const PlanOp& op) {
            return !op.perm.empty() || (op.kind == PlanOp::Kind::Pair && !op.parts[1].perm.empty());
          }));
        }
        for (const PlanOp& op : p.ops) {  // a pair of per-sample ops writing through a folded ring
          saw_pair_permute = saw_pair_permute || (op.kind == PlanOp::Kind::Pair && !op.parts[1].perm.empty());
          saw_controlled_pair = saw_controlled_pair || (op.kind == PlanOp::Kind::Pair && op.parts[0].controls.mask != 0);
        }
        // the rotation layer after a ring runs as pairs of qubits
        if (n > 2) {
          EXPECT_TRUE(std::any_of(p.ops.begin(), p.ops.end(), [](const PlanOp& op) {
            return op.kind == PlanOp::Kind::Pair;
          }));
        }
      }
      // The planned inverse undoes the run (ops in reverse, each inverted).
      for (auto it = p.ops.rbegin(); it != p.ops.rend(); ++it)
        apply_op(s, c, *it, theta.data(), x.data(), c.n_features, true, scratch);
      auto zero = sim::make_state<double>(n, batch);
      EXPECT_LE(max_diff(s, zero), 1e-12) << "inverse, trial " << trial << " options " << mask;
    }
    for (int b = 0; b < batch; ++b) {
      const auto psi = dense_run(c, theta, x.data() + std::size_t(b) * c.n_features);
      for (std::size_t i = 0; i < psi.size(); ++i) {
        EXPECT_NEAR(ref.re[i * batch + b], psi[i].real(), 1e-12);
        EXPECT_NEAR(ref.im[i * batch + b], psi[i].imag(), 1e-12);
      }
    }
  }
  EXPECT_TRUE(saw_pair_permute);
  EXPECT_TRUE(saw_controlled_pair);
}

// The planned adjoint sweep (fused non-differentiable ops, stop before the
// encoder) against central finite differences of the dense reference, for
// theta and x, and run_circuit in float against double.
TEST(PerfPaths, PlannedAdjointMatchesDenseFiniteDifferences) {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 6; ++trial) {
    const int n = 2 + trial % 4, batch = 1 + trial % 3;
    Circuit c = structured_circuit(rng, n);
    const auto theta = random_vector(rng, std::size_t(c.n_params));
    const auto x = random_vector(rng, std::size_t(c.n_features) * batch);
    std::vector<PauliString> obs;
    for (int q = 0; q < n; ++q) obs.push_back(PauliString::Z(q));
    obs.push_back(PauliString::parse("X0"));
    const auto w = random_vector(rng, obs.size() * batch, -1, 1);
    auto loss = [&](const std::vector<double>& th, const std::vector<double>& xx) {
      double L = 0;
      for (int b = 0; b < batch; ++b) {
        const auto psi = dense_run(c, th, xx.data() + std::size_t(b) * c.n_features);
        for (std::size_t k = 0; k < obs.size(); ++k) L += w[b * obs.size() + k] * dense_expval(psi, obs[k]);
      }
      return L;
    };
    Workspace<double> ws;
    ws.chunk_size = 2;
    std::vector<double> ev(obs.size() * batch), dtheta(theta.size(), 0.0), dx(x.size());
    forward(c, theta, x.data(), batch, obs, ev.data(), ws);
    backward(c, theta, x.data(), batch, obs, w.data(), dtheta.data(), dx.data(), ws);
    const double h = 1e-5;
    for (std::size_t j = 0; j < theta.size(); ++j) {
      auto tp = theta, tm = theta;
      tp[j] += h, tm[j] -= h;
      EXPECT_NEAR(dtheta[j], (loss(tp, x) - loss(tm, x)) / (2 * h), 1e-6) << "theta " << j;
    }
    for (std::size_t j = 0; j < x.size(); ++j) {
      auto xp = x, xm = x;
      xp[j] += h, xm[j] -= h;
      EXPECT_NEAR(dx[j], (loss(theta, xp) - loss(theta, xm)) / (2 * h), 1e-6) << "x " << j;
    }
    // theta only (the sweep stops at the first Param gate, after the encoder)
    std::vector<double> dtheta2(theta.size(), 0.0);
    backward(c, theta, x.data(), batch, obs, w.data(), dtheta2.data(), nullptr, ws);
    for (std::size_t j = 0; j < theta.size(); ++j) EXPECT_NEAR(dtheta2[j], dtheta[j], 1e-12);
    // float follows double
    Workspace<float> wf;
    std::vector<double> evf(ev.size());
    forward(c, theta, x.data(), batch, obs, evf.data(), wf);
    for (std::size_t i = 0; i < ev.size(); ++i) EXPECT_NEAR(evf[i], ev[i], 1e-5);
  }
}

namespace {

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

// Z on every qubit and one non-diagonal string: what the sweep tests read out.
std::vector<PauliString> sweep_observables(int n) {
  std::vector<PauliString> obs;
  for (int q = 0; q < n; ++q) obs.push_back(PauliString::Z(q));
  if (n >= 2) obs.push_back(PauliString::parse("X0 Y1"));
  return obs;
}

// The adjoint method gate by gate with the generic kernels (no plan, no
// fusion): sim::adjoint_step with dG/da for every differentiable gate.
void reference_adjoint(const Circuit& c, const std::vector<double>& theta, const std::vector<double>& x,
                       int batch, const std::vector<PauliString>& obs, const std::vector<double>& w,
                       std::vector<double>& dtheta, std::vector<double>* dx) {
  const int n = c.n_qubits, F = c.n_features, K = int(obs.size());
  GateScratch<double> scratch;
  auto psi = sim::make_state<double>(n, batch);
  for (const Gate& g : c.gates) apply_gate(psi, g, theta.data(), x.data(), F, false, scratch);
  auto lam = psi;
  std::fill(lam.re.begin(), lam.re.end(), 0.0);
  std::fill(lam.im.begin(), lam.im.end(), 0.0);
  std::vector<double> wk(static_cast<std::size_t>(batch));
  for (int k = 0; k < K; ++k) {
    for (int b = 0; b < batch; ++b) wk[b] = w[std::size_t(b) * K + k];
    sim::add_weighted_pauli(psi, obs[k].x, obs[k].z, wk.data(), lam);
  }
  auto phi = psi;
  std::vector<double> mats(std::size_t(4 * 8) * batch), grad(std::size_t(3) * batch);
  auto view = [&](int slot) {
    sim::BatchMat<double> m;
    for (int t = 0; t < 4; ++t) {
      m.re[t] = mats.data() + std::size_t(slot * 8 + t) * batch;
      m.im[t] = mats.data() + std::size_t(slot * 8 + 4 + t) * batch;
    }
    return m;
  };
  auto put = [&](int slot, int b, const Mat2& m) {
    for (int t = 0; t < 4; ++t) {
      mats[std::size_t(slot * 8 + t) * batch + b] = m[t].real();
      mats[std::size_t(slot * 8 + 4 + t) * batch + b] = m[t].imag();
    }
  };
  for (auto it = c.gates.rbegin(); it != c.gates.rend(); ++it) {
    const Gate& g = *it;
    int slots[3], nd = 0;
    for (int j = 0; j < angle_count(g.kind); ++j) {
      const AngleSource s = g.angles[j].source;
      if (s == AngleSource::Param || (dx && s == AngleSource::Feature)) slots[nd++] = j;
    }
    if (nd == 0) {
      apply_gate(phi, g, theta.data(), x.data(), F, true, scratch);
      apply_gate(lam, g, theta.data(), x.data(), F, true, scratch);
      continue;
    }
    for (int b = 0; b < batch; ++b) {
      const auto a = resolve_angles(g, theta.data(), x.data() + std::size_t(b) * F);
      put(0, b, dagger(gate_matrix(g.kind, a.data(), g.matrix)));
      for (int j = 0; j < nd; ++j) put(1 + j, b, gate_matrix_derivative(g.kind, a.data(), slots[j]));
    }
    sim::BatchMat<double> d[3];
    for (int j = 0; j < nd; ++j) d[j] = view(1 + j);
    std::fill(grad.begin(), grad.end(), 0.0);
    double* gp[3] = {grad.data(), grad.data() + batch, grad.data() + 2 * batch};
    sim::adjoint_step(phi, lam, g.target, control_mask(g), view(0), nd, d, gp);
    for (int j = 0; j < nd; ++j) {
      const Angle& a = g.angles[slots[j]];
      for (int b = 0; b < batch; ++b) {
        if (a.source == AngleSource::Param) dtheta[std::size_t(a.index)] += a.value * gp[j][b];
        else (*dx)[std::size_t(b) * F + a.index] += a.value * gp[j][b];
      }
    }
  }
}

// A sweep test case: random theta, x and observable weights for circuit c,
// the gate-by-gate reference gradients, and backward() in float against them.
struct SweepCase {
  Circuit c;
  int batch;
  std::vector<double> theta, x, w;
  std::vector<PauliString> obs;
  SweepCase(std::mt19937_64& rng, Circuit circuit, int b) : c(std::move(circuit)), batch(b) {
    theta = random_vector(rng, std::size_t(c.n_params));
    x = random_vector(rng, std::size_t(c.n_features) * batch);
    obs = sweep_observables(c.n_qubits);
    w = random_vector(rng, obs.size() * batch, -1, 1);
  }
  void reference(bool want_dx, std::vector<double>& rt, std::vector<double>& rx) const {
    rt.assign(theta.size(), 0.0);
    rx.assign(x.size(), 0.0);
    reference_adjoint(c, theta, x, batch, obs, w, rt, want_dx ? &rx : nullptr);
  }
  void check_float(int saved_layers, const std::vector<double>& rt, int trial) const {
    Workspace<float> wf;
    wf.saved_layers = saved_layers;
    std::vector<double> ev(obs.size() * batch), dtf(theta.size(), 0.0);
    forward(c, theta, x.data(), batch, obs, ev.data(), wf);
    backward(c, theta, x.data(), batch, obs, w.data(), dtf.data(), nullptr, wf);
    for (std::size_t j = 0; j < theta.size(); ++j) EXPECT_NEAR(dtf[j], rt[j], 2e-4) << "float, trial " << trial;
  }
};

}  // namespace

TEST(PerfPaths, OverlapKernelMatchesRotationStepDouble) { check_overlap_kernel<double>(1e-13); }
TEST(PerfPaths, OverlapKernelMatchesRotationStepFloat) { check_overlap_kernel<float>(1e-5); }

// backward() with differentiable rotations fused into runs (one overlap pass
// per run) == the gate-by-gate adjoint with the generic kernels, to 1e-12,
// for theta and x; float follows double.
TEST(PerfPaths, FusedAdjointMatchesGateByGate) {
  std::mt19937_64 rng(29);
  for (int trial = 0; trial < 12; ++trial) {
    const int n = 2 + trial % 5, batch = 1 + trial % 4;
    Circuit c = trial % 3 == 2 ? random_circuit(rng, n, 60, 2, 4, 3) : structured_circuit(rng, n);
    if (trial % 3 == 1)  // runs of several differentiable rotations on one qubit, some controlled
      for (int q = 0; q < n; ++q) {
        const std::vector<Control> ctl = q % 2 && n > 1 ? std::vector<Control>{{(q + 1) % n, true}}
                                                        : std::vector<Control>{};
        add_gate(c, make_gate(GateKind::RY, q, ctl, {Angle::param(q % c.n_params, 0.8)}));
        add_gate(c, make_gate(GateKind::RZ, q, ctl, {Angle::feature(q % c.n_features)}));
        add_gate(c, make_gate(GateKind::RX, q, ctl, {Angle::param((q + 1) % c.n_params)}));
        add_gate(c, make_gate(GateKind::RY, q, ctl, {Angle::param((q + 2) % c.n_params, -1.3)}));
      }
    const SweepCase t(rng, c, batch);
    for (bool want_dx : {false, true}) {
      std::vector<double> rt, rx;
      t.reference(want_dx, rt, rx);
      Workspace<double> ws;
      ws.chunk_size = 3;
      std::vector<double> ev(t.obs.size() * batch), dt(t.theta.size(), 0.0), dx(t.x.size(), 0.0);
      forward(c, t.theta, t.x.data(), batch, t.obs, ev.data(), ws);
      backward(c, t.theta, t.x.data(), batch, t.obs, t.w.data(), dt.data(), want_dx ? dx.data() : nullptr, ws);
      for (std::size_t j = 0; j < dt.size(); ++j) EXPECT_NEAR(dt[j], rt[j], 1e-12) << "trial " << trial << " theta " << j;
      if (want_dx) {
        for (std::size_t j = 0; j < dx.size(); ++j) EXPECT_NEAR(dx[j], rx[j], 1e-12) << "trial " << trial << " x " << j;
      }
      t.check_float(0, rt, trial);
    }
  }
}

// Per-sample rotation matrices use a vectorised sin/cos: the same numbers as
// libm (through gate-by-gate apply_gate) to 1e-12 over many periods and
// quadrants, and past the range where it falls back to libm.
TEST(PerfPaths, FeatureRotationsMatchLibm) {
  std::mt19937_64 rng(41);
  const int n = 3, batch = 9;
  Circuit c;
  c.n_qubits = n;
  const GateKind kinds[3] = {GateKind::RX, GateKind::RY, GateKind::RZ};
  for (int l = 0; l < 4; ++l)
    for (int q = 0; q < n; ++q) {
      add_gate(c, make_gate(kinds[(l + q) % 3], q, {}, {Angle::feature(l * n + q, l == 3 ? 1.0 : 0.5 + l)}));
      add_gate(c, make_gate(GateKind::X, (q + 1) % n, {{q, true}}));
    }
  for (double range : {4.0, 3e4, 5e5}) {
    const auto theta = std::vector<double>{};
    const auto x = random_vector(rng, std::size_t(c.n_features) * batch, -range, range);
    GateScratch<double> scratch;
    auto ref = sim::make_state<double>(n, batch), s = ref;
    for (const Gate& g : c.gates) apply_gate(ref, g, theta.data(), x.data(), c.n_features, false, scratch);
    run_circuit(c, theta.data(), x.data(), s, scratch);
    EXPECT_LE(max_diff(s, ref), 1e-12) << "range " << range;
  }
}

namespace {

// Layered circuits for the layer sweep: an encoder, uncontrolled ansatz
// layers with rings, and expert-like layers whose gates all carry the same
// controls on qubit 0 (targets 1..n-1), then random gates.
Circuit layered_circuit(std::mt19937_64& rng, int n, bool controlled) {
  Circuit c = structured_circuit(rng, n);
  const int p0 = c.n_params;
  for (int layer = 0; layer < 3; ++layer) {
    const std::vector<Control> ctl =
        controlled && n > 2 ? std::vector<Control>{{0, layer % 2 == 0}} : std::vector<Control>{};
    for (int q = ctl.empty() ? 0 : 1; q < n; ++q) {
      add_gate(c, make_gate(GateKind::RY, q, ctl, {Angle::param(p0 + 2 * layer, 0.9)}));
      add_gate(c, make_gate(GateKind::RZ, q, ctl, {Angle::feature(q % c.n_features)}));
      add_gate(c, make_gate(GateKind::H, q, ctl));
      add_gate(c, make_gate(GateKind::RX, q, ctl, {Angle::param(p0 + 2 * layer + 1)}));
    }
    for (int q = 0; q < n; ++q) add_gate(c, make_gate(GateKind::X, (q + 1) % n, {{q, true}}));
  }
  for (int i = 0; i < 6; ++i) add_gate(c, random_gate(rng, n, 1, c.n_params, c.n_features));
  return c;
}

}  // namespace

// find_layers: every layer's gates commute across targets (reordering a
// layer, per-target order kept, gives the same state), a layer's gates sit on
// >= 2 targets, and the planned run with barriers saves, at each barrier,
// exactly the state after the gates before it.
TEST(PerfPaths, LayersCommuteAndBarriersSaveStates) {
  std::mt19937_64 rng(43);
  int layers_seen = 0, row_saves = 0;
  for (int trial = 0; trial < 12; ++trial) {
    const int n = 2 + trial % 5, batch = 1 + trial % 3;
    Circuit c = trial % 3 == 2 ? random_circuit(rng, n, 80, 1, 4, 3) : layered_circuit(rng, n, trial % 2);
    const auto theta = random_vector(rng, std::size_t(c.n_params));
    const auto x = random_vector(rng, std::size_t(c.n_features) * batch);
    GateScratch<double> scratch;
    const std::vector<GateRange> layers = find_layers(c);
    layers_seen += int(layers.size());
    std::vector<int> barriers;
    std::vector<sim::Controls> rows;  // each layer's controls: the amplitudes it changes
    for (const GateRange& l : layers) {
      std::uint64_t targets = 0;
      for (int gi = l.begin; gi < l.end; ++gi) targets |= std::uint64_t(1) << c.gates[std::size_t(gi)].target;
      EXPECT_GE(std::popcount(targets), 2);
      // the layer's gates grouped by target (stable), in reverse target order
      Circuit moved = c;
      std::vector<int> order;
      for (int q = n - 1; q >= 0; --q)
        for (int gi = l.begin; gi < l.end; ++gi)
          if (c.gates[std::size_t(gi)].target == q) order.push_back(gi);
      for (int k = 0; k < l.end - l.begin; ++k) moved.gates[std::size_t(l.begin + k)] = c.gates[std::size_t(order[std::size_t(k)])];
      auto a = sim::make_state<double>(n, batch), b = a;
      for (const Gate& g : c.gates) apply_gate(a, g, theta.data(), x.data(), c.n_features, false, scratch);
      for (const Gate& g : moved.gates) apply_gate(b, g, theta.data(), x.data(), c.n_features, false, scratch);
      EXPECT_LE(max_diff(a, b), 1e-12) << "trial " << trial << " layer " << l.begin;
      if (l.begin > 0) barriers.push_back(l.begin), rows.push_back(control_mask(c.gates[std::size_t(l.begin)]));
    }
    if (barriers.empty()) continue;
    PlanOptions o;
    o.barriers = barriers;
    const Plan p = make_plan(c, o);
    for (const PlanOp& op : p.ops) {
      const int lo = *std::min_element(op.gates.begin(), op.gates.end());
      const int hi = std::max(*std::max_element(op.gates.begin(), op.gates.end()),
                              op.perm_gates.empty() ? -1 : op.perm_gates.back());
      const int seg_lo = op.segment == 0 ? 0 : barriers[std::size_t(op.segment - 1)];
      const int seg_hi = op.segment == int(barriers.size()) ? int(c.gates.size()) : barriers[std::size_t(op.segment)];
      EXPECT_TRUE(lo >= seg_lo && hi < seg_hi) << "trial " << trial << ": an op spans a barrier";
    }
    // whole states, then (as forward() saves a controlled layer) only the rows the layer changes
    for (bool part : {false, true}) {
      std::vector<sim::State<double>> saved;
      auto s = sim::make_state<double>(n, batch);
      run_plan(c, p, theta.data(), x.data(), s, scratch, &saved, part ? rows.data() : nullptr);
      ASSERT_EQ(saved.size(), barriers.size());
      for (std::size_t k = 0; k < barriers.size(); ++k) {
        auto ref = sim::make_state<double>(n, batch);
        for (int gi = 0; gi < barriers[k]; ++gi)
          apply_gate(ref, c.gates[std::size_t(gi)], theta.data(), x.data(), c.n_features, false, scratch);
        if (part && rows[k].mask != 0) {
          sim::State<double> ref_part;
          sim::copy_controlled(ref, rows[k], ref_part);
          ref = ref_part;
          ++row_saves;
        }
        ASSERT_EQ(saved[k].re.size(), ref.re.size()) << "trial " << trial << " barrier " << barriers[k];
        EXPECT_LE(max_diff(saved[k], ref), 1e-12) << "trial " << trial << " barrier " << barriers[k];
      }
    }
  }
  EXPECT_GT(layers_seen, 12);
  EXPECT_GT(row_saves, 4);
}

// The layer sweep (gradients at a layer's end, lam undone, phi restored from
// the state forward() saved) == the gate-by-gate adjoint to 1e-12, for theta
// and x, with no, one and many saved layers, and twice after one forward.
TEST(PerfPaths, LayerSweepMatchesGateByGate) {
  std::mt19937_64 rng(47);
  for (int trial = 0; trial < 8; ++trial) {
    // big enough layers to be saved (layers_to_save): >= 4 targets; under one
    // control (on qubit 0, every other row) half the state is saved and put back
    const bool controlled = trial % 2;
    const int n = controlled ? 9 : 4 + trial % 5, batch = 1 + trial % 4;
    const SweepCase t(rng, layered_circuit(rng, n, controlled), batch);
    const Circuit& c = t.c;
    for (bool want_dx : {false, true}) {
      std::vector<double> rt, rx;
      t.reference(want_dx, rt, rx);
      for (int saved : {0, 1, 8}) {
        Workspace<double> ws;
        ws.chunk_size = 2;
        ws.saved_layers = saved;
        std::vector<double> ev(t.obs.size() * batch), dx(t.x.size(), 0.0);
        forward(c, t.theta, t.x.data(), batch, t.obs, ev.data(), ws);
        if (saved > 0) {  // the 3 layers added after the structured part, at least
          EXPECT_GE(int(ws.saved_gates.size()), std::min(saved, 3)) << "trial " << trial;
          double states = 0;  // whole states' worth
          int parts = 0;
          for (const sim::Controls& rows : ws.saved_rows)
            states += std::ldexp(1.0, -std::popcount(rows.mask)), parts += rows.mask != 0;
          EXPECT_LE(states, saved) << "trial " << trial;
          if (controlled) {
            EXPECT_GE(parts, 2) << "trial " << trial;
          }
        }
        for (int repeat = 0; repeat < 2; ++repeat) {
          std::vector<double> dt(t.theta.size(), 0.0);
          backward(c, t.theta, t.x.data(), batch, t.obs, t.w.data(), dt.data(), want_dx ? dx.data() : nullptr, ws);
          for (std::size_t j = 0; j < dt.size(); ++j)
            EXPECT_NEAR(dt[j], rt[j], 1e-12) << "trial " << trial << " saved " << saved << " theta " << j;
          if (want_dx) {
            for (std::size_t j = 0; j < dx.size(); ++j)
              EXPECT_NEAR(dx[j], rx[j], 1e-12) << "trial " << trial << " saved " << saved << " x " << j;
          }
        }
      }
      t.check_float(8, rt, trial);
    }
  }
}

// A QMoE-like circuit: routing qubits n-2 and n-1 (the high bits), 4 experts of
// 2 layers each on the other qubits under both routing controls (so forward()
// saves a quarter of the state per expert layer), each layer followed by a
// controlled CNOT chain unless end_with_layer and it is the last: then the
// sweep starts with a saved controlled layer, before phi is copied from psi.
Circuit expert_circuit(int n, bool end_with_layer) {
  Circuit c;
  c.n_qubits = n;
  int p = 0;
  for (int q = 0; q < n; ++q) add_gate(c, make_gate(GateKind::RY, q, {}, {Angle::feature(q)}));
  for (int q = 0; q < n; ++q) add_gate(c, make_gate(GateKind::RY, q, {}, {Angle::param(p++)}));
  for (int q = 0; q < n; ++q) add_gate(c, make_gate(GateKind::X, (q + 1) % n, {{q, true}}));
  for (int e = 0; e < 4; ++e) {
    const std::vector<Control> route{{n - 2, (e & 1) != 0}, {n - 1, (e & 2) != 0}};
    for (int l = 0; l < 2; ++l) {
      for (int q = 0; q < n - 2; ++q) {
        add_gate(c, make_gate(GateKind::RY, q, route, {Angle::param(p++)}));
        add_gate(c, make_gate(GateKind::RZ, q, route, {Angle::param(p++)}));
      }
      if (end_with_layer && e == 3 && l == 1) break;
      for (int q = 0; q + 1 < n - 2; ++q) {
        std::vector<Control> ctl = route;
        ctl.push_back({q, true});
        add_gate(c, make_gate(GateKind::X, q + 1, ctl));
      }
    }
  }
  return c;
}

// Expert layers saved as a quarter of the state (routing controls on the high
// qubits), and layers' overlaps in grouped sweeps (chunks of 8), give the
// gradients of the gate-by-gate sweep (saved_layers = 0, one sample per chunk), for
// theta and x, twice after one forward(), in a workspace last used for another
// circuit and batch, and in float.
TEST(PerfPaths, ControlledLayerSavesMatchUndoing) {
  std::mt19937_64 rng(67);
  for (int n : {6, 8})
    for (bool end_with_layer : {false, true})
      for (int batch : {1, 33}) {
        const Circuit c = expert_circuit(n, end_with_layer);
        const auto theta = random_vector(rng, std::size_t(c.n_params));
        const auto x = random_vector(rng, std::size_t(c.n_features) * batch);
        std::vector<PauliString> obs;
        for (int q = 0; q < n; ++q) obs.push_back(PauliString::Z(q));
        obs.push_back(PauliString::parse("X0 Y1"));
        const auto w = random_vector(rng, obs.size() * std::size_t(batch));
        auto gradients = [&](auto& ws, int backwards, std::vector<double>* dx) {
          std::vector<double> ev(obs.size() * batch), dt;
          forward(c, theta, x.data(), batch, obs, ev.data(), ws);
          for (int k = 0; k < backwards; ++k) {
            dt.assign(theta.size(), 0.0);
            backward(c, theta, x.data(), batch, obs, w.data(), dt.data(), dx ? dx->data() : nullptr, ws);
          }
          return dt;
        };
        Workspace<double> undo;
        undo.chunk_size = 1;  // one sample per chunk: no grouped overlap sweeps (they need 8 lanes)
        std::vector<double> ref_dx(x.size()), dx(x.size());
        const std::vector<double> ref = gradients(undo, 1, &ref_dx);
        for (int saved : {1, 8}) {
          Workspace<double> ws;
          ws.saved_layers = saved;
          ws.chunk_size = 8;  // whole tiles of 8 lanes take layer_overlaps' grouped sweeps
          {  // first another circuit and batch in the same workspace
            const Circuit other = expert_circuit(n == 6 ? 8 : 6, !end_with_layer);
            const auto th = random_vector(rng, std::size_t(other.n_params)), xo = random_vector(rng, 3 * std::size_t(other.n_features));
            const std::vector<PauliString> zo{PauliString::Z(0)};
            std::vector<double> ev(3), dO(3, 0.5), dt(th.size());
            forward(other, th, xo.data(), 3, zo, ev.data(), ws);
            backward(other, th, xo.data(), 3, zo, dO.data(), dt.data(), nullptr, ws);
          }
          const std::vector<double> dt = gradients(ws, 2, &dx);
          int parts = 0;
          for (const sim::Controls& rows : ws.saved_rows) parts += rows.mask != 0;
          EXPECT_GE(parts, std::min(saved * 4, 8)) << "n " << n;
          for (std::size_t j = 0; j < dt.size(); ++j)
            EXPECT_NEAR(dt[j], ref[j], 1e-10) << "n " << n << " end " << end_with_layer << " batch " << batch << " saved " << saved << " theta " << j;
          for (std::size_t j = 0; j < dx.size(); ++j)
            EXPECT_NEAR(dx[j], ref_dx[j], 1e-10) << "n " << n << " end " << end_with_layer << " batch " << batch << " saved " << saved << " x " << j;
          Workspace<float> wf;
          wf.saved_layers = saved;
          const std::vector<double> dtf = gradients(wf, 1, nullptr);
          for (std::size_t j = 0; j < dtf.size(); ++j) EXPECT_NEAR(dtf[j], ref[j], 3e-4) << "float theta " << j;
        }
      }
}

// forward_backward() (each chunk forward and back in one thread's states)
// gives exactly the numbers of forward() then backward(): expectations,
// dL/dtheta and dx, for a loss gradient that depends on the expectations, with
// a short last chunk, saved layers or none, 1 and 2 threads, double and float.
// Afterwards backward() is refused; a throwing loss gradient propagates and
// leaves the workspace usable.
template <class T>
void check_forward_backward(std::mt19937_64& rng) {
  const int threads_before = omp_get_max_threads();
  std::vector<Circuit> circuits{expert_circuit(8, false), layered_circuit(rng, 6, false),
                                layered_circuit(rng, 9, true)};
  for (std::size_t ci = 0; ci < circuits.size(); ++ci) {
    const Circuit& c = circuits[ci];
    for (int batch : {1, 37}) {
      const auto theta = random_vector(rng, std::size_t(c.n_params));
      const auto x = random_vector(rng, std::size_t(c.n_features) * batch);
      const auto obs = sweep_observables(c.n_qubits);
      const std::size_t K = obs.size();
      const auto w = random_vector(rng, K * std::size_t(batch), -1, 1);
      auto loss_gradient = [&](int begin, int count, const double* ev, double* d) {
        for (std::size_t i = 0; i < std::size_t(count) * K; ++i)  // L = sum w ev^2 / 2
          d[i] = w[std::size_t(begin) * K + i] * ev[i];
      };
      for (int chunk : {8, 32})
        for (int saved : {0, 8})
          for (int threads : {1, 2}) {
            omp_set_num_threads(threads);
            const std::string at = "circuit " + std::to_string(ci) + " batch " + std::to_string(batch) +
                                   " chunk " + std::to_string(chunk) + " saved " + std::to_string(saved) +
                                   " threads " + std::to_string(threads);
            Workspace<T> two, one;
            two.chunk_size = one.chunk_size = chunk;
            two.saved_layers = one.saved_layers = saved;
            std::vector<double> ev(K * batch), dO(K * batch), dt(theta.size(), 0.25), dx(x.size(), 7.0);
            forward(c, theta, x.data(), batch, obs, ev.data(), two);
            for (int b = 0; b < batch; ++b) loss_gradient(b, 1, ev.data() + std::size_t(b) * K, dO.data() + std::size_t(b) * K);
            backward(c, theta, x.data(), batch, obs, dO.data(), dt.data(), dx.data(), two);
            std::vector<double> ev1(ev.size()), dt1(theta.size(), 0.25), dx1(x.size(), 7.0);
            forward_backward(c, theta, x.data(), batch, obs, LossGradient(loss_gradient), ev1.data(), dt1.data(),
                             dx1.data(), one);
            EXPECT_EQ(ev1, ev) << at;
            EXPECT_EQ(dt1, dt) << at;  // the same chunks, summed in the same order
            EXPECT_EQ(dx1, dx) << at;
            EXPECT_THROW(backward(c, theta, x.data(), batch, obs, dO.data(), dt1.data(), nullptr, one),
                         std::logic_error);
            // fails in the last chunk only: the others have run, dtheta is left as it was
            const LossGradient fails = [&](int begin, int count, const double* e, double* d) {
              if (begin + count == batch) throw std::runtime_error("loss failed");
              loss_gradient(begin, count, e, d);
            };
            std::fill(dt1.begin(), dt1.end(), 0.25);
            EXPECT_THROW(forward_backward(c, theta, x.data(), batch, obs, fails, ev1.data(), dt1.data(), nullptr, one),
                         std::runtime_error);
            EXPECT_EQ(dt1, std::vector<double>(theta.size(), 0.25)) << at;
            forward_backward(c, theta, x.data(), batch, obs, LossGradient(loss_gradient), ev1.data(), dt1.data(),
                             dx1.data(), one);
            EXPECT_EQ(dt1, dt) << at << " after a failed call";
          }
    }
  }
  omp_set_num_threads(threads_before);
}
TEST(PerfPaths, ForwardBackwardMatchesTwoCallsDouble) {
  std::mt19937_64 rng(71);
  check_forward_backward<double>(rng);
}
TEST(PerfPaths, ForwardBackwardMatchesTwoCallsFloat) {
  std::mt19937_64 rng(73);
  check_forward_backward<float>(rng);
}

// A CNOT ring on all qubits; with extras, then X on x_qubit, a CNOT from
// qubit 0 on |0> to qubit 3 and SWAP(a, b): still affine over GF(2).
void add_affine_ring(Circuit& c, bool extras, int x_qubit, int a, int b) {
  const int n = c.n_qubits;
  for (int q = 0; q < n; ++q) add_gate(c, make_gate(GateKind::X, (q + 1) % n, {{q, true}}));
  if (!extras) return;
  add_gate(c, make_gate(GateKind::X, x_qubit));
  add_gate(c, make_gate(GateKind::X, 3, {{0, false}}));
  Gate sw = make_gate(GateKind::Swap, a);
  sw.target2 = b;
  add_gate(c, sw);
}

// affine_conjugation: P sigma_q P^dagger == the string it gives, on dense
// vectors (P gate by gate), for X, Y and Z of every qubit, for permutations
// with CNOTs on |1> and |0>, X and SWAP; a Toffoli is not affine (none given).
TEST(PerfPaths, AffineConjugationMatchesDense) {
  std::mt19937_64 rng(89);
  const int n = 5;
  for (int variant = 0; variant < 3; ++variant) {
    Circuit c;
    c.n_qubits = n;
    add_affine_ring(c, variant >= 1, 1, 0, 2);
    if (variant >= 1) add_gate(c, make_gate(GateKind::X, 4, {{2, true}}));
    if (variant == 2) add_gate(c, make_gate(GateKind::X, 2, {{0, true}, {1, true}}));
    PlanOp op;
    op.kind = PlanOp::Kind::Permutation;
    for (int gi = 0; gi < int(c.gates.size()); ++gi) op.gates.push_back(gi);
    const PauliConjugation p = affine_conjugation(c, op);
    if (variant == 2) {
      EXPECT_TRUE(p.x.empty() && p.z.empty());
      continue;
    }
    ASSERT_EQ(int(p.x.size()), n);
    for (int q = 0; q < n; ++q)
      for (int axis = 0; axis < 3; ++axis) {
        std::vector<cplx> v(std::size_t(1) << n);
        for (cplx& a : v) a = cplx(random_vector(rng, 1)[0], random_vector(rng, 1)[0]);
        std::vector<cplx> want = v;  // P sigma P^dagger v: X-type gates are their own inverses
        for (auto g = c.gates.rbegin(); g != c.gates.rend(); ++g) dense_apply(n, *g, nullptr, want);
        const GateKind sigma = axis == 0 ? GateKind::X : axis == 1 ? GateKind::Y : GateKind::Z;
        dense_apply(n, make_gate(sigma, q), nullptr, want);
        for (const Gate& g : c.gates) dense_apply(n, g, nullptr, want);
        const sim::PauliMask m = axis == 0 ? p.x[std::size_t(q)] : axis == 1 ? conjugated_y(p, q) : p.z[std::size_t(q)];
        const std::vector<cplx> got = dense_pauli_mask(n, m, v);
        for (std::size_t i = 0; i < v.size(); ++i)
          ASSERT_NEAR(std::abs(got[i] - want[i]), 0.0, 1e-12) << "variant " << variant << " qubit " << q << " axis " << axis;
      }
  }
}

// Layers followed by a permutation: the sweep takes the layer's overlaps
// through it (no undo on phi) and gives the gate-by-gate gradients, for layers
// wanting X only (grouped), Y or Z, all three axes, rings with X, CNOTs on |0>
// and SWAPs, a ring with a Toffoli (undone as before), whole 8-lane chunks
// and not, backward() and forward_backward(), double and float.
TEST(PerfPaths, LayerOverlapsThroughRingsMatchGateByGate) {
  std::mt19937_64 rng(97);
  const int n = 6;
  for (int variant = 0; variant < 4; ++variant) {
    Circuit c;
    c.n_qubits = n;
    int p = 0, f = 0;
    for (int layer = 0; layer < 3; ++layer) {
      for (int q = 0; q < n; ++q) {
        if (variant == 0) {  // as the bench circuit: RX(theta) last wants X
          add_gate(c, make_gate(GateKind::RY, q, {}, {Angle::feature(f++ % 8)}));
          add_gate(c, make_gate(GateKind::RX, q, {}, {Angle::param(p++)}));
        } else if (variant == 1) {  // RX RY: all three axes
          add_gate(c, make_gate(GateKind::RX, q, {}, {Angle::param(p++)}));
          add_gate(c, make_gate(GateKind::RY, q, {}, {Angle::param(p++)}));
        } else {  // Z, or Y, last
          add_gate(c, make_gate(GateKind::RX, q, {}, {Angle::feature(f++ % 8)}));
          add_gate(c, make_gate(layer % 2 ? GateKind::RY : GateKind::RZ, q, {}, {Angle::param(p++)}));
        }
      }
      add_affine_ring(c, variant >= 2, layer % n, 1, 4);
      if (variant == 3 && layer == 1) add_gate(c, make_gate(GateKind::X, 5, {{0, true}, {2, true}}));
      add_gate(c, make_gate(GateKind::RY, 2, {{0, true}, {1, true}}, {Angle::param(p++)}));
    }
    for (int q = 0; q < n; ++q) add_gate(c, make_gate(GateKind::RY, q, {}, {Angle::param(p++)}));
    for (int batch : {8, 19}) {
      const SweepCase t(rng, c, batch);
      std::vector<double> rt, rx;
      t.reference(true, rt, rx);
      for (int chunk : {8, 3})
        for (int saved : {0, 8}) {
          Workspace<double> ws;
          ws.chunk_size = chunk;
          ws.saved_layers = saved;
          std::vector<double> ev(t.obs.size() * batch), dt(t.theta.size(), 0.0), dx(t.x.size());
          forward(c, t.theta, t.x.data(), batch, t.obs, ev.data(), ws);
          backward(c, t.theta, t.x.data(), batch, t.obs, t.w.data(), dt.data(), dx.data(), ws);
          std::vector<double> dt2(t.theta.size(), 0.0), dx2(t.x.size());
          const LossGradient given = [&](int begin, int count, const double*, double* d) {
            std::copy_n(t.w.data() + std::size_t(begin) * t.obs.size(), std::size_t(count) * t.obs.size(), d);
          };
          forward_backward(c, t.theta, t.x.data(), batch, t.obs, given, ev.data(), dt2.data(), dx2.data(), ws);
          const std::string at = "variant " + std::to_string(variant) + " batch " + std::to_string(batch) +
                                 " chunk " + std::to_string(chunk) + " saved " + std::to_string(saved);
          for (std::size_t j = 0; j < dt.size(); ++j) {
            EXPECT_NEAR(dt[j], rt[j], 1e-10) << at << " theta " << j;
            EXPECT_NEAR(dt2[j], rt[j], 1e-10) << at << " theta " << j << " (forward_backward)";
          }
          for (std::size_t j = 0; j < dx.size(); ++j) {
            EXPECT_NEAR(dx[j], rx[j], 1e-10) << at << " x " << j;
            EXPECT_NEAR(dx2[j], rx[j], 1e-10) << at << " x " << j << " (forward_backward)";
          }
        }
      t.check_float(8, rt, variant);
    }
  }
}

// A get() never replaces the plan the previous get() returned, even when that
// plan sits in the slot the cache would replace next: forward_backward holds
// its forward plan while it gets the sweep's.
TEST(PerfPaths, PlanCacheKeepsTheLastPlan) {
  std::mt19937_64 rng(79);
  std::vector<Circuit> cs;
  for (int k = 0; k < 10; ++k) cs.push_back(structured_circuit(rng, 3 + k % 4));
  PlanCache cache;
  for (int k = 0; k < 8; ++k) cache.get(cs[std::size_t(k)]);  // full; the oldest (next to go) is cs[0]'s
  const Plan& held = cache.get(cs[0]);
  const std::size_t ops = held.ops.size();
  const int n = held.n_qubits;
  const Plan& other = cache.get(cs[8]);
  EXPECT_NE(&other, &held);
  EXPECT_EQ(held.ops.size(), ops);
  EXPECT_EQ(held.n_qubits, n);
  EXPECT_EQ(&cache.get(cs[0]), &held);  // still cached
}

// PlanCache: an equal circuit (a copy) gets the cached plan; a circuit that
// differs in one gate, or other options, gets its own plan (the hash is only
// a first check: the circuits are compared in full).
TEST(PerfPaths, PlanCacheTellsCircuitsApart) {
  std::mt19937_64 rng(53);
  const Circuit c = structured_circuit(rng, 4);
  PlanCache cache;
  const Plan* p1 = &cache.get(c);
  const Circuit copy = c;
  EXPECT_EQ(&cache.get(copy), p1);
  for (int change = 0; change < 4; ++change) {
    Circuit d = c;
    Gate& g = d.gates[std::size_t(7 + change)];
    if (change == 0) g.target = (g.target + 1) % d.n_qubits;
    if (change == 1) g.angles[0].value += 1e-9;
    if (change == 2) g.kind = g.kind == GateKind::RX ? GateKind::RY : GateKind::RX;
    if (change == 3) g.controls.push_back({(g.target + 2) % d.n_qubits, false});
    const Plan& pd = cache.get(d);
    EXPECT_NE(&pd, p1) << "change " << change;
    std::size_t gates = 0;
    for (const PlanOp& op : pd.ops) gates += op.gates.size() + op.perm_gates.size();
    EXPECT_EQ(gates, d.gates.size()) << "change " << change;
  }
  PlanOptions o;
  o.barriers = {5};
  EXPECT_NE(&cache.get(c, o), p1);
  EXPECT_EQ(&cache.get(c), p1);  // still cached (fewer than 8 entries used)
}

// Per-sample SU(2) matrices (BatchMat::su2, products of RX, RY, RZ): the
// kernels that read only a and b agree with the ones that read all 8 arrays,
// for a single gate, pairs, a folded permutation and the overlap step.
TEST(PerfPaths, SU2KernelsMatchGeneralPerSample) {
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
