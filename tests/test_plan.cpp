// Execution plans (1-qubit fusion, permutation tables, product-state prefix,
// pairs, barriers, layers, the plan cache) against gate-by-gate runs and the
// dense reference.
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

// Planned execution (every combination of options) == gate by gate to 1e-12,
// and == the dense reference.
TEST(Plan, PlansMatchGateByGateAndDense) {
  bool saw_pair_permute = false, saw_controlled_pair = false;
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
      if (o.fuse && trial % 2) {
        EXPECT_LT(p.ops.size(), c.gates.size());
        // the CNOT ring after the rotation layer folds into the layer's last op
        if (o.permutations && n > 2) {
          EXPECT_TRUE(std::any_of(p.ops.begin(), p.ops.end(), [](const PlanOp& op) {
            return !op.perm.empty() || (op.kind == PlanOp::Kind::Pair && !op.parts[1].perm.empty());
          }));
        }
        for (const PlanOp& op : p.ops) {  // a pair of per-sample ops writing through a folded ring
          saw_pair_permute = saw_pair_permute || (op.kind == PlanOp::Kind::Pair && !op.parts[1].perm.empty());
          saw_controlled_pair = saw_controlled_pair || (op.kind == PlanOp::Kind::Pair && op.parts[0].controls.mask != 0);
        }
        // the rotation layer after a ring runs as pairs of qubits
        if (n > 2) {
          EXPECT_TRUE(std::any_of(p.ops.begin(), p.ops.end(), [](const PlanOp& op) {
            return op.kind == PlanOp::Kind::Pair;
          }));
        }
      }
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
  EXPECT_TRUE(saw_pair_permute);
  EXPECT_TRUE(saw_controlled_pair);
}

// Per-sample rotation matrices use a vectorised sin/cos: the same numbers as
// libm (through gate-by-gate apply_gate) to 1e-12 over many periods and
// quadrants, and past the range where it falls back to libm.
TEST(Plan, FeatureRotationsMatchLibm) {
  std::mt19937_64 rng(41);
  const int n = 3, batch = 9;
  Circuit c;
  c.n_qubits = n;
  const GateKind kinds[3] = {GateKind::RX, GateKind::RY, GateKind::RZ};
  for (int l = 0; l < 4; ++l)
    for (int q = 0; q < n; ++q) {
      add_gate(c, make_gate(kinds[(l + q) % 3], q, {}, {Angle::feature(l * n + q, l == 3 ? 1.0 : 0.5 + l)}));
      add_gate(c, make_gate(GateKind::X, (q + 1) % n, {{q, true}}));
    }
  for (double range : {4.0, 3e4, 5e5}) {
    const auto theta = std::vector<double>{};
    const auto x = random_vector(rng, std::size_t(c.n_features) * batch, -range, range);
    GateScratch<double> scratch;
    auto ref = sim::make_state<double>(n, batch), s = ref;
    for (const Gate& g : c.gates) apply_gate(ref, g, theta.data(), x.data(), c.n_features, false, scratch);
    run_circuit(c, theta.data(), x.data(), s, scratch);
    EXPECT_LE(max_diff(s, ref), 1e-12) << "range " << range;
  }
}

// find_layers: every layer's gates commute across targets (reordering a
// layer, per-target order kept, gives the same state), a layer's gates sit on
// >= 2 targets, and the planned run with barriers saves, at each barrier,
// exactly the state after the gates before it.
TEST(Plan, LayersCommuteAndBarriersSaveStates) {
  std::mt19937_64 rng(43);
  int layers_seen = 0, row_saves = 0;
  for (int trial = 0; trial < 12; ++trial) {
    const int n = 2 + trial % 5, batch = 1 + trial % 3;
    Circuit c = trial % 3 == 2 ? random_circuit(rng, n, 80, 1, 4, 3) : layered_circuit(rng, n, trial % 2);
    const auto theta = random_vector(rng, std::size_t(c.n_params));
    const auto x = random_vector(rng, std::size_t(c.n_features) * batch);
    GateScratch<double> scratch;
    const std::vector<GateRange> layers = find_layers(c);
    layers_seen += int(layers.size());
    std::vector<int> barriers;
    std::vector<sim::Controls> rows;  // each layer's controls: the amplitudes it changes
    for (const GateRange& l : layers) {
      std::uint64_t targets = 0;
      for (int gi = l.begin; gi < l.end; ++gi) targets |= std::uint64_t(1) << c.gates[std::size_t(gi)].target;
      EXPECT_GE(std::popcount(targets), 2);
      // the layer's gates grouped by target (stable), in reverse target order
      Circuit moved = c;
      std::vector<int> order;
      for (int q = n - 1; q >= 0; --q)
        for (int gi = l.begin; gi < l.end; ++gi)
          if (c.gates[std::size_t(gi)].target == q) order.push_back(gi);
      for (int k = 0; k < l.end - l.begin; ++k) moved.gates[std::size_t(l.begin + k)] = c.gates[std::size_t(order[std::size_t(k)])];
      auto a = sim::make_state<double>(n, batch), b = a;
      for (const Gate& g : c.gates) apply_gate(a, g, theta.data(), x.data(), c.n_features, false, scratch);
      for (const Gate& g : moved.gates) apply_gate(b, g, theta.data(), x.data(), c.n_features, false, scratch);
      EXPECT_LE(max_diff(a, b), 1e-12) << "trial " << trial << " layer " << l.begin;
      if (l.begin > 0) barriers.push_back(l.begin), rows.push_back(control_mask(c.gates[std::size_t(l.begin)]));
    }
    if (barriers.empty()) continue;
    PlanOptions o;
    o.barriers = barriers;
    const Plan p = make_plan(c, o);
    for (const PlanOp& op : p.ops) {
      const int lo = *std::min_element(op.gates.begin(), op.gates.end());
      const int hi = std::max(*std::max_element(op.gates.begin(), op.gates.end()),
                              op.perm_gates.empty() ? -1 : op.perm_gates.back());
      const int seg_lo = op.segment == 0 ? 0 : barriers[std::size_t(op.segment - 1)];
      const int seg_hi = op.segment == int(barriers.size()) ? int(c.gates.size()) : barriers[std::size_t(op.segment)];
      EXPECT_TRUE(lo >= seg_lo && hi < seg_hi) << "trial " << trial << ": an op spans a barrier";
    }
    // whole states, then (as forward() saves a controlled layer) only the rows the layer changes
    for (bool part : {false, true}) {
      std::vector<sim::State<double>> saved;
      auto s = sim::make_state<double>(n, batch);
      run_plan(c, p, theta.data(), x.data(), s, scratch, &saved, part ? rows.data() : nullptr);
      ASSERT_EQ(saved.size(), barriers.size());
      for (std::size_t k = 0; k < barriers.size(); ++k) {
        auto ref = sim::make_state<double>(n, batch);
        for (int gi = 0; gi < barriers[k]; ++gi)
          apply_gate(ref, c.gates[std::size_t(gi)], theta.data(), x.data(), c.n_features, false, scratch);
        if (part && rows[k].mask != 0) {
          sim::State<double> ref_part;
          sim::copy_controlled(ref, rows[k], ref_part);
          ref = ref_part;
          ++row_saves;
        }
        ASSERT_EQ(saved[k].re.size(), ref.re.size()) << "trial " << trial << " barrier " << barriers[k];
        EXPECT_LE(max_diff(saved[k], ref), 1e-12) << "trial " << trial << " barrier " << barriers[k];
      }
    }
  }
  EXPECT_GT(layers_seen, 12);
  EXPECT_GT(row_saves, 4);
}

// A get() never replaces the plan the previous get() returned, even when that
// plan sits in the slot the cache would replace next: forward_backward holds
// its forward plan while it gets the sweep's.
TEST(Plan, PlanCacheKeepsTheLastPlan) {
  std::mt19937_64 rng(79);
  std::vector<Circuit> cs;
  for (int k = 0; k < 10; ++k) cs.push_back(structured_circuit(rng, 3 + k % 4));
  PlanCache cache;
  for (int k = 0; k < 8; ++k) cache.get(cs[std::size_t(k)]);  // full; the oldest (next to go) is cs[0]'s
  const Plan& held = cache.get(cs[0]);
  const std::size_t ops = held.ops.size();
  const int n = held.n_qubits;
  const Plan& other = cache.get(cs[8]);
  EXPECT_NE(&other, &held);
  EXPECT_EQ(held.ops.size(), ops);
  EXPECT_EQ(held.n_qubits, n);
  EXPECT_EQ(&cache.get(cs[0]), &held);  // still cached
}

// PlanCache: an equal circuit (a copy) gets the cached plan; a circuit that
// differs in one gate, or other options, gets its own plan (the hash is only
// a first check: the circuits are compared in full).
TEST(Plan, PlanCacheTellsCircuitsApart) {
  std::mt19937_64 rng(53);
  const Circuit c = structured_circuit(rng, 4);
  PlanCache cache;
  const Plan* p1 = &cache.get(c);
  const Circuit copy = c;
  EXPECT_EQ(&cache.get(copy), p1);
  for (int change = 0; change < 4; ++change) {
    Circuit d = c;
    Gate& g = d.gates[std::size_t(7 + change)];
    if (change == 0) g.target = (g.target + 1) % d.n_qubits;
    if (change == 1) g.angles[0].value += 1e-9;
    if (change == 2) g.kind = g.kind == GateKind::RX ? GateKind::RY : GateKind::RX;
    if (change == 3) g.controls.push_back({(g.target + 2) % d.n_qubits, false});
    const Plan& pd = cache.get(d);
    EXPECT_NE(&pd, p1) << "change " << change;
    std::size_t gates = 0;
    for (const PlanOp& op : pd.ops) gates += op.gates.size() + op.perm_gates.size();
    EXPECT_EQ(gates, d.gates.size()) << "change " << change;
  }
  PlanOptions o;
  o.barriers = {5};
  EXPECT_NE(&cache.get(c, o), p1);
  EXPECT_EQ(&cache.get(c), p1);  // still cached (fewer than 8 entries used)
}

