// The adjoint method's backward sweep (adjoint.hpp): per chunk of samples,
// lam seeded with the loss-weighted observables and phi from the final state,
// then the plan's ops undone last to first, each step taking its gradients
// (Sweeper::run reads top-down). The per-op arithmetic is in adjoint_ops.cpp,
// the kernels in sim/adjoint_steps.cpp and sim/overlaps.cpp.
#include "grad/adjoint.hpp"

#include <algorithm>
#include <stdexcept>

#include "grad/adjoint_ops.hpp"
#include "grad/chunks.hpp"

namespace qmoe {
namespace {

using namespace detail;

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

// Add the per-sample gradient g[b] of angle a to the chunk's dL/dtheta
// (summed over the chunk's samples) or to its rows of dx.
template <class T>
void add_gradient(const Circuit& c, const Angle& a, const double* g, ChunkRange r, double* dx,
                  typename Workspace<T>::Chunk& ch) {
  if (a.source == AngleSource::Param) {
    double sum = 0.0;
    for (int b = 0; b < r.size; ++b) sum += g[b];
    ch.grad_theta[std::size_t(a.index)] += a.value * sum;
  } else {
    for (int b = 0; b < r.size; ++b) dx[std::size_t(r.begin + b) * c.n_features + a.index] += a.value * g[b];
  }
}

// Step: undo one differentiable gate kept alone (not a fusable rotation) on
// phi and lam with the generic adjoint step, and accumulate its gradients.
template <class T>
void gate_step(const Circuit& c, const Gate& g, const std::vector<double>& theta, const double* xr,
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
  const bool rotation = g.kind == GateKind::RX || g.kind == GateKind::RY || g.kind == GateKind::RZ;
  const sim::Pauli pauli = g.kind == GateKind::RX ? sim::Pauli::X : g.kind == GateKind::RY ? sim::Pauli::Y
                                                                                         : sim::Pauli::Z;
  if (rotation && nd == 1) {
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
  for (int j = 0; j < nd; ++j) add_gradient<T>(c, g.angles[slots[j]], grad[j], r, dx, ch);
}

// Add the per-sample gradients g[j * B + b] of op's differentiable gates (in
// order) to the chunk's dL/dtheta or to dx.
template <class T>
void accumulate(const Circuit& c, const PlanOp& op, const std::vector<char>& diff, const double* g,
                ChunkRange r, double* dx, typename Workspace<T>::Chunk& ch) {
  int j = 0;
  for (int gi : op.gates)
    if (diff[std::size_t(gi)]) add_gradient<T>(c, c.gates[std::size_t(gi)].angles[0], g + std::size_t(j++) * r.size, r, dx, ch);
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

// One backward sweep of a chunk (samples r) through the sweep's plan, read
// top-down in run(): the ops last to first, each in one of four steps.
//   layer_step   a layer (find_layers): every gradient from phi and lam at
//                its end, then lam undone and phi restored from the start
//                forward() saved (or nothing more, when it is the sweep's last)
//   defer        a CNOT ring right after an uncontrolled layer: the layer
//                takes its overlaps through it, lam undoes it afterwards
//   gate_step    a differentiable gate kept alone: the generic adjoint step
//   op_step      a fused op: undone on both states, its differentiable
//                rotations' gradients from the same pass (adjoint_op)
// phi starts as psi, the final state, which stays as it is for final_state()
// and a second backward(): it is copied only when phi is first changed (a
// sweep that starts with a saved layer reads it and then restores phi).
template <class T>
struct Sweeper {
  const Circuit& c;
  const Sweep& sw;
  const std::vector<sim::Controls>& saved_rows;
  const std::vector<double>& theta;
  const double* xr;  // the chunk's features
  ChunkRange r;
  bool want_dx;
  double* dx;
  typename Workspace<T>::Chunk& ch;
  const std::vector<PlanOp>& ops = sw.plan->ops;
  const std::vector<char>& diff = sw.gates.diff;
  bool phi_copied = false;
  const PlanOp* pending = nullptr;  // a permutation after the layer below, not yet undone

  void run() {
    ch.scratch.reserve(r.size);
    ch.grad_tmp.assign(std::size_t(3) * r.size, 0.0);
    std::size_t i = ops.size();
    while (i > 0) {
      const std::size_t i0 = first_of_segment(i - 1);
      if (takes_layer_path(ops[i - 1].segment, i0)) {
        if (i0 == 0) {  // the sweep's last layer: no earlier gate needs phi or lam
          layer_gradients_step(i0, i);
          return;
        }
        layer_step(i0, i);
        i = i0;
        continue;
      }
      const PlanOp& op = ops[--i];
      if (i == i0 && i > 0 && !sw.through[std::size_t(op.segment)].x.empty() &&
          takes_layer_path(ops[i - 1].segment, first_of_segment(i - 1))) {
        pending = &op;  // defer
        continue;
      }
      if (op.kind == PlanOp::Kind::Single) {
        phi_to_change();
        gate_step<T>(c, c.gates[std::size_t(op.gates[0])], theta, xr, r, want_dx, dx, ch);
      } else {
        op_step(op);
      }
    }
  }

  // A layer's gradients from phi and lam at its end (or after the pending
  // permutation), the states unchanged.
  void layer_gradients_step(std::size_t i0, std::size_t i) {
    int rows = 0;
    for (std::size_t k = i0; k < i; ++k) rows += n_diff(ops[k]);
    ch.layer_grad.resize(std::size_t(rows) * r.size);
    const PauliConjugation* through = pending ? &sw.through[std::size_t(pending->segment)] : nullptr;
    layer_gradients(phi_copied ? ch.phi : ch.psi, ch.lam, c, ops.data() + i0, i - i0, diff.data(), theta.data(),
                    xr, c.n_features, ch.scratch, ch.layer_grad.data(), through);
    const double* g = ch.layer_grad.data();
    for (std::size_t k = i0; k < i; ++k) {
      accumulate<T>(c, ops[k], diff, g, r, dx, ch);
      g += std::size_t(n_diff(ops[k])) * r.size;
    }
  }

  // The layer's gradients, then lam undone through it (and the pending
  // permutation) and phi put back to the layer's saved start.
  void layer_step(std::size_t i0, std::size_t i) {
    layer_gradients_step(i0, i);
    undo_ops(ch.lam, c, ops.data() + i0, i - i0, theta.data(), xr, c.n_features, ch.scratch, pending);
    pending = nullptr;
    const int saved = sw.segs.saved[std::size_t(ops[i0].segment)];
    const sim::Controls saved_part = saved_rows[std::size_t(saved)];
    if (saved_part.mask != 0)  // the layer changed only these amplitudes
      sim::restore_controlled(ch.saved[std::size_t(saved)], saved_part, phi_to_change());
    else
      std::swap(ch.phi, ch.saved[std::size_t(saved)]);  // used once: see saved_fresh
    phi_copied = true;
  }

  // A fused op (or a permutation): undone on phi and lam, with one pass for
  // its differentiable rotations' gradients when it has any.
  void op_step(const PlanOp& op) {
    sim::State<T>& phi = phi_to_change();
    if (n_diff(op) == 0) {
      apply_op_pair(phi, ch.lam, c, op, theta.data(), xr, c.n_features, true, ch.scratch);
      return;
    }
    adjoint_op(phi, ch.lam, c, op, diff.data(), theta.data(), xr, c.n_features, ch.scratch, ch.grad_tmp.data());
    accumulate<T>(c, op, diff, ch.grad_tmp.data(), r, dx, ch);
  }

  // A layer's saved start, or the sweep's end, replaces phi after the layer:
  // its gradients are all it needs phi for.
  bool takes_layer_path(int seg, std::size_t i0) const {
    return sw.segs.layer[std::size_t(seg)] && (i0 == 0 || (ch.saved_fresh && sw.segs.saved[std::size_t(seg)] >= 0));
  }
  std::size_t first_of_segment(std::size_t i) const {  // the first op of ops[i]'s segment
    while (i > 0 && ops[i - 1].segment == ops[i].segment) --i;
    return i;
  }
  sim::State<T>& phi_to_change() {
    if (!phi_copied) ch.phi = ch.psi;
    phi_copied = true;
    return ch.phi;
  }
  // The differentiable gates in op (grad_tmp grown to hold their gradients).
  int n_diff(const PlanOp& op) {
    int nd = 0;
    if (op.kind == PlanOp::Kind::Fused)
      for (int gi : op.gates) nd += diff[std::size_t(gi)];
    if (ch.grad_tmp.size() < std::size_t(nd) * r.size) ch.grad_tmp.resize(std::size_t(nd) * r.size);
    return nd;
  }
};

// The sweep of samples r from the state forward_chunk left in ch, for
// dL_dO[b * K + k] (b: the chunk's samples): lam seeded with the weighted
// observables, then the sweep; the chunk's dL/dtheta in ch.grad_theta, its
// rows of dx added to.
template <class T>
void backward_chunk(const Circuit& c, const Sweep& sw, const std::vector<double>& theta, const double* x,
                    ChunkRange r, const std::vector<PauliString>& obs, const double* dL_dO, double* dx,
                    const Workspace<T>& ws, typename Workspace<T>::Chunk& ch) {
  ch.grad_theta.assign(std::size_t(c.n_params), 0.0);
  ensure_state(ch.lam, c.n_qubits, r.size);
  seed_lambda(ch.psi, obs, dL_dO, ch.lam);
  const double* xr = x ? x + std::size_t(r.begin) * c.n_features : nullptr;
  Sweeper<T>{c, sw, ws.saved_rows, theta, xr, r, dx != nullptr, dx, ch}.run();
  ch.saved_fresh = false;  // swapped into phi; a second backward() undoes instead
}

}  // namespace

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
  run_chunks(n_chunks, ws, [&](int ci) {
    const ChunkRange r = chunk_range(ci, ws.chunk_size, batch);
    backward_chunk(c, sw, theta, x, r, obs, dL_dO + std::size_t(r.begin) * K, dx, ws, ws.chunks[std::size_t(ci)]);
  });
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
  run_chunks(n_chunks, ws, [&](int ci) {
    const ChunkRange r = chunk_range(ci, ws.chunk_size, batch);
    if (thread_index() >= int(ws.chunks.size())) throw std::logic_error("forward_backward: more threads than state sets");
    auto& ch = ws.chunks[std::size_t(thread_index())];
    forward_chunk(c, plan, theta, x, r, obs, expvals, ws, ch);
    ch.dL_dO.assign(std::size_t(r.size) * K, 0.0);
    loss_gradient(r.begin, r.size, expvals + std::size_t(r.begin) * K, ch.dL_dO.data());
    backward_chunk(c, sw, theta, x, r, obs, ch.dL_dO.data(), dx, ws, ch);
    std::copy(ch.grad_theta.begin(), ch.grad_theta.end(), grads.begin() + std::ptrdiff_t(ci * P));
  });
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

#define QMOE_INSTANTIATE(T)                                                                          \
  template void backward<T>(const Circuit&, const std::vector<double>&, const double*, int,          \
                            const std::vector<PauliString>&, const double*, double*, double*,        \
                            Workspace<T>&);                                                          \
  template void forward_backward<T>(const Circuit&, const std::vector<double>&, const double*, int,  \
                                    const std::vector<PauliString>&, const LossGradient&, double*,   \
                                    double*, double*, Workspace<T>&);                                \
  template std::vector<double> adjoint_jacobian<T>(const Circuit&, const std::vector<double>&,       \
                                                   const double*, const std::vector<PauliString>&);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe
