// Models: QMoE structure (Eq. 1), configurations (typed options, limits,
// JSON). Gradients of a batch's loss, data parallelism and training:
// test_train.cpp; checkpoints: test_checkpoint.cpp.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "circuit/execute.hpp"
#include "model/json_integer.hpp"
#include "model/model.hpp"
#include "model_helpers.hpp"
#include "test_helpers.hpp"

using namespace qmoe;
using namespace qmoe::testing;

namespace {

// Simulate a sub-list of the model's gates on a fresh register of `n` qubits,
// mapping model qubit q -> q - offset, dropping the listed control qubits.
// The listed gates of `full` on the qubits in `qubits` (circuit qubit
// qubits[j] becomes qubit j); controls on other qubits are dropped.
std::vector<cplx> run_subcircuit(const Circuit& full, const std::vector<int>& qubits, const std::vector<double>& theta,
                                 const double* x, const std::vector<std::size_t>& gates) {
  auto index = [&](int q) { return int(std::find(qubits.begin(), qubits.end(), q) - qubits.begin()); };
  Circuit c;
  c.n_qubits = int(qubits.size());
  c.n_params = full.n_params;
  c.n_features = full.n_features;
  for (std::size_t gi : gates) {
    Gate g = full.gates[gi];
    std::vector<Control> kept;
    for (const Control& ctl : g.controls)
      if (index(ctl.qubit) < c.n_qubits) kept.push_back({index(ctl.qubit), ctl.on_one});
    g.controls = kept;
    g.target = index(g.target);
    EXPECT_LT(g.target, c.n_qubits);
    add_gate(c, g);
  }
  return dense_run(c, theta, x);
}

}  // namespace

// <Z_q> of the QMoE == sum_k p_k <Z_q>_k with p_k from the routing register alone
// and <Z_q>_k from expert k alone on the data register (the paper's Eq. 1),
// computed with independent small simulations.
TEST(Model, QmoeIsMixtureOfExperts) {
  for (int L : {2, 3, 4}) for (model::RoutingEncoder enc : {model::RoutingEncoder::Full, model::RoutingEncoder::Quadrant}) {
    const model::Model m = model::build_model(small_qmoe(L, "rxryrz", enc));
    const int r = int(m.routing_qubits.size()), n = m.config.data_qubits;
    ASSERT_EQ(r, L <= 2 ? 1 : 2);
    std::mt19937_64 rng(20 + L);
    const auto theta = random_vector(rng, std::size_t(m.n_params()));
    const auto x = random_vector(rng, std::size_t(m.circuit.n_features));
    // The QMoE itself
    Workspace<double> ws;
    std::vector<double> ev(m.observables.size());
    forward(m.circuit, theta, x.data(), 1, m.observables, ev.data(), ws);
    const auto p = model::routing_probabilities(m, ev.data(), 1);
    // classify gates by the register they touch; bit(q): the routing bit of circuit qubit q, or -1
    auto bit = [&](int q) {
      for (int i = 0; i < r; ++i)
        if (m.routing_qubits[std::size_t(i)] == q) return i;
      return -1;
    };
    std::vector<std::size_t> routing_gates, data_prefix;
    std::vector<std::vector<std::size_t>> expert_gates(std::size_t(1) << r);
    std::vector<std::size_t> aggregation;
    for (std::size_t gi = 0; gi < m.circuit.gates.size(); ++gi) {
      const Gate& g = m.circuit.gates[gi];
      bool on_routing = bit(g.target) >= 0, ctrl_routing = false;
      for (const Control& ctl : g.controls) ctrl_routing |= bit(ctl.qubit) >= 0;
      if (on_routing) { routing_gates.push_back(gi); continue; }
      if (!ctrl_routing) { data_prefix.push_back(gi); continue; }
      int k = 0, nr = 0;
      for (const Control& ctl : g.controls)
        if (bit(ctl.qubit) >= 0) k |= (ctl.on_one ? 1 : 0) << bit(ctl.qubit), ++nr;
      if (nr == r) expert_gates[std::size_t(k)].push_back(gi);
      else aggregation.push_back(gi);  // CNOT from one routing qubit
    }
    // p_k from the routing register alone (routing bit i as qubit i: basis index k)
    const auto psi_r = run_subcircuit(m.circuit, m.routing_qubits, theta, x.data(), routing_gates);
    double total = 0;
    for (int k = 0; k < L; ++k) {
      EXPECT_NEAR(p[std::size_t(k)], std::norm(psi_r[std::size_t(k)]), 1e-12) << "L=" << L << " k=" << k;
      total += p[std::size_t(k)];
    }
    EXPECT_LE(total, 1.0 + 1e-12);
    if (L == 4 || L == 2) {
      EXPECT_NEAR(total, 1.0, 1e-12);
    }
    // <Z_q> from each expert alone, with the aggregation flips of its branch
    std::vector<double> mix(std::size_t(n), 0.0);
    for (int k = 0; k < (1 << r); ++k) {
      std::vector<std::size_t> gates = data_prefix;
      if (k < L) gates.insert(gates.end(), expert_gates[std::size_t(k)].begin(), expert_gates[std::size_t(k)].end());
      for (std::size_t gi : aggregation) {  // X on a data qubit when its routing qubit is 1
        const Gate& g = m.circuit.gates[gi];
        if ((k >> bit(g.controls[0].qubit)) & 1) gates.push_back(gi);
      }
      const auto psi_d = run_subcircuit(m.circuit, m.data_qubits, theta, x.data(), gates);
      for (int q = 0; q < n; ++q) mix[std::size_t(q)] += std::norm(psi_r[std::size_t(k)]) * dense_expval(psi_d, PauliString::Z(q));
    }
    for (int q = 0; q < n; ++q) EXPECT_NEAR(ev[std::size_t(q)], mix[std::size_t(q)], 1e-12) << "L=" << L << " q=" << q;
  }
}

TEST(Model, ParameterCountsAndMatchedBaseline) {
  model::ModelConfig q;  // defaults: 8 data qubits, 4 experts, depth 3, rxry
  const model::Model qm = model::build_model(q);
  EXPECT_EQ(qm.circuit.n_qubits, 10);
  EXPECT_EQ(qm.n_params(), 4 * 3 * 8 * 2 + 2 * 2 * 2);
  model::ModelConfig b = q;
  b.model = model::ModelKind::QNN;
  EXPECT_EQ(model::build_model(b).n_params(), 3 * 8 * 2);
  b.depth = model::matched_depth(b, qm.n_params());
  EXPECT_LE(std::abs(model::build_model(b).n_params() - qm.n_params()), 8);
  for (const auto& [ops, per] : std::vector<std::pair<std::string, int>>{{"rx", 1}, {"ry", 1}, {"rxryrz", 3}}) {
    b.ops = ops;
    b.depth = 3;
    EXPECT_EQ(model::build_model(b).n_params(), 3 * 8 * per);
  }
}

TEST(Model, ConfigValidationAndJson) {
  model::ModelConfig c;
  EXPECT_EQ(model::ModelConfig::from_json(c.to_json()).to_json(), c.to_json());
  auto bad = [](auto mutate) {
    model::ModelConfig c;
    mutate(c);
    return c;
  };
  EXPECT_THROW(model::build_model(bad([](auto& c) { c.ops = "rq"; })), std::invalid_argument);
  EXPECT_THROW(model::build_model(bad([](auto& c) { c.experts = 5, c.routing_qubits = 2; })), std::invalid_argument);
  // More classes than data qubits read <Z_j Z_j+1> (issue 19): at most 2n - 1 = 15 on the default 8 qubits.
  EXPECT_NO_THROW(model::build_model(bad([](auto& c) { c.n_classes = 15; })));
  EXPECT_THROW(model::build_model(bad([](auto& c) { c.n_classes = 16; })), std::invalid_argument);
  // An unknown key: one "model config: " prefix, not two.
  try {
    model::ModelConfig::from_json(nlohmann::json{{"bogus", 1}});
    ADD_FAILURE() << "an unknown key was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "model config: unknown key 'bogus'");
  }
  // One data qubit has no neighbour to pair with: 2 classes on it are refused
  // (fuzz_config found build_model reading past data_qubits for this config).
  EXPECT_THROW(model::build_model(bad([](auto& c) {
                 c.data_qubits = 1, c.n_classes = 2, c.readout = model::Readout::Qubits;
               })),
               std::invalid_argument);
  EXPECT_NO_THROW(model::build_model(bad([](auto& c) { c.data_qubits = 2, c.n_classes = 3; })));
  EXPECT_THROW(model::ModelConfig::from_json({{"model", "moe"}}), std::invalid_argument);
  EXPECT_THROW(model::ModelConfig::from_json({{"bogus", 1}}), std::invalid_argument);
  EXPECT_THROW(model::ModelConfig::from_json({{"routing_encoder", "Full"}}), std::invalid_argument);
  EXPECT_THROW(model::ModelConfig::from_json({{"aggregation", "cnot "}}), std::invalid_argument);
  EXPECT_THROW(model::ModelConfig::from_json({{"readout", ""}}), std::invalid_argument);
  EXPECT_THROW(model::ModelConfig::from_json({{"depth", "two"}}), std::invalid_argument);
}

// The quadrant means stay finite for any finite pixels and equal sum / 16
// (issue 16 item 7: 16 x 1e308 overflowed).
TEST(Model, QuadrantMeansAreFiniteAndExact) {
  const model::Model m = model::build_model(small_qmoe(4, "rxry", model::RoutingEncoder::Quadrant));
  std::vector<double> x(64);
  for (int i = 0; i < 64; ++i) x[std::size_t(i)] = 0.01 * i - 0.3;
  std::vector<double> huge = x;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) huge[std::size_t(i * 8 + j)] = 1.7e308;  // the whole top-left quadrant
  huge[4] = huge[5] = -1e308;
  const std::vector<double> a = model::circuit_inputs(m, x.data(), 1), b = model::circuit_inputs(m, huge.data(), 1);
  ASSERT_EQ(a.size(), 68u);
  for (int qd = 0; qd < 4; ++qd) {  // bit for bit the sum divided afterwards
    double s = 0;
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) s += x[std::size_t((4 * (qd / 2) + i) * 8 + 4 * (qd % 2) + j)];
    EXPECT_EQ(a[std::size_t(64 + qd)], s / 16) << qd;
  }
  EXPECT_DOUBLE_EQ(b[64], 1.7e308);  // sixteen sixteenths of 1.7e308: within 4 ulps (the partial sums round)
  for (double v : b) EXPECT_TRUE(std::isfinite(v));
}

// One validation for every path (issue 16 item 10): the limits the CLI's flags
// enforce hold for JSON too, before anything is allocated.
TEST(Model, ConfigLimitsHoldForJson) {
  using MC = model::ModelConfig;
  const auto err = model_config_error;
  EXPECT_EQ(err({{"routing_depth", 200000000}}), "model config: routing_depth must be 0..1000");
  EXPECT_EQ(err({{"routing_depth", MC::kMaxDepth}}), "accepted");
  EXPECT_EQ(err({{"depth", MC::kMaxDepth + 1}}), "model config: depth must be 0..1000");
  EXPECT_EQ(err({{"encoder_ring_every", 2000000000}}), "model config: encoder_ring_every must be 0..100000");
  EXPECT_EQ(err({{"n_classes", -3}}), "model config: n_classes must be 2..24");
  EXPECT_EQ(err({{"experts", MC::kMaxExperts + 1}, {"routing_qubits", 6}}), "model config: experts must be 1..64");
  EXPECT_EQ(err({{"data_qubits", MC::kMaxDataQubits + 1}}), "model config: data_qubits must be 1..24");
}

// JSON numbers become integers only after a check (issue 16 item 11): 1e20
// or 8.5 for an int, -1 or 1e20 for the seed are errors naming the field, not
// a conversion (undefined behaviour out of range, silent truncation in range).
TEST(Model, JsonIntegersAreCheckedBeforeConversion) {
  const auto err = model_config_error;
  EXPECT_EQ(err({{"data_qubits", 1e20}}),
            "model config: 'data_qubits' must be an integer in -2147483648 .. 2147483647, got 1e+20");
  EXPECT_EQ(err({{"depth", 2.5}}), "model config: 'depth' must be an integer in -2147483648 .. 2147483647, got 2.5");
  EXPECT_EQ(err({{"experts", -1e300}}).substr(0, 35), "model config: 'experts' must be an ");
  EXPECT_EQ(err({{"data_qubits", 6.0}}), "accepted");  // a whole float is a number like any other
  EXPECT_EQ(model::ModelConfig::from_json({{"data_qubits", 6.0}}).data_qubits, 6);
  EXPECT_EQ(model::ModelConfig::from_json({{"depth", 7u}}).depth, 7);
  EXPECT_EQ(model::json_integer<long>(nlohmann::json(-5.0), "x"), -5);
  EXPECT_THROW(model::json_integer<unsigned>(nlohmann::json(-5), "x"), std::invalid_argument);
  EXPECT_THROW(model::json_integer<int>(nlohmann::json(3000000000u), "x"), std::invalid_argument);
  EXPECT_THROW(model::json_integer<int>(nlohmann::json(nullptr), "x"), std::invalid_argument);
}

// Typed options: every spelling parses to its enum and back, the JSON keeps
// the spellings of older checkpoints, and a wrong one names the valid ones.
TEST(Model, OptionSpellingsRoundTrip) {
  for (const char* s : {"qmoe", "qnn", "sum"}) EXPECT_STREQ(model::to_string(model::parse_model_kind(s)), s);
  for (const char* s : {"full", "quadrant", "joint", "grid"})
    EXPECT_STREQ(model::to_string(model::parse_routing_encoder(s)), s);
  for (const char* s : {"cnot", "none"}) EXPECT_STREQ(model::to_string(model::parse_aggregation(s)), s);
  for (const char* s : {"pairs", "qubits"}) EXPECT_STREQ(model::to_string(model::parse_readout(s)), s);
  for (const char* s : {"soft", "sampled"}) EXPECT_STREQ(model::to_string(model::parse_routing(s)), s);
  EXPECT_EQ(model::parse_model_kind("qnn"), model::ModelKind::QNN);
  EXPECT_EQ(model::parse_routing_encoder("joint"), model::RoutingEncoder::Joint);
  EXPECT_EQ(model::parse_model_kind("sum"), model::ModelKind::Sum);
  EXPECT_EQ(model::parse_routing_encoder("grid"), model::RoutingEncoder::Grid);
  EXPECT_EQ(model::parse_routing("sampled"), model::Routing::Sampled);
  EXPECT_EQ(model::parse_aggregation("none"), model::Aggregation::None);
  EXPECT_EQ(model::parse_readout("qubits"), model::Readout::Qubits);
  try {
    model::parse_routing_encoder("quadrants");
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "routing_encoder must be full, quadrant, joint or grid, got 'quadrants'");
  }
  const nlohmann::json old = {{"model", "qnn"}, {"routing_encoder", "joint"}, {"aggregation", "none"},
                              {"readout", "qubits"}, {"n_features", 16}};
  const model::ModelConfig c = model::ModelConfig::from_json(old);
  EXPECT_EQ(c.model, model::ModelKind::QNN);
  EXPECT_EQ(c.routing_encoder, model::RoutingEncoder::Joint);
  EXPECT_EQ(c.aggregation, model::Aggregation::None);
  EXPECT_EQ(c.readout, model::Readout::Qubits);
  for (const char* k : {"model", "routing_encoder", "aggregation", "readout"}) EXPECT_EQ(c.to_json()[k], old[k]);
}
