// The planned adjoint sweep (fused rotations, layers, saved layer starts,
// overlaps through CNOT rings, forward_backward) against the gate-by-gate
// adjoint with the generic kernels and dense finite differences.
#include <gtest/gtest.h>
#include <omp.h>

#include "circuit/execute.hpp"
#include "circuit/executor.hpp"
#include "circuit/plan.hpp"
#include "grad/adjoint.hpp"
#include "grad/adjoint_ops.hpp"
#include "test_helpers.hpp"

using namespace qmoe;
using namespace qmoe::testing;

// The planned adjoint sweep (fused non-differentiable ops, stop before the
// encoder) against central finite differences of the dense reference, for
// theta and x, and run_circuit in float against double.
TEST(Adjoint, PlannedAdjointMatchesDenseFiniteDifferences) {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 6; ++trial) {
    const int n = 2 + trial % 4, batch = 1 + trial % 3;
    Circuit c = structured_circuit(rng, n);
    const auto theta = random_vector(rng, std::size_t(c.n_params));
    const auto x = random_vector(rng, std::size_t(c.n_features) * batch);
    const std::vector<PauliString> obs = z_each_then(n, {"X0"});
    const auto w = random_vector(rng, obs.size() * batch, -1, 1);
    const auto loss_of_theta = [&](const std::vector<double>& t) { return dense_loss(c, t, x, batch, obs, w); };
    const auto loss_of_x = [&](const std::vector<double>& xx) { return dense_loss(c, theta, xx, batch, obs, w); };
    Workspace<double> ws;
    ws.chunk_size = 2;
    std::vector<double> ev(obs.size() * batch), dtheta(theta.size(), 0.0), dx(x.size());
    forward(c, theta, x.data(), batch, obs, ev.data(), ws);
    backward(c, theta, x.data(), batch, obs, w.data(), dtheta.data(), dx.data(), ws);
    const double h = 1e-5;
    for (std::size_t j = 0; j < theta.size(); ++j)
      EXPECT_NEAR(dtheta[j], central_difference(loss_of_theta, theta, j, h), 1e-6) << "theta " << j;
    for (std::size_t j = 0; j < x.size(); ++j)
      EXPECT_NEAR(dx[j], central_difference(loss_of_x, x, j, h), 1e-6) << "x " << j;
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

// Z on every qubit and one non-diagonal string: what the sweep tests read out.
std::vector<PauliString> sweep_observables(int n) {
  return n >= 2 ? z_each_then(n, {"X0 Y1"}) : z_each_then(n, {});
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

// backward() with differentiable rotations fused into runs (one overlap pass
// per run) == the gate-by-gate adjoint with the generic kernels, to 1e-12,
// for theta and x; float follows double.
TEST(Adjoint, FusedAdjointMatchesGateByGate) {
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

// The layer sweep (gradients at a layer's end, lam undone, phi restored from
// the state forward() saved) == the gate-by-gate adjoint to 1e-12, for theta
// and x, with no, one and many saved layers, and twice after one forward.
TEST(Adjoint, LayerSweepMatchesGateByGate) {
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
TEST(Adjoint, ControlledLayerSavesMatchUndoing) {
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
TEST(Adjoint, ForwardBackwardMatchesTwoCallsDouble) {
  std::mt19937_64 rng(71);
  check_forward_backward<double>(rng);
}
TEST(Adjoint, ForwardBackwardMatchesTwoCallsFloat) {
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
TEST(Adjoint, AffineConjugationMatchesDense) {
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
TEST(Adjoint, LayerOverlapsThroughRingsMatchGateByGate) {
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

