// Exact gradients by the adjoint method (the forward pass: grad/forward.hpp).
//
// forward() runs the circuit on every sample and returns <O_k> for each
// observable; it keeps the final states in the Workspace. backward() then takes
// dL/d<O_k> per sample and returns dL/dtheta (summed over the batch) and, if
// asked, dL/dx per sample. It folds the observables into one weighted
// observable per sample (a vector-Jacobian product) and sweeps back through
// the gates undoing them (PennyLane Lightning's scheme), so it holds three
// states per chunk whatever the number of observables or gates.
//
// Layers (circuit/plan.hpp: find_layers, e.g. a rotation on every qubit) need
// less: all their gradients come from the two states at the layer's end, then
// only lam is undone and phi is restored from the state forward() saved at the
// layer's start (Workspace::saved_layers; a fixed number of extra states per
// chunk, however long the circuit). A layer under controls changes only the
// amplitudes they select, so only those are saved and put back (a QMoE
// expert's layer: a quarter of the state). The first layer of the sweep is not
// undone at all. The other gates are undone on both states.
//
// Threads work on chunks of the batch (OpenMP over chunks, never inside a
// small gate); partial sums are reduced in chunk order, so results do not
// depend on the thread count.
#pragma once

#include <functional>
#include <vector>

#include "circuit/circuit.hpp"
#include "circuit/execute.hpp"
#include "circuit/executor.hpp"
#include "circuit/plan.hpp"
#include "grad/adjoint_ops.hpp"
#include "grad/forward.hpp"
#include "grad/pauli_string.hpp"
#include "grad/workspace.hpp"
#include "sim/state.hpp"

namespace qmoe {

// Needs the forward() of the same circuit, inputs and batch just before.
// dL_dO[b * K + k]; dtheta (size n_params) is ADDED to; dx (nullable,
// [batch][n_features]) is overwritten.
template <class T>
void backward(const Circuit& c, const std::vector<double>& theta, const double* x, int batch,
              const std::vector<PauliString>& obs, const double* dL_dO, double* dtheta,
              double* dx, Workspace<T>& ws);

// dL/d<O_k> of samples begin .. begin + count - 1 from their expectations:
// dL_dO[b * K + k] for expvals[b * K + k] (b < count, K observables);
// dL_dO arrives zeroed.
// forward_backward() calls it once per chunk from the thread running that
// chunk, so it must allow concurrent calls for disjoint ranges.
using LossGradient = std::function<void(int begin, int count, const double* expvals, double* dL_dO)>;

// forward() and backward() chunk by chunk: each thread runs a chunk forward,
// asks loss_gradient for its dL/dO and sweeps it back while its states are
// still in cache; saves take one chunk's worth per thread (ws.saved_layers).
// The same numbers as forward() then backward(); for losses that couple the
// samples of a batch (e.g. a batch mean), use those two. expvals[b * K + k]
// is written, dtheta ADDED to, dx (nullable) overwritten; ws keeps no
// states for backward() or final_state() afterwards. If loss_gradient (or
// anything else) throws, the first exception is rethrown after the loop:
// dtheta is left as it was, expvals and dx may be partly written.
template <class T>
void forward_backward(const Circuit& c, const std::vector<double>& theta, const double* x, int batch,
                      const std::vector<PauliString>& obs, const LossGradient& loss_gradient,
                      double* expvals, double* dtheta, double* dx, Workspace<T>& ws);

// d<O_k>/dtheta_j for one sample by the adjoint method (one backward sweep per
// observable): jac[k * n_params + j]. Used by `qmoe qasm --grad`.
template <class T>
std::vector<double> adjoint_jacobian(const Circuit& c, const std::vector<double>& theta,
                                     const double* x, const std::vector<PauliString>& obs);

}  // namespace qmoe
