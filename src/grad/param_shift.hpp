// Gradients by the parameter-shift rule: the rule that also works on hardware,
// where only expectation values (from shots) are available.
//
// Each occurrence of a parameter in a gate is shifted on its own and the
// results summed (chain rule). Rules, by the spectrum of the angle's generator:
//  - two-term, shift pi/2, factor 1/2: uncontrolled RX RY RZ, U3's theta, and
//    phase-type angles (U1, U2's and U3's phi and lambda), controlled or not,
//    whose generator |1><1| has eigenvalues {0, 1};
//  - four-term (Anselmetti et al. 2021), shifts pi/2 and 3pi/2: controlled
//    RX RY RZ and U3's theta, whose generator has eigenvalues {0, +-1/2}:
//      f' = d+ [f(t+pi/2) - f(t-pi/2)] - d- [f(t+3pi/2) - f(t-3pi/2)],
//      d+- = (sqrt(2) +- 1) / (4 sqrt(2)).
#pragma once

#include <functional>
#include <vector>

#include "circuit/circuit.hpp"
#include "grad/adjoint.hpp"

namespace qmoe {

// Returns <O_k> (k < n_obs) of one sample for circuit c at parameters theta.
// The circuit handed in is the caller's with one extra parameter appended
// (the shifted occurrence), so an evaluator must use the c and theta it gets.
using ExpvalFn = std::function<std::vector<double>(const Circuit& c, const std::vector<double>& theta)>;

// jac[k * n_params + j] = d<O_k>/dtheta_j for one sample.
std::vector<double> param_shift_jacobian(const Circuit& c, const std::vector<double>& theta,
                                         int n_obs, const ExpvalFn& expvals);

// Exact (statevector) parameter-shift Jacobian of one sample with features x.
std::vector<double> param_shift_jacobian(const Circuit& c, const std::vector<double>& theta,
                                         const double* x, const std::vector<PauliString>& obs);

// Training-style vector-Jacobian product over a batch: dtheta[j] +=
// sum_b sum_k dL_dO[b*K+k] d<O_k>_b/dtheta_j. Slow (2-4 circuit runs per
// parameter occurrence); the adjoint method gives the same numbers.
void param_shift_gradient(const Circuit& c, const std::vector<double>& theta, const double* x,
                          int batch, const std::vector<PauliString>& obs, const double* dL_dO,
                          double* dtheta);

}  // namespace qmoe
