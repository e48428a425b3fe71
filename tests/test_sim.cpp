// Simulator kernels against a dense-matrix reference.
#include <gtest/gtest.h>

#include <map>

#include "circuit/execute.hpp"
#include "test_helpers.hpp"

using namespace qmoe;
using namespace qmoe::testing;

namespace {

double max_diff(const std::vector<cplx>& a, const std::vector<cplx>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

}  // namespace

// Every gate kind, 0-3 controls on |0> or |1>, every target, against its dense matrix,
// with shared angles (Param) and per-sample angles (Feature), for several batch sizes.
TEST(Sim, EveryGateMatchesDenseMatrix) {
  std::mt19937_64 rng(1);
  for (int n : {1, 2, 3, 5}) {
    for (int batch : {1, 3, 8}) {
      for (int trial = 0; trial < 150; ++trial) {
        Circuit c;
        c.n_qubits = n;
        c.n_params = 3;
        c.n_features = 3;
        Gate g = random_gate(rng, n, 3, 3, 3, n >= 2);
        add_gate(c, g);
        const auto theta = random_vector(rng, 3);
        const auto x = random_vector(rng, std::size_t(3) * batch);
        sim::State<double> s = random_state<double>(rng, n, batch);
        std::vector<std::vector<cplx>> ref;
        for (int b = 0; b < batch; ++b) ref.push_back(sample_amplitudes(s, b));
        GateScratch<double> scratch;
        apply_gate(s, g, theta.data(), x.data(), 3, false, scratch);
        for (int b = 0; b < batch; ++b) {
          const auto a = resolve_angles(g, theta.data(), x.data() + 3 * b);
          dense_apply(n, g, a.data(), ref[b]);
          ASSERT_LT(max_diff(sample_amplitudes(s, b), ref[b]), 1e-13) << describe(g) << " batch " << batch;
        }
        // and the inverse undoes it
        apply_gate(s, g, theta.data(), x.data(), 3, true, scratch);
        apply_gate(s, g, theta.data(), x.data(), 3, false, scratch);
        for (int b = 0; b < batch; ++b)
          ASSERT_LT(max_diff(sample_amplitudes(s, b), ref[b]), 1e-13) << describe(g);
      }
    }
  }
}

// Fixed gates against textbook matrices (guards the dense reference itself).
TEST(Sim, NamedMatricesAreTheTextbookOnes) {
  const double a[3] = {0.3, 0.0, 0.0};
  const cplx i(0, 1);
  // SX^2 = X
  const Mat2 sx = gate_matrix(GateKind::SX, a);
  const Mat2 sx2 = {sx[0] * sx[0] + sx[1] * sx[2], sx[0] * sx[1] + sx[1] * sx[3],
                    sx[2] * sx[0] + sx[3] * sx[2], sx[2] * sx[1] + sx[3] * sx[3]};
  // U3(t, -pi/2, pi/2) = RX(t); U3(t, 0, 0) = RY(t); U2(p, l) = U3(pi/2, p, l)
  const double u3rx[3] = {0.3, -M_PI / 2, M_PI / 2}, u3ry[3] = {0.3, 0, 0};
  const double u2[2] = {0.4, -1.1}, u3[3] = {M_PI / 2, 0.4, -1.1};
  const struct {
    const char* what;
    Mat2 got, want;
  } cases[] = {
      {"X", gate_matrix(GateKind::X, a), {0, 1, 1, 0}},
      {"Y", gate_matrix(GateKind::Y, a), {0, -i, i, 0}},
      {"S", gate_matrix(GateKind::S, a), {1, 0, 0, i}},
      {"T", gate_matrix(GateKind::T, a), {1, 0, 0, std::exp(i * M_PI / 4.0)}},
      {"RX(0.3)", gate_matrix(GateKind::RX, a), {std::cos(0.15), -i * std::sin(0.15), -i * std::sin(0.15), std::cos(0.15)}},
      {"RY(0.3)", gate_matrix(GateKind::RY, a), {std::cos(0.15), -std::sin(0.15), std::sin(0.15), std::cos(0.15)}},
      {"RZ(0.3)", gate_matrix(GateKind::RZ, a), {std::exp(-i * 0.15), 0, 0, std::exp(i * 0.15)}},
      {"SX^2 = X", sx2, {0, 1, 1, 0}},
      {"U3(t, -pi/2, pi/2) = RX(t)", gate_matrix(GateKind::U3, u3rx), gate_matrix(GateKind::RX, a)},
      {"U3(t, 0, 0) = RY(t)", gate_matrix(GateKind::U3, u3ry), gate_matrix(GateKind::RY, a)},
      {"U2(p, l) = U3(pi/2, p, l)", gate_matrix(GateKind::U2, u2), gate_matrix(GateKind::U3, u3)},
  };
  for (const auto& c : cases)
    for (int k = 0; k < 4; ++k) EXPECT_LE(std::abs(c.got[k] - c.want[k]), 1e-15) << c.what << " entry " << k;
}

// Derivative matrices against central finite differences of the matrices.
TEST(Sim, DerivativeMatricesMatchFiniteDifferences) {
  std::mt19937_64 rng(2);
  for (GateKind k : {GateKind::RX, GateKind::RY, GateKind::RZ, GateKind::U1, GateKind::U2, GateKind::U3}) {
    for (int trial = 0; trial < 20; ++trial) {
      auto a = random_vector(rng, 3);
      for (int j = 0; j < angle_count(k); ++j) {
        const Mat2 d = gate_matrix_derivative(k, a.data(), j);
        auto ap = a, am = a;
        ap[j] += 1e-6, am[j] -= 1e-6;
        const Mat2 p = gate_matrix(k, ap.data()), m = gate_matrix(k, am.data());
        for (int e = 0; e < 4; ++e) EXPECT_LT(std::abs((p[e] - m[e]) / 2e-6 - d[e]), 1e-9) << gate_name(k) << j;
      }
    }
  }
}

// A batched run equals running each sample on its own.
TEST(Sim, BatchedEqualsOneByOne) {
  std::mt19937_64 rng(3);
  const int n = 5, batch = 13;
  Circuit c = random_circuit(rng, n, 60, 2, 4, 6);
  const auto theta = random_vector(rng, 4);
  const auto x = random_vector(rng, std::size_t(6) * batch);
  sim::State<double> s = sim::make_state<double>(n, batch);
  GateScratch<double> scratch;
  run_circuit(c, theta.data(), x.data(), s, scratch);
  for (int b = 0; b < batch; ++b) {
    sim::State<double> one = sim::make_state<double>(n, 1);
    run_circuit(c, theta.data(), x.data() + 6 * b, one, scratch);
    EXPECT_LT(max_diff(sample_amplitudes(s, b), sample_amplitudes(one, 0)), 1e-14);
    EXPECT_LT(max_diff(sample_amplitudes(one, 0), dense_run(c, theta, x.data() + 6 * b)), 1e-12);
  }
}

// The norm stays 1 to 1e-12 over 10,000 random gates.
TEST(Sim, NormKeptOverTenThousandGates) {
  std::mt19937_64 rng(4);
  const int n = 6, batch = 4;
  Circuit c = random_circuit(rng, n, 10000, 3, 8, 8);
  const auto theta = random_vector(rng, 8);
  const auto x = random_vector(rng, std::size_t(8) * batch);
  sim::State<double> s = sim::make_state<double>(n, batch);
  GateScratch<double> scratch;
  run_circuit(c, theta.data(), x.data(), s, scratch);
  std::vector<double> nrm(batch);
  sim::norms(s, nrm.data());
  for (double v : nrm) EXPECT_NEAR(v, 1.0, 1e-12);
}

// Single precision stays within 1e-5 of double.
TEST(Sim, FloatWithin1e5OfDouble) {
  std::mt19937_64 rng(5);
  const int n = 7, batch = 9;
  Circuit c = random_circuit(rng, n, 200, 2, 6, 6);
  const auto theta = random_vector(rng, 6);
  const auto x = random_vector(rng, std::size_t(6) * batch);
  const std::vector<PauliString> obs = z_each_then(n, {"X0 Y3 Z5"});
  std::vector<double> ed(obs.size() * batch), ef(obs.size() * batch);
  Workspace<double> wd;
  Workspace<float> wf;
  forward(c, theta, x.data(), batch, obs, ed.data(), wd);
  forward(c, theta, x.data(), batch, obs, ef.data(), wf);
  for (std::size_t i = 0; i < ed.size(); ++i) EXPECT_NEAR(ed[i], ef[i], 1e-5);
  // float amplitudes too
  for (int b = 0; b < batch; ++b) {
    auto a = sample_amplitudes(wd.final_state(0), b), f = sample_amplitudes(wf.final_state(0), b);
    EXPECT_LT(max_diff(a, f), 1e-5);
  }
}

// Read-out: <Z_q>, Pauli strings, probabilities and marginals against dense formulas.
TEST(Sim, ReadoutMatchesDense) {
  std::mt19937_64 rng(6);
  const int n = 4, batch = 5;
  sim::State<double> s = random_state<double>(rng, n, batch);
  std::vector<double> z(std::size_t(n) * batch);
  sim::expval_z_all(s, z.data());
  std::vector<double> pv(batch), probs(std::size_t(1) << n), marg(std::size_t(4) * batch);
  sim::marginal_probabilities(s, {3, 1}, marg.data());
  for (const char* text : {"Z0", "X1", "Y2", "X0 Y1 Z3", "Y0 Y1 Y2 Y3", "Z1 Z2", "I0"}) {
    const PauliString p = PauliString::parse(text);
    sim::expval_pauli(s, p.x, p.z, pv.data());
    for (int b = 0; b < batch; ++b) EXPECT_NEAR(pv[b], dense_expval(sample_amplitudes(s, b), p), 1e-13) << text;
  }
  for (int b = 0; b < batch; ++b) {
    const auto psi = sample_amplitudes(s, b);
    for (int q = 0; q < n; ++q) EXPECT_NEAR(z[b * n + q], dense_expval(psi, PauliString::Z(q)), 1e-13);
    sim::probabilities(s, b, probs.data());
    double m[4] = {0, 0, 0, 0};
    for (std::size_t i = 0; i < psi.size(); ++i) {
      EXPECT_NEAR(probs[i], std::norm(psi[i]), 1e-15);
      m[((i >> 3) & 1) | (((i >> 1) & 1) << 1)] += std::norm(psi[i]);
    }
    for (int o = 0; o < 4; ++o) EXPECT_NEAR(marg[b * 4 + o], m[o], 1e-14);
  }
}

// Sampling: frequencies approach the probabilities; same seed, same shots.
TEST(Sim, SamplingFollowsProbabilities) {
  std::mt19937_64 rng(7);
  sim::State<double> s = random_state<double>(rng, 3, 2);
  const int shots = 200000;
  const auto a = sim::sample_basis_states(s, 1, shots, 42);
  const auto b = sim::sample_basis_states(s, 1, shots, 42);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, sim::sample_basis_states(s, 1, shots, 43));
  // The documented draw, written out independently: 53 bits of mt19937_64(seed)
  // scaled to [0, total), the first basis state whose cumulative probability
  // exceeds it (what fixes the shots of `qmoe qasm --shots N --seed S`).
  {
    std::vector<double> cdf(8);
    sim::probabilities(s, 1, cdf.data());
    for (int i = 1; i < 8; ++i) cdf[std::size_t(i)] += cdf[std::size_t(i - 1)];
    std::mt19937_64 gen(42);
    for (int k = 0; k < 1000; ++k) {
      const double u = double(gen() >> 11) * 0x1p-53 * cdf.back();
      std::uint64_t expect = 0;
      while (expect < 7 && cdf[expect] <= u) ++expect;
      ASSERT_EQ(a[std::size_t(k)], expect) << k;
    }
  }
  std::vector<double> p(8);
  sim::probabilities(s, 1, p.data());
  std::map<std::uint64_t, int> counts;
  for (auto v : a) counts[v]++;
  for (int i = 0; i < 8; ++i) {
    const double sd = std::sqrt(p[i] * (1 - p[i]) / shots);
    EXPECT_NEAR(double(counts[i]) / shots, p[i], 5 * sd + 1e-12) << i;
  }
}

// A single 24-qubit state: gates on low, middle and high qubits agree with the
// same gates applied through the per-amplitude (unfolded) path on a smaller copy.
TEST(Sim, LargeSingleState24Qubits) {
  const int n = 24;
  sim::State<double> s = sim::make_state<double>(n, 1);
  const double h[3] = {0, 0, 0};
  const auto H = to_kernel<double>(gate_matrix(GateKind::H, h));
  for (int q : {0, 11, 23}) sim::apply_matrix(s, q, {}, H);
  const double ry[1] = {0.7};
  sim::apply_matrix(s, 5, {std::uint64_t(1) << 23, std::uint64_t(1) << 23},
                    to_kernel<double>(gate_matrix(GateKind::RY, ry)));
  std::vector<double> nrm(1), z(n);
  sim::norms(s, nrm.data());
  EXPECT_NEAR(nrm[0], 1.0, 1e-12);
  sim::expval_z_all(s, z.data());
  EXPECT_NEAR(z[0], 0.0, 1e-12);
  EXPECT_NEAR(z[23], 0.0, 1e-12);
  EXPECT_NEAR(z[5], 0.5 * 1.0 + 0.5 * std::cos(0.7), 1e-12);  // RY only when q23 = 1
  EXPECT_NEAR(z[7], 1.0, 1e-12);
}

TEST(Sim, BadInputsThrow) {
  EXPECT_THROW(sim::make_state<double>(0, 1), std::invalid_argument);
  EXPECT_THROW(sim::make_state<double>(41, 1), std::invalid_argument);
  EXPECT_THROW(sim::make_state<double>(3, 0), std::invalid_argument);
  sim::State<double> s = sim::make_state<double>(3, 2);
  const sim::Mat<double> x{{0, 1, 1, 0}, {0, 0, 0, 0}};
  EXPECT_THROW(sim::apply_matrix(s, 3, {}, x), std::invalid_argument);
  EXPECT_THROW(sim::apply_matrix(s, -1, {}, x), std::invalid_argument);
  EXPECT_THROW(sim::apply_matrix(s, 0, {1, 1}, x), std::invalid_argument);   // target is a control
  EXPECT_THROW(sim::apply_matrix(s, 0, {8, 8}, x), std::invalid_argument);   // control out of range
  EXPECT_THROW(sim::apply_swap(s, 1, 1, {}), std::invalid_argument);
  EXPECT_THROW(sim::probabilities(s, 2, nullptr), std::invalid_argument);
  EXPECT_THROW(sim::sample_basis_states(s, 0, -1, 0), std::invalid_argument);
  Circuit c;
  c.n_qubits = 2;
  EXPECT_THROW(add_gate(c, make_gate(GateKind::X, 2)), std::invalid_argument);
  EXPECT_THROW(add_gate(c, make_gate(GateKind::X, 0, {{0, true}})), std::invalid_argument);
  EXPECT_THROW(add_gate(c, make_gate(GateKind::RX, 0, {}, {Angle::param(-1)})), std::invalid_argument);
  EXPECT_THROW(PauliString::parse("Q1"), std::invalid_argument);
  EXPECT_THROW(PauliString::parse("Z1 X1"), std::invalid_argument);
  EXPECT_THROW(PauliString::parse("Z"), std::invalid_argument);
  EXPECT_THROW(PauliString::parse(""), std::invalid_argument);  // empty: the identity is written I0
  EXPECT_THROW(PauliString::parse("   "), std::invalid_argument);
  EXPECT_THROW(PauliString::parse("Z63"), std::invalid_argument);
  EXPECT_EQ(PauliString::parse("x0  Y2 z3").x, 0b0101u);
  EXPECT_EQ(PauliString::parse("x0  Y2 z3").z, 0b1100u);
}

// copy_controlled / restore_controlled: the part holds, in index order, exactly
// the amplitudes whose control bits match (checked against an enumeration of
// the indices), and putting it back restores those and touches no other.
TEST(Sim, ControlledPartCopiedAndRestored) {
  std::mt19937_64 rng(61);
  const int n = 5, batch = 3;
  const sim::Controls cases[] = {{0b01010, 0b01000}, {0b11000, 0b11000}, {0b00001, 0}, {0, 0}};
  for (const sim::Controls c : cases) {
    sim::State<double> s = random_state<double>(rng, n, batch), part;
    sim::copy_controlled(s, c, part);
    ASSERT_EQ(part.n_qubits, n - std::popcount(c.mask));
    ASSERT_EQ(part.batch, batch);
    std::size_t h = 0;
    for (std::size_t i = 0; i < s.dim(); ++i) {
      if ((i & c.mask) != c.value) continue;
      for (int b = 0; b < batch; ++b) {
        EXPECT_EQ(part.re[h * batch + b], s.re[i * batch + b]) << "mask " << c.mask << " row " << i;
        EXPECT_EQ(part.im[h * batch + b], s.im[i * batch + b]) << "mask " << c.mask << " row " << i;
      }
      ++h;
    }
    ASSERT_EQ(h, part.dim());
    sim::State<double> t = random_state<double>(rng, n, batch);
    const sim::State<double> before = t;
    sim::restore_controlled(part, c, t);
    for (std::size_t k = 0; k < t.re.size(); ++k) {
      const bool selected = ((k / batch) & c.mask) == c.value;
      EXPECT_EQ(t.re[k], selected ? s.re[k] : before.re[k]) << "mask " << c.mask << " slot " << k;
      EXPECT_EQ(t.im[k], selected ? s.im[k] : before.im[k]) << "mask " << c.mask << " slot " << k;
    }
  }
  sim::State<double> s = random_state<double>(rng, 3, 2), part;
  EXPECT_THROW(sim::copy_controlled(s, {0b1000, 0}, part), std::invalid_argument);  // qubit 3 of 3
  EXPECT_THROW(sim::copy_controlled(s, {0b001, 0b010}, part), std::invalid_argument);  // value outside mask
  sim::copy_controlled(s, {0b001, 1}, part);
  sim::State<double> other = random_state<double>(rng, 3, 1);
  EXPECT_THROW(sim::restore_controlled(part, {0b001, 1}, other), std::invalid_argument);  // batch differs
}

// State storage (sim::StateAllocator): 64-byte aligned, and large arrays
// allocated one after another (psi, phi, lam, their re and im) start at
// different offsets in their 4 KiB pages, so that a kernel
// reading one and writing another at the same index does not hit false
// store-to-load dependencies (plain allocations all start at one offset).
TEST(Sim, StateStorageAlignedAndStaggered) {
  struct Three {
    sim::State<double> psi, phi, lam;
  } w;
  for (sim::State<double>* s : {&w.psi, &w.phi, &w.lam}) *s = sim::make_state<double>(10, 32);
  std::vector<std::uintptr_t> offsets;
  for (const sim::State<double>* s : {&w.psi, &w.phi, &w.lam})
    for (const double* p : {s->re.data(), s->im.data()}) {
      const auto a = reinterpret_cast<std::uintptr_t>(p);
      EXPECT_EQ(a % 64, 0u);
      offsets.push_back(a % 4096);
    }
  std::sort(offsets.begin(), offsets.end());
  EXPECT_EQ(std::adjacent_find(offsets.begin(), offsets.end()), offsets.end()) << "two arrays share a page offset";
  // small states: aligned, and the containers behave as usual (copy, swap, resize)
  sim::State<float> a = sim::make_state<float>(2, 3), b = a;
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.re.data()) % 64, 0u);
  b.re[1] = 0.5f;
  std::swap(a.re, b.re);
  EXPECT_EQ(a.re[1], 0.5f);
  EXPECT_EQ(b.re[1], 1.0f);  // |0> of sample 1
  w.phi.re.resize(w.phi.re.size() / 2);  // shrink a large one: no reallocation needed
  w.phi = w.psi;                          // and back to full size through a copy
  EXPECT_EQ(w.phi.re, w.psi.re);
}

// layer_overlaps == pauli_overlaps target by target: single-axis groups of 1, 2
// and 4 targets (the grouped sweeps), mixed axes (one pass each), with and
// without controls, batches that are whole tiles of 8 lanes and one that is
// not, double and float.
template <class T>
void check_layer_overlaps(double tol) {
  std::mt19937_64 rng(71);
  const int axes_cases[][6] = {{1, 1, 1, 1, 1, 1}, {2, 2, 2, 2, 2, 0}, {4, 4, 4, 4, 4, 4},
                               {1, 1, 2, 7, 4, 3}, {0, 5, 6, 1, 1, 2}};
  for (int n : {3, 7})  // 8 rows (less than one row block of the grouped sweep) and 128
  for (int batch : {8, 16, 24, 5})
    for (const sim::Controls c : {sim::Controls{}, sim::Controls{2, 2}, sim::Controls{2, 0}})
      for (const auto& axes : axes_cases) {
        // qubit 1 is the control
        const std::vector<int> targets = n == 3 ? std::vector<int>{0, 2} : std::vector<int>{0, 2, 3, 4, 5, 6};
        const sim::State<T> phi = random_state<T>(rng, n, batch), lam = random_state<T>(rng, n, batch);
        const int nt = int(targets.size());
        std::vector<double> a(std::size_t(3 * nt) * batch, 0.25), b = a;  // both add to what is there
        std::vector<double*> pa(std::size_t(3 * nt)), pb(pa.size());
        for (int k = 0; k < 3 * nt; ++k) {
          const bool on = (axes[k / 3] >> (k % 3)) & 1;
          pa[k] = on ? a.data() + std::size_t(k) * batch : nullptr;
          pb[k] = on ? b.data() + std::size_t(k) * batch : nullptr;
        }
        for (int t = 0; t < nt; ++t) sim::pauli_overlaps(phi, lam, targets[t], c, pa.data() + 3 * t);
        sim::layer_overlaps(phi, lam, targets.data(), nt, c, pb.data());
        for (std::size_t k = 0; k < a.size(); ++k)
          ASSERT_NEAR(b[k], a[k], tol) << "n " << n << " batch " << batch << " mask " << c.mask << " axes " << axes[0] << axes[1] << axes[2] << " slot " << k;
      }
  sim::State<T> s = random_state<T>(rng, 3, 8);
  const int bad[] = {1};
  double* ov[3] = {nullptr, nullptr, nullptr};
  EXPECT_THROW(sim::layer_overlaps(s, s, bad, 1, sim::Controls{2, 2}, ov), std::invalid_argument);  // target = control
}
// string_overlaps == Im <lam| P |phi> with P applied gate by gate to dense
// vectors, summed over the controlled subspace: strings of every kind, in runs
// of one kind (grouped sweeps of 4, 2 and 1) and mixed, batches of whole
// 8-lane tiles and not, double and float. Bad strings throw.
template <class T>
void check_string_overlaps(double tol) {
  std::mt19937_64 rng(83);
  // 8 rows (less than a row block of the grouped sweep) and 128 (several blocks)
  for (int n : {3, 7})
  for (int batch : {8, 16, 24, 3})
    for (const sim::Controls c : {sim::Controls{}, sim::Controls{4, 4}, sim::Controls{4, 0}, sim::Controls{5, 1}})
      for (bool mixed : {false, true}) {
        const std::uint64_t all = (std::uint64_t(1) << n) - 1, free = all & ~c.mask;
        const sim::State<T> phi = random_state<T>(rng, n, batch), lam = random_state<T>(rng, n, batch);
        std::vector<sim::PauliMask> str;
        // 5 without a Z part, 3 with one and an even phase, 4 with an odd phase
        for (int k = 0; k < 12; ++k) {
          sim::PauliMask m;
          m.x = (rng() % all + 1) & free;
          m.z = k < 5 ? 0 : rng() % (all + 1);
          if (k >= 5 && k < 8) m.x &= ~m.z;  // popcount(x & z) = 0: even phase
          if (m.x == 0) m.x = free & (~free + 1);  // the lowest qubit that is not a control
          if (k >= 8 && !(std::popcount(m.x & m.z) & 1)) m.z ^= m.x & (~m.x + 1);  // flip z at x's lowest bit: odd
          if (k == 7) m.x = 0;  // a Z string
          m.phase = (std::popcount(m.x & m.z) & 1) + 2 * int(rng() % 2);
          str.push_back(m);
        }
        if (mixed) std::shuffle(str.begin(), str.end(), rng);
        const int ns = int(str.size());
        std::vector<double> got(std::size_t(ns) * batch, 0.25);
        std::vector<double*> ov(static_cast<std::size_t>(ns));
        for (int k = 0; k < ns; ++k) ov[std::size_t(k)] = got.data() + std::size_t(k) * batch;
        sim::string_overlaps(phi, lam, str.data(), ns, c, ov.data());
        for (int k = 0; k < ns; ++k)
          for (int b = 0; b < batch; ++b) {
            const auto p = dense_pauli_mask(n, str[std::size_t(k)], sample_amplitudes(phi, b));
            const auto l = sample_amplitudes(lam, b);
            cplx acc = 0.0;
            for (std::size_t i = 0; i < l.size(); ++i)
              if ((i & c.mask) == c.value) acc += std::conj(l[i]) * p[i];
            ASSERT_NEAR(got[std::size_t(k) * batch + b], 0.25 + acc.imag(), tol)
                << "n " << n << " batch " << batch << " mask " << c.mask << " mixed " << mixed << " string " << k;
          }
      }
  const sim::State<T> s = random_state<T>(rng, 3, 8);
  double v[8] = {};
  double* ov[1] = {v};
  const sim::PauliMask not_hermitian{1, 1, 0}, flips_control{2, 0, 0}, too_wide{8, 0, 0};
  EXPECT_THROW(sim::string_overlaps(s, s, &not_hermitian, 1, {}, ov), std::invalid_argument);
  EXPECT_THROW(sim::string_overlaps(s, s, &flips_control, 1, sim::Controls{2, 2}, ov), std::invalid_argument);
  EXPECT_THROW(sim::string_overlaps(s, s, &too_wide, 1, {}, ov), std::invalid_argument);
}
TEST(Sim, StringOverlapsMatchDense) {
  check_string_overlaps<double>(1e-12);
  check_string_overlaps<float>(1e-5);
}

TEST(Sim, LayerOverlapsMatchPerTarget) {
  check_layer_overlaps<double>(1e-12);
  check_layer_overlaps<float>(1e-5);
}

// Which path float takes (the accuracy tests pass on either): with whole 8-lane
// tiles the grouped sweeps add a block's rows in float, so terms 1 and 2^-25 on
// rows 0 and 2 sum to 1; the pass per string (string_overlap) and per target
// (pauli_overlaps) add each row or pair to the double sums: 1 + 2^-25. Batch 5
// takes those passes. (A probe of the path, not of accuracy: if float sums ever
// go to double sooner, change the expected value, not the path.)
TEST(Sim, FloatOverlapsOfWholeTilesSumBlocksInFloat) {
  for (int batch : {8, 5}) {
    sim::State<float> phi = sim::make_state<float>(2, batch), lam = sim::make_state<float>(2, batch);
    for (int b = 0; b < batch; ++b) {
      phi.re[b] = 0.0f;
      phi.im[std::size_t(0) * batch + b] = 1.0f, phi.im[std::size_t(2) * batch + b] = 0x1p-25f;
      lam.re[std::size_t(0) * batch + b] = 1.0f, lam.re[std::size_t(2) * batch + b] = 1.0f;
    }
    const double want = batch % 8 == 0 ? 1.0 : 1.0 + 0x1p-25;
    std::vector<double> s(std::size_t(batch), 0.0), l(std::size_t(batch), 0.0);
    double* ps[1] = {s.data()};
    double* pl[3] = {nullptr, nullptr, l.data()};
    const sim::PauliMask z0{0, 1, 0};
    const int target = 0;
    sim::string_overlaps(phi, lam, &z0, 1, {}, ps);
    sim::layer_overlaps(phi, lam, &target, 1, {}, pl);
    for (int b = 0; b < batch; ++b) {
      EXPECT_EQ(s[std::size_t(b)], want) << "string_overlaps, batch " << batch;
      EXPECT_EQ(l[std::size_t(b)], want) << "layer_overlaps, batch " << batch;
    }
  }
}
