// Noisy simulation by quantum trajectories (Monte Carlo wavefunction method).
//
// A NoiseModel attaches random Pauli errors to gates and bit flips to the
// read-out (docs/noise.md):
//   - after a gate on one qubit (no controls), that qubit gets a depolarizing
//     error with probability p1: X, Y or Z, each with probability p1 / 3, i.e.
//     rho -> (1 - p1) rho + p1/3 (X rho X + Y rho Y + Z rho Z);
//   - after a gate on several qubits (controls, or a swap), each of them gets
//     an independent error of the same kind with probability p2;
//   - each measured bit flips with probability readout, so <P> of a Pauli
//     string on w qubits is scaled by (1 - 2 readout)^w.
// noisy_forward estimates each sample's <O_k> as the mean over `trajectories`
// statevector runs with sampled errors; the mean converges to the density-
// matrix value as 1/sqrt(trajectories). Each error is drawn from a hash of
// (seed, the sample's features, trajectory, gate, qubit), so the numbers
// depend neither on the thread count nor on how a data set is cut in batches.
#pragma once

#include <cstdint>
#include <vector>

#include "circuit/circuit.hpp"
#include "grad/adjoint.hpp"

namespace qmoe {

struct NoiseModel {
  double p1 = 0.0;       // error probability after a 1-qubit gate
  double p2 = 0.0;       // per qubit, after a multi-qubit gate
  double readout = 0.0;  // bit-flip probability of each measured qubit
  bool empty() const { return p1 == 0.0 && p2 == 0.0 && readout == 0.0; }
  void validate() const;  // each in [0, 1]; throws std::invalid_argument
};

// expvals[b * K + k]: the trajectory mean of <O_k> for sample b (as forward()).
template <class T>
void noisy_forward(const Circuit& c, const std::vector<double>& theta, const double* x, int batch,
                   const std::vector<PauliString>& obs, const NoiseModel& noise, int trajectories,
                   std::uint64_t seed, double* expvals);

// `shots` measurements of every qubit of a feature-free circuit (bit q of each
// result is qubit q), spread evenly over the trajectories (trajectory t takes
// shots t, t + trajectories, ...; results grouped by trajectory); each bit is
// then flipped with probability noise.readout.
template <class T>
std::vector<std::uint64_t> noisy_shots(const Circuit& c, const std::vector<double>& theta,
                                       const NoiseModel& noise, int trajectories, long shots,
                                       std::uint64_t seed);
// The same shots counted instead of stored: ones[q] = how many results have
// bit q set (memory independent of `shots`).
template <class T>
std::vector<long> noisy_shot_ones(const Circuit& c, const std::vector<double>& theta,
                                  const NoiseModel& noise, int trajectories, long shots,
                                  std::uint64_t seed);

}  // namespace qmoe
