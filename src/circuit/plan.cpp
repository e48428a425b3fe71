// Execution plans (plan.hpp): make_plan's passes and find_layers.
#include "circuit/plan.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>

#include "circuit/execute.hpp"
#include "circuit/op_matrices.hpp"

namespace qmoe {
namespace {

using u64 = std::uint64_t;
using detail::is_rotation;

u64 touched(const Gate& g) {
  u64 m = u64(1) << g.target;
  if (g.kind == GateKind::Swap) m |= u64(1) << g.target2;
  for (const Control& c : g.controls) m |= u64(1) << c.qubit;
  return m;
}

// Where basis state i goes under an X-type gate.
u64 permute_index(const Gate& g, const sim::Controls& c, u64 i) {
  if ((i & c.mask) != c.value) return i;
  if (g.kind == GateKind::X) return i ^ (u64(1) << g.target);
  const u64 b0 = (i >> g.target) & 1, b1 = (i >> g.target2) & 1;  // Swap
  if (b0 == b1) return i;
  return i ^ ((u64(1) << g.target) | (u64(1) << g.target2));
}

// Largest state for which several X-type gates become one permutation table.
constexpr int kMaxPermutationQubits = 16;

void check_options(const Circuit& c, const PlanOptions& opt, int end) {
  if (opt.begin < 0 || opt.begin > end || end > int(c.gates.size()))
    throw std::invalid_argument("make_plan: bad gate range");
  for (std::size_t k = 0; k < opt.barriers.size(); ++k)
    if (opt.barriers[k] <= opt.begin || opt.barriers[k] >= end ||
        (k > 0 && opt.barriers[k] <= opt.barriers[k - 1]))
      throw std::invalid_argument("make_plan: barriers must ascend inside the gate range");
}

// Pass 1: each gate joins the latest op that touches any of its qubits when it
// can (the same target and controls: a fused 2x2; X-type after X-type: one
// permutation), else starts an op. Nothing joins an op of an earlier segment.
void group_gates(const Circuit& c, const PlanOptions& opt, int end, Plan& p) {
  const int n = c.n_qubits;
  std::vector<int> last(std::size_t(std::max(n, 1)), -1);  // latest op touching each qubit
  int segment = 0, first_op = 0;  // this segment's first op: nothing joins an earlier one
  for (int gi = opt.begin; gi < end; ++gi) {
    if (segment < int(opt.barriers.size()) && gi == opt.barriers[std::size_t(segment)])
      ++segment, first_op = int(p.ops.size());
    const Gate& g = c.gates[std::size_t(gi)];
    const sim::Controls ctl = control_mask(g);
    const u64 qs = touched(g);
    int j = -1;
    for (u64 m = qs; m; m &= m - 1) j = std::max(j, last[std::size_t(std::countr_zero(m))]);
    const bool keep = !opt.keep.empty() && opt.keep[std::size_t(gi)];
    const bool swap = g.kind == GateKind::Swap;
    const bool xtype = opt.permutations && (g.kind == GateKind::X || swap);
    PlanOp* prev = j >= first_op ? &p.ops[std::size_t(j)] : nullptr;
    int at = -1;
    if (!keep && opt.fuse && prev && !swap && prev->kind == PlanOp::Kind::Fused &&
        prev->target == g.target && prev->controls.mask == ctl.mask &&
        prev->controls.value == ctl.value) {
      prev->gates.push_back(gi);  // same target and controls: multiply in
      prev->per_sample |= is_per_sample(g);
      prev->diagonal &= opt.permutations && is_diagonal(g.kind);
      prev->su2 &= is_rotation(g.kind);
      at = j;
    } else if (!keep && opt.fuse && xtype && prev && prev->kind == PlanOp::Kind::Permutation &&
               n <= kMaxPermutationQubits) {
      prev->gates.push_back(gi);  // one more X-type gate in the same permutation
      at = j;
    } else {
      PlanOp op;
      op.target = g.target;
      op.controls = ctl;
      op.gates = {gi};
      op.segment = segment;
      if (keep || (swap && !xtype)) {
        op.kind = PlanOp::Kind::Single;
      } else if (xtype) {
        op.kind = PlanOp::Kind::Permutation;
      } else {
        op.kind = PlanOp::Kind::Fused;
        op.per_sample = is_per_sample(g);
        op.diagonal = opt.permutations && is_diagonal(g.kind);
        op.su2 = is_rotation(g.kind);
        op.prefix = opt.fuse && opt.product_prefix && opt.begin == 0 && ctl.mask == 0 && j < 0 &&
                    segment == 0;
        p.has_prefix |= op.prefix;
      }
      p.ops.push_back(std::move(op));
      at = int(p.ops.size()) - 1;
    }
    for (u64 m = qs; m; m &= m - 1) last[std::size_t(std::countr_zero(m))] = at;
  }
}

// Pass 2: a permutation table for each group of several X-type gates.
void build_permutation_tables(const Circuit& c, Plan& p) {
  const int n = c.n_qubits;
  for (PlanOp& op : p.ops) {
    if (op.kind != PlanOp::Kind::Permutation || op.gates.size() < 2) continue;
    const u64 dim = u64(1) << n;
    op.perm.resize(dim);
    std::vector<sim::Controls> ctls;
    for (int gi : op.gates) ctls.push_back(control_mask(c.gates[std::size_t(gi)]));
    for (u64 i = 0; i < dim; ++i) {
      u64 k = i;
      for (std::size_t t = 0; t < op.gates.size(); ++t) k = permute_index(c.gates[std::size_t(op.gates[t])], ctls[t], k);
      op.perm[i] = std::uint32_t(k);
    }
    op.moved = sim::permutation_cycles(op.perm.data(), dim);
  }
}

// Pass 3: a permutation table right after an uncontrolled fused op folds into
// it (the op writes each amplitude pair straight to its permuted place).
void fold_permutations(Plan& p) {
  std::vector<PlanOp> ops;
  for (PlanOp& op : p.ops) {
    if (op.kind == PlanOp::Kind::Permutation && !op.perm.empty() && !ops.empty()) {
      PlanOp& prev = ops.back();
      if (prev.kind == PlanOp::Kind::Fused && prev.controls.mask == 0 && !prev.prefix && prev.perm.empty() &&
          prev.segment == op.segment) {
        prev.perm = std::move(op.perm);
        prev.perm_gates = std::move(op.gates);
        continue;
      }
    }
    ops.push_back(std::move(op));
  }
  p.ops = std::move(ops);
}

// Pass 4: two consecutive pairable fused ops become one Pair op.
void pair_ops(Plan& p) {
  std::vector<PlanOp> ops;
  for (PlanOp& op : p.ops) {
    if (!ops.empty() && pairable(ops.back(), op) && ops.back().segment == op.segment) {
      PlanOp pair;
      pair.kind = PlanOp::Kind::Pair;
      pair.segment = op.segment;
      pair.target = ops.back().target;
      pair.gates = ops.back().gates;
      pair.gates.insert(pair.gates.end(), op.gates.begin(), op.gates.end());
      pair.perm_gates = op.perm_gates;  // the second part's folded permutation, if any
      pair.per_sample = ops.back().per_sample || op.per_sample;
      pair.parts.push_back(std::move(ops.back()));
      pair.parts.push_back(std::move(op));
      ops.back() = std::move(pair);
      continue;
    }
    ops.push_back(std::move(op));
  }
  p.ops = std::move(ops);
}

}  // namespace

// Two fused ops on different targets with the same controls (e.g. an
// expert's rotations, all controlled by the routing register) run in one pass.
bool pairable(const PlanOp& a, const PlanOp& b) {
  auto single = [](const PlanOp& op) { return op.kind == PlanOp::Kind::Fused && !op.prefix; };
  if (!single(a) || !single(b) || a.target == b.target || !a.perm.empty()) return false;
  if (a.controls.mask != b.controls.mask || a.controls.value != b.controls.value) return false;
  // b's folded permutation runs in the pair's pass (apply_matrix_pair_permute:
  // both per sample; only uncontrolled ops carry one)
  return b.perm.empty() || (a.per_sample && b.per_sample);
}

Plan make_plan(const Circuit& c, const PlanOptions& opt) {
  const int end = opt.end < 0 ? int(c.gates.size()) : opt.end;
  check_options(c, opt, end);
  Plan p;
  p.n_qubits = c.n_qubits;
  group_gates(c, opt, end, p);
  build_permutation_tables(c, p);
  p.fold_prefix_permutation = opt.fold_permutations;
  if (opt.fold_permutations) fold_permutations(p);
  if (opt.pairs) pair_ops(p);
  p.n_segments = int(opt.barriers.size()) + 1;
  return p;
}

std::vector<GateRange> find_layers(const Circuit& c) {
  std::vector<GateRange> layers;
  int begin = 0;
  u64 targets = 0;           // of the current run
  sim::Controls controls{};  // shared by the current run's gates
  auto close = [&](int end) {
    if (std::popcount(targets) >= 2) layers.push_back({begin, end});
    begin = end, targets = 0;
  };
  for (int gi = 0; gi < int(c.gates.size()); ++gi) {
    const Gate& g = c.gates[std::size_t(gi)];
    bool fits = g.kind != GateKind::X && g.kind != GateKind::Swap;
    for (int k = 0; k < angle_count(g.kind); ++k)
      if (g.angles[k].source != AngleSource::Constant && !is_rotation(g.kind)) fits = false;
    if (!fits) {
      close(gi);
      begin = gi + 1;
      continue;
    }
    const sim::Controls ctl = control_mask(g);
    if (targets && (ctl.mask != controls.mask || ctl.value != controls.value)) close(gi);
    targets |= u64(1) << g.target;
    controls = ctl;
  }
  close(int(c.gates.size()));
  return layers;
}

}  // namespace qmoe
