#include "model/routed.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <random>
#include <stdexcept>

#include "circuit/execute.hpp"
#include "grad/shots.hpp"
#include "sim/state.hpp"

namespace qmoe::model {
namespace {

// The routing register's (data register's) parts of a Z string, as bit masks
// over routing bits (and as a string on the data register).
struct SplitString {
  std::uint64_t routing_bits = 0;  // S: bit i set when the string has Z on routing bit i
  PauliString data;                // on data register indices
};

SplitString split_string(const RoutedModel& rm, const PauliString& p) {
  if (!p.is_diagonal()) throw std::invalid_argument("routed execution: observable " + p.str() + " is not a Z string");
  SplitString s;
  for (int q = 0; q < 64; ++q) {
    if (!((p.z >> q) & 1)) continue;
    if (q < int(rm.data_index.size()) && rm.data_index[std::size_t(q)] >= 0) {
      s.data.z |= std::uint64_t(1) << rm.data_index[std::size_t(q)];
      continue;
    }
    const auto it = std::find(rm.routing_qubits.begin(), rm.routing_qubits.end(), q);
    if (it == rm.routing_qubits.end()) throw std::invalid_argument("routed execution: observable on a missing qubit");
    s.routing_bits |= std::uint64_t(1) << (it - rm.routing_qubits.begin());
  }
  return s;
}

double sign(std::uint64_t k, std::uint64_t S) { return (std::popcount(k & S) & 1) ? -1.0 : 1.0; }

// The Z strings of every non-empty subset S of routing bits, on router qubits.
std::vector<PauliString> routing_strings(const RoutedModel& rm) {
  std::vector<PauliString> out;
  for (int S = 1; S < rm.n_outcomes(); ++S) {
    PauliString p;
    for (int i = 0; i < rm.n_routing; ++i)
      if ((S >> i) & 1) p.z |= std::uint64_t(1) << rm.routing_bit_qubit[std::size_t(i)];
    out.push_back(p);
  }
  return out;
}

// The final states of every outcome's data register, normalised, and
// p[b * 2^r + k] (exact, double precision).
struct Branches {
  std::vector<double> p;
  std::vector<sim::State<double>> states;  // [k], batch samples each
};

Branches run_branches(const RoutedModel& rm, const std::vector<double>& theta, const double* x, int batch) {
  const int R = rm.n_outcomes(), F = rm.router.n_features;
  Branches out;
  out.p.resize(std::size_t(batch) * R);
  out.states.resize(std::size_t(R));
  GateScratch<double> scratch;
  scratch.reserve(batch);
  sim::State<double> s = sim::make_state<double>(rm.router.n_qubits, batch);
  run_circuit(rm.router, theta.data(), x, s, scratch);
  sim::marginal_probabilities(s, rm.routing_bit_qubit, out.p.data());
  for (int k = 0; k < R; ++k) {
    sim::State<double>& d = out.states[std::size_t(k)];
    if (!rm.entangled) {
      d = sim::make_state<double>(rm.n_data, batch);
      run_circuit(expert_program(rm, k), theta.data(), x, d, scratch);
      continue;
    }
    // Project on routing outcome k: the data register's conditional state.
    sim::Controls c;
    for (int i = 0; i < rm.n_routing; ++i) {
      const std::uint64_t bit = std::uint64_t(1) << rm.routing_bit_qubit[std::size_t(i)];
      c.mask |= bit;
      if ((k >> i) & 1) c.value |= bit;
    }
    sim::copy_controlled(s, c, d);
    for (int b = 0; b < batch; ++b) {
      const double pk = out.p[std::size_t(b) * R + k];
      const double scale = pk > 0 ? 1.0 / std::sqrt(pk) : 0.0;
      for (std::size_t i = 0; i < d.dim(); ++i) {
        d.re[i * std::size_t(batch) + std::size_t(b)] *= scale;
        d.im[i * std::size_t(batch) + std::size_t(b)] *= scale;
      }
    }
    for (const Gate& g : rm.branch[std::size_t(k)].gates) apply_gate(d, g, theta.data(), x, F, false, scratch);
  }
  return out;
}

}  // namespace

RoutedModel split_routed(const Model& m) {
  if (m.routing_qubits.empty()) throw std::invalid_argument("routed execution needs a QMoE (this model has no routing register)");
  const Circuit& c = m.circuit;
  RoutedModel rm;
  rm.n_routing = int(m.routing_qubits.size());
  rm.routing_qubits = m.routing_qubits;
  rm.n_data = c.n_qubits - rm.n_routing;
  std::vector<int> routing_index(std::size_t(c.n_qubits), -1);  // model qubit -> router qubit (separable)
  {
    std::vector<int> sorted = m.routing_qubits;
    std::sort(sorted.begin(), sorted.end());
    for (int j = 0; j < rm.n_routing; ++j) routing_index[std::size_t(sorted[std::size_t(j)])] = j;
  }
  rm.data_index.assign(std::size_t(c.n_qubits), -1);
  for (int q = 0, i = 0; q < c.n_qubits; ++q)
    if (routing_index[std::size_t(q)] < 0) rm.data_index[std::size_t(q)] = i++, rm.data_qubits.push_back(q);
  auto is_routing = [&](int q) { return routing_index[std::size_t(q)] >= 0; };

  // The measurement comes after the last gate that targets a routing qubit.
  std::size_t cut = 0;
  for (std::size_t gi = 0; gi < c.gates.size(); ++gi) {
    const Gate& g = c.gates[gi];
    if (is_routing(g.target) || (g.target2 >= 0 && is_routing(g.target2))) cut = gi + 1;
  }
  // Before it: entangled when a gate touches both registers.
  for (std::size_t gi = 0; gi < cut; ++gi) {
    const Gate& g = c.gates[gi];
    bool r = is_routing(g.target) || (g.target2 >= 0 && is_routing(g.target2));
    bool d = !is_routing(g.target) || (g.target2 >= 0 && !is_routing(g.target2));
    for (const Control& ctl : g.controls) (is_routing(ctl.qubit) ? r : d) = true;
    rm.entangled = rm.entangled || (r && d);
  }
  auto empty_circuit = [&](int n) {
    Circuit e;
    e.n_qubits = n;
    e.n_params = c.n_params;
    e.n_features = c.n_features;
    return e;
  };
  auto to_data = [&](Gate g) {
    g.target = rm.data_index[std::size_t(g.target)];
    if (g.target2 >= 0) g.target2 = rm.data_index[std::size_t(g.target2)];
    for (Control& ctl : g.controls) ctl.qubit = rm.data_index[std::size_t(ctl.qubit)];
    return g;
  };
  rm.data_prep = empty_circuit(rm.n_data);
  rm.pre = empty_circuit(c.n_qubits);
  for (std::size_t gi = 0; gi < cut; ++gi) add_gate(rm.pre, c.gates[gi]);
  if (rm.entangled) {
    rm.router = empty_circuit(c.n_qubits);
    for (std::size_t gi = 0; gi < cut; ++gi) add_gate(rm.router, c.gates[gi]);
    rm.routing_bit_qubit = m.routing_qubits;
  } else {
    rm.router = empty_circuit(rm.n_routing);
    for (std::size_t gi = 0; gi < cut; ++gi) {
      Gate g = c.gates[gi];
      if (!is_routing(g.target)) {
        add_gate(rm.data_prep, to_data(g));
        continue;
      }
      g.target = routing_index[std::size_t(g.target)];
      if (g.target2 >= 0) g.target2 = routing_index[std::size_t(g.target2)];
      for (Control& ctl : g.controls) ctl.qubit = routing_index[std::size_t(ctl.qubit)];
      add_gate(rm.router, g);
    }
    for (int q : m.routing_qubits) rm.routing_bit_qubit.push_back(routing_index[std::size_t(q)]);
  }
  // After it: each gate goes to every outcome its routing controls agree with.
  rm.branch.assign(std::size_t(rm.n_outcomes()), empty_circuit(rm.n_data));
  for (std::size_t gi = cut; gi < c.gates.size(); ++gi) {
    Gate g = c.gates[gi];
    std::uint64_t mask = 0, value = 0;  // over routing bits
    std::vector<Control> kept;
    for (const Control& ctl : g.controls) {
      const auto it = std::find(m.routing_qubits.begin(), m.routing_qubits.end(), ctl.qubit);
      if (it == m.routing_qubits.end()) {
        kept.push_back(ctl);
        continue;
      }
      const std::uint64_t bit = std::uint64_t(1) << (it - m.routing_qubits.begin());
      mask |= bit;
      if (ctl.on_one) value |= bit;
    }
    g.controls = kept;
    const Gate d = to_data(g);
    for (int k = 0; k < rm.n_outcomes(); ++k)
      if ((std::uint64_t(k) & mask) == value) add_gate(rm.branch[std::size_t(k)], d);
  }
  return rm;
}

Circuit expert_program(const RoutedModel& rm, int k) {
  if (rm.entangled)
    throw std::invalid_argument("the joint routing encoder entangles the registers before the routing measurement: "
                                "expert " + std::to_string(k) + " has no program of its own (it needs feed-forward)");
  Circuit c = rm.data_prep;
  const Circuit& b = rm.branch.at(std::size_t(k));
  c.gates.insert(c.gates.end(), b.gates.begin(), b.gates.end());
  return c;
}

Circuit on_model_qubits(const RoutedModel& rm, const Circuit& d) {
  Circuit c;
  c.n_qubits = rm.n_data + rm.n_routing;
  c.n_params = d.n_params;
  c.n_features = d.n_features;
  for (Gate g : d.gates) {
    g.target = rm.data_qubits[std::size_t(g.target)];
    if (g.target2 >= 0) g.target2 = rm.data_qubits[std::size_t(g.target2)];
    for (Control& ctl : g.controls) ctl.qubit = rm.data_qubits[std::size_t(ctl.qubit)];
    add_gate(c, g);
  }
  return c;
}

PieceExpectations exact_engine(const std::vector<double>& theta) {
  return [&theta](int, const Circuit& c, const double* x, int batch, const std::vector<PauliString>& obs, double* out) {
    Workspace<double> ws;
    ws.keep_states = false;
    forward(c, theta, x, batch, obs, out, ws);
  };
}

PieceExpectations trajectory_engine(const std::vector<double>& theta, const NoiseModel& noise, int trajectories,
                                    std::uint64_t seed) {
  return [&theta, &noise, trajectories, seed](int piece, const Circuit& c, const double* x, int batch,
                                              const std::vector<PauliString>& obs, double* out) {
    noisy_forward<double>(c, theta, x, batch, obs, noise, trajectories, sim::mix64(seed, 0x91ece000ULL + std::uint64_t(piece)),
                          out);
  };
}

PieceExpectations density_engine(const std::vector<double>& theta, const NoiseModel& noise) {
  return [&theta, &noise](int, const Circuit& c, const double* x, int batch, const std::vector<PauliString>& obs,
                          double* out) { density_forward(c, theta, x, batch, obs, noise, out); };
}

void routed_forward(const RoutedModel& rm, const Model& m, const std::vector<double>& theta, const double* x,
                    int batch, const PieceExpectations* engine, double* expvals) {
  check_inputs(m.circuit, theta.size(), x ? std::size_t(m.circuit.n_features) * batch : 0, batch);
  const int R = rm.n_outcomes(), K = int(m.observables.size());
  std::vector<SplitString> split;
  for (const PauliString& p : m.observables) split.push_back(split_string(rm, p));
  // p[b * R + k] and z[k][b * K + j] = <data part of O_j> after outcome k.
  std::vector<double> p(std::size_t(batch) * R);
  std::vector<std::vector<double>> z(std::size_t(R), std::vector<double>(std::size_t(batch) * K, 1.0));
  if (rm.entangled) {
    if (engine)
      throw std::invalid_argument("routed execution of a QMoE with the joint routing encoder runs exactly or with "
                                  "shots only: its registers are entangled before the routing measurement");
    const Branches br = run_branches(rm, theta, x, batch);
    p = br.p;
    for (int k = 0; k < R; ++k)
      for (int j = 0; j < K; ++j) {
        if (split[std::size_t(j)].data.z == 0) continue;
        std::vector<double> e(static_cast<std::size_t>(batch));
        sim::expval_pauli(br.states[std::size_t(k)], 0, split[std::size_t(j)].data.z, e.data());
        for (int b = 0; b < batch; ++b) z[std::size_t(k)][std::size_t(b) * K + j] = e[std::size_t(b)];
      }
  } else {
    const PieceExpectations exact = exact_engine(theta);
    const PieceExpectations& run = engine ? *engine : exact;
    // p_k from the router's Z strings: p_k = 2^-r sum_S (-1)^{|k & S|} <Z_S>.
    const std::vector<PauliString> rs = routing_strings(rm);
    std::vector<double> zs(std::size_t(batch) * rs.size());
    if (!rs.empty()) run(0, rm.router, x, batch, rs, zs.data());
    for (int b = 0; b < batch; ++b)
      for (int k = 0; k < R; ++k) {
        double s = 1.0;
        for (int S = 1; S < R; ++S) s += sign(std::uint64_t(k), std::uint64_t(S)) * zs[std::size_t(b) * rs.size() + std::size_t(S - 1)];
        p[std::size_t(b) * R + k] = s / double(R);
      }
    // Each outcome's program with the data parts that are not the identity.
    std::vector<PauliString> obs;
    std::vector<int> which;
    for (int j = 0; j < K; ++j)
      if (split[std::size_t(j)].data.z != 0) obs.push_back(split[std::size_t(j)].data), which.push_back(j);
    std::vector<double> e(std::size_t(batch) * obs.size());
    for (int k = 0; k < R && !obs.empty(); ++k) {
      run(1 + k, expert_program(rm, k), x, batch, obs, e.data());
      for (int b = 0; b < batch; ++b)
        for (std::size_t i = 0; i < obs.size(); ++i)
          z[std::size_t(k)][std::size_t(b) * K + std::size_t(which[i])] = e[std::size_t(b) * obs.size() + i];
    }
  }
  for (int b = 0; b < batch; ++b)
    for (int j = 0; j < K; ++j) {
      double s = 0;
      for (int k = 0; k < R; ++k)
        s += p[std::size_t(b) * R + k] * sign(std::uint64_t(k), split[std::size_t(j)].routing_bits) *
             z[std::size_t(k)][std::size_t(b) * K + j];
      expvals[std::size_t(b) * K + j] = s;
    }
}

void routed_shots(const RoutedModel& rm, const Model& m, const std::vector<double>& theta, const double* x,
                  int batch, long shots, std::uint64_t seed, double* expvals) {
  check_inputs(m.circuit, theta.size(), x ? std::size_t(m.circuit.n_features) * batch : 0, batch);
  if (shots < 1) throw std::invalid_argument("shots must be >= 1");
  const int R = rm.n_outcomes(), K = int(m.observables.size()), F = m.circuit.n_features;
  std::vector<SplitString> split;
  for (const PauliString& p : m.observables) split.push_back(split_string(rm, p));
  const Branches br = run_branches(rm, theta, x, batch);
  for (int b = 0; b < batch; ++b) {
    const double* xb = x ? x + std::size_t(b) * F : nullptr;
    const std::uint64_t key = input_key(0x2073edULL, seed, xb, xb ? F : 0);
    // k per shot from p_k (53-bit uniforms from the key), then the data
    // register's outcome from branch k's state.
    std::vector<double> cdf(static_cast<std::size_t>(R));
    double acc = 0;
    for (int k = 0; k < R; ++k) cdf[std::size_t(k)] = acc += br.p[std::size_t(b) * R + k];
    std::vector<long> count(std::size_t(R), 0);
    for (long t = 0; t < shots; ++t) {
      const double u = sim::unit_double(sim::mix64(key, std::uint64_t(t))) * acc;
      const int k = int(std::min<std::ptrdiff_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin(), R - 1));
      ++count[std::size_t(k)];
    }
    std::vector<double> sum(std::size_t(K), 0.0);
    for (int k = 0; k < R; ++k) {
      if (count[std::size_t(k)] == 0) continue;
      sim::BasisSampler smp = sim::make_sampler(br.states[std::size_t(k)], b, sim::mix64(key, 0xe0000ULL + std::uint64_t(k)));
      for (long t = 0; t < count[std::size_t(k)]; ++t) {
        const std::uint64_t v = smp.next();
        for (int j = 0; j < K; ++j)
          sum[std::size_t(j)] += sign(std::uint64_t(k), split[std::size_t(j)].routing_bits) *
                                 z_string_value(split[std::size_t(j)].data, v);
      }
    }
    for (int j = 0; j < K; ++j) expvals[std::size_t(b) * K + j] = sum[std::size_t(j)] / double(shots);
  }
}

}  // namespace qmoe::model
