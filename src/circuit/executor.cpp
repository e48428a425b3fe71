// The executor of execution plans (executor.hpp): each op kind to its kernel
// call, with the op's matrices computed once per call (op_matrices.hpp).
#include "circuit/executor.hpp"

#include <stdexcept>

#include "circuit/op_matrices.hpp"

namespace qmoe {
namespace {

using namespace detail;

template <class T>
void apply_fused(sim::State<T>& s, sim::State<T>* s2, const Circuit& c, const PlanOp& op,
                 const double* theta, const double* x, int x_stride, bool inverse,
                 GateScratch<T>& scratch) {
  if (!op.perm.empty()) {  // with a folded permutation: one out-of-place pass per state
    const int B = s.batch;
    auto run = [&](const auto& m) {
      sim::apply_matrix_permute(s, op.target, m, op.perm.data(), inverse, scratch.buffer);
      if (s2) sim::apply_matrix_permute(*s2, op.target, m, op.perm.data(), inverse, scratch.buffer);
    };
    if (!op.per_sample) {
      const M2 m = fused_matrix(c, op, theta, nullptr, inverse);
      run(kernel_matrix<T>(m));
    } else {
      scratch.reserve(B);
      const M2* m = fused_matrices(c, op, theta, x, x_stride, B, inverse, scratch.matrices);
      for (int b = 0; b < B; ++b) store(scratch, B, b, m[b]);
      run(op_matrices(scratch, 0, B, op));
    }
    return;
  }
  if (!op.per_sample) {
    const M2 m = fused_matrix(c, op, theta, nullptr, inverse);
    if (op.diagonal) {
      const sim::Diag<T> d{{T(m.r[0]), T(m.r[3])}, {T(m.i[0]), T(m.i[3])}};
      sim::apply_diagonal(s, op.target, op.controls, d);
      if (s2) sim::apply_diagonal(*s2, op.target, op.controls, d);
    } else {
      const sim::Mat<T> k = kernel_matrix<T>(m);
      sim::apply_matrix(s, op.target, op.controls, k);
      if (s2) sim::apply_matrix(*s2, op.target, op.controls, k);
    }
    return;
  }
  const int B = s.batch;
  scratch.reserve(B);
  const M2* fm = fused_matrices(c, op, theta, x, x_stride, B, inverse, scratch.matrices);
  for (int b = 0; b < B; ++b) store(scratch, B, b, fm[b]);
  const sim::BatchMat<T> m = op_matrices(scratch, 0, B, op);
  if (op.diagonal) {
    const sim::BatchDiag<T> d{{m.re[0], m.re[3]}, {m.im[0], m.im[3]}};
    sim::apply_diagonal(s, op.target, op.controls, d);
    if (s2) sim::apply_diagonal(*s2, op.target, op.controls, d);
  } else {
    sim::apply_matrix(s, op.target, op.controls, m);
    if (s2) sim::apply_matrix(*s2, op.target, op.controls, m);
  }
}

// Two uncontrolled fused ops on different qubits in one pass: both matrices
// (shared, or per sample in scratch slots 0 and 1), then one pass. They
// commute, so the order of the two does not matter, inverted or not; a
// permutation folded into the second runs after both (before both, inverted).
// keep: receives s as it was before (sim::apply_matrix_pair), instead of a copy.
template <class T>
void apply_two(sim::State<T>& s, const Circuit& c, const PlanOp* const part[2], const double* theta,
               const double* x, int x_stride, bool inverse, GateScratch<T>& scratch,
               sim::State<T>* keep = nullptr, const std::vector<std::uint32_t>* perm = nullptr) {
  const int B = s.batch;
  scratch.reserve(B);
  sim::Mat<T> m[2];
  for (int k = 0; k < 2; ++k) {
    if (part[k]->per_sample) {
      const M2* fm = fused_matrices(c, *part[k], theta, x, x_stride, B, inverse, scratch.matrices);
      for (int b = 0; b < B; ++b) store(scratch, B, b, fm[b], k);
    } else {
      m[k] = kernel_matrix<T>(fused_matrix(c, *part[k], theta, nullptr, inverse));
    }
  }
  const int a = part[0]->target, b = part[1]->target;
  const bool pa = part[0]->per_sample, pb = part[1]->per_sample;
  const sim::Controls ctl = part[0]->controls;  // pairable: the same for both
  if (!perm) perm = &part[1]->perm;  // or the one the caller folds in (undo_ops)
  if (!perm->empty())  // pairable: both per sample; out of place, so keep costs nothing
    sim::apply_matrix_pair_permute(s, a, op_matrices(scratch, 0, B, *part[0]), b,
                                   op_matrices(scratch, 1, B, *part[1]), perm->data(), inverse,
                                   keep ? *keep : scratch.buffer);
  else if (pa && pb)
    sim::apply_matrix_pair(s, a, op_matrices(scratch, 0, B, *part[0]), b, op_matrices(scratch, 1, B, *part[1]),
                           ctl, keep);
  else if (pa)
    sim::apply_matrix_pair(s, a, op_matrices(scratch, 0, B, *part[0]), b, m[1], ctl, keep);
  else if (pb)
    sim::apply_matrix_pair(s, b, op_matrices(scratch, 1, B, *part[1]), a, m[0], ctl, keep);
  else
    sim::apply_matrix_pair(s, a, m[0], b, m[1], ctl, keep);
}

}  // namespace

template <class T>
void apply_op(sim::State<T>& s, const Circuit& c, const PlanOp& op, const double* theta,
              const double* x, int x_stride, bool inverse, GateScratch<T>& scratch) {
  switch (op.kind) {
    case PlanOp::Kind::Single:
      apply_gate(s, c.gates[std::size_t(op.gates[0])], theta, x, x_stride, inverse, scratch);
      return;
    case PlanOp::Kind::Permutation: {
      if (!op.perm.empty()) {  // in place, the moved amplitudes only (none: an identity)
        sim::apply_permutation(s, op.perm.data(), op.moved.data(), op.moved.size(), inverse, scratch.buffer);
        return;
      }
      const Gate& g = c.gates[std::size_t(op.gates[0])];
      if (g.kind == GateKind::Swap)
        sim::apply_swap(s, g.target, g.target2, op.controls);
      else
        sim::apply_x(s, g.target, op.controls);
      return;
    }
    case PlanOp::Kind::Fused:
      apply_fused<T>(s, nullptr, c, op, theta, x, x_stride, inverse, scratch);
      return;
    case PlanOp::Kind::Pair: {
      const PlanOp* const parts[2] = {&op.parts[0], &op.parts[1]};
      apply_two<T>(s, c, parts, theta, x, x_stride, inverse, scratch);
      return;
    }
  }
}

template <class T>
void apply_op_pair(sim::State<T>& s, sim::State<T>& s2, const Circuit& c, const PlanOp& op,
                   const double* theta, const double* x, int x_stride, bool inverse,
                   GateScratch<T>& scratch) {
  if (op.kind == PlanOp::Kind::Fused) {
    apply_fused<T>(s, &s2, c, op, theta, x, x_stride, inverse, scratch);
    return;
  }
  apply_op(s, c, op, theta, x, x_stride, inverse, scratch);
  apply_op(s2, c, op, theta, x, x_stride, inverse, scratch);
}

template <class T>
void undo_ops(sim::State<T>& s, const Circuit& c, const PlanOp* ops, std::size_t count,
              const double* theta, const double* x, int x_stride, GateScratch<T>& scratch,
              const PlanOp* after) {
  // The permutation `after` is undone first: in the first pair's pass (it reads
  // through the permutation) when that pair is two uncontrolled per-sample ops
  // (apply_matrix_pair_permute), else in a pass of its own.
  const bool fold = after && after->kind == PlanOp::Kind::Permutation && !after->perm.empty() && count >= 2 &&
                    pairable(ops[count - 2], ops[count - 1]) && ops[count - 1].controls.mask == 0 &&
                    ops[count - 2].per_sample && ops[count - 1].per_sample && ops[count - 1].perm.empty();
  if (after && !fold) apply_op(s, c, *after, theta, x, x_stride, true, scratch);
  for (std::size_t k = count; k-- > 0;) {
    if (k > 0 && pairable(ops[k - 1], ops[k])) {
      const PlanOp* const parts[2] = {&ops[k - 1], &ops[k]};
      apply_two<T>(s, c, parts, theta, x, x_stride, true, scratch, nullptr,
                   fold && k == count - 1 ? &after->perm : nullptr);
      --k;
    } else {
      apply_op(s, c, ops[k], theta, x, x_stride, true, scratch);
    }
  }
}

template <class T>
void run_plan(const Circuit& c, const Plan& p, const double* theta, const double* x,
              sim::State<T>& s, GateScratch<T>& scratch, std::vector<sim::State<T>>* saved,
              const sim::Controls* saved_rows) {
  if (s.n_qubits != c.n_qubits || p.n_qubits != c.n_qubits)
    throw std::invalid_argument("run_plan: state has wrong qubit count");
  const int B = s.batch, F = c.n_features;
  if (p.has_prefix) {
    // Column 0 of each prefix op's matrix is that qubit's state.
    auto& amp = scratch.product;
    amp.assign(std::size_t(4) * c.n_qubits * B, T(0));
    for (int q = 0; q < c.n_qubits; ++q) std::fill_n(amp.begin() + std::size_t(q * 4) * B, B, T(1));
    for (const PlanOp& op : p.ops) {
      if (!op.prefix) continue;
      T* a = amp.data() + std::size_t(op.target * 4) * B;
      const int nb = op.per_sample ? B : 1;
      M2 shared;
      const M2* m = op.per_sample ? fused_matrices(c, op, theta, x, F, B, false, scratch.matrices) : &shared;
      if (!op.per_sample) shared = fused_matrix(c, op, theta, nullptr, false);
      for (int b = 0; b < nb; ++b)
        a[b] = T(m[b].r[0]), a[B + b] = T(m[b].i[0]), a[2 * B + b] = T(m[b].r[2]), a[3 * B + b] = T(m[b].i[2]);
      for (int b = nb; b < B; ++b)
        for (int k = 0; k < 4; ++k) a[std::size_t(k) * B + b] = a[std::size_t(k) * B];
    }
  }
  // A permutation table right after the product state is built into it.
  const PlanOp* folded = nullptr;
  if (p.has_prefix)
    for (const PlanOp& op : p.ops)
      if (!op.prefix) {
        if (op.kind == PlanOp::Kind::Permutation && !op.perm.empty() && p.fold_prefix_permutation &&
            op.segment == 0)
          folded = &op;
        break;
      }
  if (folded)
    sim::set_product_state_permuted(s, scratch.product.data(), folded->perm.data(), scratch.buffer,
                                    scratch.product_tables);
  else if (p.has_prefix)
    sim::set_product_state(s, scratch.product.data(), scratch.product_tables);
  else
    sim::set_zero_state(s);
  const int n_barriers = p.n_segments - 1;
  if (saved) saved->resize(std::size_t(n_barriers));
  auto rows = [&](int k) { return saved_rows ? saved_rows[k] : sim::Controls{}; };
  auto save = [&](int k) {
    if (rows(k).mask != 0)
      sim::copy_controlled(s, rows(k), (*saved)[std::size_t(k)]);
    else
      (*saved)[std::size_t(k)] = s;
  };
  int segment = 0;  // the state after the gates before barrier k goes to (*saved)[k]
  for (const PlanOp& op : p.ops) {
    if (op.prefix || &op == folded) continue;  // (segment 0)
    if (saved && segment < op.segment) {
      for (; segment < op.segment - 1; ++segment) save(segment);  // empty segments
      const int k = segment++;
      if (op.kind == PlanOp::Kind::Pair && rows(k).mask == 0) {  // a pass that keeps its input: no copy
        const PlanOp* const parts[2] = {&op.parts[0], &op.parts[1]};
        apply_two<T>(s, c, parts, theta, x, F, false, scratch, &(*saved)[std::size_t(k)]);
        continue;
      }
      save(k);
    }
    apply_op(s, c, op, theta, x, F, false, scratch);
  }
  for (; saved && segment < n_barriers; ++segment) save(segment);
}

#define QMOE_INSTANTIATE(T)                                                                     \
  template void apply_op<T>(sim::State<T>&, const Circuit&, const PlanOp&, const double*,       \
                            const double*, int, bool, GateScratch<T>&);                         \
  template void apply_op_pair<T>(sim::State<T>&, sim::State<T>&, const Circuit&, const PlanOp&, \
                                 const double*, const double*, int, bool, GateScratch<T>&);     \
  template void undo_ops<T>(sim::State<T>&, const Circuit&, const PlanOp*, std::size_t,          \
                            const double*, const double*, int, GateScratch<T>&, const PlanOp*); \
  template void run_plan<T>(const Circuit&, const Plan&, const double*, const double*,          \
                            sim::State<T>&, GateScratch<T>&, std::vector<sim::State<T>>*,       \
                            const sim::Controls*);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe
