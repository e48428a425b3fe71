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
#include "circuit/execute.hpp"
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

Plan make_plan(const Circuit& c, const PlanOptions& opt = {});
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

// How a basis permutation P that is affine over GF(2) (|i> -> |A i ^ c>: X,
// CNOT and SWAP gates with at most one control, e.g. a CNOT ring) maps Paulis:
// P X_q P^dagger = x[q], P Z_q P^dagger = z[q] (Pauli strings; Y_q: see
// conjugated_y). The adjoint sweep takes a layer's overlaps through the ring
// that follows it this way, instead of undoing the ring on phi.
struct PauliConjugation {
  std::vector<sim::PauliMask> x, z;
};
// Empty x and z when op is not such a permutation (or is no Permutation op).
PauliConjugation affine_conjugation(const Circuit& c, const PlanOp& op);
// P Y_q P^dagger = i (P X_q P^dagger)(P Z_q P^dagger).
sim::PauliMask conjugated_y(const PauliConjugation& p, int q);

// Apply one op (inverse: its dagger). Prefix ops are ordinary fused ops here.
template <class T>
void apply_op(sim::State<T>& s, const Circuit& c, const PlanOp& op, const double* theta,
              const double* x, int x_stride, bool inverse, GateScratch<T>& scratch);

// Undo ops[count-1] .. ops[0] (each inverted, last first) on s; neighbouring
// fused ops on different qubits with the same controls share one pass (as
// Kind::Pair). With `after`, a Permutation op that followed ops[count-1] is
// undone first, folded into the first pass where it can be.
template <class T>
void undo_ops(sim::State<T>& s, const Circuit& c, const PlanOp* ops, std::size_t count,
              const double* theta, const double* x, int x_stride, GateScratch<T>& scratch,
              const PlanOp* after = nullptr);

// The same op on two states (the adjoint sweep's phi and lambda), computing
// per-sample matrices once.
template <class T>
void apply_op_pair(sim::State<T>& s, sim::State<T>& s2, const Circuit& c, const PlanOp& op,
                   const double* theta, const double* x, int x_stride, bool inverse,
                   GateScratch<T>& scratch);

// The adjoint sweep's step back through a Fused op some of whose gates are
// differentiable rotations (diff[gate index] set; RX, RY or RZ): one pass over
// phi and lam (sim::adjoint_step_overlaps) that undoes the whole op and sets
// grad[j * batch + b] = 2 Re <lam_j| dG_j/da G_j^-1 |phi_j> for the j-th
// differentiable gate G_j of op.gates (in order) and sample b, where phi_j and
// lam_j are the states just after G_j.
template <class T>
void adjoint_op(sim::State<T>& phi, sim::State<T>& lam, const Circuit& c, const PlanOp& op,
                const char* diff, const double* theta, const double* x, int x_stride,
                GateScratch<T>& scratch, double* grad);

// The gradients of a layer's fused ops[0..count) (see find_layers) from phi
// and lam at the layer's end, states unchanged: the ops' differentiable gates
// in order, grad[row * B + b]. Read-only sweeps shared by the ops (sim::layer_overlaps).
// With `through` (an uncontrolled layer only), phi and lam are the states
// after a permutation P that follows the layer, and the overlaps are those of
// the Paulis conjugated by P (the same numbers, without undoing P on phi).
template <class T>
void layer_gradients(const sim::State<T>& phi, const sim::State<T>& lam, const Circuit& c,
                     const PlanOp* ops, std::size_t count, const char* diff, const double* theta,
                     const double* x, int x_stride, GateScratch<T>& scratch, double* grad,
                     const PauliConjugation* through = nullptr);

// Reset s to |0...0> (or the product state of the prefix) and run every op.
// With `saved`, the state at each barrier k is copied to (*saved)[k] (resized);
// with `saved_rows` too, only the amplitudes saved_rows[k] selects
// (sim::copy_controlled; a mask of 0 selects the whole state).
template <class T>
void run_plan(const Circuit& c, const Plan& p, const double* theta, const double* x,
              sim::State<T>& s, GateScratch<T>& scratch,
              std::vector<sim::State<T>>* saved = nullptr,
              const sim::Controls* saved_rows = nullptr);

}  // namespace qmoe
