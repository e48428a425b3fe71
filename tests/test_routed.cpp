// Routed execution of the QMoE (model/routed.hpp): measuring the routing
// register after G and running only the selected expert gives the coherent
// circuit's expectations exactly, and its shot estimates agree within the
// sampling error; coherent shot estimates (grad/shots.hpp) likewise.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "grad/shots.hpp"
#include "model/model.hpp"
#include "model/routed.hpp"
#include "model_helpers.hpp"
#include "test_helpers.hpp"

using namespace qmoe;
using namespace qmoe::testing;

namespace {

// The test QMoE of model_helpers.hpp with the given router encoder.
model::ModelConfig routed_config(int experts, const std::string& enc) {
  return small_qmoe(experts, "rxryrz", model::parse_routing_encoder(enc));
}

std::vector<double> coherent(const model::Model& m, const std::vector<double>& theta, const std::vector<double>& x,
                             int batch) {
  Workspace<double> ws;
  std::vector<double> ev(std::size_t(batch) * m.observables.size());
  forward(m.circuit, theta, x.data(), batch, m.observables, ev.data(), ws);
  return ev;
}

struct Case {
  int experts;
  const char* encoder;
  const char* aggregation;
};

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (int L : {2, 3, 4})
    for (const char* enc : {"full", "quadrant", "joint"})
      for (const char* agg : {"cnot", "none"}) out.push_back({L, enc, agg});
  return out;
}

}  // namespace

// Exact routed execution == the coherent circuit to 1e-12, every observable
// (data <Z_q> and the routing Z strings p_k comes from), for 2, 3 and 4
// experts, every routing encoder, with and without the aggregation CNOTs.
TEST(Routed, ExactEqualsCoherent) {
  for (const Case& cs : all_cases()) {
    model::ModelConfig cfg = routed_config(cs.experts, cs.encoder);
    cfg.aggregation = model::parse_aggregation(cs.aggregation);
    const model::Model m = model::build_model(cfg);
    const model::RoutedModel rm = model::split_routed(m);
    EXPECT_EQ(rm.entangled, std::string(cs.encoder) == "joint");
    EXPECT_EQ(rm.n_routing, int(m.routing_qubits.size()));
    std::mt19937_64 rng(7 + cs.experts);
    const int B = 3;
    const auto theta = random_vector(rng, std::size_t(m.n_params()));
    const auto x = random_vector(rng, std::size_t(B) * m.circuit.n_features);
    const auto ref = coherent(m, theta, x, B);
    std::vector<double> ev(ref.size());
    model::routed_forward(rm, m, theta, x.data(), B, nullptr, ev.data());
    for (std::size_t j = 0; j < ref.size(); ++j)
      EXPECT_NEAR(ev[j], ref[j], 1e-12) << "L=" << cs.experts << " " << cs.encoder << " " << cs.aggregation << " j=" << j;
    // The routing distribution over all 2^r outcomes is a distribution.
    const auto p = model::routing_probabilities(m, ev.data(), B);
    for (double v : p) EXPECT_GE(v, -1e-12);
  }
}

// The pieces: the router is the routing register alone when separable; each
// outcome's program is the data encoder then expert k (no routing controls
// left) and the flips; outcomes k >= L run no expert gate.
TEST(Routed, PiecesAreSeparatePrograms) {
  const model::Model m = model::build_model(routed_config(3, "full"));
  const model::RoutedModel rm = model::split_routed(m);
  ASSERT_FALSE(rm.entangled);
  EXPECT_EQ(rm.router.n_qubits, 2);
  EXPECT_EQ(rm.n_data, 4);
  const std::size_t prep = rm.data_prep.gates.size();
  EXPECT_GT(prep, 0u);
  for (int k = 0; k < 4; ++k) {
    const Circuit c = model::expert_program(rm, k);
    EXPECT_EQ(c.n_qubits, 4);
    for (const Gate& g : c.gates) EXPECT_LE(g.controls.size(), 1u);  // only the rings' CNOTs
  }
  // Expert gates: depth 2 x (4 qubits x 3 rotations + 4 ring CNOTs) = 32; k = 3 runs none.
  // Aggregation flips: k's bit on routing position j flips data qubit j.
  const int flips[4] = {0, 1, 1, 2};
  for (int k = 0; k < 4; ++k)
    EXPECT_EQ(int(rm.branch[std::size_t(k)].gates.size()), (k < 3 ? 32 : 0) + flips[k]) << k;
  // joint: no separate programs, no noisy engine
  const model::Model mj = model::build_model(routed_config(4, "joint"));
  const model::RoutedModel rj = model::split_routed(mj);
  EXPECT_TRUE(rj.entangled);
  EXPECT_THROW(model::expert_program(rj, 0), std::invalid_argument);
  std::vector<double> theta(std::size_t(mj.n_params()), 0.1), x(std::size_t(mj.circuit.n_features), 0.2);
  std::vector<double> ev(mj.observables.size());
  const model::PieceExpectations eng = model::exact_engine(theta);
  EXPECT_THROW(model::routed_forward(rj, mj, theta, x.data(), 1, &eng, ev.data()), std::invalid_argument);
  // a QNN has nothing to route
  model::ModelConfig q = routed_config(2, "full");
  q.model = model::ModelKind::QNN;
  EXPECT_THROW(model::split_routed(model::build_model(q)), std::invalid_argument);
}

// Routed through an engine (here the exact one, piece by piece) equals the
// built-in exact path: the engine sees the router and each outcome's program.
TEST(Routed, EngineSeesEveryPiece) {
  const model::Model m = model::build_model(routed_config(4, "quadrant"));
  const model::RoutedModel rm = model::split_routed(m);
  std::mt19937_64 rng(3);
  const auto theta = random_vector(rng, std::size_t(m.n_params()));
  const auto x = random_vector(rng, std::size_t(2) * m.circuit.n_features);
  std::vector<int> pieces;
  const model::PieceExpectations exact = model::exact_engine(theta);
  const model::PieceExpectations spy = [&](int piece, const Circuit& c, const double* xx, int batch,
                                           const std::vector<PauliString>& obs, double* out) {
    pieces.push_back(piece);
    EXPECT_EQ(c.n_qubits, piece == 0 ? 2 : 4);
    exact(piece, c, xx, batch, obs, out);
  };
  std::vector<double> ev(2 * m.observables.size());
  model::routed_forward(rm, m, theta, x.data(), 2, &spy, ev.data());
  EXPECT_EQ(pieces, (std::vector<int>{0, 1, 2, 3, 4}));
  const auto ref = coherent(m, theta, x, 2);
  for (std::size_t j = 0; j < ref.size(); ++j) EXPECT_NEAR(ev[j], ref[j], 1e-12);
}

// Shot estimates: each routed and each coherent estimate within 5 standard
// errors sqrt((1 - <O>^2) / N) of the exact value; reproducible for a seed and
// the same for a sample alone or in a batch; a different seed differs.
TEST(Routed, ShotsWithinSamplingError) {
  const long N = 20000;
  for (int L : {2, 3, 4})
    for (const char* enc : {"full", "quadrant", "joint"}) {
      const model::Model m = model::build_model(routed_config(L, enc));
      const model::RoutedModel rm = model::split_routed(m);
      std::mt19937_64 rng(11 + L);
      const int B = 2;
      const auto theta = random_vector(rng, std::size_t(m.n_params()));
      const auto x = random_vector(rng, std::size_t(B) * m.circuit.n_features);
      const auto ref = coherent(m, theta, x, B);
      std::vector<double> routed(ref.size()), coh(ref.size());
      model::routed_shots(rm, m, theta, x.data(), B, N, 5, routed.data());
      shot_forward<double>(m.circuit, theta, x.data(), B, m.observables, N, 5, coh.data());
      for (std::size_t j = 0; j < ref.size(); ++j) {
        const double se = std::sqrt(std::max(1e-12, 1 - ref[j] * ref[j]) / double(N));
        EXPECT_NEAR(routed[j], ref[j], 5 * se + 1e-12) << "routed L=" << L << " " << enc << " j=" << j;
        EXPECT_NEAR(coh[j], ref[j], 5 * se + 1e-12) << "coherent L=" << L << " " << enc << " j=" << j;
      }
      // sample 1 alone gives the numbers it had in the batch
      const std::size_t K = m.observables.size();
      std::vector<double> one(K);
      model::routed_shots(rm, m, theta, x.data() + m.circuit.n_features, 1, N, 5, one.data());
      for (std::size_t j = 0; j < K; ++j) EXPECT_EQ(one[j], routed[K + j]);
      std::vector<double> other(ref.size());
      model::routed_shots(rm, m, theta, x.data(), B, N, 6, other.data());
      EXPECT_NE(other, routed);
    }
}

// A shot estimate's spread over seeds is the binomial one (the estimates are
// means of +-1 draws from the right distribution, not the exact value).
TEST(Routed, ShotSpreadIsBinomial) {
  const model::Model m = model::build_model(routed_config(4, "full"));
  const model::RoutedModel rm = model::split_routed(m);
  std::mt19937_64 rng(5);
  const auto theta = random_vector(rng, std::size_t(m.n_params()));
  const auto x = random_vector(rng, std::size_t(m.circuit.n_features));
  const auto ref = coherent(m, theta, x, 1);
  const long N = 100;
  const int seeds = 400;
  const std::size_t K = m.observables.size();
  std::vector<double> var(K, 0.0), ev(K);
  for (int s = 0; s < seeds; ++s) {
    model::routed_shots(rm, m, theta, x.data(), 1, N, std::uint64_t(s), ev.data());
    for (std::size_t j = 0; j < K; ++j) var[j] += (ev[j] - ref[j]) * (ev[j] - ref[j]) / seeds;
  }
  for (std::size_t j = 0; j < K; ++j) {
    const double expect = (1 - ref[j] * ref[j]) / double(N);
    // the variance estimate from 400 seeds is within ~25% (5 sd of a chi-square / 400)
    EXPECT_NEAR(var[j], expect, 0.4 * expect + 1e-6) << j;
  }
}
