// The batched forward pass: a circuit on every sample of a batch, the
// expectations of the observables, the final states kept in the Workspace for
// backward() (grad/adjoint.hpp).
#pragma once

#include <vector>

#include "circuit/circuit.hpp"
#include "grad/pauli_string.hpp"
#include "grad/workspace.hpp"
#include "sim/state.hpp"

namespace qmoe {

// Throws std::invalid_argument if an observable acts on a qubit c lacks.
void check_observables(const Circuit& c, const std::vector<PauliString>& obs);

// out[b * K + k] = <O_k> of sample b of state s (single Z_q observables share one pass).
template <class T>
void expectations(const sim::State<T>& s, const std::vector<PauliString>& obs, double* out);

// expvals[b * K + k] = <O_k> of sample b. x: row-major [batch][c.n_features].
template <class T>
void forward(const Circuit& c, const std::vector<double>& theta, const double* x, int batch,
             const std::vector<PauliString>& obs, double* expvals, Workspace<T>& ws);

}  // namespace qmoe
