// Execution plans: a circuit's gates grouped into fewer, cheaper kernel calls.
//
// Planned once per circuit (make_plan, or a caller-owned PlanCache), then run for any inputs:
//   - 1-qubit gates on the same target with the same controls fuse into one
//     2x2 (per sample if any angle is a feature). A gate joins the latest op
//     that touches any of its qubits, so it may move past ops on other qubits
//     (they commute): RY(q0) RY(q1) RZ(q0) RZ(q1) becomes two ops.
//   - A fused group of diagonal gates (RZ, Z, S, T, U1, ...) uses the diagonal kernel.
//   - X-type gates (X, CNOT, Toffoli, SWAP with any controls) form permutation
//     ops: one X uses the slot-swapping kernel, several (a CNOT ring) become one
//     basis permutation applied in a single pass.
//   - Prefix: uncontrolled 1-qubit gates on a qubit no multi-qubit op has
//     touched yet fuse per qubit, and the state starts as their product state
//     (one pass instead of one per qubit). Only in forward runs from |0>.
//   - A permutation table right after an uncontrolled fused op folds into it:
//     the op writes each amplitude pair straight to its permuted place.
//   - Two consecutive fused ops on different qubits with the same controls
//     (none, or e.g. an expert's routing state) become one Pair op: one pass
//     that applies both 2x2s to each group of 4 amplitudes (and writes
//     through the second op's folded permutation, if it has one and both are
//     per sample).
//   - Gates marked `keep` (the adjoint sweep's differentiable gates) stay alone.
//   - Barriers (gate indices) cut the plan into segments: no op holds gates from
//     both sides of one, so the state between two segments is the state after
//     exactly the gates before the barrier (the adjoint sweep saves it).
// The fused matrices are products of the same double-precision 2x2 matrices,
// so planned runs agree with gate-by-gate runs to rounding (~1e-15).
#pragma once

#include <cstdint>
#include <vector>

#include "circuit/circuit.hpp"
#include "sim/state.hpp"

namespace qmoe {

struct PlanOp {
  enum class Kind : std::uint8_t {
    Fused,        // 2x2 product of `gates` on target (with controls)
    Permutation,  // X-type gates: one X / SWAP, or a table `perm` for several
    Single,       // one gate kept alone (see PlanOptions::keep)
    Pair,         // two Fused ops on different qubits, same controls (`parts`), in one pass
  };
  Kind kind = Kind::Fused;
  int target = 0;
  sim::Controls controls;
  std::vector<int> gates;           // circuit gate indices, in application order
  bool per_sample = false;          // Fused: some angle comes from a feature
  bool diagonal = false;            // Fused: every gate is diagonal
  bool su2 = false;                 // Fused: every gate is RX, RY or RZ, so the product (and its
                                    // inverse) is in SU(2): the kernels read half the per-sample
                                    // matrix (sim::BatchMat::su2)
  bool prefix = false;              // Fused: part of the initial product state
  std::vector<std::uint32_t> perm;  // Permutation of >1 gates: amplitude i -> perm[i];
                                    // Fused: the folded permutation applied after the matrix
  std::vector<int> perm_gates;      // Fused with perm: the X-type gates of that permutation
                                    // (Pair: those of parts[1], which holds the perm)
  std::vector<std::uint32_t> moved; // Permutation: the amplitudes perm moves, in cycle order
                                    // (e.g. a controlled ring; applied to those only)
  std::vector<PlanOp> parts;        // Pair: the two Fused ops
  int segment = 0;                  // how many barriers lie before this op's gates
};

struct PlanOptions {
  bool fuse = true;          // fuse 1-qubit gates
  bool permutations = true;  // special X / diagonal kernels and permutation tables
  bool product_prefix = true;
  bool fold_permutations = true;  // a permutation table right after an uncontrolled
                                  // fused op runs in that op's pass (no copy pass)
  bool pairs = true;              // two consecutive fused ops on different qubits with
                                  // the same controls run in one pass (Kind::Pair)
  int begin = 0, end = -1;   // gate range [begin, end); end < 0: all
  std::vector<char> keep;    // per gate (or empty): never fuse this gate
  std::vector<int> barriers;  // ascending gate indices in (begin, end): segment boundaries
};

struct Plan {
  int n_qubits = 0;
  bool has_prefix = false;
  bool fold_prefix_permutation = false;  // a permutation table right after the product
                                         // state is built into it (fold_permutations)
  std::vector<PlanOp> ops;
  int n_segments = 1;  // PlanOptions::barriers + 1
};

// The plan of c's gates [opt.begin, opt.end), in named passes (plan.cpp):
// group the gates into ops, build the permutation tables, fold tables into
// the fused op before them, pair neighbouring fused ops.
Plan make_plan(const Circuit& c, const PlanOptions& opt = {});
// Two fused ops on different targets with the same controls (e.g. an
// expert's rotations, all controlled by the routing register) that can run in
// one pass (Kind::Pair; the executor's undo_ops pairs them too).
bool pairable(const PlanOp& a, const PlanOp& b);
// The plans of the last few circuits run, owned by the caller (a Workspace),
// so the core keeps no hidden state. A plan is reused only for an equal
// circuit and equal options (compared in full after a hash match); rebuilding
// costs O(gates + 2^n * permutation gates). A get() never replaces the plan
// the previous get() returned, so a caller can hold two. Not thread-safe:
// get() before entering a parallel region and share the (read-only) plans.
class PlanCache {
 public:
  const Plan& get(const Circuit& c, const PlanOptions& opt = {});

 private:
  struct Entry {
    std::uint64_t key = 0;
    Circuit circuit;
    PlanOptions options;
    Plan plan;
  };
  static constexpr std::size_t kEntries = 8;
  std::vector<Entry> entries_;
  std::size_t next_ = 0;
  std::size_t last_ = kEntries;  // the slot the last get() returned (none yet)
};

// Layers: maximal runs of consecutive gates [begin, end) that are all 1-qubit,
// not X-type, differentiable only through RX / RY / RZ angles, with the same
// controls (a gate's target is never a control), on at least two targets,
// e.g. a rotation on every qubit, or an expert's rotations controlled by the
// routing register. Gates on different targets of a layer commute, so the
// adjoint sweep can take all of a layer's gradients from the states at its
// end (see grad/adjoint.cpp).
struct GateRange {
  int begin, end;
};
std::vector<GateRange> find_layers(const Circuit& c);

}  // namespace qmoe
