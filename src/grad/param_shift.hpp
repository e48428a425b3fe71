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

#include <cstdint>
#include <functional>
#include <vector>

#include "circuit/circuit.hpp"
#include "grad/adjoint.hpp"
#include "grad/workspace.hpp"

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

// Evaluates a whole batch at (c, theta): ev[b * K + k] = <O_k> of sample b.
// `c` is param_shift_vjp's occurrence circuit, the same object on every call
// (so a plan cache builds its plan once); `theta` holds one angle per occurrence.
using BatchExpvalFn = std::function<void(const Circuit& c, const std::vector<double>& theta, double* ev)>;

// Training-style vector-Jacobian product over a batch: dtheta[j] +=
// sum_b sum_k dL_dO[b*K+k] d<O_k>_b/dtheta_j, with every shifted evaluation one
// call of `run` over the whole batch: the circuit is rewritten once so that
// each parameter occurrence reads its own angle (the occurrence circuit), then
// each occurrence is shifted in turn (2 calls, 4 for a controlled rotation).
// Returns the number of calls, i.e. of shifted evaluations of the batch.
int param_shift_vjp(const Circuit& c, const std::vector<double>& theta, int batch, int n_obs,
                    const double* dL_dO, double* dtheta, const BatchExpvalFn& run);

// The exact (statevector) vjp: each shifted evaluation is one batched forward().
void param_shift_gradient(const Circuit& c, const std::vector<double>& theta, const double* x,
                          int batch, const std::vector<PauliString>& obs, const double* dL_dO,
                          double* dtheta, Workspace<double>& ws);

// The vjp a device would compute: each shifted evaluation estimated from
// `shots` shots per sample (grad/shots.hpp), evaluation i drawing from
// (seed, i), so the shifted runs are independent as on hardware.
void shot_param_shift_gradient(const Circuit& c, const std::vector<double>& theta, const double* x,
                               int batch, const std::vector<PauliString>& obs, long shots,
                               std::uint64_t seed, const double* dL_dO, double* dtheta);

}  // namespace qmoe
