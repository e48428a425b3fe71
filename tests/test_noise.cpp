// Noisy simulation (grad/noise.hpp) against a dense density-matrix reference.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "grad/noise.hpp"
#include "test_helpers.hpp"

using namespace qmoe;
using namespace qmoe::testing;

namespace {

// rho <- (1 - p) rho + p/3 (X rho X + Y rho Y + Z rho Z) on qubit q.
void dense_depolarize(int n, int q, double p, Dense& rho) {
  const std::size_t dim = std::size_t(1) << n;
  Dense sum(dim * dim, 0.0);
  for (GateKind k : {GateKind::X, GateKind::Y, GateKind::Z}) {
    Dense r = rho;
    r = dense_conj(dense_gate_matrix(n, make_gate(k, q), nullptr), r, dim);
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += r[i];
  }
  for (std::size_t i = 0; i < rho.size(); ++i) rho[i] = (1 - p) * rho[i] + p / 3 * sum[i];
}

// tr(rho P) under the noise model's depolarizing errors (p1 after a one-qubit
// gate, p2 on each qubit of a larger one), without the read-out factor.
std::vector<double> dense_noisy(const Circuit& c, const std::vector<double>& theta, const double* x,
                                const NoiseModel& noise, const std::vector<PauliString>& obs) {
  const int n = c.n_qubits;
  const Dense rho = dense_noisy_run(c, theta, x, [&](Dense& r, int q, int touched) {
    dense_depolarize(n, q, touched > 1 ? noise.p2 : noise.p1, r);
  });
  std::vector<double> out;
  for (const PauliString& p : obs) out.push_back(dense_pauli(rho, n, p));
  return out;
}

std::vector<PauliString> some_observables(int n) { return z_each_then(n, {"X0 Y1", "Z0 Z2", "Y2"}); }

}  // namespace

TEST(Noise, PauliErrorPerSampleMatchesMatrices) {
  std::mt19937_64 rng(3);
  const std::uint8_t codes[5] = {0, 1, 2, 3, 2};
  for (int target = 0; target < 3; ++target) {
    sim::State<double> s = random_state<double>(rng, 3, 5);
    const sim::State<double> before = s;
    sim::apply_pauli_per_sample(s, target, codes);
    const GateKind kinds[4] = {GateKind::I, GateKind::X, GateKind::Y, GateKind::Z};
    for (int b = 0; b < 5; ++b) {
      std::vector<cplx> ref = sample_amplitudes(before, b);
      dense_apply(3, make_gate(kinds[codes[b]], target), nullptr, ref);
      const std::vector<cplx> got = sample_amplitudes(s, b);
      for (std::size_t i = 0; i < ref.size(); ++i) EXPECT_LT(std::abs(got[i] - ref[i]), 1e-15) << b;
    }
  }
  const std::uint8_t bad[1] = {4};
  sim::State<double> one = sim::make_state<double>(1, 1);
  EXPECT_THROW(sim::apply_pauli_per_sample(one, 0, bad), std::invalid_argument);
}

TEST(Noise, WithoutErrorsEqualsForwardAndReadoutScales) {
  std::mt19937_64 rng(5);
  const Circuit c = random_circuit(rng, 3, 25, 2, 4, 3);
  const auto theta = random_vector(rng, 4);
  const auto x = random_vector(rng, 3 * 3);
  const auto obs = some_observables(3);
  const std::size_t K = obs.size();
  std::vector<double> exact(3 * K), noisy(3 * K);
  Workspace<double> ws;
  forward(c, theta, x.data(), 3, obs, exact.data(), ws);
  NoiseModel nm;
  nm.readout = 0.1;
  noisy_forward<double>(c, theta, x.data(), 3, obs, nm, 3, 1, noisy.data());
  for (std::size_t i = 0; i < exact.size(); ++i) {
    const int w = std::popcount(obs[i % K].x | obs[i % K].z);
    EXPECT_NEAR(noisy[i], exact[i] * std::pow(0.8, w), 1e-12) << i;
  }
}

TEST(Noise, TrajectoryMeanMatchesDensityMatrix) {
  // Within 5 standard errors of the exact channel, on circuits with controls,
  // swaps and per-sample angles; a sign or Pauli mix-up moves means by ~p.
  std::mt19937_64 rng(11);
  const int T = 6000, n = 3, B = 2;
  for (int trial = 0; trial < 3; ++trial) {
    const Circuit c = random_circuit(rng, n, 12, 2, 3, 2);
    const auto theta = random_vector(rng, 3);
    const auto x = random_vector(rng, 2 * B);
    const auto obs = some_observables(n);
    const std::size_t K = obs.size();
    NoiseModel nm;
    nm.p1 = 0.15, nm.p2 = 0.1;
    std::vector<double> got(B * K);
    noisy_forward<double>(c, theta, x.data(), B, obs, nm, T, 42 + trial, got.data());
    for (int b = 0; b < B; ++b) {
      const auto ref = dense_noisy(c, theta, x.data() + 2 * b, nm, obs);
      for (std::size_t k = 0; k < K; ++k) {
        const double sigma = std::sqrt(std::max(1.0 - ref[k] * ref[k], 0.01) / T);
        EXPECT_NEAR(got[b * K + k], ref[k], 5 * sigma) << "trial " << trial << " sample " << b << " " << obs[k].str();
      }
    }
  }
}

TEST(Noise, OneQubitDepolarizingScalesZ) {
  // X then an error with probability p: X and Y errors flip <Z>, so <Z> = -(1 - 4p/3).
  const Circuit c = circuit_of(1, {make_gate(GateKind::X, 0)});
  NoiseModel nm;
  nm.p1 = 0.3;
  const int T = 20000;
  double z = 0;
  noisy_forward<double>(c, {}, nullptr, 1, {PauliString::Z(0)}, nm, T, 7, &z);
  EXPECT_NEAR(z, -(1 - 4 * 0.3 / 3), 5 * std::sqrt(1.0 / T));
}

TEST(Noise, ReproducibleAndIndependentOfBatchAndThreads) {
  std::mt19937_64 rng(9);
  const Circuit c = random_circuit(rng, 4, 20, 2, 3, 2);
  const auto theta = random_vector(rng, 3);
  const auto x = random_vector(rng, 2 * 4);
  const auto obs = some_observables(4);
  const std::size_t K = obs.size();
  NoiseModel nm;
  nm.p1 = 0.05, nm.p2 = 0.08;
  std::vector<double> all(4 * K), again(4 * K);
  noisy_forward<double>(c, theta, x.data(), 4, obs, nm, 150, 5, all.data());
  noisy_forward<double>(c, theta, x.data(), 4, obs, nm, 150, 5, again.data());
  EXPECT_EQ(all, again);
  for (int b = 0; b < 4; ++b) {
    std::vector<double> one(K);
    noisy_forward<double>(c, theta, x.data() + 2 * b, 1, obs, nm, 150, 5, one.data());
    for (std::size_t k = 0; k < K; ++k) EXPECT_EQ(one[k], all[b * K + k]);
  }
#ifdef _OPENMP
  // One thread: the same numbers (the batch path and the one-sample path).
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  std::vector<double> serial(4 * K), one(K);
  noisy_forward<double>(c, theta, x.data(), 4, obs, nm, 150, 5, serial.data());
  noisy_forward<double>(c, theta, x.data(), 1, obs, nm, 150, 5, one.data());
  omp_set_num_threads(threads);
  EXPECT_EQ(serial, all);
  for (std::size_t k = 0; k < K; ++k) EXPECT_EQ(one[k], all[k]);
#endif
  std::vector<double> other(4 * K);
  noisy_forward<double>(c, theta, x.data(), 4, obs, nm, 150, 6, other.data());
  EXPECT_NE(other, all);  // another seed, other errors
}

TEST(Noise, ShotsFollowTheNoisyDistribution) {
  std::mt19937_64 rng(13);
  Circuit c = random_circuit(rng, 3, 10, 1, 2, 0);
  const auto theta = random_vector(rng, 2);
  NoiseModel nm;
  nm.p1 = 0.1, nm.p2 = 0.1, nm.readout = 0.05;
  const long shots = 40000;
  const auto v = noisy_shots<double>(c, theta, nm, 400, shots, 3);
  ASSERT_EQ(long(v.size()), shots);
  std::vector<double> z(3);
  noisy_forward<double>(c, theta, nullptr, 1, {PauliString::Z(0), PauliString::Z(1), PauliString::Z(2)}, nm,
                        400, 3, z.data());
  const auto ref = dense_noisy(c, theta, nullptr, nm, {PauliString::Z(0), PauliString::Z(1), PauliString::Z(2)});
  for (int q = 0; q < 3; ++q) {
    double mean = 0;
    for (std::uint64_t s : v) mean += ((s >> q) & 1) ? -1.0 : 1.0;
    mean /= double(shots);
    const double exact = ref[q] * 0.9;  // read-out flips scale <Z> by 1 - 2 * 0.05
    // shot noise, plus the 400 trajectories' spread around the channel
    EXPECT_NEAR(mean, exact, 5 * std::sqrt(1.0 / shots) + 5 * std::sqrt(1.0 / 400)) << q;
    EXPECT_NEAR(z[q], exact, 5 * std::sqrt(1.0 / 400)) << q;
  }
  EXPECT_EQ(v, noisy_shots<double>(c, theta, nm, 400, shots, 3));
  // Counted instead of stored (what `qmoe qasm --shots` uses): the same shots.
  const auto ones = noisy_shot_ones<double>(c, theta, nm, 400, shots, 3);
  for (int q = 0; q < 3; ++q) {
    long expected = 0;
    for (std::uint64_t s : v) expected += long((s >> q) & 1);
    EXPECT_EQ(ones[std::size_t(q)], expected) << q;
  }
}

TEST(Noise, BadInputsThrow) {
  const Circuit c = circuit_of(1, {make_gate(GateKind::H, 0)});
  double z;
  NoiseModel nm;
  nm.p1 = 1.5;
  EXPECT_THROW(noisy_forward<double>(c, {}, nullptr, 1, {PauliString::Z(0)}, nm, 10, 1, &z), std::invalid_argument);
  nm.p1 = 0.1;
  EXPECT_THROW(noisy_forward<double>(c, {}, nullptr, 1, {PauliString::Z(0)}, nm, 0, 1, &z), std::invalid_argument);
  EXPECT_THROW(noisy_forward<double>(c, {}, nullptr, 1, {PauliString::Z(3)}, nm, 10, 1, &z), std::invalid_argument);
  nm.readout = -0.1;
  EXPECT_THROW(noisy_shots<double>(c, {}, nm, 10, 10, 1), std::invalid_argument);
}
