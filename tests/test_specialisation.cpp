// Experts that specialise (issue 19): the mutual information I(class; expert),
// the routing losses, the sum of experts, data re-uploading, the 10-class
// read-out and hard (sampled) routing, each against an independent reference.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

#include "model/model.hpp"
#include "model/routing_loss.hpp"
#include "model/specialisation.hpp"
#include "model_helpers.hpp"
#include "test_helpers.hpp"
#include "train/hard_routing.hpp"
#include "train/trainer.hpp"

using namespace qmoe;
using namespace qmoe::testing;

namespace {

// model_helpers' small_qmoe with two rotations per qubit, 12 features and
// logits scaled by 2, as any of the three model kinds.
model::ModelConfig small(const std::string& kind = "qmoe", int experts = 4, int classes = 4) {
  model::ModelConfig c = small_qmoe(experts, "rxry");
  c.model = model::parse_model_kind(kind);
  c.logit_scale = 2.0;
  c.n_classes = classes;
  c.n_features = 12;
  return c;
}

// small() with the grid routing encoder: 8x8 images, 16 block means.
model::ModelConfig small_grid() {
  model::ModelConfig c = small();
  c.n_features = 64;
  c.routing_encoder = model::RoutingEncoder::Grid;
  return c;
}

// Features uniform in [0, 1) without a class signal: these tests need inputs,
// not a learnable set.
data::Dataset uniform_data(int n, int features, int classes, std::uint64_t seed) {
  return synthetic(n, features, classes, seed, 0.0, 1.0, 0.0);
}

// Central finite differences of batch_gradient's loss against its gradient,
// on rows {0, 1, 2, 3, 5} at a random theta (seed 17).
void expect_gradient_matches_fd(const model::Model& m, const data::Dataset& d, const std::string& what,
                                int chunk = 16) {
  std::mt19937_64 rng(17);
  const auto theta = random_vector(rng, std::size_t(m.n_params()));
  expect_batch_gradient_matches_fd(m, d, {0, 1, 2, 3, 5}, theta, 1e-9, what, chunk);
}

}  // namespace

// ---- mutual information ---------------------------------------------------------

TEST(MutualInformation, ConstructedCasesWithKnownAnswers) {
  // Each of 4 classes to its own expert: I = H(class) = 2 bits.
  std::vector<std::vector<double>> diag(4, std::vector<double>(4, 0.0));
  for (int c = 0; c < 4; ++c) diag[c][c] = 25;
  EXPECT_NEAR(model::mutual_information_bits(diag), 2.0, 1e-12);
  // Independent class and expert (an outer product): 0.
  const std::vector<double> pc = {0.1, 0.2, 0.3, 0.4}, pk = {0.5, 0.25, 0.125, 0.125};
  std::vector<std::vector<double>> indep(4, std::vector<double>(4));
  for (int c = 0; c < 4; ++c)
    for (int k = 0; k < 4; ++k) indep[c][k] = pc[c] * pk[k];
  EXPECT_NEAR(model::mutual_information_bits(indep), 0.0, 1e-12);
  // A binary symmetric channel with error 0.2 and uniform input: 1 - H2(0.2).
  const double h2 = -(0.2 * std::log2(0.2) + 0.8 * std::log2(0.8));
  EXPECT_NEAR(model::mutual_information_bits({{0.4, 0.1}, {0.1, 0.4}}), 1.0 - h2, 1e-12);
  EXPECT_NEAR(model::mutual_information_bits({{4, 1}, {1, 4}}), 1.0 - h2, 1e-12);  // unnormalised
  // 4 classes onto 2 experts, classes {0,1} -> 0 and {2,3} -> 1: 1 bit.
  EXPECT_NEAR(model::mutual_information_bits({{1, 0}, {1, 0}, {0, 1}, {0, 1}}), 1.0, 1e-12);
  EXPECT_EQ(model::mutual_information_bits({}), 0.0);
  EXPECT_EQ(model::mutual_information_bits({{0, 0}, {0, 0}}), 0.0);
  EXPECT_THROW(model::mutual_information_bits({{1, -1}, {1, 1}}), std::invalid_argument);
  EXPECT_THROW(model::mutual_information_bits({{1, 1}, {1}}), std::invalid_argument);
  EXPECT_THROW(model::mutual_information_bits({{1, NAN}}), std::invalid_argument);
}

TEST(MutualInformation, SoftRoutingJointAndUsage) {
  // Class 0 (30 samples) routes 0.9/0.1, class 1 (10 samples) 0.1/0.9.
  const auto joint = model::routing_joint({{0.9, 0.1}, {0.1, 0.9}}, {30, 10});
  EXPECT_NEAR(joint[0][0], 27, 1e-12);
  EXPECT_NEAR(joint[1][1], 9, 1e-12);
  // By hand: p(c) = (0.75, 0.25), p(k) = (0.7, 0.3).
  const double pj[2][2] = {{0.675, 0.075}, {0.025, 0.225}}, pck[2] = {0.75, 0.25}, pkk[2] = {0.7, 0.3};
  double want = 0;
  for (int c = 0; c < 2; ++c)
    for (int k = 0; k < 2; ++k) want += pj[c][k] * std::log2(pj[c][k] / (pck[c] * pkk[k]));
  EXPECT_NEAR(model::mutual_information_bits(joint), want, 1e-12);
  const auto u = model::expert_usage(joint);
  EXPECT_NEAR(u[0], 0.7, 1e-12);
  EXPECT_NEAR(u[1], 0.3, 1e-12);
  EXPECT_THROW(model::routing_joint({{1.0}}, {1, 2}), std::invalid_argument);
}

// ---- routing losses ---------------------------------------------------------------

TEST(RoutingLoss, AgainstFiniteDifferencesAndByHand) {
  std::mt19937_64 rng(3);
  const int B = 5, L = 4;
  std::vector<double> p = random_vector(rng, std::size_t(B * L), 0.05, 1.0);
  for (int b = 0; b < B; ++b) {  // rows sum to 1
    double s = 0;
    for (int k = 0; k < L; ++k) s += p[std::size_t(b * L + k)];
    for (int k = 0; k < L; ++k) p[std::size_t(b * L + k)] /= s;
  }
  const model::RoutingLossWeights w{0.7, 0.3};
  std::vector<double> dp(p.size(), 0.0), scratch(p.size());
  const double loss = model::routing_loss(p.data(), B, L, w, dp.data(), B);
  // by hand
  double lb = 0, h = 0;
  for (int k = 0; k < L; ++k) {
    double pbar = 0;
    for (int b = 0; b < B; ++b) pbar += p[std::size_t(b * L + k)] / B;
    lb += L * pbar * pbar;
  }
  for (double v : p) h -= v * std::log(v) / B;
  EXPECT_NEAR(loss, 0.7 * lb + 0.3 * h, 1e-12);
  EXPECT_NEAR(model::mean_routing_entropy(p.data(), B, L), h, 1e-12);
  const double eps = 1e-6;
  const auto loss_of_p = [&](const std::vector<double>& q) {
    return model::routing_loss(q.data(), B, L, w, scratch.data(), B);
  };
  for (std::size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(dp[i], central_difference(loss_of_p, p, i, eps), 1e-7) << i;
  // A one-hot sample has zero entropy; a uniform one ln L.
  std::vector<double> one = {1, 0, 0, 0, 0.25, 0.25, 0.25, 0.25}, d1(8, 0.0);
  EXPECT_NEAR(model::routing_loss(one.data(), 1, 4, {0, 1}, d1.data(), 1), 0.0, 1e-10);
  EXPECT_NEAR(model::routing_loss(one.data() + 4, 1, 4, {0, 1}, d1.data(), 1), std::log(4.0), 1e-12);
}

// Entropy and load balance through the whole model: the chunked path (entropy
// only) and the whole-batch path (with load balance), against finite
// differences and parameter shift.
TEST(RoutingLoss, ModelGradientMatchesFiniteDifferences) {
  const data::Dataset d = uniform_data(8, 12, 4, 2);
  model::ModelConfig cfg = small();
  cfg.routing_entropy = 0.4;
  expect_gradient_matches_fd(model::build_model(cfg), d, "entropy, chunks of 2", 2);
  cfg.load_balance = 0.3;
  expect_gradient_matches_fd(model::build_model(cfg), d, "entropy + load balance");
}

// ---- model variants ---------------------------------------------------------------

TEST(Variants, SumOfExpertsIsTheMeanOfItsExperts) {
  const model::Model m = model::build_model(small("sum"));
  const model::Model one = model::build_model(small("qnn"));
  EXPECT_EQ(m.n_params(), 4 * one.n_params());  // no router
  EXPECT_EQ(m.circuit.n_features, 12);          // no routing input
  std::mt19937_64 rng(5);
  const auto theta = random_vector(rng, std::size_t(m.n_params()));
  const auto x = random_vector(rng, 12, 0.0, 1.0);
  Workspace<double> ws;
  std::vector<double> ev(m.observables.size());
  forward(m.circuit, theta, x.data(), 1, m.observables, ev.data(), ws);
  for (double p : model::routing_probabilities(m, ev.data(), 1)) EXPECT_NEAR(p, 0.25, 1e-12);
  // Expert k is the QNN with parameters theta[k * P ..]; aggregation CNOT
  // r_i -> d_i flips <Z_i> in the branches whose routing bit (high first) is 1.
  const int P = one.n_params(), r = 2;
  std::vector<double> want(4, 0.0);
  for (int k = 0; k < 4; ++k) {
    std::vector<double> tk(theta.begin() + k * P, theta.begin() + (k + 1) * P), evk(one.observables.size());
    forward(one.circuit, tk, x.data(), 1, one.observables, evk.data(), ws);
    for (int q = 0; q < 4; ++q) {
      const bool flip = q < r && ((k >> (r - 1 - q)) & 1);
      want[std::size_t(q)] += (flip ? -1 : 1) * evk[std::size_t(q)] / 4;
    }
  }
  for (int q = 0; q < 4; ++q) EXPECT_NEAR(ev[std::size_t(q)], want[std::size_t(q)], 1e-12) << q;
  EXPECT_THROW(model::build_model(small("sum", 3)), std::invalid_argument);
  expect_gradient_matches_fd(m, uniform_data(8, 12, 4, 2), "sum");
}

TEST(Variants, ReuploadingGridAndTenClassGradients) {
  const data::Dataset d = uniform_data(8, 12, 4, 2);
  model::ModelConfig cfg = small();
  cfg.expert_reupload = true;
  const model::Model m = model::build_model(cfg);
  const model::Model plain = model::build_model(small());
  EXPECT_EQ(m.n_params(), plain.n_params());  // re-uploading adds gates, not parameters
  EXPECT_EQ(m.circuit.gates.size(), plain.circuit.gates.size() + 12 + 4);  // one more U_d(z): 12 rotations, a ring
  expect_gradient_matches_fd(m, d, "expert re-uploading");
  cfg = small("qnn");
  cfg.expert_reupload = true;
  expect_gradient_matches_fd(model::build_model(cfg), d, "QNN re-uploading");
  // The router on 16 block means of an 8x8 image, uploaded before each G layer.
  cfg = small_grid();
  cfg.routing_reupload = true;
  const model::Model g = model::build_model(cfg);
  EXPECT_EQ(g.circuit.n_features, 64 + 16);
  expect_gradient_matches_fd(g, uniform_data(8, 64, 4, 3), "grid router, re-uploading");
  cfg.routing_encoder = model::RoutingEncoder::Full;
  EXPECT_THROW(model::build_model(cfg), std::invalid_argument);  // re-uploading needs quadrant or grid
  // 6 classes on 4 data qubits: the last two logits read <Z_0 Z_1>, <Z_1 Z_2>.
  cfg = small("qmoe", 4, 6);
  expect_gradient_matches_fd(model::build_model(cfg), uniform_data(12, 12, 6, 4), "6 classes on 4 qubits");
  cfg = small("qmoe", 4, 8);
  EXPECT_THROW(model::build_model(cfg), std::invalid_argument);  // at most 2n - 1 = 7
}

TEST(Variants, BlockMeansOfTheGridEncoder) {
  const model::Model m = model::build_model(small_grid());
  std::vector<double> x(64);
  std::iota(x.begin(), x.end(), 0.0);  // pixel (i, j) = 8 i + j
  const auto in = model::circuit_inputs(m, x.data(), 1);
  ASSERT_EQ(in.size(), 80u);
  for (int blk = 0; blk < 16; ++blk) {  // block (bi, bj): mean of 8(2bi + {0,1}) + 2bj + {0,1}
    const int bi = blk / 4, bj = blk % 4;
    EXPECT_NEAR(in[std::size_t(64 + blk)], 8 * (2 * bi + 0.5) + 2 * bj + 0.5, 1e-12) << blk;
  }
}

// The grid means, like the quadrant means (Model.QuadrantMeansAreFiniteAndExact):
// each term divided by 4 before the sum, so a block of huge pixels stays finite
// and an ordinary block is bit for bit the sum / 4.
TEST(Variants, GridMeansAreFiniteAndExact) {
  const model::Model m = model::build_model(small_grid());
  std::vector<double> x(64);
  for (int i = 0; i < 64; ++i) x[std::size_t(i)] = 0.01 * i - 0.3;
  std::vector<double> huge = x;
  huge[0] = huge[1] = huge[8] = huge[9] = 1.7e308;  // the whole top-left 2x2 block
  huge[2] = huge[3] = -1.7e308;
  const auto a = model::circuit_inputs(m, x.data(), 1), b = model::circuit_inputs(m, huge.data(), 1);
  ASSERT_EQ(a.size(), 80u);
  for (int blk = 0; blk < 16; ++blk) {
    const int bi = blk / 4, bj = blk % 4;
    double s = 0;
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) s += x[std::size_t((2 * bi + i) * 8 + 2 * bj + j)];
    EXPECT_EQ(a[std::size_t(64 + blk)], s / 4) << blk;
  }
  EXPECT_DOUBLE_EQ(b[64], 1.7e308);
  for (double v : b) EXPECT_TRUE(std::isfinite(v));
}

// The new options go through the one validation (typed enums, json_integer,
// the kMax* limits) like the others.
TEST(Variants, OptionsAreValidatedLikeTheOthers) {
  const auto err = model_config_error;
  using MC = model::ModelConfig;
  EXPECT_EQ(err({{"routing", "sampled"}, {"top_k", MC::kMaxTopK}}), "accepted");
  EXPECT_EQ(err({{"routing", "sampled"}, {"top_k", 2.0}}), "accepted");  // a whole float
  EXPECT_EQ(err({{"top_k", MC::kMaxTopK + 1}}), "model config: top_k must be 1..8");
  EXPECT_EQ(err({{"top_k", 0}}), "model config: top_k must be 1..8");
  EXPECT_EQ(err({{"top_k", 1e20}}), "model config: 'top_k' must be an integer in -2147483648 .. 2147483647, got 1e+20");
  EXPECT_EQ(err({{"top_k", 1.5}}), "model config: 'top_k' must be an integer in -2147483648 .. 2147483647, got 1.5");
  EXPECT_EQ(err({{"routing", "hard"}}), "model config: routing must be soft or sampled, got 'hard'");
  EXPECT_EQ(err({{"routing", 1}}), "model config: 'routing' has the wrong type");
  EXPECT_EQ(err({{"model", "qnn"}, {"routing", "sampled"}}), "model config: sampled routing needs the qmoe model");
  EXPECT_EQ(err({{"model", "sums"}}), "model config: model must be qmoe, qnn or sum, got 'sums'");
  EXPECT_EQ(err({{"routing_encoder", "grid"}, {"n_features", 16}}).substr(0, 57),
            "model config: the quadrant and grid routing encoders need");
  EXPECT_EQ(err({{"model", "sum"}, {"experts", 128}}).substr(0, 54), "model config: the sum of experts needs a power of two ");
  EXPECT_EQ(err({{"routing_entropy", -1}}), "model config: routing_entropy must be >= 0");
  // Defaults are left out of the JSON (older configs compare equal); set ones round-trip.
  const nlohmann::json plain = MC().to_json();
  for (const char* k : {"routing_entropy", "expert_reupload", "routing_reupload", "routing", "top_k"})
    EXPECT_FALSE(plain.contains(k)) << k;
  MC c;
  c.model = model::ModelKind::Sum;
  c.routing_encoder = model::RoutingEncoder::Grid;
  const MC back = MC::from_json(c.to_json());
  EXPECT_EQ(back.model, model::ModelKind::Sum);
  EXPECT_EQ(back.routing_encoder, model::RoutingEncoder::Grid);
  EXPECT_EQ(c.to_json()["model"], "sum");
  EXPECT_EQ(c.to_json()["routing_encoder"], "grid");
}

TEST(Variants, TenClassReadoutAgainstDenseState) {
  model::ModelConfig cfg = small("qnn", 4, 7);
  const model::Model m = model::build_model(cfg);
  ASSERT_EQ(m.n_data_observables, 7);
  std::mt19937_64 rng(8);
  const auto theta = random_vector(rng, std::size_t(m.n_params()));
  const auto x = random_vector(rng, 12, 0.0, 1.0);
  const auto psi = dense_run(m.circuit, theta, x.data());
  Workspace<double> ws;
  std::vector<double> ev(m.observables.size()), z(7);
  forward(m.circuit, theta, x.data(), 1, m.observables, ev.data(), ws);
  model::logits(m, ev.data(), 1, z.data());
  for (int c = 0; c < 7; ++c) {
    PauliString p = PauliString::Z(c < 4 ? c : c - 4);
    if (c >= 4) p.z |= std::uint64_t(1) << (c - 3);
    EXPECT_NEAR(z[std::size_t(c)], 2.0 * dense_expval(psi, p), 1e-12) << c;
  }
}

// ---- hard (sampled) routing -------------------------------------------------------

namespace {
model::Model sampled_model(int top_k, int experts = 4) {
  model::ModelConfig cfg = small("qmoe", experts);
  cfg.routing = model::Routing::Sampled;
  cfg.top_k = top_k;
  return model::build_model(cfg);
}
}  // namespace

// p_k and the branch read-outs a_k / p_k against the dense state: the routing
// register projected on |k>, the data register's <O_d> in what is left.
TEST(HardRouting, BranchesAgainstDenseProjection) {
  for (int L : {3, 4}) {
    const model::Model m = sampled_model(1, L);
    std::mt19937_64 rng(30 + L);
    const auto theta = random_vector(rng, std::size_t(m.n_params()));
    const auto x = random_vector(rng, std::size_t(m.circuit.n_features), 0.0, 1.0);
    Workspace<double> ws;
    std::vector<double> ev(m.observables.size());
    forward(m.circuit, theta, x.data(), 1, m.observables, ev.data(), ws);
    const train::Branches br = train::branches(m, ev.data(), 1);
    ASSERT_EQ(br.R, 4);
    const auto psi = dense_run(m.circuit, theta, x.data());
    const auto soft = model::routing_probabilities(m, ev.data(), 1);
    for (int k = 0; k < br.R; ++k) {
      double pk = 0;
      std::vector<double> ak(std::size_t(br.D), 0.0);
      for (std::size_t i = 0; i < psi.size(); ++i) {
        int state = 0;
        for (int bit = 0; bit < 2; ++bit) state |= int((i >> m.routing_qubits[std::size_t(bit)]) & 1) << bit;
        if (state != k) continue;
        const double w = std::norm(psi[i]);
        pk += w;
        for (int d = 0; d < br.D; ++d) {
          const auto& o = m.observables[std::size_t(d)];
          ak[std::size_t(d)] += (std::popcount(i & o.z) & 1 ? -w : w);
        }
      }
      EXPECT_NEAR(br.p[std::size_t(k)], pk, 1e-12);
      if (k < L) {
        EXPECT_NEAR(br.p[std::size_t(k)], soft[std::size_t(k)], 1e-12);
      }
      for (int d = 0; d < br.D; ++d) EXPECT_NEAR(br.a[std::size_t(k * br.D + d)], ak[std::size_t(d)], 1e-12);
    }
  }
}

namespace {
// The exact objective J(theta) of sampled routing and its gradient (dp, da ->
// dL/d<O> -> the adjoint backward).
double exact_objective(const model::Model& m, const std::vector<double>& theta, const data::Dataset& d,
                       std::vector<double>* grad) {
  const int B = int(d.size()), K = int(m.observables.size());
  const auto x = model::circuit_inputs(m, d.x.data(), B);
  Workspace<double> ws;
  ws.keep_states = true;
  ws.saved_layers = 0;
  std::vector<double> ev(std::size_t(B) * K), dev(std::size_t(B) * K, 0.0);
  forward(m.circuit, theta, x.data(), B, m.observables, ev.data(), ws);
  const train::Branches br = train::branches(m, ev.data(), B);
  std::vector<double> dp, da;
  const double J = train::expected_routing_loss(m, br, d.y.data(), B, dp, da);
  if (grad) {
    train::branches_backward(m, br, dp.data(), da.data(), B, dev.data());
    grad->assign(theta.size(), 0.0);
    backward(m.circuit, theta, x.data(), B, m.observables, dev.data(), grad->data(), nullptr, ws);
  }
  return J;
}
}  // namespace

TEST(HardRouting, ExactObjectiveGradientMatchesFiniteDifferences) {
  for (int top_k : {1, 2}) {
    const model::Model m = sampled_model(top_k);
    const data::Dataset d = uniform_data(3, 12, 4, 6);
    std::mt19937_64 rng(12);
    const auto theta = random_vector(rng, std::size_t(m.n_params()));
    std::vector<double> grad;
    exact_objective(m, theta, d, &grad);
    const double h = 1e-5;
    const auto objective = [&](const std::vector<double>& t) { return exact_objective(m, t, d, nullptr); };
    for (int j = 0; j < m.n_params(); ++j)
      EXPECT_NEAR(grad[std::size_t(j)], central_difference(objective, theta, std::size_t(j), h), 1e-7)
          << "top_k " << top_k << " param " << j;
  }
}

// The score-function estimate with the leave-one-out baseline is unbiased: its
// mean over many independent draws equals the exact gradient of J within 5
// standard errors, in every coordinate of dL/d<O> (the gradient in theta is a
// fixed linear map of it). A mutant without the score term, or with a baseline
// that depends on the sample's own draw, fails this.
TEST(HardRouting, ScoreFunctionEstimateIsUnbiased) {
  for (int top_k : {1, 2}) {
    const model::Model m = sampled_model(top_k);
    const data::Dataset d = uniform_data(4, 12, 4, 7);
    const int B = 4, K = int(m.observables.size());
    std::mt19937_64 rng(13);
    const auto theta = random_vector(rng, std::size_t(m.n_params()));
    const auto x = model::circuit_inputs(m, d.x.data(), B);
    Workspace<double> ws;
    std::vector<double> ev(std::size_t(B) * K);
    forward(m.circuit, theta, x.data(), B, m.observables, ev.data(), ws);
    const train::Branches br = train::branches(m, ev.data(), B);
    std::vector<double> dp, da, exact(std::size_t(B) * K, 0.0);
    const double J = train::expected_routing_loss(m, br, d.y.data(), B, dp, da);
    train::branches_backward(m, br, dp.data(), da.data(), B, exact.data());
    const int N = 4000;
    std::vector<double> sum(exact.size(), 0.0), sq(exact.size(), 0.0);
    double loss_sum = 0;
    for (int s = 0; s < N; ++s) {
      std::vector<double> g(exact.size(), 0.0);
      const auto draws = train::draw_routes(br, B, top_k, std::uint64_t(1000 + s));
      loss_sum += train::sampled_routing_loss(m, br, d.y.data(), B, draws, dp, da).loss;
      train::branches_backward(m, br, dp.data(), da.data(), B, g.data());
      for (std::size_t i = 0; i < g.size(); ++i) sum[i] += g[i], sq[i] += g[i] * g[i];
    }
    const double mean_loss = loss_sum / N;
    EXPECT_NEAR(mean_loss, J, 0.05 * std::abs(J) + 1e-3) << "the sampled loss estimates J";
    int checked = 0;
    for (std::size_t i = 0; i < exact.size(); ++i) {
      const double mean = sum[i] / N, var = std::max(0.0, sq[i] / N - mean * mean), se = std::sqrt(var / N);
      EXPECT_NEAR(mean, exact[i], 5 * se + 1e-9) << "top_k " << top_k << " coordinate " << i;
      checked += se > 0;
    }
    EXPECT_GT(checked, 10);  // the estimate really varies (it is not the exact gradient in disguise)
  }
}

TEST(HardRouting, DrawsFollowTheRoutingDistribution) {
  train::Branches br;
  br.R = 4;
  br.D = 0;
  br.p = {0.1, 0.0, 0.6, 0.3};
  std::vector<int> count(4, 0);
  const int N = 20000;
  for (int s = 0; s < N / 8; ++s)
    for (int k : train::draw_routes(br, 1, 8, std::uint64_t(s))) ++count[std::size_t(k)];
  EXPECT_EQ(count[1], 0);  // an empty branch is never drawn
  for (int k : {0, 2, 3}) {
    const double se = std::sqrt(br.p[std::size_t(k)] * (1 - br.p[std::size_t(k)]) / N);
    EXPECT_NEAR(double(count[std::size_t(k)]) / N, br.p[std::size_t(k)], 5 * se) << k;
  }
  EXPECT_EQ(train::draw_routes(br, 1, 8, 7), train::draw_routes(br, 1, 8, 7));  // seeded
}

TEST(HardRouting, TrainingAndEvaluationUseTheMeasuredChoice) {
  const model::Model m = sampled_model(1);
  const data::Dataset d = uniform_data(16, 12, 4, 9);
  train::TrainConfig tc;
  tc.epochs = 2;
  tc.batch = 4;
  train::TrainState st = train::initial_state(m, tc), st2 = st;
  train::train(m, tc, d, d, st, {});
  train::train(m, tc, d, d, st2, {});
  EXPECT_EQ(st.theta, st2.theta);  // the draws are seeded: training is reproducible
  Workspace<double> ws;
  const train::Evaluation e = train::evaluate(m, st.theta, d, ws);
  ASSERT_EQ(e.choices.size(), d.size());
  double total = 0;
  for (const auto& row : e.choice_counts) total += std::accumulate(row.begin(), row.end(), 0.0);
  EXPECT_EQ(total, double(d.size()));
  // the choice is the most likely routing state
  for (std::size_t i = 0; i < d.size(); ++i) {
    const double* p = e.routing.data() + i * 4;
    EXPECT_EQ(e.choices[i], int(std::max_element(p, p + 4) - p));
  }
  // config round trip
  const auto j = m.config.to_json();
  EXPECT_EQ(j.at("routing"), "sampled");
  EXPECT_EQ(model::ModelConfig::from_json(j).routing, model::Routing::Sampled);
  auto bad = j;
  bad["routing"] = "hard";
  EXPECT_THROW(model::ModelConfig::from_json(bad), std::invalid_argument);
}
