// Training as a device would (issue 18 part 4): the batched parameter-shift
// vjp and its evaluation count, parameter shift from shots, the sampled error
// realisations of noise-aware training, and their settings in a checkpoint.
#include <gtest/gtest.h>

#include <cmath>

#include "grad/adjoint.hpp"
#include "grad/noise.hpp"
#include "grad/param_shift.hpp"
#include "model_helpers.hpp"
#include "test_helpers.hpp"
#include "train/trainer.hpp"

using namespace qmoe;
using namespace qmoe::testing;

namespace {

// Z on each qubit and Z0 Z1: what a device measures in the computational basis.
std::vector<PauliString> z_observables(int n) { return z_each_then(n, {"Z0 Z1"}); }

// Shifted evaluations the rules need: 2 per parameter occurrence, 4 when the
// angle is a controlled rotation's (param_shift.hpp).
int expected_evaluations(const Circuit& c) {
  int n = 0;
  for (const Gate& g : c.gates)
    for (int j = 0; j < angle_count(g.kind); ++j) {
      if (g.angles[j].source != AngleSource::Param) continue;
      const bool phase = g.kind == GateKind::U1 || g.kind == GateKind::U2 || (g.kind == GateKind::U3 && j > 0);
      n += !g.controls.empty() && !phase ? 4 : 2;
    }
  return n;
}

}  // namespace

// The batched vjp == the adjoint vjp to 1e-10 on random circuits (shared
// parameters with scales, controls, features), and it calls the evaluator
// exactly once per shifted evaluation of the whole batch.
TEST(DeviceTraining, BatchedParameterShiftMatchesAdjointAtItsEvaluationCount) {
  std::mt19937_64 rng(21);
  for (int trial = 0; trial < 8; ++trial) {
    const int n = 2 + trial % 3, batch = 1 + trial % 4, P = 4, F = 3;
    const GradProblem pr = random_grad_problem(rng, n, 30, 2, P, F, batch, z_observables(n));
    const Circuit& c = pr.c;
    const std::vector<double> &theta = pr.theta, &x = pr.x, &w = pr.w;
    const std::vector<PauliString>& obs = pr.obs;
    Workspace<double> ws;
    std::vector<double> ev(obs.size() * batch), adj(P, 0.0), ps(P, 0.0), ps2(P, 0.0);
    forward(c, theta, x.data(), batch, obs, ev.data(), ws);
    backward(c, theta, x.data(), batch, obs, w.data(), adj.data(), nullptr, ws);
    param_shift_gradient(c, theta, x.data(), batch, obs, w.data(), ps.data(), ws);
    for (int j = 0; j < P; ++j) EXPECT_NEAR(ps[j], adj[j], 1e-10) << "trial " << trial << " param " << j;
    int calls = 0;
    const int reported = param_shift_vjp(c, theta, batch, int(obs.size()), w.data(), ps2.data(),
                                         [&](const Circuit& oc, const std::vector<double>& th, double* e) {
                                           ++calls;
                                           forward(oc, th, x.data(), batch, obs, e, ws);
                                         });
    EXPECT_EQ(calls, expected_evaluations(c)) << "trial " << trial;
    EXPECT_EQ(reported, calls);
    for (int j = 0; j < P; ++j) EXPECT_EQ(ps2[j], ps[j]);
  }
}

// Parameter shift from shots: reproducible for a seed, different for another,
// and unbiased: the mean over seeds is within 5 standard errors of the exact
// vjp (each evaluation's <Z> has variance <= 1/shots).
TEST(DeviceTraining, ShotParameterShiftIsUnbiasedAndSeeded) {
  std::mt19937_64 rng(5);
  const int n = 3, batch = 2, P = 3, F = 2;
  const GradProblem pr = random_grad_problem(rng, n, 12, 1, P, F, batch, z_observables(n), false);
  const Circuit& c = pr.c;
  const std::vector<double> &theta = pr.theta, &x = pr.x, &w = pr.w;
  const std::vector<PauliString>& obs = pr.obs;
  Workspace<double> ws;
  std::vector<double> exact(P, 0.0);
  param_shift_gradient(c, theta, x.data(), batch, obs, w.data(), exact.data(), ws);
  const long shots = 400;
  std::vector<double> a(P, 0.0), b(P, 0.0), other(P, 0.0);
  shot_param_shift_gradient(c, theta, x.data(), batch, obs, shots, 7, w.data(), a.data());
  shot_param_shift_gradient(c, theta, x.data(), batch, obs, shots, 7, w.data(), b.data());
  shot_param_shift_gradient(c, theta, x.data(), batch, obs, shots, 8, w.data(), other.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other);
  const int seeds = 300;
  std::vector<double> mean(P, 0.0);
  for (int s = 0; s < seeds; ++s) {
    std::vector<double> g(P, 0.0);
    shot_param_shift_gradient(c, theta, x.data(), batch, obs, shots, 100 + s, w.data(), g.data());
    for (int j = 0; j < P; ++j) mean[j] += g[j] / seeds;
  }
  // Bound on one estimate's standard deviation: each of the <= 4 shifted
  // evaluations per occurrence enters with a coefficient <= 1/2 times
  // sum |w| over samples and observables, each <Z> with sd <= 1/sqrt(shots).
  double wsum = 0;
  for (double v : w) wsum += std::abs(v);
  const int occurrences = expected_evaluations(c);  // an upper bound on the terms per parameter
  const double sd = 0.5 * wsum * std::sqrt(double(occurrences)) / std::sqrt(double(shots));
  for (int j = 0; j < P; ++j) EXPECT_NEAR(mean[j], exact[j], 5 * sd / std::sqrt(double(seeds))) << "param " << j;
}

// Noise-aware training's error realisations: their mean is the noisy channel.
// For depolarizing, phase damping and a symmetric read-out error (Pauli
// channels, so the twirl is exact) the mean <O> over realisations equals the
// density matrix's within 5 standard errors; amplitude damping enters by its
// twirl, whose <X> decay sqrt(1-G) is the channel's.
TEST(DeviceTraining, ErrorRealisationsAverageToTheNoisyChannel) {
  std::mt19937_64 rng(3);
  const int n = 3, P = 4;
  const Circuit c = random_circuit(rng, n, 14, 1, P, 0, false);
  const auto theta = random_vector(rng, P);
  const auto obs = z_observables(n);
  NoiseModel nm;
  nm.p1 = 0.05, nm.p2 = 0.08, nm.phase_damping = 0.1, nm.readout = 0.03;
  std::vector<double> exact(obs.size());
  density_forward(c, theta, nullptr, 1, obs, nm, exact.data());
  const int R = 4000;
  std::vector<double> sum(obs.size(), 0.0), sum2(obs.size(), 0.0), ev(obs.size());
  Workspace<double> ws;
  int inserted = 0;
  for (int r = 0; r < R; ++r) {
    const Circuit e = error_realisation(c, nm, std::uint64_t(r));
    inserted += int(e.gates.size() - c.gates.size());
    forward(e, theta, nullptr, 1, obs, ev.data(), ws);
    for (std::size_t k = 0; k < obs.size(); ++k) sum[k] += ev[k], sum2[k] += ev[k] * ev[k];
  }
  EXPECT_GT(inserted, 0);
  for (std::size_t k = 0; k < obs.size(); ++k) {
    const double mean = sum[k] / R, var = sum2[k] / R - mean * mean;
    EXPECT_NEAR(mean, exact[k], 5 * std::sqrt(var / R) + 1e-12) << obs[k].str();
  }
  // The same seed gives the same realisation; no noise inserts nothing.
  const Circuit e1 = error_realisation(c, nm, 9), e2 = error_realisation(c, nm, 9);
  ASSERT_EQ(e1.gates.size(), e2.gates.size());
  for (std::size_t i = 0; i < e1.gates.size(); ++i) EXPECT_EQ(e1.gates[i].kind, e2.gates[i].kind);
  EXPECT_EQ(error_realisation(c, NoiseModel{}, 9).gates.size(), c.gates.size());

  // Amplitude damping G after an H on |0>: <X> = sqrt(1-G) (read as <Z> after a second H).
  const Circuit h = circuit_of(1, {make_gate(GateKind::H, 0)});
  NoiseModel amp;
  amp.amp_damping = 0.3;
  double mean_x = 0;
  const int RA = 20000;
  for (int r = 0; r < RA; ++r) {
    Circuit e = error_realisation(h, amp, std::uint64_t(r));
    add_gate(e, make_gate(GateKind::H, 0));
    double z;
    forward(e, {}, nullptr, 1, {PauliString::Z(0)}, &z, ws);
    mean_x += z / RA;
  }
  EXPECT_NEAR(mean_x, std::sqrt(1 - 0.3), 5 * std::sqrt(1.0 / RA));
}

// Shots and noise are settings of the run: they survive the checkpoint JSON,
// and bad values are refused.
TEST(DeviceTraining, ShotsAndNoiseRoundTripThroughTheTrainConfig) {
  train::TrainConfig tc;
  tc.gradient = train::GradientMethod::ParamShift;
  tc.shots = 1000;
  tc.noise.p1 = 0.001, tc.noise.p2 = 0.01, tc.noise.readout_10 = 0.02, tc.noise.amp_damping = 0.003;
  tc.noise.qubits.resize(3);
  tc.noise.qubits[2].p2 = 0.05;
  const train::TrainConfig back = train::TrainConfig::from_json(tc.to_json());
  EXPECT_EQ(back.shots, 1000);
  EXPECT_EQ(back.noise.p1, 0.001);
  EXPECT_EQ(back.noise.p2, 0.01);
  EXPECT_EQ(back.noise.readout_10, 0.02);
  EXPECT_EQ(back.noise.readout_01, -1.0);
  EXPECT_EQ(back.noise.amp_damping, 0.003);
  ASSERT_EQ(back.noise.qubits.size(), 3u);
  EXPECT_EQ(back.noise.qubits[2].p2, 0.05);
  EXPECT_EQ(back.noise.qubits[0].p2, -1.0);
  EXPECT_EQ(back.to_json(), tc.to_json());
  train::TrainConfig plain;
  EXPECT_TRUE(train::TrainConfig::from_json(plain.to_json()).noise.empty());

  train::TrainConfig bad = tc;
  bad.gradient = train::GradientMethod::Adjoint;
  EXPECT_THROW(bad.validate(), std::invalid_argument);  // shots train by parameter shift
  bad = tc;
  bad.shots = -1;
  EXPECT_THROW(bad.validate(), std::invalid_argument);
  nlohmann::json j = tc.to_json();
  j["noise"]["depol2"] = 1.5;
  EXPECT_THROW(train::TrainConfig::from_json(j), std::invalid_argument);
  j["noise"] = {{"depol3", 0.1}};
  EXPECT_THROW(train::TrainConfig::from_json(j), std::invalid_argument);
}

// train() with shots and with injected noise: the same seed gives the same
// parameters, the loss is finite, and the run differs from exact training.
TEST(DeviceTraining, TrainingFromShotsAndUnderNoiseIsReproducible) {
  model::ModelConfig cfg = small_qmoe(2, "ry");
  cfg.n_classes = 2;
  cfg.depth = 1;
  const model::Model m = model::build_model(cfg);
  const data::Dataset d = synthetic(24, cfg.n_features, 2, 4);
  const auto run = [&](long shots, double p2) {
    train::TrainConfig tc;
    tc.epochs = 1, tc.batch = 8, tc.seed = 3;
    tc.gradient = shots > 0 ? train::GradientMethod::ParamShift : train::GradientMethod::Adjoint;
    tc.shots = shots;
    tc.noise.p2 = p2;
    tc.validate();
    train::TrainState st = train::initial_state(m, tc);
    train::train(m, tc, d, d, st, {});
    EXPECT_TRUE(std::isfinite(st.history.back().train_loss));
    return st.theta;
  };
  const auto exact = run(0, 0), shots_a = run(64, 0), shots_b = run(64, 0), noisy_a = run(0, 0.05),
             noisy_b = run(0, 0.05);
  EXPECT_EQ(shots_a, shots_b);
  EXPECT_EQ(noisy_a, noisy_b);
  EXPECT_NE(shots_a, exact);
  EXPECT_NE(noisy_a, exact);
}
