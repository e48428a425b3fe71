// Routed execution of a QMoE: the paper's sparsity, made exact.
//
// After the routing circuit G the routing register is only a control (of the
// experts and the aggregation CNOTs) and is never read out except through
// Z strings. By the deferred-measurement principle, measuring it right after
// G and running, for the outcome k, only the gates that outcome selects
// (expert k without its controls, then the aggregation as X flips chosen by
// k's bits) on the data register gives the same output distribution as the
// coherent circuit:
//
//   <Z_D Z_S> = sum_k p_k (-1)^{|k & S|} <Z_D>_k,   p_k = Pr(routing register reads k)
//
// for a data part D and a routing part S of any Z string. k runs over all 2^r
// outcomes: with L < 2^r experts, an outcome k >= L selects no expert (only
// its aggregation flips), exactly as in the coherent circuit.
//
// split_routed() derives the pieces from the model's circuit alone: every gate
// that targets a routing qubit, and every gate before the last of those, runs
// before the measurement; every later gate belongs to each outcome its
// routing controls agree with (stripped of them). Two cases (docs/models.md):
//   - separable (routing encoder `full` or `quadrant`): before the measurement
//     no gate couples the registers, so the router (r qubits) and, per outcome,
//     one self-contained circuit on the n data qubits (the data encoder, expert
//     k, the flips) are separate programs: what a device without feed-forward
//     runs, and what noisy evaluation runs (each piece with its own noise);
//   - entangled (`joint`: one encoder across both registers): the data
//     register's state after the measurement depends on k, so the program is
//     one dynamic circuit (measure mid-circuit, then feed forward). Exact and
//     shot evaluation project the state onto each outcome; noisy evaluation
//     and the per-expert split export refuse it (std::invalid_argument).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "circuit/circuit.hpp"
#include "grad/adjoint.hpp"
#include "grad/noise.hpp"
#include "model/model.hpp"

namespace qmoe::model {

struct RoutedModel {
  int n_data = 0;     // data register size n (model qubits not in the routing register)
  int n_routing = 0;  // routing register size r; outcomes k = 0 .. 2^r - 1
  bool entangled = false;
  // Separable: the routing register alone, router qubit j = the j-th lowest
  // model routing qubit. Entangled: every gate before the measurement on all
  // n + r qubits, numbered as in the model.
  Circuit router;
  // The router qubit of routing bit i (bit i of the outcome k, low first).
  std::vector<int> routing_bit_qubit;
  // Separable: the data register's gates before the measurement (the data
  // encoder), on data qubits 0..n-1 (the model's data qubits in order).
  Circuit data_prep;
  // Per outcome k: the gates after the measurement, on data qubits 0..n-1.
  std::vector<Circuit> branch;
  // Every gate before the measurement, numbered as in the model.
  Circuit pre;
  // The model's data qubit -> data register index (-1 for routing qubits), and back.
  std::vector<int> data_index;
  std::vector<int> data_qubits;
  std::vector<int> routing_qubits;  // the model's routing qubit of bit i
  int n_outcomes() const { return 1 << n_routing; }
};

// Throws std::invalid_argument when m is not a QMoE or its circuit cannot be
// routed (a gate on the routing register after an expert gate).
RoutedModel split_routed(const Model& m);

// Separable only: the whole program for outcome k on the data register
// (data_prep then branch[k]), as a device without feed-forward runs it.
Circuit expert_program(const RoutedModel& rm, int k);

// A circuit on data register indices (branch[k], expert_program) with the
// model's qubit numbers and register size (for a dynamic circuit).
Circuit on_model_qubits(const RoutedModel& rm, const Circuit& data_circuit);

// <O> of each observable of a circuit for each sample: out[b * obs.size() + j].
// piece: 0 the router, 1 + k the program of outcome k (lets a noisy engine
// draw independent errors for each piece). Exact forward(), noisy
// trajectories or a density matrix: routed evaluation works with any of them.
using PieceExpectations = std::function<void(int piece, const Circuit& c, const double* x, int batch,
                                             const std::vector<PauliString>& obs, double* out)>;

// The model's observables (all Z strings) by routed execution:
// expvals[b * K + j] as forward() of the coherent circuit would give them.
// Separable: the router and each outcome's program through `engine`.
// Entangled: exact (engine must be null; the state is projected on each k).
void routed_forward(const RoutedModel& rm, const Model& m, const std::vector<double>& theta, const double* x,
                    int batch, const PieceExpectations* engine, double* expvals);

// The exact engine: forward() in double.
PieceExpectations exact_engine(const std::vector<double>& theta);
// Noisy trajectories (grad/noise.hpp) of each piece, with independent errors
// per piece (the seed mixed with the piece number). theta and noise must outlive it.
PieceExpectations trajectory_engine(const std::vector<double>& theta, const NoiseModel& noise, int trajectories,
                                    std::uint64_t seed);
// The exact density matrix of each piece (density_forward, no sampling error).
PieceExpectations density_engine(const std::vector<double>& theta, const NoiseModel& noise);

// Shot mode: per sample, `shots` runs; each measures the routing register (k
// drawn from p_k), runs outcome k's gates and measures the data register.
// expvals as routed_forward but estimated (each Z string's mean of +-1 over the
// shots; standard error sqrt((1 - <O>^2) / shots)). Counter-based draws from
// (seed, the sample's features): reproducible, independent of batch and threads.
void routed_shots(const RoutedModel& rm, const Model& m, const std::vector<double>& theta, const double* x,
                  int batch, long shots, std::uint64_t seed, double* expvals);

}  // namespace qmoe::model
