// Noisy simulation by quantum trajectories (Monte Carlo wavefunction method).
//
// A NoiseModel attaches random Pauli errors and damping to gates and bit
// flips to the read-out (docs/noise.md):
//   - after a gate on one qubit (no controls), that qubit gets a depolarizing
//     error with probability p1: X, Y or Z, each with probability p1 / 3, i.e.
//     rho -> (1 - p1) rho + p1/3 (X rho X + Y rho Y + Z rho Z);
//   - after a gate on several qubits (controls, or a swap), each of them gets
//     an independent error of the same kind with probability p2;
//   - then, on each qubit of every gate, amplitude damping (K0 =
//     [[1,0],[0,sqrt(1-G)]], K1 = [[0,sqrt G],[0,0]]; a trajectory jumps with
//     probability G P(1) and is renormalised) and phase damping (K0 =
//     [[1,0],[0,sqrt(1-L)]], K1 = [[0,0],[0,sqrt L]], which equals a Z error
//     with probability (1 - sqrt(1-L)) / 2);
//   - each measured bit flips with probability readout (or 0->1 and 1->0
//     with their own probabilities), so <P> of a Pauli string on w qubits is
//     scaled by (1 - 2 readout)^w when symmetric (readout_terms otherwise).
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

// One qubit's own errors (a device's calibration); a negative value means
// "the model's global value".
struct QubitNoise {
  double p1 = -1, p2 = -1, p_multi = -1, amp_damping = -1, phase_damping = -1, readout_01 = -1, readout_10 = -1;
};

struct NoiseModel {
  double p1 = 0.0;       // error probability after a 1-qubit gate
  double p2 = 0.0;       // per qubit, after a multi-qubit gate
  double p_multi = -1.0;  // per qubit, after a gate on 3 or more qubits (multi-controlled); < 0: p2
  double readout = 0.0;  // bit-flip probability of each measured qubit (both directions)
  double amp_damping = 0.0;    // G: amplitude damping after every gate on each of its qubits
  double phase_damping = 0.0;  // L: phase damping likewise (after the amplitude damping)
  double readout_01 = -1.0;    // P(read 1 | 0), when it differs; < 0: `readout`
  double readout_10 = -1.0;    // P(read 0 | 1), when it differs; < 0: `readout`
  std::vector<QubitNoise> qubits;  // per-qubit overrides (index = qubit; may be shorter than the register)

  double flip01() const { return readout_01 >= 0 ? readout_01 : readout; }
  double flip10() const { return readout_10 >= 0 ? readout_10 : readout; }
  // The values that apply to qubit q (its override, else the global value).
  // gate_error: after a gate on `gate_qubits` qubits (1, 2, or more).
  double gate_error(int q, int gate_qubits) const;
  double amp(int q) const;
  double phase(int q) const;
  double flip01(int q) const;
  double flip10(int q) const;
  bool has_damping() const;  // on any qubit
  bool has_readout() const;  // on any qubit
  bool empty() const;
  void validate() const;  // each in [0, 1]; throws std::invalid_argument
};

// A noisy read-out of the Pauli string O = prod_q P_q: each measured bit
// reads 1 for 0 with probability e01 and 0 for 1 with e10, so each factor
// becomes alpha + beta P_q with alpha = e10 - e01, beta = 1 - e01 - e10, and
//   <O>_noisy = sum over subsets T of O's qubits of alpha^{|O \ T|} beta^{|T|} <O_T>.
// (For X / Y letters: a basis change before the same faulty measurement.)
struct ReadoutTerm {
  int observable = 0;  // index into the observables
  double coef = 0.0;
  PauliString string;  // O_T (x = z = 0: the identity, <I> = 1)
};
std::vector<ReadoutTerm> readout_terms(const std::vector<PauliString>& obs, const NoiseModel& noise);

// The exact noisy expectations by a density matrix (sim/density_matrix.hpp),
// no sampling error: expvals[b * K + k]. Up to 12 qubits (memory 16 * 4^n
// bytes per sample; threads over samples). The same channels in the same
// order as the trajectories: the reference that checks them.
void density_forward(const Circuit& c, const std::vector<double>& theta, const double* x, int batch,
                     const std::vector<PauliString>& obs, const NoiseModel& noise, double* expvals);
inline constexpr int kDensityMaxQubits = 12;

// Noise-aware training (QuantumNAT-style, docs/noise.md): one sampled error
// realisation of `noise` as a circuit, c with Pauli gates inserted, which the
// ordinary exact forward and adjoint passes then run. After each gate, on each
// of its qubits: a depolarizing error as in the trajectories; amplitude and
// phase damping by their Pauli twirls (the Pauli channels with the same
// diagonal action: amplitude damping G gives X and Y with probability G/4
// each and Z with (1 - G/2 - sqrt(1-G))/2; phase damping L gives Z with
// (1 - sqrt(1-L))/2); at the end, on each qubit, an X with the mean read-out
// error (e01 + e10)/2, which is the read-out error exactly when symmetric.
// The draws come from a hash of (seed, gate, qubit, channel).
Circuit error_realisation(const Circuit& c, const NoiseModel& noise, std::uint64_t seed);

// expvals[b * K + k]: the trajectory mean of <O_k> for sample b (as forward()).
// std_errors (nullable, same shape): the standard error of each mean (sample
// standard deviation over the trajectories / sqrt(trajectories); 0 for one).
template <class T>
void noisy_forward(const Circuit& c, const std::vector<double>& theta, const double* x, int batch,
                   const std::vector<PauliString>& obs, const NoiseModel& noise, int trajectories,
                   std::uint64_t seed, double* expvals, double* std_errors = nullptr);

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
