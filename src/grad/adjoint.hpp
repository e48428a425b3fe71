// Batched forward pass and exact gradients by the adjoint method.
//
// forward() runs the circuit on every sample and returns <O_k> for each
// observable; it keeps the final states in the Workspace. backward() then takes
// dL/d<O_k> per sample and returns dL/dtheta (summed over the batch) and, if
// asked, dL/dx per sample. It folds the observables into one weighted
// observable per sample (a vector-Jacobian product) and sweeps back through
// the gates undoing them (PennyLane Lightning's scheme), so it holds three
// states per chunk whatever the number of observables or gates.
//
// Layers (circuit/fusion.hpp: find_layers, e.g. a rotation on every qubit) need
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

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "circuit/circuit.hpp"
#include "circuit/execute.hpp"
#include "circuit/fusion.hpp"
#include "sim/state.hpp"

namespace qmoe {

// A Pauli string as bit masks (X on x, Z on z, Y where both), e.g. "Z0 Z3", "X1 Y2".
struct PauliString {
  std::uint64_t x = 0, z = 0;
  static PauliString parse(const std::string& text);  // throws std::invalid_argument
  static PauliString Z(int q) { return {0, std::uint64_t(1) << q}; }
  bool is_diagonal() const { return x == 0; }
  std::string str() const;
};

// Workspace::saved_layers for training (a forward() that a backward() follows).
inline constexpr int kTrainingSavedLayers = 8;

template <class T>
struct Workspace {
  // Samples per work item: 16 keeps a thread's forward_backward() states near its
  // L2 (10 qubits: 256 KiB per state) and gives each of 2 threads 8 chunks of
  // a batch of 256 (bench/RESULTS.md, round 8).
  int chunk_size = 16;
  // forward() saves the states at the starts of the last layers with >= 4
  // targets (fewer do not pay for the copy), up to this many whole states'
  // worth (a layer under k controls saves 1/2^k of the state), for
  // backward(): 0 for forward-only use, which then copies nothing.
  int saved_layers = 0;
  // false: forward() keeps no final state per chunk; each thread runs all its
  // chunks in one set of states, which then stays in cache (a 1-thread forward
  // of the 10-qubit bench circuit about 15% faster; bench/RESULTS.md round 6).
  // For evaluation and inference: backward() and final_state() need a
  // forward() that kept its states.
  bool keep_states = true;
  struct Chunk {
    sim::State<T> psi, phi, lam;
    GateScratch<T> scratch;
    std::vector<double> grad_theta;  // this chunk's share of dL/dtheta
    std::vector<double> grad_tmp;    // per-sample gradient of up to 3 angles
    std::vector<double> layer_grad;  // per-sample gradients of a layer's gates
    std::vector<double> dL_dO;       // forward_backward(): the chunk's loss gradient
    std::vector<sim::State<T>> saved;  // psi at the starts of saved_gates (the saved_rows part)
    bool saved_fresh = false;          // saved as forward() left it (backward() swaps it away)
  };
  std::vector<Chunk> chunks;
  // forward_backward(): chunk c's share of dL/dtheta at [c * n_params], the
  // partials it sums in chunk order (data parallelism sums them across workers).
  std::vector<double> chunk_grads;
  int batch = 0;  // batch of the last forward() that kept its states (0: none)
  std::vector<int> saved_gates;  // the layer starts (gate indices) saved by the last forward()
  std::vector<sim::Controls> saved_rows;  // the amplitudes each save holds (the layer's controls)
  PlanCache plans;  // execution plans of the circuits run with this workspace

  // Final state of chunk c (samples c*chunk_size ...) after a forward() with keep_states.
  const sim::State<T>& final_state(int c) const { return chunks[std::size_t(c)].psi; }
  int n_chunks() const { return int(chunks.size()); }
};

// Throws std::invalid_argument if an observable acts on a qubit c lacks.
void check_observables(const Circuit& c, const std::vector<PauliString>& obs);

// out[b * K + k] = <O_k> of sample b of state s (single Z_q observables share one pass).
template <class T>
void expectations(const sim::State<T>& s, const std::vector<PauliString>& obs, double* out);

// expvals[b * K + k] = <O_k> of sample b. x: row-major [batch][c.n_features].
template <class T>
void forward(const Circuit& c, const std::vector<double>& theta, const double* x, int batch,
             const std::vector<PauliString>& obs, double* expvals, Workspace<T>& ws);

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
