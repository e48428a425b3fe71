// Density matrices of n qubits, stored as states of 2n qubits.
//
// rho[i][j] (row i, column j) is amplitude i + (j << n) of a State<double>
// with 2n qubits (the column-major vectorisation of rho). Then
//   U rho U^dagger  =  (conj(U) on the column qubits) (U on the row qubits) vec(rho),
// so a gate on qubit q is the statevector kernel applied twice: U on qubit q
// and conj(U) on qubit q + n (controls likewise shifted), and every kernel of
// sim/state.hpp serves the density matrix too. A 1-qubit channel
// rho -> sum_k K_k rho K_k^dagger is one 4x4 superoperator on the pair
// (q, q + n): apply_channel. Memory: 16 * 4^n bytes per sample (12 qubits:
// 256 MiB), so this is the exact reference for small circuits.
#pragma once

#include <array>
#include <complex>
#include <cstdint>
#include <vector>

#include "sim/state.hpp"

namespace qmoe::sim {

using Kraus = std::vector<std::array<std::complex<double>, 4>>;  // 2x2 row-major each

// |0..0><0..0| on n qubits, `batch` samples.
State<double> make_density(int n_qubits, int batch);

// rho -> sum_k K_k rho K_k^dagger on qubit q of every sample (a State made by
// make_density, n = s.n_qubits / 2).
void apply_channel(State<double>& rho, int q, const Kraus& kraus);

// Tr(P rho) for the Pauli string P = prod_q X^x_q Z^z_q with a factor i for
// every Y (the convention of expval_pauli): out[b].
void density_expval_pauli(const State<double>& rho, std::uint64_t x_mask, std::uint64_t z_mask, double* out);

// Tr(rho) of each sample: out[b] (1 for a trace-preserving evolution).
void density_trace(const State<double>& rho, double* out);

// The Kraus operators of the channels qmoe simulates (grad/noise.hpp):
Kraus depolarizing_kraus(double p);    // sqrt(1-p) I, sqrt(p/3) X, Y, Z
Kraus amplitude_damping_kraus(double g);  // [[1,0],[0,sqrt(1-g)]], [[0,sqrt g],[0,0]]
Kraus phase_damping_kraus(double l);      // [[1,0],[0,sqrt(1-l)]], [[0,0],[0,sqrt l]]

}  // namespace qmoe::sim
