#include "circuit/qasm_dynamic.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

#include "circuit/execute.hpp"
#include "sim/rng.hpp"
#include "sim/state.hpp"

namespace qmoe {
namespace {

template <class T>
struct Branch {
  sim::State<T> s;
  std::vector<char> bits;  // every classical bit, 0 or 1
  double weight = 1;       // probability (exact walk)
  long shots = 0;          // shots that reach this branch (sampled walk)
  std::uint64_t key = 0;   // the branch's place in the tree, for seeds
  std::size_t op = 0, k = 0;  // next step, and within a measure / reset its next qubit
};

// Probability mass of qubit q at 0 and at 1 (summed in double, in index order).
template <class T>
void masses(const sim::State<T>& s, int q, double& m0, double& m1) {
  const std::size_t dim = s.dim(), bit = std::size_t(1) << q;
  m0 = m1 = 0;
  for (std::size_t hi = 0; hi < dim; hi += 2 * bit)
    for (std::size_t i = hi; i < hi + bit; ++i) {
      m0 += double(s.re[i]) * double(s.re[i]) + double(s.im[i]) * double(s.im[i]);
      m1 += double(s.re[i + bit]) * double(s.re[i + bit]) + double(s.im[i + bit]) * double(s.im[i + bit]);
    }
}

// Project qubit q on `outcome` (mass: its probability mass) and renormalise;
// with `to_zero`, move the kept amplitudes to q = 0 (a reset that read 1).
template <class T>
void collapse(sim::State<T>& s, int q, int outcome, double mass, bool to_zero) {
  const std::size_t dim = s.dim(), bit = std::size_t(1) << q;
  const T scale = T(1 / std::sqrt(mass));
  for (std::size_t hi = 0; hi < dim; hi += 2 * bit)
    for (std::size_t i0 = hi; i0 < hi + bit; ++i0) {
      const std::size_t keep = outcome ? i0 + bit : i0, drop = outcome ? i0 : i0 + bit;
      const T re = s.re[keep] * scale, im = s.im[keep] * scale;
      s.re[drop] = s.im[drop] = 0;
      s.re[keep] = re;
      s.im[keep] = im;
      if (to_zero && outcome == 1) {
        std::swap(s.re[i0], s.re[i0 + bit]);
        std::swap(s.im[i0], s.im[i0 + bit]);
      }
    }
}

template <class T>
class Walker {
 public:
  Walker(const ParsedQasm& p, bool exact, bool counts, const DynamicLimits& limits)
      : p_(p), exact_(exact), want_counts_(counts), limits_(limits) {
    const int n = p.circuit.n_qubits;
    if (n < 1) throw std::invalid_argument("dynamic program: no qubits");
    state_bytes_ = (std::size_t(2) * sizeof(T)) << n;
    ev_.assign(std::size_t(n), 0.0);
    out_.ones.assign(std::size_t(n), 0);
    for (const QasmOp& op : p.ops)
      if (op.kind == QasmOp::Kind::Measure)
        for (std::size_t k = 0; k < op.qubits.size(); ++k)
          if (op.at_end[k]) deferred_.push_back({op.qubits[k], op.bits[k]});
    scratch_.reserve(1);
  }

  Branch<T> root(long shots, std::uint64_t seed) const {
    Branch<T> b;
    b.s = sim::make_state<T>(p_.circuit.n_qubits, 1);
    long n_bits = 0;
    for (const QasmRegister& r : p_.cregs) n_bits += r.size;
    b.bits.assign(std::size_t(n_bits), 0);
    b.shots = shots;
    b.key = sim::mix64(0xd7a3c0ffee51ab5eULL, seed);
    return b;
  }

  // Runs b to the end of the program, and every branch it splits into.
  void walk(Branch<T> b) {
    const std::vector<QasmOp>& ops = p_.ops;
    while (b.op < ops.size()) {
      const QasmOp& op = ops[b.op];
      if (b.k == 0 && op.cond_reg >= 0 && !holds(op, b.bits)) {
        ++b.op;
        continue;
      }
      if (op.kind == QasmOp::Kind::Gates) {
        for (std::size_t g = op.begin; g < op.end; ++g)
          apply_gate(b.s, p_.circuit.gates[g], p_.theta.data(), nullptr, 0, false, scratch_);
        ++b.op;
        continue;
      }
      const bool reset = op.kind == QasmOp::Kind::Reset;
      const std::size_t k = b.k;
      if (++b.k == op.qubits.size()) b.k = 0, ++b.op;
      if (!reset && op.at_end[k]) continue;  // read from the final state
      const int q = op.qubits[k];
      const long bit = reset ? -1 : op.bits[k];
      double m0, m1;
      masses(b.s, q, m0, m1);
      const double p1 = m1 / (m0 + m1), p0 = m0 / (m0 + m1);
      const std::uint64_t event = sim::mix64(sim::mix64(b.key, b.op), b.k);  // unique per step and qubit
      int only = p1 <= kQasmBranchCutoff ? 0 : p0 <= kQasmBranchCutoff ? 1 : -1;
      long n1 = 0;
      if (only < 0 && !exact_) {
        std::mt19937_64 rng(event);
        n1 = std::binomial_distribution<long>(b.shots, p1)(rng);
        only = n1 == 0 ? 0 : n1 == b.shots ? 1 : -1;
      }
      if (only >= 0) {
        settle(b, q, bit, only, only ? m1 : m0, reset, event);
        continue;
      }
      // Two branches: b becomes outcome 0, `other` outcome 1.
      if (exact_ && ++splits_ >= limits_.max_branches)
        throw QasmBranchLimit("the exact expectations need more than " + std::to_string(limits_.max_branches) +
                              " branches (outcomes of mid-circuit measurements and resets)");
      if ((held_ + 2) * state_bytes_ > limits_.max_state_bytes)
        throw QasmBranchLimit("branching would keep " + std::to_string(held_ + 2) + " states of " +
                              std::to_string(p_.circuit.n_qubits) + " qubits at once (limit " +
                              std::to_string(limits_.max_state_bytes >> 20) + " MiB)");
      Branch<T> other = b;
      if (exact_) {
        b.weight *= p0;
        other.weight *= p1;
      } else {
        other.shots = n1;
        b.shots -= n1;
      }
      settle(b, q, bit, 0, m0, reset, event);
      settle(other, q, bit, 1, m1, reset, event);
      // The branch with fewer shots first (bounds the copies held); the other continues here.
      if (!exact_ && other.shots > b.shots) std::swap(b, other);
      ++held_;
      walk(std::move(other));
      --held_;
    }
    leaf(b);
  }

  std::vector<double> ev_;  // exact walk: sum of weight * <Z_q>
  DynamicShots out_;

 private:
  const ParsedQasm& p_;
  bool exact_, want_counts_;
  DynamicLimits limits_;
  std::size_t state_bytes_ = 0;
  std::size_t held_ = 0;  // states kept for branches still to run
  long splits_ = 0;
  std::vector<std::pair<int, long>> deferred_;  // at_end measurements, in order
  GateScratch<T> scratch_;

  bool holds(const QasmOp& op, const std::vector<char>& bits) const {
    const QasmRegister& r = p_.cregs[std::size_t(op.cond_reg)];
    if (r.size < 64 && (op.cond_value >> r.size) != 0) return false;  // the register cannot hold it
    for (int i = 0; i < r.size; ++i) {
      const int want = i < 64 ? int((op.cond_value >> i) & 1) : 0;
      if (bits[std::size_t(r.offset + i)] != want) return false;
    }
    return true;
  }

  void settle(Branch<T>& b, int q, long bit, int outcome, double mass, bool reset, std::uint64_t event) {
    collapse(b.s, q, outcome, mass, reset);
    if (bit >= 0) b.bits[std::size_t(bit)] = char(outcome);
    b.key = sim::mix64(event, std::uint64_t(outcome) + 1);
  }

  void leaf(const Branch<T>& b) {
    const int n = p_.circuit.n_qubits;
    ++out_.branches;
    if (exact_) {
      std::vector<double> z(std::size_t(n), 0.0);
      sim::expval_z_all(b.s, z.data());
      for (int q = 0; q < n; ++q) ev_[std::size_t(q)] += b.weight * z[std::size_t(q)];
      return;
    }
    sim::BasisSampler smp = sim::make_sampler(b.s, 0, sim::mix64(b.key, 0x1eafULL));
    std::vector<char> bits;
    for (long shot = 0; shot < b.shots; ++shot) {
      const std::uint64_t x = smp.next();
      for (int q = 0; q < n; ++q) out_.ones[std::size_t(q)] += long((x >> q) & 1);
      if (!want_counts_) continue;
      bits = b.bits;
      for (const auto& [q, c] : deferred_) bits[std::size_t(c)] = char((x >> q) & 1);
      ++out_.counts[classical_bits(p_, bits)];
    }
  }
};

}  // namespace

template <class T>
std::vector<double> dynamic_expval_z(const ParsedQasm& p, const DynamicLimits& limits) {
  Walker<T> w(p, true, false, limits);
  w.walk(w.root(0, 0));
  return w.ev_;
}

template <class T>
DynamicShots dynamic_shots(const ParsedQasm& p, long shots, std::uint64_t seed, bool counts,
                           const DynamicLimits& limits) {
  if (shots < 1) throw std::invalid_argument("dynamic_shots: shots must be positive");
  Walker<T> w(p, false, counts, limits);
  w.walk(w.root(shots, seed));
  return std::move(w.out_);
}

template std::vector<double> dynamic_expval_z<double>(const ParsedQasm&, const DynamicLimits&);
template std::vector<double> dynamic_expval_z<float>(const ParsedQasm&, const DynamicLimits&);
template DynamicShots dynamic_shots<double>(const ParsedQasm&, long, std::uint64_t, bool, const DynamicLimits&);
template DynamicShots dynamic_shots<float>(const ParsedQasm&, long, std::uint64_t, bool, const DynamicLimits&);

}  // namespace qmoe
