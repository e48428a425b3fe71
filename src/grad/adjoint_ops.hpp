// The adjoint method's steps through a plan's fused ops (used by the
// backward sweep in grad/adjoint.cpp): the gradients of the differentiable
// rotations in a fused run from one pass (adjoint_op), a whole layer's from
// read-only sweeps (layer_gradients), and how a CNOT ring maps Paulis, so a
// layer's overlaps can be taken through the ring that follows it
// (affine_conjugation).
//
// The idea: for a run M = G_m ... G_1 on one qubit whose differentiable
// members are rotations exp(-i a P_j/2), dL/da_j = n_j . overlap, with
// overlap_k = Im <lam| sigma_k |phi> at the run's end and n_j the Bloch
// vector of A P_j A^dagger, A = G_m ... G_{j+1} (bloch_vectors): three sums
// per sample serve every rotation of the run.
#pragma once

#include <cstddef>
#include <vector>

#include "circuit/circuit.hpp"
#include "circuit/execute.hpp"
#include "circuit/plan.hpp"
#include "sim/state.hpp"

namespace qmoe {

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

}  // namespace qmoe
