// What a circuit costs on a device that runs {CX, single-qubit U}: gate
// count, CNOT count and depth after each gate is decomposed as qelib1.inc
// defines it, with adjacent single-qubit gates on a qubit merged into one U
// (as any device compiler does). No other optimisation (no routing on a
// coupling map, no cancellation across CNOTs).
//
// The input is a circuit of qelib1.inc-level gates (what write_qasm emits and
// parse_qasm reads back: at most one control, except ccx). Decompositions
// (c control, t target), from qelib1.inc:
//   cx: CX                      cy, cz: U t, CX, U t
//   crz, cry: U t, CX, U t, CX  crx: U t, CX, U t, CX, U t
//   cu1: U c, CX, U t, CX, U t  cu3: U c, U t, CX, U t, CX, U t
//   ch: U t, CX, U t, CX, U t, U c        swap: CX CX CX
//   ccx (a, b, t): qelib1.inc's 15 gates: 6 CX, the rest U
#pragma once

#include <vector>

#include "circuit/circuit.hpp"

namespace qmoe {

struct DecomposedCost {
  long gates = 0;  // gates as given
  long cx = 0;     // CNOTs after decomposition
  long u = 0;      // single-qubit U after decomposition and merging
  int depth = 0;   // layers of {CX, U}
};

// Counts gates as they are appended; barrier() makes every later gate wait
// for all earlier ones (a mid-circuit measurement that the rest depends on).
struct CostCounter {
  explicit CostCounter(int n_qubits);
  void add(const Circuit& c);  // throws std::invalid_argument for a gate it cannot decompose
  void barrier();
  DecomposedCost result() const;

  std::vector<int> level;     // per qubit: layers so far
  std::vector<char> last_u;   // per qubit: its last op is a U (a new U merges into it)
  DecomposedCost cost;
};

DecomposedCost decomposed_cost(const Circuit& c);

}  // namespace qmoe
