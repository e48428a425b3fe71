#include "grad/noise.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "circuit/execute.hpp"
#include "sim/rng.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace qmoe {

void NoiseModel::validate() const {
  auto check = [](double p, const char* what) {
    if (!(p >= 0.0 && p <= 1.0))
      throw std::invalid_argument(std::string(what) + " must be a probability in [0, 1], not " + std::to_string(p));
  };
  check(p1, "1-qubit gate error");
  check(p2, "multi-qubit gate error");
  check(readout, "read-out error");
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
  const int B = s.batch;
  sim::set_zero_state(s);
  pauli.resize(std::size_t(B));
  for (std::size_t gi = 0; gi < c.gates.size(); ++gi) {
    const Gate& g = c.gates[gi];
    apply_gate(s, g, theta, nullptr, 0, false, scratch);
    const bool multi = !g.controls.empty() || g.kind == GateKind::Swap;
    const double p = multi ? noise.p2 : noise.p1;
    if (p == 0.0) continue;
    int qubits[66], nq = 0;  // the gate's qubits: target(s), then controls
    qubits[nq++] = g.target;
    if (g.kind == GateKind::Swap) qubits[nq++] = g.target2;
    for (const Control& ctl : g.controls) qubits[nq++] = ctl.qubit;
    for (int k = 0; k < nq; ++k) {
      const int q = qubits[k];
      bool any = false;
      for (int b = 0; b < B; ++b) {
        const double u = sim::unit_double(sim::mix64(sim::mix64(sim::mix64(key, std::uint64_t(t0 + b)), gi), std::uint64_t(q)));
        // u < p: an error; u / p is then uniform in [0, 1) and picks X, Y or Z.
        pauli[std::size_t(b)] = u < p ? std::uint8_t(1 + std::min(2, int(3.0 * u / p))) : 0;
        any = any || pauli[std::size_t(b)] != 0;
      }
      if (any) sim::apply_pauli_per_sample(s, q, pauli.data());
    }
  }
}

}  // namespace

template <class T>
void noisy_forward(const Circuit& c, const std::vector<double>& theta, const double* x, int batch,
                   const std::vector<PauliString>& obs, const NoiseModel& noise, int trajectories,
                   std::uint64_t seed, double* expvals) {
  check_inputs(c, theta.size(), x ? std::size_t(c.n_features) * batch : 0, batch);
  check_noise(noise, trajectories);
  check_observables(c, obs);
  const int K = int(obs.size()), F = c.n_features;
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
    std::vector<double> ev;
  };
  auto run_chunk = [&](Worker& w, const Input& in, int j, double* out) {
    const int t0 = j * chunk, nt = std::min(chunk, trajectories - t0);
    if (w.s.batch != nt || w.s.n_qubits != c.n_qubits) w.s = sim::make_state<T>(c.n_qubits, nt);
    w.scratch.reserve(nt);
    run_trajectories(in.circuit, theta.data(), noise, in.key, t0, w.s, w.scratch, w.pauli);
    w.ev.resize(std::size_t(nt) * K);
    expectations(w.s, obs, w.ev.data());
    std::fill(out, out + K, 0.0);
    for (int t = 0; t < nt; ++t)
      for (int k = 0; k < K; ++k) out[k] += w.ev[std::size_t(t) * K + k];
  };
  // Each sample's chunk sums are added in chunk order, so threads over samples
  // (a batch) or over one sample's chunks (a single circuit) give the same
  // numbers; memory stays O(batch + chunks), whatever the trajectory count.
  std::vector<double> sum(std::size_t(batch) * K, 0.0);
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  if (batch >= 2 * threads || n_chunks == 1) {
#pragma omp parallel
    {
      Worker w;
      std::vector<double> part(static_cast<std::size_t>(K));
#pragma omp for schedule(dynamic, 1)
      for (int b = 0; b < batch; ++b) {
        const Input in = input(b);
        for (int j = 0; j < n_chunks; ++j) {
          run_chunk(w, in, j, part.data());
          for (int k = 0; k < K; ++k) sum[std::size_t(b) * K + k] += part[std::size_t(k)];
        }
      }
    }
  } else {
    std::vector<double> part(std::size_t(n_chunks) * K);
    for (int b = 0; b < batch; ++b) {
      const Input in = input(b);
#pragma omp parallel
      {
        Worker w;
#pragma omp for schedule(dynamic, 1)
        for (int j = 0; j < n_chunks; ++j) run_chunk(w, in, j, part.data() + std::size_t(j) * K);
      }
      for (int j = 0; j < n_chunks; ++j)
        for (int k = 0; k < K; ++k) sum[std::size_t(b) * K + k] += part[std::size_t(j) * K + k];
    }
  }
  for (int b = 0; b < batch; ++b)
    for (int k = 0; k < K; ++k) {
      const int weight = std::popcount(obs[std::size_t(k)].x | obs[std::size_t(k)].z);
      expvals[std::size_t(b) * K + k] =
          sum[std::size_t(b) * K + k] / trajectories * std::pow(1.0 - 2.0 * noise.readout, weight);
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
        if (noise.readout > 0.0)
          for (int q = 0; q < c.n_qubits; ++q)
            if (sim::unit_double(sim::mix64(sim::mix64(key, 0xf11bULL + j), std::uint64_t(q))) < noise.readout)
              v ^= std::uint64_t(1) << q;
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

#define QMOE_INSTANTIATE(T)                                                                        \
  template void noisy_forward<T>(const Circuit&, const std::vector<double>&, const double*, int,   \
                                 const std::vector<PauliString>&, const NoiseModel&, int,          \
                                 std::uint64_t, double*);                                          \
  template std::vector<std::uint64_t> noisy_shots<T>(const Circuit&, const std::vector<double>&,   \
                                                     const NoiseModel&, int, long, std::uint64_t); \
  template std::vector<long> noisy_shot_ones<T>(const Circuit&, const std::vector<double>&,         \
                                                const NoiseModel&, int, long, std::uint64_t);
QMOE_INSTANTIATE(double)
QMOE_INSTANTIATE(float)

}  // namespace qmoe
