#include "circuit/fusion.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace qmoe {
namespace {

using u64 = std::uint64_t;

// A 2x2 complex matrix as separate real / imaginary parts (row-major), so the
// products below stay plain double arithmetic (std::complex * calls
// __muldc3 without -ffast-math).
struct M2 {
  double r[4], i[4];
};

constexpr M2 kIdentity{{1, 0, 0, 1}, {0, 0, 0, 0}};

// a * b
inline M2 mul(const M2& a, const M2& b) {
  M2 c;
  for (int row = 0; row < 2; ++row)
    for (int col = 0; col < 2; ++col) {
      const int x = 2 * row, y = col;
      c.r[x + y] = a.r[x] * b.r[y] - a.i[x] * b.i[y] + a.r[x + 1] * b.r[y + 2] - a.i[x + 1] * b.i[y + 2];
      c.i[x + y] = a.r[x] * b.i[y] + a.i[x] * b.r[y] + a.r[x + 1] * b.i[y + 2] + a.i[x + 1] * b.r[y + 2];
    }
  return c;
}

inline M2 dag(const M2& a) {
  return {{a.r[0], a.r[2], a.r[1], a.r[3]}, {-a.i[0], -a.i[2], -a.i[1], -a.i[3]}};
}

// RX / RY / RZ from c = cos(a/2), s = sin(a/2).
inline M2 rotation(GateKind k, double c, double s) {
  switch (k) {
    case GateKind::RX: return {{c, 0, 0, c}, {0, -s, -s, 0}};
    case GateKind::RY: return {{c, -s, s, c}, {0, 0, 0, 0}};
    default: return {{c, 0, 0, c}, {-s, 0, 0, s}};  // RZ
  }
}

bool is_rotation(GateKind k) { return k == GateKind::RX || k == GateKind::RY || k == GateKind::RZ; }

// gate_matrix for one gate, with the common rotations written out (the same
// formulas as circuit.cpp, without std::complex).
inline M2 matrix_of(const Gate& g, const double* theta, const double* x) {
  const auto a = resolve_angles(g, theta, x);
  switch (g.kind) {
    case GateKind::RX:
    case GateKind::RY:
    case GateKind::RZ:
      return rotation(g.kind, std::cos(a[0] / 2), std::sin(a[0] / 2));
    default: {
      const Mat2 m = gate_matrix(g.kind, a.data(), g.matrix);
      M2 o;
      for (int k = 0; k < 4; ++k) o.r[k] = m[k].real(), o.i[k] = m[k].imag();
      return o;
    }
  }
}

u64 touched(const Gate& g) {
  u64 m = u64(1) << g.target;
  if (g.kind == GateKind::Swap) m |= u64(1) << g.target2;
  for (const Control& c : g.controls) m |= u64(1) << c.qubit;
  return m;
}

// Where basis state i goes under an X-type gate.
u64 permute_index(const Gate& g, const sim::Controls& c, u64 i) {
  if ((i & c.mask) != c.value) return i;
  if (g.kind == GateKind::X) return i ^ (u64(1) << g.target);
  const u64 b0 = (i >> g.target) & 1, b1 = (i >> g.target2) & 1;  // Swap
  if (b0 == b1) return i;
  return i ^ ((u64(1) << g.target) | (u64(1) << g.target2));
}

// Largest state for which several X-type gates become one permutation table.
constexpr int kMaxPermutationQubits = 16;

// The fused matrix of op for sample features x (null if none).
inline M2 fused_matrix(const Circuit& c, const PlanOp& op, const double* theta, const double* x,
                       bool inverse) {
  M2 m = matrix_of(c.gates[op.gates[0]], theta, x);
  for (std::size_t k = 1; k < op.gates.size(); ++k) m = mul(matrix_of(c.gates[op.gates[k]], theta, x), m);
  return inverse ? dag(m) : m;
}

#if defined(__clang__)
#define QMOE_FUSION_CLONES
#else
#define QMOE_FUSION_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#endif

// s[b] = sin(h[b]), c[b] = cos(h[b]) for |h| <= 1e5 in one vectorised loop:
// reduction by pi/2 in three parts (Cody-Waite) and the Cephes polynomials
// on [-pi/4, pi/4] (error ~1e-16, as libm's).
QMOE_FUSION_CLONES void sincos_batch(const double* __restrict h, double* __restrict s,
                                     double* __restrict c, int n) {
  constexpr double kTwoOverPi = 0.63661977236758134308, kRound = 0x1.8p52;
  constexpr double kP1 = 1.57079625129699707031, kP2 = 7.54978941586159635336e-8,
                   kP3 = 5.39030285815811905290e-15;
#pragma omp simd
  for (int b = 0; b < n; ++b) {
    const double t = h[b] * kTwoOverPi + kRound;  // nearest integer j in the low mantissa bits
    const double j = t - kRound;
    const std::uint64_t q = std::bit_cast<std::uint64_t>(t);
    const double r = ((h[b] - j * kP1) - j * kP2) - j * kP3;
    const double z = r * r;
    const double sp = r + r * z * (((((1.58962301576546568060e-10 * z - 2.50507477628578072866e-8) * z +
                                      2.75573136213857245213e-6) * z - 1.98412698295895385996e-4) * z +
                                    8.33333333332211858878e-3) * z - 1.66666666666666307295e-1);
    const double cp = 1.0 - 0.5 * z + z * z * (((((-1.13585365213876817300e-11 * z + 2.08757008419747316778e-9) * z -
                                                   2.75573141792967388112e-7) * z + 2.48015872888517045348e-5) * z -
                                                 1.38888888888730564116e-3) * z + 4.16666666666665929218e-2);
    // quadrant j mod 4: (sin, cos) = (sp, cp), (cp, -sp), (-sp, -cp), (-cp, sp)
    const bool swap = q & 1;
    const double sv = swap ? cp : sp, cv = swap ? sp : cp;
    s[b] = (q & 2) ? -sv : sv;
    c[b] = ((q + 1) & 2) ? -cv : cv;
  }
}

// The matrices of gate g for samples b < B (features row b at x + b * x_stride):
// rotations by a feature angle use sincos_batch.
void sample_matrices(const Gate& g, const double* theta, const double* x, int x_stride, int B, M2* out) {
  const Angle& a = g.angles[0];
  if (is_rotation(g.kind) && a.source == AngleSource::Feature) {
    thread_local std::vector<double> buf;
    buf.resize(std::size_t(3) * B);
    double *h = buf.data(), *s = h + B, *c = h + 2 * B;
    double big = 0;
    for (int b = 0; b < B; ++b) {
      h[b] = a.value * x[std::size_t(b) * x_stride + a.index] / 2;  // as resolve_angles, then / 2
      big = std::max(big, std::abs(h[b]));
    }
    if (big <= 1e5) {
      sincos_batch(h, s, c, B);
      for (int b = 0; b < B; ++b) out[b] = rotation(g.kind, c[b], s[b]);
      return;
    }
  }
  for (int b = 0; b < B; ++b) out[b] = matrix_of(g, theta, x + std::size_t(b) * x_stride);
}

// A per-sample op's gates with each run of shared gates multiplied out once,
// so only the feature gates' matrices are computed per sample.
struct Factors {
  struct F {
    const Gate* g;  // per-sample gate, or null: m is a shared product
    M2 m;
  };
  std::vector<F>& f;
  Factors(const Circuit& c, const PlanOp& op, const double* theta) : f(buffer()) {
    f.clear();
    for (int gi : op.gates) {
      const Gate& g = c.gates[std::size_t(gi)];
      if (is_per_sample(g))
        f.push_back({&g, kIdentity});
      else if (!f.empty() && !f.back().g)
        f.back().m = mul(matrix_of(g, theta, nullptr), f.back().m);
      else
        f.push_back({nullptr, matrix_of(g, theta, nullptr)});
    }
  }
  // The fused matrix of every sample b < B: out[b].
  void matrices(const double* theta, const double* x, int x_stride, int B, bool inverse, M2* out) const {
    thread_local std::vector<M2> g;
    g.resize(std::size_t(B));
    for (std::size_t k = 0; k < f.size(); ++k) {
      if (f[k].g) sample_matrices(*f[k].g, theta, x, x_stride, B, g.data());
      for (int b = 0; b < B; ++b) {
        const M2& m = f[k].g ? g[std::size_t(b)] : f[k].m;
        out[b] = k == 0 ? m : mul(m, out[b]);
      }
    }
    if (inverse)
      for (int b = 0; b < B; ++b) out[b] = dag(out[b]);
  }
  static std::vector<F>& buffer() {  // reused: no allocation per op (one Factors at a time)
    thread_local std::vector<F> b;
    return b;
  }
  static M2* out_buffer(int B) {
    thread_local std::vector<M2> b;
    b.resize(std::size_t(B));
    return b.data();
  }
};

// Scratch slot `slot` as the per-sample matrices of op.
template <class T>
sim::BatchMat<T> op_matrices(GateScratch<T>& scratch, int slot, int batch, const PlanOp& op) {
  sim::BatchMat<T> m = scratch.mat(slot, batch);
  m.su2 = op.su2;
  return m;
}

template <class T>
void store(GateScratch<T>& scratch, int batch, int b, const M2& m, int slot = 0) {
  T* base = scratch.data.data() + std::size_t(slot) * 8 * batch + b;
  for (int k = 0; k < 4; ++k) {
    base[std::size_t(k) * batch] = T(m.r[k]);
    base[std::size_t(4 + k) * batch] = T(m.i[k]);
  }
}

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
      sim::Mat<T> k;
      for (int j = 0; j < 4; ++j) k.re[j] = T(m.r[j]), k.im[j] = T(m.i[j]);
      run(k);
    } else {
      scratch.reserve(B);
      M2* m = Factors::out_buffer(B);
      Factors(c, op, theta).matrices(theta, x, x_stride, B, inverse, m);
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
      sim::Mat<T> k;
      for (int j = 0; j < 4; ++j) k.re[j] = T(m.r[j]), k.im[j] = T(m.i[j]);
      sim::apply_matrix(s, op.target, op.controls, k);
      if (s2) sim::apply_matrix(*s2, op.target, op.controls, k);
    }
    return;
  }
  const int B = s.batch;
  scratch.reserve(B);
  M2* fm = Factors::out_buffer(B);
  Factors(c, op, theta).matrices(theta, x, x_stride, B, inverse, fm);
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
      M2* fm = Factors::out_buffer(B);
      Factors(c, *part[k], theta).matrices(theta, x, x_stride, B, inverse, fm);
      for (int b = 0; b < B; ++b) store(scratch, B, b, fm[b], k);
    } else {
      const M2 f = fused_matrix(c, *part[k], theta, nullptr, inverse);
      for (int j = 0; j < 4; ++j) m[k].re[j] = T(f.r[j]), m[k].im[j] = T(f.i[j]);
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

// Two fused ops on different targets with the same controls (e.g. an
// expert's rotations, all controlled by the routing register) run in one pass.
bool pairable(const PlanOp& a, const PlanOp& b) {
  auto single = [](const PlanOp& op) { return op.kind == PlanOp::Kind::Fused && !op.prefix; };
  if (!single(a) || !single(b) || a.target == b.target || !a.perm.empty()) return false;
  if (a.controls.mask != b.controls.mask || a.controls.value != b.controls.value) return false;
  // b's folded permutation runs in the pair's pass (apply_matrix_pair_permute:
  // both per sample; only uncontrolled ops carry one)
  return b.perm.empty() || (a.per_sample && b.per_sample);
}

// An FNV-style hash of the values that define the plan, a word at a time.
// (One multiply per value, not per byte: the key is computed on every
// forward and backward call.)
struct Hasher {
  u64 h = 1469598103934665603ull;
  void mix(u64 v) { h = (h ^ v) * 1099511628211ull; h ^= h >> 29; }
  void add(const void* p, std::size_t n) {
    const unsigned char* b = static_cast<const unsigned char*>(p);
    for (; n >= 8; n -= 8, b += 8) {
      u64 w;
      std::memcpy(&w, b, 8);
      mix(w);
    }
    u64 w = 0;
    std::memcpy(&w, b, n);
    mix(w ^ (u64(n) << 56));
  }
  template <class V>
  void val(const V& v) {
    static_assert(sizeof(V) <= 8);
    u64 w = 0;
    std::memcpy(&w, &v, sizeof v);
    mix(w);
  }
};

u64 plan_key(const Circuit& c, const PlanOptions& o) {
  Hasher h;
  h.val(c.n_qubits);
  h.val(c.gates.size());
  for (const Gate& g : c.gates) {
    h.val(g.kind), h.val(g.target), h.val(g.target2);
    for (const Control& ctl : g.controls) h.val(ctl.qubit), h.val(ctl.on_one);
    h.val(int(g.controls.size()));
    for (const Angle& a : g.angles) h.val(a.source), h.val(a.index), h.val(a.value);
    if (g.kind == GateKind::Matrix)
      for (const cplx& z : g.matrix) h.val(z.real()), h.val(z.imag());
  }
  h.val(o.fuse), h.val(o.permutations), h.val(o.product_prefix), h.val(o.fold_permutations), h.val(o.pairs);
  h.val(o.begin), h.val(o.end);
  h.val(o.keep.size());
  if (!o.keep.empty()) h.add(o.keep.data(), o.keep.size());
  h.val(o.barriers.size());
  if (!o.barriers.empty()) h.add(o.barriers.data(), o.barriers.size() * sizeof(int));
  return h.h;
}

}  // namespace

Plan make_plan(const Circuit& c, const PlanOptions& opt) {
  const int n = c.n_qubits;
  const int end = opt.end < 0 ? int(c.gates.size()) : opt.end;
  if (opt.begin < 0 || opt.begin > end || end > int(c.gates.size()))
    throw std::invalid_argument("make_plan: bad gate range");
  for (std::size_t k = 0; k < opt.barriers.size(); ++k)
    if (opt.barriers[k] <= opt.begin || opt.barriers[k] >= end ||
        (k > 0 && opt.barriers[k] <= opt.barriers[k - 1]))
      throw std::invalid_argument("make_plan: barriers must ascend inside the gate range");
  Plan p;
  p.n_qubits = n;
  std::vector<int> last(std::size_t(std::max(n, 1)), -1);  // latest op touching each qubit
  int segment = 0, first_op = 0;  // this segment's first op: nothing joins an earlier one
  for (int gi = opt.begin; gi < end; ++gi) {
    if (segment < int(opt.barriers.size()) && gi == opt.barriers[std::size_t(segment)])
      ++segment, first_op = int(p.ops.size());
    const Gate& g = c.gates[std::size_t(gi)];
    const sim::Controls ctl = control_mask(g);
    const u64 qs = touched(g);
    int j = -1;
    for (u64 m = qs; m; m &= m - 1) j = std::max(j, last[std::size_t(std::countr_zero(m))]);
    const bool keep = !opt.keep.empty() && opt.keep[std::size_t(gi)];
    const bool swap = g.kind == GateKind::Swap;
    const bool xtype = opt.permutations && (g.kind == GateKind::X || swap);
    PlanOp* prev = j >= first_op ? &p.ops[std::size_t(j)] : nullptr;
    int at = -1;
    if (!keep && opt.fuse && prev && !swap && prev->kind == PlanOp::Kind::Fused &&
        prev->target == g.target && prev->controls.mask == ctl.mask &&
        prev->controls.value == ctl.value) {
      prev->gates.push_back(gi);  // same target and controls: multiply in
      prev->per_sample |= is_per_sample(g);
      prev->diagonal &= opt.permutations && is_diagonal(g.kind);
      prev->su2 &= is_rotation(g.kind);
      at = j;
    } else if (!keep && opt.fuse && xtype && prev && prev->kind == PlanOp::Kind::Permutation &&
               n <= kMaxPermutationQubits) {
      prev->gates.push_back(gi);  // one more X-type gate in the same permutation
      at = j;
    } else {
      PlanOp op;
      op.target = g.target;
      op.controls = ctl;
      op.gates = {gi};
      op.segment = segment;
      if (keep || (swap && !xtype)) {
        op.kind = PlanOp::Kind::Single;
      } else if (xtype) {
        op.kind = PlanOp::Kind::Permutation;
      } else {
        op.kind = PlanOp::Kind::Fused;
        op.per_sample = is_per_sample(g);
        op.diagonal = opt.permutations && is_diagonal(g.kind);
        op.su2 = is_rotation(g.kind);
        op.prefix = opt.fuse && opt.product_prefix && opt.begin == 0 && ctl.mask == 0 && j < 0 &&
                    segment == 0;
        p.has_prefix |= op.prefix;
      }
      p.ops.push_back(std::move(op));
      at = int(p.ops.size()) - 1;
    }
    for (u64 m = qs; m; m &= m - 1) last[std::size_t(std::countr_zero(m))] = at;
  }
  // Permutation tables for groups of several X-type gates.
  for (PlanOp& op : p.ops) {
    if (op.kind != PlanOp::Kind::Permutation || op.gates.size() < 2) continue;
    const u64 dim = u64(1) << n;
    op.perm.resize(dim);
    std::vector<sim::Controls> ctls;
    for (int gi : op.gates) ctls.push_back(control_mask(c.gates[std::size_t(gi)]));
    for (u64 i = 0; i < dim; ++i) {
      u64 k = i;
      for (std::size_t t = 0; t < op.gates.size(); ++t) k = permute_index(c.gates[std::size_t(op.gates[t])], ctls[t], k);
      op.perm[i] = std::uint32_t(k);
    }
    op.moved = sim::permutation_cycles(op.perm.data(), dim);
  }
  p.fold_prefix_permutation = opt.fold_permutations;
  if (opt.fold_permutations) {
    std::vector<PlanOp> ops;
    for (PlanOp& op : p.ops) {
      if (op.kind == PlanOp::Kind::Permutation && !op.perm.empty() && !ops.empty()) {
        PlanOp& prev = ops.back();
        if (prev.kind == PlanOp::Kind::Fused && prev.controls.mask == 0 && !prev.prefix &&
            prev.perm.empty() && prev.segment == op.segment) {
          prev.perm = std::move(op.perm);
          prev.perm_gates = std::move(op.gates);
          continue;
        }
      }
      ops.push_back(std::move(op));
    }
    p.ops = std::move(ops);
  }
  if (opt.pairs) {
    std::vector<PlanOp> ops;
    for (PlanOp& op : p.ops) {
      if (!ops.empty() && pairable(ops.back(), op) && ops.back().segment == op.segment) {
        PlanOp pair;
        pair.kind = PlanOp::Kind::Pair;
        pair.segment = op.segment;
        pair.target = ops.back().target;
        pair.gates = ops.back().gates;
        pair.gates.insert(pair.gates.end(), op.gates.begin(), op.gates.end());
        pair.perm_gates = op.perm_gates;  // the second part's folded permutation, if any
        pair.per_sample = ops.back().per_sample || op.per_sample;
        pair.parts.push_back(std::move(ops.back()));
        pair.parts.push_back(std::move(op));
        ops.back() = std::move(pair);
        continue;
      }
      ops.push_back(std::move(op));
    }
    p.ops = std::move(ops);
  }
  p.n_segments = int(opt.barriers.size()) + 1;
  return p;
}

std::vector<GateRange> find_layers(const Circuit& c) {
  std::vector<GateRange> layers;
  int begin = 0;
  u64 targets = 0;           // of the current run
  sim::Controls controls{};  // shared by the current run's gates
  auto close = [&](int end) {
    if (std::popcount(targets) >= 2) layers.push_back({begin, end});
    begin = end, targets = 0;
  };
  for (int gi = 0; gi < int(c.gates.size()); ++gi) {
    const Gate& g = c.gates[std::size_t(gi)];
    bool fits = g.kind != GateKind::X && g.kind != GateKind::Swap;
    for (int k = 0; k < angle_count(g.kind); ++k)
      if (g.angles[k].source != AngleSource::Constant && !is_rotation(g.kind)) fits = false;
    if (!fits) {
      close(gi);
      begin = gi + 1;
      continue;
    }
    const sim::Controls ctl = control_mask(g);
    if (targets && (ctl.mask != controls.mask || ctl.value != controls.value)) close(gi);
    targets |= u64(1) << g.target;
    controls = ctl;
  }
  close(int(c.gates.size()));
  return layers;
}

namespace {

bool same_gate(const Gate& a, const Gate& b) {
  if (a.kind != b.kind || a.target != b.target || a.target2 != b.target2 ||
      a.controls.size() != b.controls.size() || a.matrix != b.matrix)
    return false;
  for (std::size_t i = 0; i < a.controls.size(); ++i)
    if (a.controls[i].qubit != b.controls[i].qubit || a.controls[i].on_one != b.controls[i].on_one) return false;
  for (std::size_t j = 0; j < a.angles.size(); ++j)
    if (a.angles[j].source != b.angles[j].source || a.angles[j].index != b.angles[j].index ||
        a.angles[j].value != b.angles[j].value)
      return false;
  return true;
}

bool same_circuit(const Circuit& a, const Circuit& b) {
  if (a.n_qubits != b.n_qubits || a.n_params != b.n_params || a.n_features != b.n_features ||
      a.gates.size() != b.gates.size())
    return false;
  for (std::size_t i = 0; i < a.gates.size(); ++i)
    if (!same_gate(a.gates[i], b.gates[i])) return false;
  return true;
}

bool same_options(const PlanOptions& a, const PlanOptions& b) {
  return a.fuse == b.fuse && a.permutations == b.permutations && a.product_prefix == b.product_prefix &&
         a.fold_permutations == b.fold_permutations && a.pairs == b.pairs && a.begin == b.begin &&
         a.end == b.end && a.keep == b.keep && a.barriers == b.barriers;
}

}  // namespace

const Plan& PlanCache::get(const Circuit& c, const PlanOptions& opt) {
  const u64 key = plan_key(c, opt);
  for (std::size_t k = 0; k < entries_.size(); ++k) {
    Entry& e = entries_[k];
    if (e.key == key && same_options(e.options, opt) && same_circuit(e.circuit, c)) {
      last_ = k;
      return e.plan;
    }
  }
  entries_.reserve(kEntries);  // never reallocates: returned plans stay put
  std::size_t slot;
  if (entries_.size() < kEntries) {
    slot = entries_.size();
    entries_.emplace_back();
  } else {
    // Replace the oldest, but never the plan the last call returned: a caller
    // may hold two plans at once (forward_backward's forward and sweep plans).
    if (next_ == last_) next_ = (next_ + 1) % kEntries;
    slot = next_;
    next_ = (next_ + 1) % kEntries;
  }
  last_ = slot;
  Entry& e = entries_[slot];
  e.plan = make_plan(c, opt);
  e.key = key;
  e.circuit = c;
  e.options = opt;
  return e.plan;
}

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

// Bloch vector n of A P A^dagger (= n . sigma) for the Pauli P of a rotation kind.
inline void conjugated_pauli(const M2& a, GateKind k, double* n) {
  static constexpr M2 kX{{0, 1, 1, 0}, {0, 0, 0, 0}}, kY{{0, 0, 0, 0}, {0, -1, 1, 0}},
      kZ{{1, 0, 0, -1}, {0, 0, 0, 0}};
  const M2& p = k == GateKind::RX ? kX : k == GateKind::RY ? kY : kZ;
  const M2 q = mul(mul(a, p), dag(a));
  n[0] = q.r[2], n[1] = q.i[2], n[2] = q.r[0];  // q = [[nz, nx - i ny], [nx + i ny, -nz]]
}

// For sample b < B (only b = 0 if op is shared): the Bloch vectors of op's
// differentiable gates, nv[(j * 3 + t) * nb + b] (nb = B or 1), and, if inv is
// given, the op's inverse inv[b].
void bloch_vectors(const Circuit& c, const PlanOp& op, const char* diff, const double* theta,
                   const double* x, int x_stride, int B, int nd, double* nv, M2* inv) {
  const int m = int(op.gates.size());
  const std::size_t nb = op.per_sample ? std::size_t(B) : 1;
  // The matrices of the gates after the first differentiable one (all, for
  // the inverse): g[k * nb + b] (shared gates once). A rotation last in its
  // run (the bench layers' RX) needs none.
  int from = 0;
  if (!inv)
    while (from < m && !diff[op.gates[std::size_t(from)]]) ++from;
  thread_local std::vector<M2> g;
  g.resize(std::size_t(m) * nb);
  for (int k = from + (inv ? 0 : 1); k < m; ++k) {
    const Gate& gate = c.gates[std::size_t(op.gates[std::size_t(k)])];
    M2* gk = g.data() + std::size_t(k) * nb;
    if (is_per_sample(gate))
      sample_matrices(gate, theta, x, x_stride, B, gk);
    else
      std::fill_n(gk, nb, matrix_of(gate, theta, nullptr));
  }
  // Per sample, walk the gates backwards: A = product of the gates after gate k.
  for (std::size_t b = 0; b < nb; ++b) {
    M2 a = kIdentity;
    int j = nd;
    for (int k = m - 1; k >= 0; --k) {
      const int gi = op.gates[std::size_t(k)];
      if (diff[gi]) {
        double n[3];
        conjugated_pauli(a, c.gates[std::size_t(gi)].kind, n);
        --j;
        for (int t = 0; t < 3; ++t) nv[std::size_t(j * 3 + t) * nb + b] = n[t];
      }
      if (k > from || inv) a = mul(a, g[std::size_t(k) * nb + b]);
    }
    if (inv) inv[b] = dag(a);
  }
}

// Sets ov[t] to null for the Pauli axes t that no Bloch vector n_j has (for
// any sample), so the kernels skip them: a rotation last in its run, or RYs
// only, needs one of the three overlaps.
void drop_unused_axes(int nd, std::size_t nb, const double* nv, double** ov) {
  for (int t = 0; t < 3; ++t) {
    bool used = false;
    for (int j = 0; j < nd && !used; ++j)
      for (std::size_t b = 0; b < nb && !used; ++b) used = nv[std::size_t(j * 3 + t) * nb + b] != 0.0;
    if (!used) ov[t] = nullptr;
  }
}

// grad[j * B + b] = n_j . overlap of sample b (axes dropped above count as 0).
void combine(int nd, int B, bool per_sample, const double* nv, const double* const* ov, double* grad) {
  const std::size_t nb = per_sample ? std::size_t(B) : 1;
  for (int j = 0; j < nd; ++j)
    for (int b = 0; b < B; ++b) {
      const std::size_t i = per_sample ? std::size_t(b) : 0;
      double g = 0;
      for (int t = 0; t < 3; ++t)
        if (ov[t]) g += nv[std::size_t(j * 3 + t) * nb + i] * ov[t][b];
      grad[std::size_t(j) * B + b] = g;
    }
}

int count_diff(const PlanOp& op, const char* diff) {
  int nd = 0;
  for (int gi : op.gates) nd += diff[gi] ? 1 : 0;
  return nd;
}

template <class T>
void adjoint_op(sim::State<T>& phi, sim::State<T>& lam, const Circuit& c, const PlanOp& op,
                const char* diff, const double* theta, const double* x, int x_stride,
                GateScratch<T>& scratch, double* grad) {
  if (op.kind != PlanOp::Kind::Fused || !op.perm.empty())
    throw std::logic_error("adjoint_op: needs a fused op without a folded permutation");
  const int B = phi.batch, nd = count_diff(op, diff);
  const std::size_t nb = op.per_sample ? std::size_t(B) : 1;
  // work: overlaps ov[k][b] (3 x B), then Bloch vectors.
  auto& w = scratch.work;
  w.assign(std::size_t(3) * B + std::size_t(3 * nd) * nb, 0.0);
  double* ov[3] = {w.data(), w.data() + B, w.data() + 2 * B};
  double* nv = w.data() + std::size_t(3) * B;
  M2* inv = Factors::out_buffer(B);
  bloch_vectors(c, op, diff, theta, x, x_stride, B, nd, nv, inv);
  drop_unused_axes(nd, nb, nv, ov);
  if (!op.per_sample) {
    sim::Mat<T> k;
    for (int t = 0; t < 4; ++t) k.re[t] = T(inv[0].r[t]), k.im[t] = T(inv[0].i[t]);
    sim::adjoint_step_overlaps(phi, lam, op.target, op.controls, k, ov);
  } else {
    scratch.reserve(B);
    for (int b = 0; b < B; ++b) store(scratch, B, b, inv[b]);
    sim::adjoint_step_overlaps(phi, lam, op.target, op.controls, op_matrices(scratch, 0, B, op), ov);
  }
  combine(nd, B, op.per_sample, nv, ov, grad);
}

PauliConjugation affine_conjugation(const Circuit& c, const PlanOp& op) {
  PauliConjugation none;
  if (op.kind != PlanOp::Kind::Permutation) return none;
  const int n = c.n_qubits;
  // f(i) = A i ^ k, A by its columns col[q] = A e_q; each gate g maps y to g(y).
  std::vector<u64> col(static_cast<std::size_t>(n));
  for (int q = 0; q < n; ++q) col[std::size_t(q)] = u64(1) << q;
  u64 k = 0;
  for (int gi : op.gates) {
    const Gate& g = c.gates[std::size_t(gi)];
    if (g.controls.size() > 1) return none;  // a Toffoli is not affine
    const u64 t = u64(1) << g.target;
    if (g.kind == GateKind::Swap) {
      if (!g.controls.empty()) return none;
      const u64 t2 = u64(1) << g.target2;
      auto swap_bits = [&](u64 y) { return ((y & t) != 0) == ((y & t2) != 0) ? y : y ^ t ^ t2; };
      for (u64& v : col) v = swap_bits(v);
      k = swap_bits(k);
    } else if (g.kind == GateKind::X && g.controls.empty()) {
      k ^= t;
    } else if (g.kind == GateKind::X) {  // y ^= (bit ctl of y, or its negation) at t
      const Control& ctl = g.controls[0];
      const u64 cb = u64(1) << ctl.qubit;
      for (u64& v : col)
        if (v & cb) v ^= t;
      if (((k & cb) != 0) == ctl.on_one) k ^= t;
    } else {
      return none;
    }
  }
  // A^-1 by Gauss-Jordan elimination over GF(2) on the rows of [A | I].
  std::vector<u64> row(static_cast<std::size_t>(n), 0), inv(static_cast<std::size_t>(n), 0);
  for (int r = 0; r < n; ++r) {
    for (int q = 0; q < n; ++q)
      if ((col[std::size_t(q)] >> r) & 1) row[std::size_t(r)] |= u64(1) << q;
    inv[std::size_t(r)] = u64(1) << r;
  }
  for (int q = 0; q < n; ++q) {
    int p = q;
    while (p < n && !((row[std::size_t(p)] >> q) & 1)) ++p;
    if (p == n) return none;  // not invertible: cannot happen for gates
    std::swap(row[std::size_t(p)], row[std::size_t(q)]);
    std::swap(inv[std::size_t(p)], inv[std::size_t(q)]);
    for (int r = 0; r < n; ++r)
      if (r != q && ((row[std::size_t(r)] >> q) & 1))
        row[std::size_t(r)] ^= row[std::size_t(q)], inv[std::size_t(r)] ^= inv[std::size_t(q)];
  }
  // P X_q P^dagger |i> = |f(f^-1(i) ^ e_q)> = |i ^ A e_q>; P Z_q P^dagger |i> =
  // (-1)^(bit q of f^-1(i)) |i>, with f^-1(i) = A^-1 i ^ A^-1 k: the string of
  // row q of A^-1, negated when bit q of A^-1 k is set.
  PauliConjugation p;
  for (int q = 0; q < n; ++q) {
    const u64 w = inv[std::size_t(q)];
    p.x.push_back({col[std::size_t(q)], 0, 0});
    p.z.push_back({0, w, (std::popcount(w & k) & 1) ? 2 : 0});
  }
  return p;
}

sim::PauliMask conjugated_y(const PauliConjugation& p, int q) {
  const sim::PauliMask& a = p.x[std::size_t(q)];
  const sim::PauliMask& b = p.z[std::size_t(q)];
  return {a.x, b.z, (1 + b.phase) % 4};  // i X^a (+-Z^w)
}

template <class T>
void layer_gradients(const sim::State<T>& phi, const sim::State<T>& lam, const Circuit& c,
                     const PlanOp* ops, std::size_t count, const char* diff, const double* theta,
                     const double* x, int x_stride, GateScratch<T>& scratch, double* grad,
                     const PauliConjugation* through) {
  const int B = phi.batch;
  // work: per op with gradients, its overlaps (3 x B), then its Bloch vectors (3 nd x nb).
  std::size_t size = 0;
  for (std::size_t k = 0; k < count; ++k) {
    const PlanOp& op = ops[k];
    if (op.kind != PlanOp::Kind::Fused || !op.perm.empty())
      throw std::logic_error("layer_gradients: needs fused ops");
    if (op.controls.mask != ops[0].controls.mask || op.controls.value != ops[0].controls.value)
      throw std::logic_error("layer_gradients: a layer's ops share their controls");
    const std::size_t nd = std::size_t(count_diff(op, diff)), nb = op.per_sample ? std::size_t(B) : 1;
    if (nd > 0) size += 3 * std::size_t(B) + 3 * nd * nb;
  }
  auto& w = scratch.work;
  w.assign(size, 0.0);
  std::vector<int> targets;
  std::vector<double*> ov;  // 3 per target, null for an axis no gradient needs
  double* at = w.data();
  for (std::size_t k = 0; k < count; ++k) {
    const PlanOp& op = ops[k];
    const int nd = count_diff(op, diff);
    if (nd == 0) continue;
    const std::size_t nb = op.per_sample ? std::size_t(B) : 1;
    double* o[3] = {at, at + B, at + 2 * B};
    bloch_vectors(c, op, diff, theta, x, x_stride, B, nd, at + 3 * B, nullptr);
    drop_unused_axes(nd, nb, at + 3 * B, o);
    targets.push_back(op.target);
    ov.insert(ov.end(), o, o + 3);
    at += 3 * std::size_t(B) + 3 * std::size_t(nd) * nb;
  }
  // All the layer's overlaps in shared sweeps (the ops sit on different targets).
  if (!through) {
    sim::layer_overlaps(phi, lam, targets.data(), int(targets.size()), ops[0].controls, ov.data());
  } else {
    if (ops[0].controls.mask != 0) throw std::logic_error("layer_gradients: a layer under controls");
    std::vector<sim::PauliMask> str;
    std::vector<double*> to;
    for (int axis = 0; axis < 3; ++axis)  // by axis: strings of one kind share sweeps
      for (std::size_t t = 0; t < targets.size(); ++t) {
        double* o = ov[3 * t + std::size_t(axis)];
        if (!o) continue;
        const int q = targets[t];
        str.push_back(axis == 0 ? through->x[std::size_t(q)] : axis == 1 ? conjugated_y(*through, q) : through->z[std::size_t(q)]);
        to.push_back(o);
      }
    sim::string_overlaps(phi, lam, str.data(), int(str.size()), ops[0].controls, to.data());
  }
  at = w.data();
  std::size_t t = 0;
  for (std::size_t k = 0; k < count; ++k) {
    const PlanOp& op = ops[k];
    const int nd = count_diff(op, diff);
    if (nd == 0) continue;
    const std::size_t nb = op.per_sample ? std::size_t(B) : 1;
    combine(nd, B, op.per_sample, at + 3 * B, ov.data() + 3 * t++, grad);
    grad += std::size_t(nd) * B;
    at += 3 * std::size_t(B) + 3 * std::size_t(nd) * nb;
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
      M2* m = Factors::out_buffer(B);
      if (op.per_sample)
        Factors(c, op, theta).matrices(theta, x, F, B, false, m);
      else
        m[0] = fused_matrix(c, op, theta, nullptr, false);
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
    sim::set_product_state_permuted(s, scratch.product.data(), folded->perm.data(), scratch.buffer);
  else if (p.has_prefix)
    sim::set_product_state(s, scratch.product.data());
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
                            const sim::Controls*);                                              \
  template void adjoint_op<T>(sim::State<T>&, sim::State<T>&, const Circuit&, const PlanOp&,    \
                              const char*, const double*, const double*, int, GateScratch<T>&,  \
                              double*);                                                         \
  template void layer_gradients<T>(const sim::State<T>&, const sim::State<T>&, const Circuit&,  \
                                   const PlanOp*, std::size_t, const char*, const double*,      \
                                   const double*, int, GateScratch<T>&, double*,                \
                                   const PauliConjugation*);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe
