// PlanCache (plan.hpp): the plans of the last few circuits, keyed by a hash
// of the circuit and the options and checked in full on a hit.
#include <cstring>

#include "circuit/plan.hpp"

namespace qmoe {
namespace {

using u64 = std::uint64_t;

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

}  // namespace qmoe
