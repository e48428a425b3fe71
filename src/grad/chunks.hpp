// How forward() and backward() split a batch (internal to src/grad): chunks
// of ws.chunk_size samples, run in parallel by OpenMP threads (never inside a
// small gate), with the one parallel loop that carries exceptions out.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "circuit/circuit.hpp"
#include "circuit/plan.hpp"
#include "grad/pauli_string.hpp"
#include "grad/workspace.hpp"
#include "sim/state.hpp"

namespace qmoe::detail {

struct ChunkRange {
  int begin, size;
};
inline ChunkRange chunk_range(int c, int chunk, int batch) {
  const int b0 = c * chunk;
  return {b0, std::min(chunk, batch - b0)};
}

template <class T>
int chunk_count(const Workspace<T>& ws, int batch) {
  if (ws.chunk_size < 1) throw std::invalid_argument("workspace chunk size must be >= 1");
  return (batch + ws.chunk_size - 1) / ws.chunk_size;
}

inline int thread_count() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Shape s for n qubits and `batch` samples, keeping its storage (a chunk's
// states are overwritten before they are read; a smaller last chunk must not
// cost a new allocation).
template <class T>
void ensure_state(sim::State<T>& s, int n, int batch) {
  s.n_qubits = n;
  s.batch = batch;
  s.re.resize(s.dim() * std::size_t(batch));
  s.im.resize(s.dim() * std::size_t(batch));
}

// work(ci) for every chunk ci < n_chunks, in parallel (dynamic schedule: any
// thread may take any chunk). An exception must not leave an OpenMP region
// (std::terminate): the first one is kept, the chunks not yet started are
// skipped, and it is rethrown after the loop, with ws marked as holding no
// complete forward pass.
template <class T, class Work>
void run_chunks(int n_chunks, Workspace<T>& ws, const Work& work) {
  std::exception_ptr first;
  std::atomic<bool> failed{false};
  std::mutex lock;
#pragma omp parallel for schedule(dynamic, 1)
  for (int ci = 0; ci < n_chunks; ++ci) {
    if (failed.load(std::memory_order_relaxed)) continue;
    try {
      work(ci);
    } catch (...) {
      std::lock_guard<std::mutex> g(lock);
      if (!first) first = std::current_exception();
      failed = true;
    }
  }
  if (!first) return;
  ws.batch = 0;
  std::rethrow_exception(first);
}

// How forward() runs a circuit: the plan, cut at the layer starts it saves
// for backward() (ws.saved_layers; none when `save` is false), which it
// records in ws.saved_gates and ws.saved_rows.
template <class T>
const Plan& forward_plan(const Circuit& c, bool save, Workspace<T>& ws);

// Samples r of the batch through the plan in state set ch: the final state in
// ch.psi (and, with saves, the layer starts in ch.saved), the expectations in
// expvals + r.begin * K.
template <class T>
void forward_chunk(const Circuit& c, const Plan& plan, const std::vector<double>& theta, const double* x,
                   ChunkRange r, const std::vector<PauliString>& obs, double* expvals, Workspace<T>& ws,
                   typename Workspace<T>::Chunk& ch);

// Observables that are all single Z_q use the fast all-qubit read-out: q, or -1.
int single_z_qubit(const PauliString& p);

}  // namespace qmoe::detail
