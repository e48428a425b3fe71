#include "grad/shots.hpp"

#include <stdexcept>

#include "circuit/execute.hpp"
#include "sim/state.hpp"

namespace qmoe {

template <class T>
void shot_forward(const Circuit& c, const std::vector<double>& theta, const double* x, int batch,
                  const std::vector<PauliString>& obs, long shots, std::uint64_t seed, double* expvals) {
  check_inputs(c, theta.size(), x ? std::size_t(c.n_features) * batch : 0, batch);
  check_observables(c, obs);
  if (shots < 1) throw std::invalid_argument("shots must be >= 1");
  for (const PauliString& p : obs)
    if (!p.is_diagonal()) throw std::invalid_argument("shots measure in Z: observable " + p.str() + " is not diagonal");
  const int K = int(obs.size()), F = c.n_features;
#pragma omp parallel
  {
    sim::State<T> s;
    GateScratch<T> scratch;
    scratch.reserve(1);
    std::vector<double> sum(static_cast<std::size_t>(K));
#pragma omp for schedule(dynamic, 1)
    for (int b = 0; b < batch; ++b) {
      const double* xb = x ? x + std::size_t(b) * F : nullptr;
      if (s.n_qubits != c.n_qubits) s = sim::make_state<T>(c.n_qubits, 1);
      run_circuit(c, theta.data(), xb, s, scratch);
      sim::BasisSampler smp = sim::make_sampler(s, 0, input_key(0x5407ULL, seed, xb, xb ? F : 0));
      std::fill(sum.begin(), sum.end(), 0.0);
      for (long t = 0; t < shots; ++t) {
        const std::uint64_t v = smp.next();
        for (int k = 0; k < K; ++k) sum[std::size_t(k)] += z_string_value(obs[std::size_t(k)], v);
      }
      for (int k = 0; k < K; ++k) expvals[std::size_t(b) * K + k] = sum[std::size_t(k)] / double(shots);
    }
  }
}

template void shot_forward<double>(const Circuit&, const std::vector<double>&, const double*, int,
                                   const std::vector<PauliString>&, long, std::uint64_t, double*);
template void shot_forward<float>(const Circuit&, const std::vector<double>&, const double*, int,
                                  const std::vector<PauliString>&, long, std::uint64_t, double*);

}  // namespace qmoe
