#include "grad/noise.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "circuit/execute.hpp"
#include "sim/density_matrix.hpp"
#include "sim/rng.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace qmoe {

namespace {
double pick(const std::vector<QubitNoise>& qs, int q, double QubitNoise::*field, double global) {
  if (q >= 0 && std::size_t(q) < qs.size() && qs[std::size_t(q)].*field >= 0) return qs[std::size_t(q)].*field;
  return global;
}

// The qubits gate g touches, target(s) first, then controls (the order the
// noise channels follow after it): their count, written to out.
int gate_qubits(const Gate& g, int (&out)[66]) {
  int n = 0;
  out[n++] = g.target;
  if (g.kind == GateKind::Swap) out[n++] = g.target2;
  for (const Control& ctl : g.controls) out[n++] = ctl.qubit;
  return n;
}
}  // namespace

double NoiseModel::gate_error(int q, int n) const {
  if (n <= 1) return pick(qubits, q, &QubitNoise::p1, p1);
  const double two = pick(qubits, q, &QubitNoise::p2, p2);
  if (n == 2) return two;
  return pick(qubits, q, &QubitNoise::p_multi, p_multi >= 0 ? p_multi : two);
}
double NoiseModel::amp(int q) const { return pick(qubits, q, &QubitNoise::amp_damping, amp_damping); }
double NoiseModel::phase(int q) const { return pick(qubits, q, &QubitNoise::phase_damping, phase_damping); }
double NoiseModel::flip01(int q) const { return pick(qubits, q, &QubitNoise::readout_01, flip01()); }
double NoiseModel::flip10(int q) const { return pick(qubits, q, &QubitNoise::readout_10, flip10()); }

bool NoiseModel::has_damping() const {
  if (amp_damping != 0.0 || phase_damping != 0.0) return true;
  for (const QubitNoise& n : qubits)
    if (n.amp_damping > 0 || n.phase_damping > 0) return true;
  return false;
}

bool NoiseModel::has_readout() const {
  if (flip01() != 0.0 || flip10() != 0.0) return true;
  for (const QubitNoise& n : qubits)
    if (n.readout_01 > 0 || n.readout_10 > 0) return true;
  return false;
}

bool NoiseModel::empty() const {
  if (p1 != 0.0 || p2 != 0.0 || p_multi > 0 || has_damping() || has_readout()) return false;
  for (const QubitNoise& n : qubits)
    if (n.p1 > 0 || n.p2 > 0 || n.p_multi > 0) return false;
  return true;
}

void NoiseModel::validate() const {
  auto check = [](double p, const char* what) {
    if (!(p >= 0.0 && p <= 1.0))
      throw std::invalid_argument(std::string(what) + " must be a probability in [0, 1], not " + std::to_string(p));
  };
  check(p1, "1-qubit gate error");
  check(p2, "multi-qubit gate error");
  check(readout, "read-out error");
  check(amp_damping, "amplitude damping");
  check(phase_damping, "phase damping");
  if (readout_01 >= 0) check(readout_01, "read-out error 0->1");
  if (readout_10 >= 0) check(readout_10, "read-out error 1->0");
  if (p_multi >= 0) check(p_multi, "multi-qubit (3+) gate error");
  for (const QubitNoise& n : qubits)
    for (double v : {n.p1, n.p2, n.p_multi, n.amp_damping, n.phase_damping, n.readout_01, n.readout_10})
      if (v >= 0) check(v, "a qubit's error");
}

std::vector<ReadoutTerm> readout_terms(const std::vector<PauliString>& obs, const NoiseModel& noise) {
  // Without per-qubit values and symmetric: the scale (1 - 2r)^w, as always.
  const bool uniform = noise.qubits.empty() && noise.flip01() == noise.flip10();
  std::vector<ReadoutTerm> out;
  for (std::size_t k = 0; k < obs.size(); ++k) {
    const PauliString& p = obs[k];
    const std::uint64_t support = p.x | p.z;
    const int w = std::popcount(support);
    if (uniform) {  // only T = all of O's qubits
      out.push_back({int(k), std::pow(1.0 - 2.0 * noise.flip01(), w), p});
      continue;
    }
    if (w > 20) throw std::invalid_argument("asymmetric read-out error: observable on more than 20 qubits");
    // every subset T of the support (bits of `support` in order)
    std::vector<int> qs;
    for (int q = 0; q < 64; ++q)
      if ((support >> q) & 1) qs.push_back(q);
    for (std::uint64_t t = 0; t < (std::uint64_t(1) << w); ++t) {
      PauliString sub;
      double coef = 1.0;
      for (int i = 0; i < w; ++i) {
        const int q = qs[std::size_t(i)];
        const std::uint64_t bit = std::uint64_t(1) << q;
        const double e01 = noise.flip01(q), e10 = noise.flip10(q);
        const double alpha = e10 - e01, beta = 1.0 - e01 - e10;
        if ((t >> i) & 1) {
          sub.x |= p.x & bit, sub.z |= p.z & bit;
          coef *= beta;
        } else {
          coef *= alpha;
        }
      }
      if (coef != 0.0) out.push_back({int(k), coef, sub});
    }
  }
  return out;
}

Circuit error_realisation(const Circuit& c, const NoiseModel& noise, std::uint64_t seed) {
  noise.validate();
  Circuit out = c;
  out.gates.clear();
  out.gates.reserve(c.gates.size() * 2);
  // Appends X, Y or Z on q with probabilities px, py, pz (one uniform draw u).
  const auto pauli = [&](int q, double u, double px, double py, double pz) {
    if (u < px) out.gates.push_back(make_gate(GateKind::X, q));
    else if (u < px + py) out.gates.push_back(make_gate(GateKind::Y, q));
    else if (u < px + py + pz) out.gates.push_back(make_gate(GateKind::Z, q));
  };
  const auto draw = [&](std::uint64_t gi, int q, std::uint64_t channel) {
    return sim::unit_double(sim::mix64(sim::mix64(sim::mix64(seed, gi), std::uint64_t(q)), channel));
  };
  for (std::size_t gi = 0; gi < c.gates.size(); ++gi) {
    const Gate& g = c.gates[gi];
    out.gates.push_back(g);
    std::vector<int> qubits{g.target};  // the gate's qubits: target(s), then controls
    if (g.kind == GateKind::Swap) qubits.push_back(g.target2);
    for (const Control& ctl : g.controls) qubits.push_back(ctl.qubit);
    const int nq = int(qubits.size());
    for (int q : qubits) {
      const double p = noise.gate_error(q, nq), G = noise.amp(q), L = noise.phase(q);
      pauli(q, draw(gi, q, 1), p / 3, p / 3, p / 3);
      pauli(q, draw(gi, q, 2), G / 4, G / 4, 0.5 * (1 - G / 2 - std::sqrt(1 - G)));
      pauli(q, draw(gi, q, 3), 0, 0, 0.5 * (1 - std::sqrt(1 - L)));
    }
  }
  for (int q = 0; q < c.n_qubits; ++q)
    pauli(q, draw(c.gates.size(), q, 4), 0.5 * (noise.flip01(q) + noise.flip10(q)), 0, 0);
  return out;
}

namespace {

void check_noise(const NoiseModel& noise, int trajectories) {
  noise.validate();
  if (trajectories < 1) throw std::invalid_argument("trajectories must be >= 1");
}

// Trajectories run together as the batch of one state, at most this many
// amplitudes (16 MiB in double) per state.
constexpr std::size_t kTrajectoryAmplitudes = std::size_t(1) << 20;

int trajectory_chunk(int n_qubits, int trajectories) {
  const std::size_t per = std::size_t(1) << n_qubits;
  return int(std::clamp<std::size_t>(kTrajectoryAmplitudes / per, 1, std::size_t(std::min(trajectories, 64))));
}

// The hash every error of one sample's trajectories starts from.
std::uint64_t sample_key(std::uint64_t seed, const double* x, int n_features) {
  std::uint64_t h = sim::mix64(0x7a0153ULL, seed);
  for (int f = 0; f < n_features; ++f) {
    std::uint64_t bits;
    std::memcpy(&bits, &x[f], sizeof bits);
    h = sim::mix64(h, bits);
  }
  return h;
}

// The circuit for one input: feature angles become constants, so every
// trajectory of that input shares each gate's matrix.
Circuit bind_features(const Circuit& c, const double* x) {
  Circuit b = c;
  if (!x) return b;
  for (Gate& g : b.gates)
    for (int j = 0; j < angle_count(g.kind); ++j) {
      Angle& a = g.angles[std::size_t(j)];
      if (a.source == AngleSource::Feature) a = Angle::constant(a.value * x[a.index]);
    }
  return b;
}

// s <- trajectories t0 .. t0 + s.batch - 1 of a feature-free circuit (see
// bind_features), each with its own sampled Pauli errors.
template <class T>
void run_trajectories(const Circuit& c, const double* theta, const NoiseModel& noise, std::uint64_t key,
                      int t0, sim::State<T>& s, GateScratch<T>& scratch, std::vector<std::uint8_t>& pauli) {
  std::vector<double> p_one;
  const int B = s.batch;
  sim::set_zero_state(s);
  pauli.resize(std::size_t(B));
  for (std::size_t gi = 0; gi < c.gates.size(); ++gi) {
    const Gate& g = c.gates[gi];
    apply_gate(s, g, theta, nullptr, 0, false, scratch);
    int qubits[66];
    const int nq = gate_qubits(g, qubits);
    for (int k = 0; k < nq; ++k) {
      const int q = qubits[k];
      const double p = noise.gate_error(q, nq);
      // the uniform draw of trajectory b for this (gate, qubit) and channel
      auto draw = [&](int b, std::uint64_t channel) {
        std::uint64_t h = sim::mix64(sim::mix64(sim::mix64(key, std::uint64_t(t0 + b)), gi), std::uint64_t(q));
        return sim::unit_double(channel ? sim::mix64(h, channel) : h);
      };
      if (p > 0.0) {
        bool any = false;
        for (int b = 0; b < B; ++b) {
          const double u = draw(b, 0);
          // u < p: an error; u / p is then uniform in [0, 1) and picks X, Y or Z.
          pauli[std::size_t(b)] = u < p ? std::uint8_t(1 + std::min(2, int(3.0 * u / p))) : 0;
          any = any || pauli[std::size_t(b)] != 0;
        }
        if (any) sim::apply_pauli_per_sample(s, q, pauli.data());
      }
      if (noise.amp(q) > 0.0) {
        // jump (K1) with probability G P(1), else K0; each renormalised.
        const double G = noise.amp(q);
        p_one.resize(std::size_t(2) * B);
        sim::marginal_probabilities(s, {q}, p_one.data());
        for (int b = 0; b < B; ++b) {
          const double p1 = p_one[std::size_t(2) * b + 1], jump = G * p1;
          Mat2 m;
          if (draw(b, 0xa3d) < jump) m = {0.0, 1.0 / std::sqrt(p1), 0.0, 0.0};
          else m = {1.0 / std::sqrt(1.0 - jump), 0.0, 0.0, std::sqrt(1.0 - G) / std::sqrt(1.0 - jump)};
          scratch.set(0, B, b, m);
        }
        sim::apply_matrix(s, q, sim::Controls{}, scratch.mat(0, B));
      }
      if (noise.phase(q) > 0.0) {
        const double z = 0.5 * (1.0 - std::sqrt(1.0 - noise.phase(q)));
        bool any = false;
        for (int b = 0; b < B; ++b) {
          pauli[std::size_t(b)] = draw(b, 0x9d) < z ? 3 : 0;
          any = any || pauli[std::size_t(b)] != 0;
        }
        if (any) sim::apply_pauli_per_sample(s, q, pauli.data());
      }
    }
  }
}

}  // namespace

template <class T>
void noisy_forward(const Circuit& c, const std::vector<double>& theta, const double* x, int batch,
                   const std::vector<PauliString>& obs, const NoiseModel& noise, int trajectories,
                   std::uint64_t seed, double* expvals, double* std_errors) {
  check_inputs(c, theta.size(), x ? std::size_t(c.n_features) * batch : 0, batch);
  check_noise(noise, trajectories);
  check_observables(c, obs);
  // The strings the trajectories estimate: the observables, or with an
  // asymmetric read-out error the sub-strings of readout_terms.
  const std::vector<ReadoutTerm> terms = readout_terms(obs, noise);
  std::vector<PauliString> run_obs;
  std::vector<int> term_index(terms.size(), -1);
  for (std::size_t i = 0; i < terms.size(); ++i)
    if (terms[i].string.x | terms[i].string.z) term_index[i] = int(run_obs.size()), run_obs.push_back(terms[i].string);
  const int K = int(run_obs.size()), F = c.n_features, K_out = int(obs.size());
  const int chunk = trajectory_chunk(c.n_qubits, trajectories);
  const int n_chunks = (trajectories + chunk - 1) / chunk;
  // One input: its circuit (features bound) and the key of its errors.
  struct Input {
    Circuit circuit;
    std::uint64_t key;
  };
  auto input = [&](int b) {
    const double* xb = x ? x + std::size_t(b) * F : nullptr;
    return Input{bind_features(c, xb), sample_key(seed, xb, xb ? F : 0)};
  };
  // Sum of <O_k> over chunk j of an input's trajectories, into out[K].
  struct Worker {
    sim::State<T> s;
    GateScratch<T> scratch;
    std::vector<std::uint8_t> pauli;
    std::vector<double> ev, value;
  };
  // out[K]: the chunk's sums of the estimated strings; sq[K_out]: its sums of
  // each observable's squared per-trajectory value (for the standard error).
  auto run_chunk = [&](Worker& w, const Input& in, int j, double* out, double* sq) {
    const int t0 = j * chunk, nt = std::min(chunk, trajectories - t0);
    if (w.s.batch != nt || w.s.n_qubits != c.n_qubits) w.s = sim::make_state<T>(c.n_qubits, nt);
    w.scratch.reserve(nt);
    run_trajectories(in.circuit, theta.data(), noise, in.key, t0, w.s, w.scratch, w.pauli);
    w.ev.resize(std::size_t(nt) * K);
    if (K > 0) expectations(w.s, run_obs, w.ev.data());
    std::fill(out, out + K, 0.0);
    for (int t = 0; t < nt; ++t)
      for (int k = 0; k < K; ++k) out[k] += w.ev[std::size_t(t) * K + k];
    std::fill(sq, sq + K_out, 0.0);
    w.value.resize(std::size_t(K_out));
    for (int t = 0; t < nt; ++t) {
      std::fill(w.value.begin(), w.value.end(), 0.0);
      for (std::size_t i = 0; i < terms.size(); ++i)
        w.value[std::size_t(terms[i].observable)] +=
            terms[i].coef * (term_index[i] < 0 ? 1.0 : w.ev[std::size_t(t) * K + std::size_t(term_index[i])]);
      for (int k = 0; k < K_out; ++k) sq[k] += w.value[std::size_t(k)] * w.value[std::size_t(k)];
    }
  };
  // Each sample's chunk sums are added in chunk order, so threads over samples
  // (a batch) or over one sample's chunks (a single circuit) give the same
  // numbers; memory stays O(batch + chunks), whatever the trajectory count.
  std::vector<double> sum(std::size_t(batch) * K, 0.0), sumsq(std::size_t(batch) * K_out, 0.0);
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  if (batch >= 2 * threads || n_chunks == 1) {
#pragma omp parallel
    {
      Worker w;
      std::vector<double> part(static_cast<std::size_t>(K)), partsq(static_cast<std::size_t>(K_out));
#pragma omp for schedule(dynamic, 1)
      for (int b = 0; b < batch; ++b) {
        const Input in = input(b);
        for (int j = 0; j < n_chunks; ++j) {
          run_chunk(w, in, j, part.data(), partsq.data());
          for (int k = 0; k < K; ++k) sum[std::size_t(b) * K + k] += part[std::size_t(k)];
          for (int k = 0; k < K_out; ++k) sumsq[std::size_t(b) * K_out + k] += partsq[std::size_t(k)];
        }
      }
    }
  } else {
    std::vector<double> part(std::size_t(n_chunks) * K), partsq(std::size_t(n_chunks) * K_out);
    for (int b = 0; b < batch; ++b) {
      const Input in = input(b);
#pragma omp parallel
      {
        Worker w;
#pragma omp for schedule(dynamic, 1)
        for (int j = 0; j < n_chunks; ++j)
          run_chunk(w, in, j, part.data() + std::size_t(j) * K, partsq.data() + std::size_t(j) * K_out);
      }
      for (int j = 0; j < n_chunks; ++j) {
        for (int k = 0; k < K; ++k) sum[std::size_t(b) * K + k] += part[std::size_t(j) * K + k];
        for (int k = 0; k < K_out; ++k) sumsq[std::size_t(b) * K_out + k] += partsq[std::size_t(j) * K_out + k];
      }
    }
  }
  for (int b = 0; b < batch; ++b) {
    std::fill(expvals + std::size_t(b) * K_out, expvals + std::size_t(b + 1) * K_out, 0.0);
    for (std::size_t i = 0; i < terms.size(); ++i) {
      const double mean = term_index[i] < 0 ? 1.0 : sum[std::size_t(b) * K + std::size_t(term_index[i])] / trajectories;
      expvals[std::size_t(b) * K_out + std::size_t(terms[i].observable)] += terms[i].coef * mean;
    }
    if (std_errors)  // sample variance over the trajectories / N
      for (int k = 0; k < K_out; ++k) {
        const double m = expvals[std::size_t(b) * K_out + k], N = trajectories;
        const double var = N > 1 ? std::max(0.0, (sumsq[std::size_t(b) * K_out + k] - N * m * m) / (N - 1)) : 0.0;
        std_errors[std::size_t(b) * K_out + k] = std::sqrt(var / N);
      }
  }
}

// Calls visit(result) for each of noisy_shots' results in turn (no memory per shot).
template <class T, class Visit>
void visit_noisy_shots(const Circuit& c, const std::vector<double>& theta, const NoiseModel& noise,
                       int trajectories, long shots, std::uint64_t seed, Visit&& visit) {
  check_inputs(c, theta.size(), 0, 1);
  if (c.n_features > 0) throw std::invalid_argument("noisy_shots: the circuit has input features");
  check_noise(noise, trajectories);
  if (shots < 0) throw std::invalid_argument("shots must be >= 0");
  const int chunk = trajectory_chunk(c.n_qubits, trajectories);
  const std::uint64_t key = sample_key(seed, nullptr, 0);
  sim::State<T> s;
  GateScratch<T> scratch;
  std::vector<std::uint8_t> pauli;
  std::uint64_t j = 0;  // the result's index (results grouped by trajectory)
  for (int t0 = 0; t0 < trajectories; t0 += chunk) {
    const int nt = std::min(chunk, trajectories - t0);
    if (s.batch != nt || s.n_qubits != c.n_qubits) s = sim::make_state<T>(c.n_qubits, nt);
    scratch.reserve(nt);
    run_trajectories(c, theta.data(), noise, key, t0, s, scratch, pauli);
    for (int b = 0; b < nt; ++b) {
      const long t = t0 + b;  // shots t, t + trajectories, ...
      const long count = t < shots ? (shots - 1 - t) / trajectories + 1 : 0;
      sim::BasisSampler smp = sim::make_sampler(s, b, sim::mix64(sim::mix64(key, 0x5a0751ULL), std::uint64_t(t)));
      for (long k = 0; k < count; ++k, ++j) {
        std::uint64_t v = smp.next();
        if (noise.has_readout())
          for (int q = 0; q < c.n_qubits; ++q) {
            const double flip = ((v >> q) & 1) ? noise.flip10(q) : noise.flip01(q);
            if (sim::unit_double(sim::mix64(sim::mix64(key, 0xf11bULL + j), std::uint64_t(q))) < flip)
              v ^= std::uint64_t(1) << q;
          }
        visit(v);
      }
    }
  }
}

template <class T>
std::vector<std::uint64_t> noisy_shots(const Circuit& c, const std::vector<double>& theta,
                                       const NoiseModel& noise, int trajectories, long shots,
                                       std::uint64_t seed) {
  std::vector<std::uint64_t> out;
  out.reserve(std::size_t(std::max(shots, 0L)));
  visit_noisy_shots<T>(c, theta, noise, trajectories, shots, seed,
                       [&](std::uint64_t v) { out.push_back(v); });
  return out;
}

template <class T>
std::vector<long> noisy_shot_ones(const Circuit& c, const std::vector<double>& theta,
                                  const NoiseModel& noise, int trajectories, long shots,
                                  std::uint64_t seed) {
  std::vector<long> ones(std::size_t(c.n_qubits), 0);
  visit_noisy_shots<T>(c, theta, noise, trajectories, shots, seed, [&](std::uint64_t v) {
    for (int q = 0; q < c.n_qubits; ++q) ones[std::size_t(q)] += long((v >> q) & 1);
  });
  return ones;
}

// ---- the density matrix ------------------------------------------------------------

void density_forward(const Circuit& c, const std::vector<double>& theta, const double* x, int batch,
                     const std::vector<PauliString>& obs, const NoiseModel& noise, double* expvals) {
  check_inputs(c, theta.size(), x ? std::size_t(c.n_features) * batch : 0, batch);
  noise.validate();
  check_observables(c, obs);
  if (c.n_qubits > kDensityMaxQubits)
    throw std::invalid_argument("the density matrix of " + std::to_string(c.n_qubits) + " qubits needs " +
                                std::to_string((std::size_t(16) << (2 * c.n_qubits)) >> 20) +
                                " MiB: at most " + std::to_string(kDensityMaxQubits) +
                                " qubits (use trajectories)");
  const int n = c.n_qubits, F = c.n_features, K = int(obs.size());
  const std::vector<ReadoutTerm> terms = readout_terms(obs, noise);
  // A gate on the row qubits and its conjugate on the column qubits (+ n).
  auto shifted = [n](Gate g, const Mat2& m) {
    g.target += n;
    if (g.target2 >= 0) g.target2 += n;
    for (Control& ctl : g.controls) ctl.qubit += n;
    if (g.kind != GateKind::Swap) {
      g.kind = GateKind::Matrix;
      for (std::size_t i = 0; i < 4; ++i) g.matrix[i] = std::conj(m[i]);
    }
    return g;
  };
#pragma omp parallel
  {
    sim::State<double> rho;
    GateScratch<double> scratch;
    scratch.reserve(1);
#pragma omp for schedule(dynamic, 1)
    for (int b = 0; b < batch; ++b) {
      const double* xb = x ? x + std::size_t(b) * F : nullptr;
      rho = sim::make_density(n, 1);
      for (const Gate& g0 : c.gates) {
        const std::array<double, 3> a = resolve_angles(g0, theta.data(), xb);
        const Mat2 m = gate_matrix(g0.kind, a.data(), g0.matrix);
        Gate row = g0;
        if (row.kind != GateKind::Swap) row.kind = GateKind::Matrix, row.matrix = m;
        apply_gate(rho, row, nullptr, nullptr, 0, false, scratch);
        apply_gate(rho, shifted(g0, m), nullptr, nullptr, 0, false, scratch);
        int qubits[66];
        const int nq = gate_qubits(g0, qubits);
        for (int k = 0; k < nq; ++k) {
          const int q = qubits[k];
          const double p = noise.gate_error(q, nq);
          if (p > 0) sim::apply_channel(rho, q, sim::depolarizing_kraus(p));
          if (noise.amp(q) > 0) sim::apply_channel(rho, q, sim::amplitude_damping_kraus(noise.amp(q)));
          if (noise.phase(q) > 0) sim::apply_channel(rho, q, sim::phase_damping_kraus(noise.phase(q)));
        }
      }
      double* out = expvals + std::size_t(b) * K;
      std::fill(out, out + K, 0.0);
      for (const ReadoutTerm& t : terms) {
        double v = 1.0;
        if (t.string.x | t.string.z) sim::density_expval_pauli(rho, t.string.x, t.string.z, &v);
        out[t.observable] += t.coef * v;
      }
    }
  }
}

#define QMOE_INSTANTIATE(T)                                                                        \
  template void noisy_forward<T>(const Circuit&, const std::vector<double>&, const double*, int,   \
                                 const std::vector<PauliString>&, const NoiseModel&, int,          \
                                 std::uint64_t, double*, double*);                                 \
  template std::vector<std::uint64_t> noisy_shots<T>(const Circuit&, const std::vector<double>&,   \
                                                     const NoiseModel&, int, long, std::uint64_t); \
  template std::vector<long> noisy_shot_ones<T>(const Circuit&, const std::vector<double>&,         \
                                                const NoiseModel&, int, long, std::uint64_t);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe
