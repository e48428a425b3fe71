#include "grad/adjoint.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <bit>
#include <cmath>
#include <exception>
#include <mutex>
#include <cctype>
#include <stdexcept>

#include "circuit/fusion.hpp"

namespace qmoe {

PauliString PauliString::parse(const std::string& text) {
  PauliString p;
  std::size_t i = 0;
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument("Pauli string '" + text + "': " + why);
  };
  while (i < text.size()) {
    if (std::isspace(static_cast<unsigned char>(text[i]))) { ++i; continue; }
    const char letter = char(std::toupper(static_cast<unsigned char>(text[i++])));
    if (letter != 'X' && letter != 'Y' && letter != 'Z' && letter != 'I') fail("expected X, Y, Z or I");
    std::size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
    if (j == i || j - i > 2) fail("expected a qubit number after the letter");
    const int q = std::stoi(text.substr(i, j - i));
    i = j;
    if (q > 62) fail("qubit number too large");
    const std::uint64_t bit = std::uint64_t(1) << q;
    if ((p.x | p.z) & bit) fail("qubit " + std::to_string(q) + " named twice");
    if (letter == 'X' || letter == 'Y') p.x |= bit;
    if (letter == 'Z' || letter == 'Y') p.z |= bit;
  }
  return p;
}

std::string PauliString::str() const {
  std::string s;
  for (int q = 0; q < 63; ++q) {
    const bool bx = (x >> q) & 1, bz = (z >> q) & 1;
    if (!bx && !bz) continue;
    if (!s.empty()) s += ' ';
    s += (bx && bz) ? 'Y' : bx ? 'X' : 'Z';
    s += std::to_string(q);
  }
  return s.empty() ? "I" : s;
}

namespace {

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

// Observables that are all single Z_q can use the fast all-qubit read-out.
int single_z_qubit(const PauliString& p) {
  if (p.x != 0 || std::popcount(p.z) != 1) return -1;
  return std::countr_zero(p.z);
}


}  // namespace

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

namespace {

// lam = sum_k dL_dO[b,k] O_k psi for each sample b.
template <class T>
void seed_lambda(const sim::State<T>& psi, const std::vector<PauliString>& obs,
                 const double* dL_dO, sim::State<T>& lam) {
  const int B = psi.batch, K = int(obs.size()), n = psi.n_qubits;
  std::vector<double> wz(std::size_t(B) * n, 0.0), w(static_cast<std::size_t>(B));
  for (int k = 0; k < K; ++k) {
    const int q = single_z_qubit(obs[k]);
    if (q < 0) continue;
    for (int b = 0; b < B; ++b) wz[std::size_t(b) * n + q] += dL_dO[std::size_t(b) * K + k];
  }
  sim::apply_weighted_z(psi, wz.data(), lam);
  for (int k = 0; k < K; ++k) {
    if (single_z_qubit(obs[k]) >= 0) continue;
    for (int b = 0; b < B; ++b) w[b] = dL_dO[std::size_t(b) * K + k];
    sim::add_weighted_pauli(psi, obs[k].x, obs[k].z, w.data(), lam);
  }
}

// An exception must not leave an OpenMP region (std::terminate): each chunk's
// work runs in run(), the first exception is kept and rethrown after the loop.
struct FirstError {
  std::exception_ptr first;
  std::mutex lock;
  template <class F>
  void run(F&& f) {
    if (first) return;  // racy read is fine: only skips work after a failure
    try {
      f();
    } catch (...) {
      std::lock_guard<std::mutex> g(lock);
      if (!first) first = std::current_exception();
    }
  }
  template <class W>
  void rethrow(W& ws) {
    if (!first) return;
    ws.batch = 0;  // the workspace holds no complete forward pass now
    std::rethrow_exception(first);
  }
};

struct ChunkRange {
  int begin, size;
};
ChunkRange chunk_range(int c, int chunk, int batch) {
  const int b0 = c * chunk;
  return {b0, std::min(chunk, batch - b0)};
}

// Which gates the backward sweep differentiates and the first of them: the
// sweep stops there, as no earlier gate has anything to differentiate.
// Differentiable RX / RY / RZ (diff[gi]) fuse with their neighbours like any
// 1-qubit gate (adjoint_op takes their gradients from one pass); other
// differentiable gates stay alone (keep[gi]) for the generic adjoint step.
struct SweepGates {
  std::vector<char> keep, diff;
  int first = 0;
};
SweepGates sweep_gates(const Circuit& c, bool want_dx) {
  SweepGates s;
  s.keep.assign(c.gates.size(), 0);
  s.diff.assign(c.gates.size(), 0);
  s.first = int(c.gates.size());
  for (int gi = int(c.gates.size()) - 1; gi >= 0; --gi) {
    const Gate& g = c.gates[std::size_t(gi)];
    bool d = false;
    for (int j = 0; j < angle_count(g.kind); ++j) {
      const AngleSource src = g.angles[j].source;
      if (src == AngleSource::Param || (want_dx && src == AngleSource::Feature)) d = true;
    }
    if (!d) continue;
    const bool rotation = g.kind == GateKind::RX || g.kind == GateKind::RY || g.kind == GateKind::RZ;
    (rotation ? s.diff : s.keep)[std::size_t(gi)] = 1;
    s.first = gi;
  }
  return s;
}

// Undo one differentiable gate on phi and lam and accumulate its gradient.
template <class T>
void sweep_gate(const Circuit& c, const Gate& g, const std::vector<double>& theta, const double* xr,
                ChunkRange r, bool want_dx, double* dx, typename Workspace<T>::Chunk& ch) {
  const int B = r.size, F = c.n_features;
  const sim::Controls ctl = control_mask(g);
  int slots[3], nd = 0;
  for (int j = 0; j < angle_count(g.kind); ++j) {
    const AngleSource src = g.angles[j].source;
    if (src == AngleSource::Param || (want_dx && src == AngleSource::Feature)) slots[nd++] = j;
  }
  double* grad[3];
  for (int j = 0; j < 3; ++j) grad[j] = ch.grad_tmp.data() + std::size_t(j) * B;
  std::fill(ch.grad_tmp.begin(), ch.grad_tmp.end(), 0.0);

  // Rotations: the gradient from the Pauli generator (one matrix product fewer).
  const char pauli = g.kind == GateKind::RX ? 'X' : g.kind == GateKind::RY ? 'Y'
                   : g.kind == GateKind::RZ ? 'Z' : 0;
  if (pauli && nd == 1) {
    if (!is_per_sample(g)) {
      const auto a = resolve_angles(g, theta.data(), nullptr);
      const sim::Mat<T> inv = to_kernel<T>(dagger(gate_matrix(g.kind, a.data(), g.matrix)));
      sim::adjoint_step_rotation(ch.phi, ch.lam, g.target, ctl, inv, pauli, grad[0]);
    } else {
      for (int b = 0; b < B; ++b) {
        const auto a = resolve_angles(g, theta.data(), xr + std::size_t(b) * F);
        ch.scratch.set(0, B, b, dagger(gate_matrix(g.kind, a.data(), g.matrix)));
      }
      sim::adjoint_step_rotation(ch.phi, ch.lam, g.target, ctl, ch.scratch.mat(0, B), pauli, grad[0]);
    }
  } else if (!is_per_sample(g)) {
    const auto a = resolve_angles(g, theta.data(), nullptr);
    const sim::Mat<T> inv = to_kernel<T>(dagger(gate_matrix(g.kind, a.data(), g.matrix)));
    sim::Mat<T> d[3];
    for (int j = 0; j < nd; ++j) d[j] = to_kernel<T>(gate_matrix_derivative(g.kind, a.data(), slots[j]));
    sim::adjoint_step(ch.phi, ch.lam, g.target, ctl, inv, nd, d, grad);
  } else {
    for (int b = 0; b < B; ++b) {
      const auto a = resolve_angles(g, theta.data(), xr + std::size_t(b) * F);
      ch.scratch.set(0, B, b, dagger(gate_matrix(g.kind, a.data(), g.matrix)));
      for (int j = 0; j < nd; ++j)
        ch.scratch.set(1 + j, B, b, gate_matrix_derivative(g.kind, a.data(), slots[j]));
    }
    sim::BatchMat<T> d[3];
    for (int j = 0; j < nd; ++j) d[j] = ch.scratch.mat(1 + j, B);
    sim::adjoint_step(ch.phi, ch.lam, g.target, ctl, ch.scratch.mat(0, B), nd, d, grad);
  }
  for (int j = 0; j < nd; ++j) {
    const Angle& a = g.angles[slots[j]];
    if (a.source == AngleSource::Param) {
      double sum = 0.0;
      for (int b = 0; b < B; ++b) sum += grad[j][b];
      ch.grad_theta[std::size_t(a.index)] += a.value * sum;
    } else {
      for (int b = 0; b < B; ++b) dx[std::size_t(r.begin + b) * F + a.index] += a.value * grad[j][b];
    }
  }
}

// Add the per-sample gradients g[j * B + b] of op's differentiable gates (in
// order) to the chunk's dL/dtheta or to dx.
template <class T>
void accumulate(const Circuit& c, const PlanOp& op, const std::vector<char>& diff, const double* g,
                ChunkRange r, double* dx, typename Workspace<T>::Chunk& ch) {
  const int B = r.size, F = c.n_features;
  int j = 0;
  for (int gi : op.gates) {
    if (!diff[std::size_t(gi)]) continue;
    const Angle& a = c.gates[std::size_t(gi)].angles[0];
    const double* gj = g + std::size_t(j++) * B;
    if (a.source == AngleSource::Param) {
      double sum = 0.0;
      for (int b = 0; b < B; ++b) sum += gj[b];
      ch.grad_theta[std::size_t(a.index)] += a.value * sum;
    } else {
      for (int b = 0; b < B; ++b) dx[std::size_t(r.begin + b) * F + a.index] += a.value * gj[b];
    }
  }
}

// How the sweep's plan is cut (PlanOptions::barriers): segment k is a layer
// (or the part of one from the sweep's first gate) when layer[k], and the
// state at its start is chunk.saved[saved[k]] when saved[k] >= 0.
struct SweepSegments {
  std::vector<int> barriers;
  std::vector<char> layer{0};
  std::vector<int> saved{-1};
};
SweepSegments sweep_segments(const Circuit& c, int first, const std::vector<int>& saved_gates) {
  SweepSegments s;
  // A segment from `gate` on; a layer end and the next layer's start may coincide.
  auto cut = [&](int gate, bool layer, int saved) {
    if (gate >= int(c.gates.size())) return;
    if (s.barriers.empty() || s.barriers.back() != gate) {
      s.barriers.push_back(gate);
      s.layer.push_back(0);
      s.saved.push_back(-1);
    }
    s.layer.back() = layer;
    s.saved.back() = saved;
  };
  for (const GateRange& l : find_layers(c)) {
    if (l.end <= first) continue;
    const auto at = std::find(saved_gates.begin(), saved_gates.end(), l.begin);
    if (l.begin <= first) {
      s.layer[0] = 1;  // the sweep's last layer: no undo at all
    } else if (at != saved_gates.end()) {
      cut(l.begin, true, int(at - saved_gates.begin()));
    } else {
      continue;  // undone gate by gate, like any other op
    }
    cut(l.end, false, -1);
  }
  return s;
}

// The backward sweep's plan: from the first differentiable gate, those gates
// kept apart, cut at the layers (and the saved layer starts of the forward).
// through[k]: for a segment k whose first op is an affine permutation (a CNOT
// ring) right after an uncontrolled layer, how it maps Paulis: the sweep then
// takes the layer's overlaps through it instead of undoing it on phi.
struct Sweep {
  SweepGates gates;
  SweepSegments segs;
  const Plan* plan = nullptr;
  std::vector<PauliConjugation> through;  // per segment (empty: none)
};
template <class T>
Sweep sweep_plan(const Circuit& c, bool want_dx, Workspace<T>& ws) {
  Sweep s;
  s.gates = sweep_gates(c, want_dx);
  PlanOptions opt;
  opt.begin = s.gates.first;
  opt.product_prefix = false;
  opt.fold_permutations = false;  // runs with differentiable gates use adjoint_op
  opt.pairs = false;
  opt.keep = s.gates.keep;
  s.segs = sweep_segments(c, s.gates.first, ws.saved_gates);
  opt.barriers = s.segs.barriers;
  s.plan = &ws.plans.get(c, opt);
  const auto& ops = s.plan->ops;
  s.through.resize(s.segs.layer.size());
  for (std::size_t i = 1; i < ops.size(); ++i) {
    const int seg = ops[i].segment;
    if (ops[i - 1].segment == seg || !s.segs.layer[std::size_t(seg - 1)]) continue;
    if (ops[i - 1].controls.mask != 0) continue;  // the layer's ops share their controls
    s.through[std::size_t(seg)] = affine_conjugation(c, ops[i]);
  }
  return s;
}

// One backward sweep of chunk ch (samples r.begin ..) through the planned ops
// (plan: gates first.. end, differentiable gates kept alone, the rest fused).
template <class T>
void sweep(const Circuit& c, const Sweep& sw, const std::vector<sim::Controls>& saved_rows,
           const std::vector<double>& theta, const double* x, ChunkRange r, bool want_dx, double* dx,
           typename Workspace<T>::Chunk& ch) {
  const SweepSegments& segs = sw.segs;
  const std::vector<char>& diff = sw.gates.diff;
  const int B = r.size, F = c.n_features;
  const double* xr = x ? x + std::size_t(r.begin) * F : nullptr;
  ch.scratch.reserve(B);
  ch.grad_tmp.assign(std::size_t(3) * B, 0.0);
  auto n_diff = [&](const PlanOp& op) {
    int nd = 0;
    if (op.kind == PlanOp::Kind::Fused)
      for (int gi : op.gates) nd += diff[std::size_t(gi)];
    if (ch.grad_tmp.size() < std::size_t(nd) * B) ch.grad_tmp.resize(std::size_t(nd) * B);
    return nd;
  };
  // phi starts as psi (the final state, which stays as it is for final_state()
  // and a second backward()); the copy is made only when phi is first changed:
  // a sweep that starts with a saved layer reads it and then restores phi.
  bool phi_copied = false;
  auto phi_to_change = [&]() -> sim::State<T>& {
    if (!phi_copied) ch.phi = ch.psi;
    phi_copied = true;
    return ch.phi;
  };
  const auto& ops = sw.plan->ops;
  // A layer's saved start, or the sweep's end, replaces phi after the layer:
  // its gradients are all it needs phi for.
  auto takes_layer_path = [&](int seg, std::size_t i0) {
    return segs.layer[std::size_t(seg)] && (i0 == 0 || (ch.saved_fresh && segs.saved[std::size_t(seg)] >= 0));
  };
  auto first_of_segment = [&](std::size_t i) {  // the first op of ops[i]'s segment
    while (i > 0 && ops[i - 1].segment == ops[i].segment) --i;
    return i;
  };
  const PlanOp* pending = nullptr;  // a permutation after the layer, not yet undone
  std::size_t i = ops.size();
  while (i > 0) {
    const int seg = ops[i - 1].segment;
    const std::size_t i0 = first_of_segment(i - 1);
    const int saved = ch.saved_fresh ? segs.saved[std::size_t(seg)] : -1;
    if (takes_layer_path(seg, i0)) {
      // A layer: every gradient from phi and lam at its end (its gates commute
      // with the other targets' gates), or after the permutation that follows
      // it, then lam undone and phi restored.
      int rows = 0;
      for (std::size_t k = i0; k < i; ++k) rows += n_diff(ops[k]);
      ch.layer_grad.resize(std::size_t(rows) * B);
      const PauliConjugation* through = pending ? &sw.through[std::size_t(pending->segment)] : nullptr;
      layer_gradients(phi_copied ? ch.phi : ch.psi, ch.lam, c, ops.data() + i0, i - i0, diff.data(),
                      theta.data(), xr, F, ch.scratch, ch.layer_grad.data(), through);
      const double* g = ch.layer_grad.data();
      for (std::size_t k = i0; k < i; ++k) {
        accumulate<T>(c, ops[k], diff, g, r, dx, ch);
        g += std::size_t(n_diff(ops[k])) * B;
      }
      if (i0 == 0) break;  // no earlier gate needs phi or lam
      undo_ops(ch.lam, c, ops.data() + i0, i - i0, theta.data(), xr, F, ch.scratch, pending);
      pending = nullptr;
      const sim::Controls saved_part = saved_rows[std::size_t(saved)];
      if (saved_part.mask != 0)  // the layer changed only these amplitudes
        sim::restore_controlled(ch.saved[std::size_t(saved)], saved_part, phi_to_change());
      else
        std::swap(ch.phi, ch.saved[std::size_t(saved)]);  // used once: see saved_fresh
      phi_copied = true;
      i = i0;
      continue;
    }
    const PlanOp& op = ops[--i];
    if (i == i0 && i > 0 && !sw.through[std::size_t(seg)].x.empty() &&
        takes_layer_path(ops[i - 1].segment, first_of_segment(i - 1))) {
      pending = &op;  // the layer takes its overlaps through it; lam undoes it after
      continue;
    }
    sim::State<T>& phi = phi_to_change();
    if (op.kind == PlanOp::Kind::Single) {
      sweep_gate<T>(c, c.gates[std::size_t(op.gates[0])], theta, xr, r, want_dx, dx, ch);
      continue;
    }
    if (n_diff(op) == 0) {
      apply_op_pair(phi, ch.lam, c, op, theta.data(), xr, F, true, ch.scratch);
      continue;
    }
    // Differentiable rotations fused with their neighbours: one pass, nd gradients.
    adjoint_op(phi, ch.lam, c, op, diff.data(), theta.data(), xr, F, ch.scratch, ch.grad_tmp.data());
    accumulate<T>(c, op, diff, ch.grad_tmp.data(), r, dx, ch);
  }
}

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

// The sweep of samples r from the state forward_chunk left in ch, for
// dL_dO[b * K + k] (b: the chunk's samples): the chunk's dL/dtheta in
// ch.grad_theta, its rows of dx added to.
template <class T>
void backward_chunk(const Circuit& c, const Sweep& sw, const std::vector<double>& theta, const double* x,
                    ChunkRange r, const std::vector<PauliString>& obs, const double* dL_dO, double* dx,
                    const Workspace<T>& ws, typename Workspace<T>::Chunk& ch) {
  ch.grad_theta.assign(std::size_t(c.n_params), 0.0);
  ensure_state(ch.lam, c.n_qubits, r.size);
  seed_lambda(ch.psi, obs, dL_dO, ch.lam);
  sweep<T>(c, sw, ws.saved_rows, theta, x, r, dx != nullptr, dx, ch);
  ch.saved_fresh = false;  // swapped into phi; a second backward() undoes instead
}

int thread_count() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

template <class T>
int chunk_count(const Workspace<T>& ws, int batch) {
  if (ws.chunk_size < 1) throw std::invalid_argument("workspace chunk size must be >= 1");
  return (batch + ws.chunk_size - 1) / ws.chunk_size;
}

}  // namespace

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
  FirstError err;
#pragma omp parallel for schedule(dynamic, 1)
  for (int ci = 0; ci < n_chunks; ++ci) {
    err.run([&] {
      const int set = ws.keep_states ? ci : thread_index();
      if (set >= int(ws.chunks.size())) throw std::logic_error("forward: more threads than state sets");
      forward_chunk(c, plan, theta, x, chunk_range(ci, ws.chunk_size, batch), obs, expvals, ws,
                    ws.chunks[std::size_t(set)]);
    });
  }
  err.rethrow(ws);
}

template <class T>
void backward(const Circuit& c, const std::vector<double>& theta, const double* x, int batch,
              const std::vector<PauliString>& obs, const double* dL_dO, double* dtheta,
              double* dx, Workspace<T>& ws) {
  if (batch < 1 || ws.batch != batch || ws.chunks.empty())  // ws.batch is 0 after a forward-only run
    throw std::logic_error("backward: call forward (with keep_states) on the same batch first");
  const int n_chunks = int(ws.chunks.size());
  const std::size_t K = obs.size();
  if (dx) std::fill(dx, dx + std::size_t(batch) * c.n_features, 0.0);
  const Sweep sw = sweep_plan(c, dx != nullptr, ws);
  FirstError err;
#pragma omp parallel for schedule(dynamic, 1)
  for (int ci = 0; ci < n_chunks; ++ci) {
    err.run([&] {
      const ChunkRange r = chunk_range(ci, ws.chunk_size, batch);
      backward_chunk(c, sw, theta, x, r, obs, dL_dO + std::size_t(r.begin) * K, dx, ws,
                     ws.chunks[std::size_t(ci)]);
    });
  }
  err.rethrow(ws);
  for (const auto& ch : ws.chunks)  // fixed order: same sums for any thread count
    for (int j = 0; j < c.n_params; ++j) dtheta[j] += ch.grad_theta[std::size_t(j)];
}

template <class T>
void forward_backward(const Circuit& c, const std::vector<double>& theta, const double* x, int batch,
                      const std::vector<PauliString>& obs, const LossGradient& loss_gradient,
                      double* expvals, double* dtheta, double* dx, Workspace<T>& ws) {
  check_inputs(c, theta.size(), x ? std::size_t(c.n_features) * batch : 0, batch);
  check_observables(c, obs);
  if (!loss_gradient) throw std::invalid_argument("forward_backward: no loss gradient given");
  const int n_chunks = chunk_count(ws, batch);
  const std::size_t K = obs.size(), P = std::size_t(c.n_params);
  // Thread t runs each of its chunks forward and back in ws.chunks[t]: the
  // states stay in cache, and the saves take one chunk's worth per thread.
  if (int(ws.chunks.size()) != thread_count()) ws.chunks.resize(std::size_t(thread_count()));
  ws.batch = 0;  // no states are kept for backward()
  const Plan& plan = forward_plan(c, true, ws);
  const Sweep sw = sweep_plan(c, dx != nullptr, ws);
  if (dx) std::fill(dx, dx + std::size_t(batch) * c.n_features, 0.0);
  std::vector<double>& grads = ws.chunk_grads;  // per chunk, summed in chunk order below
  grads.assign(std::size_t(n_chunks) * P, 0.0);
  FirstError err;
#pragma omp parallel for schedule(dynamic, 1)
  for (int ci = 0; ci < n_chunks; ++ci) {
    err.run([&] {
      const ChunkRange r = chunk_range(ci, ws.chunk_size, batch);
      if (thread_index() >= int(ws.chunks.size())) throw std::logic_error("forward_backward: more threads than state sets");
      auto& ch = ws.chunks[std::size_t(thread_index())];
      forward_chunk(c, plan, theta, x, r, obs, expvals, ws, ch);
      ch.dL_dO.assign(std::size_t(r.size) * K, 0.0);
      loss_gradient(r.begin, r.size, expvals + std::size_t(r.begin) * K, ch.dL_dO.data());
      backward_chunk(c, sw, theta, x, r, obs, ch.dL_dO.data(), dx, ws, ch);
      std::copy(ch.grad_theta.begin(), ch.grad_theta.end(), grads.begin() + std::ptrdiff_t(ci * P));
    });
  }
  err.rethrow(ws);
  for (int ci = 0; ci < n_chunks; ++ci)  // as backward(): the same sums for any thread count
    for (std::size_t j = 0; j < P; ++j) dtheta[j] += grads[std::size_t(ci) * P + j];
}

template <class T>
std::vector<double> adjoint_jacobian(const Circuit& c, const std::vector<double>& theta,
                                     const double* x, const std::vector<PauliString>& obs) {
  Workspace<T> ws;
  const int K = int(obs.size());
  std::vector<double> ev(static_cast<std::size_t>(K)), jac(std::size_t(K) * c.n_params, 0.0), seed(static_cast<std::size_t>(K));
  forward(c, theta, x, 1, obs, ev.data(), ws);
  for (int k = 0; k < K; ++k) {
    std::fill(seed.begin(), seed.end(), 0.0);
    seed[std::size_t(k)] = 1.0;
    backward(c, theta, x, 1, obs, seed.data(), jac.data() + std::size_t(k) * c.n_params, nullptr, ws);
  }
  return jac;
}

#define QMOE_INSTANTIATE(T)                                                                   \
  template void expectations<T>(const sim::State<T>&, const std::vector<PauliString>&, double*); \
  template void forward<T>(const Circuit&, const std::vector<double>&, const double*, int,    \
                           const std::vector<PauliString>&, double*, Workspace<T>&);          \
  template void backward<T>(const Circuit&, const std::vector<double>&, const double*, int,   \
                            const std::vector<PauliString>&, const double*, double*, double*, \
                            Workspace<T>&);                                                   \
  template void forward_backward<T>(const Circuit&, const std::vector<double>&, const double*, int, \
                                    const std::vector<PauliString>&, const LossGradient&, double*,  \
                                    double*, double*, Workspace<T>&);                               \
  template std::vector<double> adjoint_jacobian<T>(const Circuit&, const std::vector<double>&, \
                                                   const double*, const std::vector<PauliString>&);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe
