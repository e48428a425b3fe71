// Running a Circuit on a batched state: turns each Gate into a simulator
// kernel call with the matrix for its angles (one matrix for the batch, or one
// per sample when an angle comes from an input feature).
#pragma once

#include <vector>

#include "circuit/circuit.hpp"
#include "sim/state.hpp"

namespace qmoe {

// A 2x2 complex matrix as separate real and imaginary parts (row-major), so
// the plans' products of gate matrices stay plain double arithmetic
// (std::complex's multiply calls __muldc3 without -ffast-math).
struct Mat2Parts {
  double r[4], i[4];
};

// Work space for the per-sample matrices of fused ops (circuit/op_matrices.hpp),
// reused from op to op: the core keeps no hidden (thread-local) buffers.
struct MatrixScratch {
  struct Factor {
    const Gate* gate;  // a per-sample gate, or null: m is a product of shared gates
    Mat2Parts m;
  };
  std::vector<double> angles;     // one gate's half angles, sines and cosines (3 x batch)
  std::vector<Mat2Parts> gates;   // one gate's matrix per sample (or several gates')
  std::vector<Mat2Parts> fused;   // an op's product per sample
  std::vector<Factor> factors;    // an op's gates, shared runs multiplied out
};

// Per-sample matrix storage reused from gate to gate (no allocation per gate).
template <class T>
struct GateScratch {
  std::vector<T> data;  // 4 matrices x 8 arrays x batch
  sim::State<T> buffer;  // permutation kernel's second state
  std::vector<T> product;  // product-state factors (circuit/executor.cpp)
  sim::ProductScratch<T> product_tables;  // sim::set_product_state's tables
  MatrixScratch matrices;  // fused ops' matrices
  std::vector<double> work;  // adjoint_op's overlaps and Bloch vectors (grad/adjoint_ops.hpp)
  sim::BatchMat<T> mat(int slot, int batch);  // slot 0..3
  void set(int slot, int batch, int b, const Mat2& m);  // write sample b's matrix
  void reserve(int batch) { data.resize(std::size_t(4 * 8) * std::size_t(batch)); }
};

sim::Controls control_mask(const Gate& g);
// True for kinds whose matrix is diagonal (I Z S Sdg T Tdg RZ U1).
bool is_diagonal(GateKind k);

// Matrix of g for the whole batch (g not per-sample), as a kernel argument.
template <class T>
sim::Mat<T> to_kernel(const Mat2& m);

// x points at the first sample's features; row b is x + b * x_stride.
// inverse: apply the gate's inverse (its dagger).
template <class T>
void apply_gate(sim::State<T>& s, const Gate& g, const double* theta, const double* x,
                int x_stride, bool inverse, GateScratch<T>& scratch);

// Reset s to |0...0> and run every gate (through the fused plan of
// circuit/plan.hpp; equal to gate-by-gate to rounding).
template <class T>
void run_circuit(const Circuit& c, const double* theta, const double* x, sim::State<T>& s,
                 GateScratch<T>& scratch);

// Validate the sizes a caller passes in (throws std::invalid_argument).
void check_inputs(const Circuit& c, std::size_t n_theta, std::size_t n_x, int batch);

}  // namespace qmoe
