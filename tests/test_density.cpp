// The density-matrix simulator (sim/density_matrix.hpp, density_forward) and
// the damping channels and asymmetric read-out of grad/noise.hpp, against an
// independent dense reference: full 2^n x 2^n matrices, each Kraus operator
// expanded to the whole register and summed as sum_k K rho K^dagger, and the
// read-out error applied to the measured distribution bit by bit.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>

#include "grad/noise.hpp"
#include "model/model.hpp"
#include "model/routed.hpp"
#include "sim/density_matrix.hpp"
#include "test_helpers.hpp"

using namespace qmoe;
using namespace qmoe::testing;

namespace {

// The 2x2 operator k on qubit q of n, as a dense 2^n x 2^n matrix (kron by hand).
Dense embed(int n, int q, const Mat2& k) {
  const std::size_t dim = std::size_t(1) << n;
  Dense m(dim * dim, 0.0);
  for (std::size_t r = 0; r < dim; ++r)
    for (std::size_t c = 0; c < dim; ++c) {
      if ((r & ~(std::size_t(1) << q)) != (c & ~(std::size_t(1) << q))) continue;
      m[r * dim + c] = k[((r >> q) & 1) * 2 + ((c >> q) & 1)];
    }
  return m;
}

// sum_k K_k rho K_k^dagger with the Kraus operators written out here.
void dense_kraus(int n, int q, const std::vector<Mat2>& ks, Dense& rho) {
  const std::size_t dim = std::size_t(1) << n;
  Dense sum(dim * dim, 0.0);
  for (const Mat2& k : ks) {
    const Dense r = dense_conj(embed(n, q, k), rho, dim);
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += r[i];
  }
  rho = sum;
}

std::vector<Mat2> kraus_depol(double p) {
  const double a = std::sqrt(1 - p), b = std::sqrt(p / 3);
  return {Mat2{a, 0, 0, a}, Mat2{0, b, b, 0}, Mat2{0, cplx(0, -b), cplx(0, b), 0}, Mat2{b, 0, 0, -b}};
}
std::vector<Mat2> kraus_amp(double g) { return {Mat2{1, 0, 0, std::sqrt(1 - g)}, Mat2{0, std::sqrt(g), 0, 0}}; }
std::vector<Mat2> kraus_phase(double l) { return {Mat2{1, 0, 0, std::sqrt(1 - l)}, Mat2{0, 0, 0, std::sqrt(l)}}; }

// The dense run with every channel of nm after each gate, on each qubit it
// touches: depolarizing (p1 for a one-qubit gate, p2 otherwise), amplitude
// damping, phase damping.
Dense dense_noisy_rho(const Circuit& c, const std::vector<double>& theta, const double* x, const NoiseModel& nm) {
  const int n = c.n_qubits;
  return dense_noisy_run(c, theta, x, [&](Dense& rho, int q, int touched) {
    dense_kraus(n, q, kraus_depol(touched > 1 ? nm.p2 : nm.p1), rho);
    dense_kraus(n, q, kraus_amp(nm.amp_damping), rho);
    dense_kraus(n, q, kraus_phase(nm.phase_damping), rho);
  });
}

// <Z string> as measured: the diagonal's distribution, every bit q flipped
// with its own read-out error (0->1: e01[q], 1->0: e10[q]), then the string's
// +-1 mean.
double dense_measured_z(const Dense& rho, int n, std::uint64_t z, const std::vector<double>& e01,
                        const std::vector<double>& e10) {
  const std::size_t dim = std::size_t(1) << n;
  double out = 0;
  for (std::size_t i = 0; i < dim; ++i) {
    const double pi = rho[i * dim + i].real();
    for (std::size_t m = 0; m < dim; ++m) {  // measured m given true i
      double pm = pi;
      for (int q = 0; q < n; ++q) {
        const int t = (i >> q) & 1, r = (m >> q) & 1;
        const double flip = t ? e10[std::size_t(q)] : e01[std::size_t(q)];
        pm *= t == r ? 1 - flip : flip;
      }
      out += pm * ((std::popcount(m & z) & 1) ? -1.0 : 1.0);
    }
  }
  return out;
}

NoiseModel all_noise() {
  NoiseModel nm;
  nm.p1 = 0.03;
  nm.p2 = 0.07;
  nm.amp_damping = 0.05;
  nm.phase_damping = 0.08;
  nm.readout_01 = 0.02;
  nm.readout_10 = 0.09;
  return nm;
}

}  // namespace

// apply_channel on a random (mixed) density matrix == the dense Kraus sum,
// for each channel and each qubit.
TEST(Density, ChannelsMatchDenseKraus) {
  std::mt19937_64 rng(1);
  const int n = 3;
  const std::size_t dim = 8;
  // a random mixed state: sum of 3 random pure states' projectors, weights 0.5 0.3 0.2
  sim::State<double> psi = random_state<double>(rng, n, 3);
  Dense rho(dim * dim, 0.0);
  const double w[3] = {0.5, 0.3, 0.2};
  for (int b = 0; b < 3; ++b) {
    const auto v = sample_amplitudes(psi, b);
    for (std::size_t i = 0; i < dim; ++i)
      for (std::size_t j = 0; j < dim; ++j) rho[i * dim + j] += w[b] * v[i] * std::conj(v[j]);
  }
  // each channel: the simulator's Kraus operators and the ones written out here
  const struct {
    const char* name;
    sim::Kraus (*kraus)(double);
    std::vector<Mat2> (*reference)(double);
  } channels[] = {
      {"depolarizing", sim::depolarizing_kraus, kraus_depol},
      {"amplitude damping", sim::amplitude_damping_kraus, kraus_amp},
      {"phase damping", sim::phase_damping_kraus, kraus_phase},
  };
  const double p = 0.23;
  for (int q = 0; q < n; ++q)
    for (const auto& ch : channels) {
      SCOPED_TRACE(std::string(ch.name) + " on qubit " + std::to_string(q));
      sim::State<double> s = sim::make_density(n, 1);
      for (std::size_t i = 0; i < dim; ++i)
        for (std::size_t j = 0; j < dim; ++j) s.re[i + (j << n)] = rho[i * dim + j].real(), s.im[i + (j << n)] = rho[i * dim + j].imag();
      Dense ref = rho;
      sim::apply_channel(s, q, ch.kraus(p));
      dense_kraus(n, q, ch.reference(p), ref);
      for (std::size_t i = 0; i < dim; ++i)
        for (std::size_t j = 0; j < dim; ++j) {
          EXPECT_NEAR(s.re[i + (j << n)], ref[i * dim + j].real(), 1e-14);
          EXPECT_NEAR(s.im[i + (j << n)], ref[i * dim + j].imag(), 1e-14);
        }
      double tr;
      sim::density_trace(s, &tr);
      EXPECT_NEAR(tr, 1.0, 1e-14);
    }
  EXPECT_THROW(sim::make_density(15, 1), std::invalid_argument);
}

// density_forward == the dense reference for random 3-qubit circuits (controls
// on |0> and |1>, swaps, per-sample angles) with every channel at once and an
// asymmetric read-out error; and for general Pauli strings without read-out error.
TEST(Density, ForwardMatchesDenseReference) {
  for (int trial = 0; trial < 4; ++trial) {
    std::mt19937_64 rng(100 + trial);
    const Circuit c = random_circuit(rng, 3, 20, 2, 3, 2);
    const auto theta = random_vector(rng, 3);
    const int B = 2;
    const auto x = random_vector(rng, std::size_t(B) * 2);
    NoiseModel nm = all_noise();
    std::vector<PauliString> zs = {PauliString::Z(0), PauliString::Z(1), PauliString::Z(2), PauliString::parse("Z0 Z2"),
                                   PauliString::parse("Z0 Z1 Z2")};
    std::vector<double> got(B * zs.size());
    density_forward(c, theta, x.data(), B, zs, nm, got.data());
    for (int b = 0; b < B; ++b) {
      const Dense rho = dense_noisy_rho(c, theta, x.data() + 2 * b, nm);
      for (std::size_t k = 0; k < zs.size(); ++k)
        EXPECT_NEAR(got[b * zs.size() + k],
                    dense_measured_z(rho, 3, zs[k].z, std::vector<double>(3, nm.flip01()),
                                     std::vector<double>(3, nm.flip10())),
                    1e-12)
            << trial << " " << zs[k].str();
    }
    nm.readout_01 = nm.readout_10 = -1;
    const std::vector<PauliString> gen = {PauliString::parse("X0 Y1"), PauliString::parse("Y2"), PauliString::parse("X0 Z1 X2")};
    std::vector<double> g2(B * gen.size());
    density_forward(c, theta, x.data(), B, gen, nm, g2.data());
    for (int b = 0; b < B; ++b) {
      const Dense rho = dense_noisy_rho(c, theta, x.data() + 2 * b, nm);
      for (std::size_t k = 0; k < gen.size(); ++k) EXPECT_NEAR(g2[b * gen.size() + k], dense_pauli(rho, 3, gen[k]), 1e-12);
    }
  }
  // without noise: the statevector's numbers
  std::mt19937_64 rng(9);
  const Circuit c = random_circuit(rng, 4, 30, 2, 3, 0);
  const auto theta = random_vector(rng, 3);
  const std::vector<PauliString> obs = {PauliString::Z(0), PauliString::parse("X1 Y3"), PauliString::parse("Z2 Z3")};
  std::vector<double> exact(obs.size()), dm(obs.size());
  Workspace<double> ws;
  forward(c, theta, nullptr, 1, obs, exact.data(), ws);
  density_forward(c, theta, nullptr, 1, obs, NoiseModel{}, dm.data());
  for (std::size_t k = 0; k < obs.size(); ++k) EXPECT_NEAR(dm[k], exact[k], 1e-12);
  const Circuit big = circuit_of(13, {make_gate(GateKind::H, 12)});
  std::vector<double> one(1);
  EXPECT_THROW(density_forward(big, {}, nullptr, 1, {PauliString::Z(0)}, NoiseModel{}, one.data()), std::invalid_argument);
}

// Closed forms: X then amplitude damping G: <Z> = -(1 - 2G); H then phase
// damping L: <X> = sqrt(1 - L); read-out 0->1 and 1->0 seen separately.
TEST(Density, ClosedForms) {
  const Circuit x1 = circuit_of(1, {make_gate(GateKind::X, 0)});
  const Circuit h1 = circuit_of(1, {make_gate(GateKind::H, 0)});
  const Circuit id1 = circuit_of(1, {make_gate(GateKind::I, 0)});
  double v;
  NoiseModel a;
  a.amp_damping = 0.3;
  density_forward(x1, {}, nullptr, 1, {PauliString::Z(0)}, a, &v);
  EXPECT_NEAR(v, -(1 - 2 * 0.3), 1e-15);
  NoiseModel l;
  l.phase_damping = 0.36;
  density_forward(h1, {}, nullptr, 1, {PauliString::parse("X0")}, l, &v);
  EXPECT_NEAR(v, std::sqrt(1 - 0.36), 1e-15);
  NoiseModel r;
  r.readout_01 = 0.1;
  r.readout_10 = 0.25;
  density_forward(id1, {}, nullptr, 1, {PauliString::Z(0)}, r, &v);
  EXPECT_NEAR(v, 1 - 2 * 0.1, 1e-15);
  density_forward(x1, {}, nullptr, 1, {PauliString::Z(0)}, r, &v);
  EXPECT_NEAR(v, -(1 - 2 * 0.25), 1e-15);
  // the trajectories too (read-out exactly; damping within 5 standard errors)
  noisy_forward<double>(x1, {}, nullptr, 1, {PauliString::Z(0)}, r, 10, 0, &v);
  EXPECT_NEAR(v, -(1 - 2 * 0.25), 1e-15);
  const int N = 20000;
  noisy_forward<double>(x1, {}, nullptr, 1, {PauliString::Z(0)}, a, N, 0, &v);
  EXPECT_NEAR(v, -(1 - 2 * 0.3), 5 * std::sqrt(1 - 0.16) / std::sqrt(N));
  noisy_forward<double>(h1, {}, nullptr, 1, {PauliString::parse("X0")}, l, N, 0, &v);
  EXPECT_NEAR(v, std::sqrt(1 - 0.36), 5 * std::sqrt(0.36) / std::sqrt(N));
}

// The trajectories converge to the density matrix with every channel on:
// within 5 standard errors (per-expectation bound 1/sqrt(N)), double and float.
TEST(Density, TrajectoriesMatchDensityMatrix) {
  std::mt19937_64 rng(21);
  const Circuit c = random_circuit(rng, 3, 18, 2, 3, 2);
  const auto theta = random_vector(rng, 3);
  const auto x = random_vector(rng, 2);
  const std::vector<PauliString> obs = {PauliString::Z(0), PauliString::Z(1), PauliString::Z(2),
                                        PauliString::parse("Z0 Z1"), PauliString::parse("X0 Y1")};
  NoiseModel nm = all_noise();
  nm.readout_01 = nm.readout_10 = -1;
  nm.readout = 0.02;
  std::vector<double> dm(obs.size()), tr(obs.size()), tf(obs.size());
  density_forward(c, theta, x.data(), 1, obs, nm, dm.data());
  const int N = 6000;
  noisy_forward<double>(c, theta, x.data(), 1, obs, nm, N, 3, tr.data());
  noisy_forward<float>(c, theta, x.data(), 1, obs, nm, N, 3, tf.data());
  for (std::size_t k = 0; k < obs.size(); ++k) {
    EXPECT_NEAR(tr[k], dm[k], 5 / std::sqrt(double(N))) << obs[k].str();
    EXPECT_NEAR(tf[k], dm[k], 5 / std::sqrt(double(N))) << obs[k].str();
  }
  // asymmetric read-out: exact in both (it is applied to the expectations)
  nm.readout_01 = 0.05;
  nm.readout_10 = 0.15;
  density_forward(c, theta, x.data(), 1, obs, nm, dm.data());
  noisy_forward<double>(c, theta, x.data(), 1, obs, nm, N, 3, tr.data());
  for (std::size_t k = 0; k < obs.size(); ++k) EXPECT_NEAR(tr[k], dm[k], 5 / std::sqrt(double(N))) << obs[k].str();
}

// Noisy shots with an asymmetric read-out: a |0> qubit reads 1 with e01, a |1> qubit 0 with e10.
TEST(Density, AsymmetricReadoutShots) {
  const Circuit c = circuit_of(2, {make_gate(GateKind::X, 1)});
  NoiseModel nm;
  nm.readout_01 = 0.1;
  nm.readout_10 = 0.3;
  const long N = 40000;
  const std::vector<long> ones = noisy_shot_ones<double>(c, {}, nm, 1, N, 4);
  EXPECT_NEAR(double(ones[0]) / N, 0.1, 5 * std::sqrt(0.09 / N));
  EXPECT_NEAR(double(ones[1]) / N, 0.7, 5 * std::sqrt(0.21 / N));
}

// Routed execution under noise: the density engine on each piece, and the
// trajectories agree with it; without noise both are the coherent circuit.
TEST(Density, RoutedUnderNoise) {
  model::ModelConfig cfg;
  cfg.model = model::ModelKind::QMoE;
  cfg.routing_encoder = model::RoutingEncoder::Full;
  cfg.n_features = 12;
  cfg.data_qubits = 4;
  cfg.depth = 1;
  cfg.experts = 4;
  cfg.encoder_ring_every = 2;
  const model::Model m = model::build_model(cfg);
  const model::RoutedModel rm = model::split_routed(m);
  std::mt19937_64 rng(2);
  const auto theta = random_vector(rng, std::size_t(m.n_params()));
  const auto x = random_vector(rng, std::size_t(m.circuit.n_features));
  const std::size_t K = m.observables.size();
  NoiseModel zero;
  std::vector<double> coh(K), dm(K), tr(K);
  Workspace<double> ws;
  forward(m.circuit, theta, x.data(), 1, m.observables, coh.data(), ws);
  const model::PieceExpectations d0 = model::density_engine(theta, zero);
  model::routed_forward(rm, m, theta, x.data(), 1, &d0, dm.data());
  for (std::size_t k = 0; k < K; ++k) EXPECT_NEAR(dm[k], coh[k], 1e-12);
  const NoiseModel nm = all_noise();
  const model::PieceExpectations dn = model::density_engine(theta, nm);
  const int N = 4000;
  const model::PieceExpectations tn = model::trajectory_engine(theta, nm, N, 7);
  model::routed_forward(rm, m, theta, x.data(), 1, &dn, dm.data());
  model::routed_forward(rm, m, theta, x.data(), 1, &tn, tr.data());
  // each estimate mixes 1 + 2^r pieces' trajectory means (weights p_k sum to 1)
  for (std::size_t k = 0; k < K; ++k) EXPECT_NEAR(tr[k], dm[k], 7 / std::sqrt(double(N))) << k;
  // the routing probabilities stay a distribution under noise
  const auto p = model::routing_probabilities(m, dm.data(), 1);
  double sum = 0;
  for (double v : p) {
    EXPECT_GE(v, -1e-12);
    sum += v;
  }
  EXPECT_NEAR(sum, 1.0, 1e-12);
}

// Per-qubit and per-gate-kind errors (a device's noise model): density_forward
// against the dense reference with each qubit's values written out by hand,
// and the trajectories within 5 standard errors (reported by noisy_forward).
TEST(Density, PerQubitErrors) {
  std::mt19937_64 rng(31);
  Circuit c = random_circuit(rng, 3, 16, 2, 2, 0);
  add_gate(c, make_gate(GateKind::X, 2, {{0, true}, {1, false}}));  // a gate on 3 qubits
  const auto theta = random_vector(rng, 2);
  NoiseModel nm;
  nm.p1 = 0.01, nm.p2 = 0.04, nm.p_multi = 0.08, nm.amp_damping = 0.02;
  nm.qubits.resize(3);
  nm.qubits[0].p1 = 0.05, nm.qubits[0].readout_10 = 0.2;
  nm.qubits[1].p2 = 0.1, nm.qubits[1].phase_damping = 0.15, nm.qubits[1].readout_01 = 0.07;
  nm.qubits[2].p_multi = 0.0, nm.qubits[2].amp_damping = 0.0;
  // by hand: [qubit] = {p1, p2, p_multi, G, L, e01, e10}
  const double v[3][7] = {{0.05, 0.04, 0.08, 0.02, 0, 0, 0.2},
                          {0.01, 0.1, 0.08, 0.02, 0.15, 0.07, 0},
                          {0.01, 0.04, 0.0, 0.0, 0, 0, 0}};
  const int n = 3;
  // touched qubits 1, 2, 3 -> the depolarizing probability v[q][0], v[q][1], v[q][2]
  const Dense rho = dense_noisy_run(c, theta, nullptr, [&](Dense& r, int q, int touched) {
    dense_kraus(n, q, kraus_depol(v[q][touched - 1]), r);
    dense_kraus(n, q, kraus_amp(v[q][3]), r);
    dense_kraus(n, q, kraus_phase(v[q][4]), r);
  });
  const std::vector<PauliString> obs = {PauliString::Z(0), PauliString::Z(1), PauliString::Z(2),
                                        PauliString::parse("Z0 Z1")};
  std::vector<double> dm(obs.size()), tr(obs.size()), se(obs.size());
  density_forward(c, theta, nullptr, 1, obs, nm, dm.data());
  // the reference's read-out: per qubit, bit by bit
  const std::vector<double> e01 = {v[0][5], v[1][5], v[2][5]}, e10 = {v[0][6], v[1][6], v[2][6]};
  for (std::size_t k = 0; k < obs.size(); ++k)
    EXPECT_NEAR(dm[k], dense_measured_z(rho, n, obs[k].z, e01, e10), 1e-12) << obs[k].str();
  const int N = 6000;
  noisy_forward<double>(c, theta, nullptr, 1, obs, nm, N, 8, tr.data(), se.data());
  for (std::size_t k = 0; k < obs.size(); ++k) {
    EXPECT_GT(se[k], 0.0);
    EXPECT_LT(se[k], 1.0 / std::sqrt(double(N)) + 1e-12);
    EXPECT_NEAR(tr[k], dm[k], 5 * se[k] + 1e-9) << obs[k].str();
  }
  NoiseModel bad;
  bad.qubits.resize(1);
  bad.qubits[0].readout_01 = 1.5;
  EXPECT_THROW(bad.validate(), std::invalid_argument);
}
