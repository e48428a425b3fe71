// The executor of execution plans (plan.hpp): runs a plan's ops on a batched
// state through the simulator's kernels, forward from |0...0> (run_plan) or
// one op at a time, inverted, for the adjoint sweep (apply_op, apply_op_pair,
// undo_ops).
#pragma once

#include <cstddef>
#include <vector>

#include "circuit/circuit.hpp"
#include "circuit/execute.hpp"
#include "circuit/plan.hpp"
#include "sim/state.hpp"

namespace qmoe {

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
