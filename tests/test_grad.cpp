// Gradients: adjoint == parameter shift == finite differences.
#include <gtest/gtest.h>

#include "grad/adjoint.hpp"
#include "grad/param_shift.hpp"
#include "test_helpers.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace qmoe;
using namespace qmoe::testing;

namespace {

// Z on each qubit, X0 Z1, and Y2 X0 where there is a qubit 2.
std::vector<PauliString> test_observables(int n) {
  return n >= 3 ? z_each_then(n, {"X0 Z1", "Y2 X0"}) : z_each_then(n, {"X0 Z1"});
}

}  // namespace

// On random circuits (all gate kinds, 0-2 controls on |0>/|1>, shared and
// per-sample angles): adjoint == parameter shift to 1e-10 and == central finite
// differences (of the dense reference) to 1e-6, for theta and for x.
TEST(Grad, AdjointMatchesParameterShiftAndFiniteDifferences) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 12; ++trial) {
    const int n = 2 + trial % 4, batch = 1 + trial % 3, P = 5, F = 4;
    const GradProblem pr = random_grad_problem(rng, n, 40, 2, P, F, batch, test_observables(n));
    const Circuit& c = pr.c;
    const std::vector<double> &theta = pr.theta, &x = pr.x, &w = pr.w;
    const std::vector<PauliString>& obs = pr.obs;

    Workspace<double> ws;
    ws.chunk_size = 2;  // several chunks even for small batches
    std::vector<double> ev(obs.size() * batch), dtheta(P, 0.0), dx(std::size_t(F) * batch);
    forward(c, theta, x.data(), batch, obs, ev.data(), ws);
    backward(c, theta, x.data(), batch, obs, w.data(), dtheta.data(), dx.data(), ws);

    // forward values against the dense reference
    for (int b = 0; b < batch; ++b) {
      const auto psi = dense_run(c, theta, x.data() + std::size_t(b) * F);
      for (std::size_t k = 0; k < obs.size(); ++k)
        ASSERT_NEAR(ev[b * obs.size() + k], dense_expval(psi, obs[k]), 1e-12);
    }
    // parameter shift
    std::vector<double> ps(P, 0.0);
    param_shift_gradient(c, theta, x.data(), batch, obs, w.data(), ps.data(), ws);
    for (int j = 0; j < P; ++j) EXPECT_NEAR(dtheta[j], ps[j], 1e-10) << "trial " << trial << " param " << j;
    // finite differences on theta and x
    const double h = 1e-5;
    const auto loss_of_theta = [&](const std::vector<double>& t) { return dense_loss(c, t, x, batch, obs, w); };
    const auto loss_of_x = [&](const std::vector<double>& xx) { return dense_loss(c, theta, xx, batch, obs, w); };
    for (int j = 0; j < P; ++j)
      EXPECT_NEAR(dtheta[j], central_difference(loss_of_theta, theta, std::size_t(j), h), 1e-6)
          << "trial " << trial << " param " << j;
    for (std::size_t i = 0; i < x.size(); ++i)
      EXPECT_NEAR(dx[i], central_difference(loss_of_x, x, i, h), 1e-6) << "trial " << trial << " feature " << i;
  }
}

// The four-term rule is needed for controlled rotations: the plain two-term
// rule would be wrong there, and ours matches the adjoint.
TEST(Grad, FourTermRuleForControlledRotations) {
  for (GateKind k : {GateKind::RX, GateKind::RY, GateKind::RZ, GateKind::U3}) {
    Circuit c;
    c.n_qubits = 2;
    add_gate(c, make_gate(GateKind::U3, 0, {}, {Angle::constant(0.7), Angle::constant(0.2), Angle::constant(-0.5)}));
    add_gate(c, make_gate(GateKind::U3, 1, {}, {Angle::constant(0.4), Angle::constant(1.1), Angle::constant(0.3)}));
    add_gate(c, make_gate(k, 1, {{0, true}}, {Angle::param(0), Angle::param(1), Angle::param(2)}));
    add_gate(c, make_gate(GateKind::H, 1));
    const std::vector<double> theta = {0.9, -0.3, 1.2};
    const std::vector<PauliString> obs = {PauliString::parse("X0"), PauliString::parse("Y0 X1")};
    const auto ps = param_shift_jacobian(c, theta, nullptr, obs);
    const auto adj = adjoint_jacobian<double>(c, theta, nullptr, obs);
    ASSERT_EQ(ps.size(), adj.size());
    for (std::size_t i = 0; i < ps.size(); ++i) EXPECT_NEAR(ps[i], adj[i], 1e-12) << gate_name(k) << i;
    // the two-term rule on the controlled rotation angle would be wrong
    Workspace<double> ws;
    double ep[2], em[2];
    auto tp = theta, tm = theta;
    tp[0] += M_PI / 2, tm[0] -= M_PI / 2;
    forward(c, tp, nullptr, 1, obs, ep, ws);
    forward(c, tm, nullptr, 1, obs, em, ws);
    const std::size_t P = std::size_t(c.n_params);  // adj[k * P + j]: observable k, parameter j
    const double err = std::max(std::abs((ep[0] - em[0]) / 2 - adj[0]),
                                std::abs((ep[1] - em[1]) / 2 - adj[P]));
    EXPECT_GT(err, 1e-3) << gate_name(k);
  }
}

// Results do not depend on the thread count or the chunk size.
TEST(Grad, SameNumbersForAnyThreadCountAndChunk) {
  std::mt19937_64 rng(12);
  const int n = 6, batch = 37, P = 10, F = 8;
  const GradProblem pr = random_grad_problem(rng, n, 80, 2, P, F, batch, test_observables(n));
  const Circuit& c = pr.c;
  const std::vector<double> &theta = pr.theta, &x = pr.x, &w = pr.w;
  const std::vector<PauliString>& obs = pr.obs;
  auto run = [&](int threads, int chunk) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    Workspace<double> ws;
    ws.chunk_size = chunk;
    std::vector<double> ev(obs.size() * batch), dtheta(P, 0.0);
    forward(c, theta, x.data(), batch, obs, ev.data(), ws);
    backward(c, theta, x.data(), batch, obs, w.data(), dtheta.data(), nullptr, ws);
    return std::make_pair(ev, dtheta);
  };
  const auto a = run(1, 8), b = run(2, 8), d = run(2, 5);
  EXPECT_EQ(a.first, b.first);
  EXPECT_EQ(a.second, b.second);  // bit-identical for the same chunking
  for (int j = 0; j < P; ++j) EXPECT_NEAR(a.second[j], d.second[j], 1e-12);
  // Forward only (keep_states = false: each thread reuses one set of states,
  // the last chunk of 5 samples a smaller shape in the same storage): the
  // same expectations; a backward() then needs a forward() that kept states.
  for (int threads : {1, 2}) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    Workspace<double> ws;
    ws.chunk_size = 8;
    ws.keep_states = false;
    std::vector<double> ev(obs.size() * batch), dtheta(P, 0.0);
    for (int rep = 0; rep < 2; ++rep) {
      forward(c, theta, x.data(), batch, obs, ev.data(), ws);
      EXPECT_EQ(ev, a.first) << threads;
    }
    EXPECT_THROW(backward(c, theta, x.data(), batch, obs, w.data(), dtheta.data(), nullptr, ws),
                 std::logic_error);
    EXPECT_THROW(backward(c, theta, x.data(), 0, obs, w.data(), dtheta.data(), nullptr, ws),
                 std::logic_error);  // the forward-only run left ws.batch = 0
    ws.chunk_size = 64;  // one chunk, which either thread may take
    for (int rep = 0; rep < 20; ++rep) {
      forward(c, theta, x.data(), batch, obs, ev.data(), ws);
      for (std::size_t i = 0; i < ev.size(); ++i) ASSERT_NEAR(ev[i], a.first[i], 1e-12) << threads;
    }
    ws.chunk_size = 8;
    ws.keep_states = true;
    forward(c, theta, x.data(), batch, obs, ev.data(), ws);
    backward(c, theta, x.data(), batch, obs, w.data(), dtheta.data(), nullptr, ws);
    EXPECT_EQ(dtheta, a.second) << threads;
  }
#ifdef _OPENMP
  omp_set_num_threads(omp_get_num_procs());
#endif
}

TEST(Grad, BackwardWithoutForwardThrows) {
  const Circuit c = circuit_of(1, {make_gate(GateKind::RX, 0, {}, {Angle::param(0)})});
  Workspace<double> ws;
  std::vector<double> th = {0.1}, d(1), dl = {1.0};
  EXPECT_THROW(backward(c, th, nullptr, 1, {PauliString::Z(0)}, dl.data(), d.data(), nullptr, ws),
               std::logic_error);
  EXPECT_THROW(forward(c, std::vector<double>{}, nullptr, 1, {PauliString::Z(0)}, d.data(), ws),
               std::invalid_argument);
  EXPECT_THROW(forward(c, th, nullptr, 1, {PauliString::Z(3)}, d.data(), ws), std::invalid_argument);
}
