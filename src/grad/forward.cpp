// The batched forward pass (forward.hpp): chunks of samples through the
// circuit's execution plan, in parallel, with the layer starts the backward
// sweep will want saved on the way.
#include "grad/forward.hpp"

#include <bit>
#include <cmath>
#include <stdexcept>

#include "circuit/execute.hpp"
#include "circuit/executor.hpp"
#include "grad/chunks.hpp"

namespace qmoe {

using namespace detail;

void check_observables(const Circuit& c, const std::vector<PauliString>& obs) {
  for (const PauliString& p : obs)
    if ((p.x | p.z) >> c.n_qubits)
      throw std::invalid_argument("observable " + p.str() + " acts on a qubit the circuit lacks");
}

template <class T>
void expectations(const sim::State<T>& s, const std::vector<PauliString>& obs, double* out) {
  const int B = s.batch, K = int(obs.size()), n = s.n_qubits;
  std::vector<double> z(std::size_t(B) * n), tmp(static_cast<std::size_t>(B));
  bool have_z = false;
  for (int k = 0; k < K; ++k) {
    const int q = single_z_qubit(obs[k]);
    if (q >= 0) {
      if (!have_z) sim::expval_z_all(s, z.data()), have_z = true;
      for (int b = 0; b < B; ++b) out[std::size_t(b) * K + k] = z[std::size_t(b) * n + q];
    } else {
      sim::expval_pauli(s, obs[k].x, obs[k].z, tmp.data());
      for (int b = 0; b < B; ++b) out[std::size_t(b) * K + k] = tmp[b];
    }
  }
}


namespace detail {

// Observables that are all single Z_q can use the fast all-qubit read-out.
int single_z_qubit(const PauliString& p) {
  if (p.x != 0 || std::popcount(p.z) != 1) return -1;
  return std::countr_zero(p.z);
}


namespace {

// The layer starts forward() saves (gate indices, ascending) and the
// amplitudes each save holds (the layer's controls): the last layers that
// start after the first trainable gate (a training sweep stops there) and have
// at least 4 targets (below that, the copy costs about what skipping phi's
// undo saves), up to `limit` whole states' worth (a layer under k controls
// changes, and so saves, 1/2^k of the state).
struct LayerSaves {
  std::vector<int> starts;
  std::vector<sim::Controls> rows;
};
LayerSaves layers_to_save(const Circuit& c, int limit) {
  LayerSaves s;
  if (limit <= 0) return s;
  int first = int(c.gates.size());
  for (int gi = 0; gi < int(c.gates.size()) && first == int(c.gates.size()); ++gi)
    for (int j = 0; j < angle_count(c.gates[std::size_t(gi)].kind); ++j)
      if (c.gates[std::size_t(gi)].angles[j].source == AngleSource::Param) first = gi;
  const std::vector<GateRange> layers = find_layers(c);
  double budget = limit;
  for (auto l = layers.rbegin(); l != layers.rend() && l->begin > first; ++l) {
    std::uint64_t targets = 0;
    for (int gi = l->begin; gi < l->end; ++gi) targets |= std::uint64_t(1) << c.gates[std::size_t(gi)].target;
    if (std::popcount(targets) < 4) continue;
    const sim::Controls rows = control_mask(c.gates[std::size_t(l->begin)]);
    budget -= std::ldexp(1.0, -std::popcount(rows.mask));
    if (budget < 0) break;
    s.starts.insert(s.starts.begin(), l->begin);
    s.rows.insert(s.rows.begin(), rows);
  }
  return s;
}

}  // namespace

// How forward() runs a circuit: the plan, cut at the layer starts it saves
// for backward() (ws.saved_layers; none when `save` is false).
template <class T>
const Plan& forward_plan(const Circuit& c, bool save, Workspace<T>& ws) {
  LayerSaves saves = layers_to_save(c, save ? ws.saved_layers : 0);
  PlanOptions opt;
  opt.barriers = saves.starts;
  const Plan& plan = ws.plans.get(c, opt);
  ws.saved_gates = std::move(saves.starts);
  ws.saved_rows = std::move(saves.rows);
  return plan;
}

// Samples r of the batch through the plan in state set ch: the final state in
// ch.psi (and, with saves, the layer starts in ch.saved), the expectations in
// expvals + r.begin * K.
template <class T>
void forward_chunk(const Circuit& c, const Plan& plan, const std::vector<double>& theta, const double* x,
                   ChunkRange r, const std::vector<PauliString>& obs, double* expvals, Workspace<T>& ws,
                   typename Workspace<T>::Chunk& ch) {
  const bool save = !ws.saved_gates.empty();
  ensure_state(ch.psi, c.n_qubits, r.size);
  const double* xr = x ? x + std::size_t(r.begin) * c.n_features : nullptr;
  run_plan(c, plan, theta.data(), xr, ch.psi, ch.scratch, save ? &ch.saved : nullptr, ws.saved_rows.data());
  ch.saved_fresh = save;
  if (!obs.empty()) expectations(ch.psi, obs, expvals + std::size_t(r.begin) * obs.size());
}

}  // namespace detail

template <class T>
void forward(const Circuit& c, const std::vector<double>& theta, const double* x, int batch,
             const std::vector<PauliString>& obs, double* expvals, Workspace<T>& ws) {
  check_inputs(c, theta.size(), x ? std::size_t(c.n_features) * batch : 0, batch);
  check_observables(c, obs);
  const int n_chunks = chunk_count(ws, batch);
  // Without keep_states, thread t runs its chunks in ws.chunks[t].
  const int n_sets = ws.keep_states ? n_chunks : thread_count();  // any thread may take any chunk
  if (int(ws.chunks.size()) != n_sets) ws.chunks.resize(std::size_t(n_sets));
  ws.batch = ws.keep_states ? batch : 0;
  const Plan& plan = forward_plan(c, ws.keep_states, ws);  // no backward: nothing to save
  run_chunks(n_chunks, ws, [&](int ci) {
    const int set = ws.keep_states ? ci : thread_index();
    if (set >= int(ws.chunks.size())) throw std::logic_error("forward: more threads than state sets");
    forward_chunk(c, plan, theta, x, chunk_range(ci, ws.chunk_size, batch), obs, expvals, ws,
                  ws.chunks[std::size_t(set)]);
  });
}


namespace detail {
template const Plan& forward_plan<double>(const Circuit&, bool, Workspace<double>&);
template const Plan& forward_plan<float>(const Circuit&, bool, Workspace<float>&);
template void forward_chunk<double>(const Circuit&, const Plan&, const std::vector<double>&, const double*,
                                    ChunkRange, const std::vector<PauliString>&, double*, Workspace<double>&,
                                    Workspace<double>::Chunk&);
template void forward_chunk<float>(const Circuit&, const Plan&, const std::vector<double>&, const double*,
                                   ChunkRange, const std::vector<PauliString>&, double*, Workspace<float>&,
                                   Workspace<float>::Chunk&);
}  // namespace detail

#define QMOE_INSTANTIATE(T)                                                                      \
  template void expectations<T>(const sim::State<T>&, const std::vector<PauliString>&, double*); \
  template void forward<T>(const Circuit&, const std::vector<double>&, const double*, int,       \
                           const std::vector<PauliString>&, double*, Workspace<T>&);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe
