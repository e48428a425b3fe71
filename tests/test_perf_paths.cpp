// The fast paths against the generic kernel and the dense reference:
// X (slot swap), diagonal, permutation and product-state kernels; fused
// execution plans (1-qubit fusion, permutation tables, product-state prefix);
// the planned adjoint sweep.
#include <gtest/gtest.h>

#include "circuit/execute.hpp"
#include "circuit/fusion.hpp"
#include "grad/adjoint.hpp"
#include "test_helpers.hpp"

using namespace qmoe;
using namespace qmoe::testing;

namespace {

template <class T>
sim::State<T> random_state(std::mt19937_64& rng, int n, int batch) {
  sim::State<T> s = sim::make_state<T>(n, batch);
  std::normal_distribution<double> g;
  for (auto& v : s.re) v = T(g(rng));
  for (auto& v : s.im) v = T(g(rng));
  return s;
}

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
      if (o.fuse && trial % 2) EXPECT_LT(p.ops.size(), c.gates.size());
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
