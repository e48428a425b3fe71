// What forward() and backward() keep between calls: per chunk of samples its
// states, saved layer starts and gradient buffers, and the plans of the
// circuits run (the core keeps no state of its own).
#pragma once

#include <vector>

#include "circuit/execute.hpp"
#include "circuit/plan.hpp"
#include "sim/state.hpp"

namespace qmoe {

// Workspace::saved_layers for training (a forward() that a backward() follows).
inline constexpr int kTrainingSavedLayers = 8;

template <class T>
struct Workspace {
  // Samples per work item: 16 keeps a thread's forward_backward() states near its
  // L2 (10 qubits: 256 KiB per state) and gives each of 2 threads 8 chunks of
  // a batch of 256 (bench/RESULTS.md).
  int chunk_size = 16;
  // forward() saves the states at the starts of the last layers with >= 4
  // targets (fewer do not pay for the copy), up to this many whole states'
  // worth (a layer under k controls saves 1/2^k of the state), for
  // backward(): 0 for forward-only use, which then copies nothing.
  int saved_layers = 0;
  // false: forward() keeps no final state per chunk; each thread runs all its
  // chunks in one set of states, which then stays in cache (a 1-thread forward
  // of the 10-qubit bench circuit about 15% faster; bench/RESULTS.md).
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

}  // namespace qmoe
