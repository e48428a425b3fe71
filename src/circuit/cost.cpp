#include "circuit/cost.hpp"

#include <algorithm>
#include <stdexcept>

namespace qmoe {
namespace {

// One elementary op: a U on qubit a (b < 0) or a CX a -> b. Qubits are
// indices into the gate's qubit list (0: first control, ..., last: target).
struct Op {
  int a, b;
};

void u_op(CostCounter& k, int q) {
  if (k.last_u[std::size_t(q)]) return;  // merges into the previous U
  k.last_u[std::size_t(q)] = 1;
  ++k.level[std::size_t(q)];
  ++k.cost.u;
}

void cx_op(CostCounter& k, int c, int t) {
  const int l = std::max(k.level[std::size_t(c)], k.level[std::size_t(t)]) + 1;
  k.level[std::size_t(c)] = k.level[std::size_t(t)] = l;
  k.last_u[std::size_t(c)] = k.last_u[std::size_t(t)] = 0;
  ++k.cost.cx;
}

// The decomposition of a gate with one control (qubits: 0 control, 1 target).
std::vector<Op> controlled(GateKind kind) {
  switch (kind) {
    case GateKind::X: return {{0, 1}};
    case GateKind::Y: case GateKind::Z: return {{1, -1}, {0, 1}, {1, -1}};
    case GateKind::RZ: case GateKind::RY: return {{1, -1}, {0, 1}, {1, -1}, {0, 1}};
    case GateKind::RX: return {{1, -1}, {0, 1}, {1, -1}, {0, 1}, {1, -1}};
    case GateKind::U1: case GateKind::S: case GateKind::Sdg: case GateKind::T: case GateKind::Tdg:
      return {{0, -1}, {0, 1}, {1, -1}, {0, 1}, {1, -1}};
    case GateKind::H: return {{1, -1}, {0, 1}, {1, -1}, {0, 1}, {1, -1}, {0, -1}};
    default: return {{0, -1}, {1, -1}, {0, 1}, {1, -1}, {0, 1}, {1, -1}};  // cu3 (u2, sx, any 2x2)
  }
}

// qelib1's ccx a, b, c (qubits 0, 1, 2).
const std::vector<Op> kToffoli = {{2, -1}, {1, 2}, {2, -1}, {0, 2}, {2, -1}, {1, 2}, {2, -1}, {0, 2}, {1, -1},
                                  {2, -1}, {0, 1}, {0, -1}, {1, -1}, {0, 1}};

}  // namespace

CostCounter::CostCounter(int n_qubits) : level(std::size_t(n_qubits), 0), last_u(std::size_t(n_qubits), 0) {}

void CostCounter::add(const Circuit& c) {
  if (c.n_qubits > int(level.size())) throw std::invalid_argument("CostCounter: circuit larger than the register");
  for (const Gate& g : c.gates) {
    ++cost.gates;
    std::vector<int> qs;
    for (const Control& ctl : g.controls) qs.push_back(ctl.qubit);
    qs.push_back(g.target);
    std::vector<Op> ops;
    if (!std::all_of(g.controls.begin(), g.controls.end(), [](const Control& ctl) { return ctl.on_one; }))
      throw std::invalid_argument("CostCounter: a control on |0> (write the circuit as qelib1 gates first)");
    if (g.kind == GateKind::Swap) {
      if (!g.controls.empty()) throw std::invalid_argument("CostCounter: a controlled swap (write it as qelib1 gates first)");
      qs = {g.target, g.target2};
      ops = {{0, 1}, {1, 0}, {0, 1}};
    } else if (g.controls.empty()) {
      ops = {{0, -1}};
    } else if (g.controls.size() == 1) {
      ops = controlled(g.kind);
    } else if (g.controls.size() == 2 && g.kind == GateKind::X) {
      ops = kToffoli;
    } else {
      throw std::invalid_argument("CostCounter: a gate with " + std::to_string(g.controls.size()) +
                                  " controls (write the circuit as qelib1 gates first)");
    }
    for (const Op& op : ops) {
      if (op.b < 0) u_op(*this, qs[std::size_t(op.a)]);
      else cx_op(*this, qs[std::size_t(op.a)], qs[std::size_t(op.b)]);
    }
  }
  cost.depth = *std::max_element(level.begin(), level.end());
}

void CostCounter::barrier() {
  const int l = *std::max_element(level.begin(), level.end());
  std::fill(level.begin(), level.end(), l);
  std::fill(last_u.begin(), last_u.end(), 0);
}

DecomposedCost CostCounter::result() const {
  DecomposedCost r = cost;
  r.depth = level.empty() ? 0 : *std::max_element(level.begin(), level.end());
  return r;
}

DecomposedCost decomposed_cost(const Circuit& c) {
  CostCounter k(c.n_qubits);
  k.add(c);
  return k.result();
}

}  // namespace qmoe
