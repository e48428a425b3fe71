// Google Benchmark: gate kernels, memory bandwidth and a 10-qubit circuit.
//
//   build-perf/qmoe_bench                       # everything
//   build-perf/qmoe_bench --benchmark_filter=Circuit
//
// Kernel benchmarks: args are (qubits, batch). bytes_per_second counts the
// state read and written once (2 x 2^n x batch x 2 x sizeof(T)), so it can be
// compared with the STREAM-like copy / scale / triad benchmarks on a state of
// the same size (BM_Stream*), which count bytes the STREAM way.
// Circuit benchmarks report us_per_sample (wall time / batch).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <random>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "circuit/circuit.hpp"
#include "circuit/execute.hpp"
#include "grad/adjoint.hpp"
#include "grad/param_shift.hpp"
#include "model/model.hpp"
#include "sim/state.hpp"

using namespace qmoe;

namespace {

template <class T>
sim::State<T> random_state(int n, int batch) {
  sim::State<T> s = sim::make_state<T>(n, batch);
  std::mt19937_64 rng(1);
  std::normal_distribution<double> g;
  for (auto& v : s.re) v = T(g(rng));
  for (auto& v : s.im) v = T(g(rng));
  return s;
}

// A general (complex) 1-qubit matrix, and RY (real: apply_matrix's real kernel).
template <class T>
sim::Mat<T> u3_mat() {
  const double a[3] = {0.3, 0.2, 0.1};
  return to_kernel<T>(gate_matrix(GateKind::U3, a));
}
template <class T>
sim::Mat<T> ry_mat(double t) {
  return to_kernel<T>(gate_matrix(GateKind::RY, &t));
}

// Per-sample U3 matrices for `batch` samples.
template <class T>
struct PerSample {
  std::vector<T> data;
  sim::BatchMat<T> m;
  explicit PerSample(int batch) : data(std::size_t(8) * batch) {
    for (int b = 0; b < batch; ++b) {
      const double t[3] = {0.1 + 0.01 * b, 0.2, 0.3};
      const Mat2 u = gate_matrix(GateKind::U3, t);
      for (int k = 0; k < 4; ++k) {
        data[std::size_t(k) * batch + b] = T(u[k].real());
        data[std::size_t(4 + k) * batch + b] = T(u[k].imag());
      }
    }
    for (int k = 0; k < 4; ++k) {
      m.re[k] = data.data() + std::size_t(k) * batch;
      m.im[k] = data.data() + std::size_t(4 + k) * batch;
    }
  }
};

void set_bytes(benchmark::State& st, int n, int batch, std::size_t elem) {
  st.SetBytesProcessed(std::int64_t(st.iterations()) * 2 * (std::int64_t(1) << n) * batch * 2 *
                       std::int64_t(elem));
}

// kind: 0 = 1-qubit, 1 = controlled, 2 = 3 controls; shared or per-sample
// matrix; a general complex matrix (U3), or with Real a shared RY.
template <class T, int Kind, bool Shared, bool Real = false>
void BM_Gate(benchmark::State& st) {
  const int n = int(st.range(0)), batch = int(st.range(1));
  sim::State<T> s = random_state<T>(n, batch);
  const int target = n / 2;
  sim::Controls c;
  const int nc = Kind == 0 ? 0 : Kind == 1 ? 1 : 3;
  for (int j = 0; j < nc; ++j) {
    const int q = (target + 1 + j) % n;
    c.mask |= std::uint64_t(1) << q;
    c.value |= std::uint64_t(1) << q;
  }
  const sim::Mat<T> m = Real ? ry_mat<T>(0.3) : u3_mat<T>();
  PerSample<T> ps(batch);
  for (auto _ : st) {
    if constexpr (Shared)
      sim::apply_matrix(s, target, c, m);
    else
      sim::apply_matrix(s, target, c, ps.m);
    benchmark::ClobberMemory();
  }
  set_bytes(st, n, batch, sizeof(T));
}

// The specialised kernels through the Gate interface: CNOT (permutation) and RZ (diagonal).
template <class T>
void BM_GateCNOT(benchmark::State& st) {
  const int n = int(st.range(0)), batch = int(st.range(1));
  sim::State<T> s = random_state<T>(n, batch);
  GateScratch<T> scratch;
  const Gate g = make_gate(GateKind::X, n / 2, {{(n / 2 + 1) % n, true}});
  for (auto _ : st) {
    apply_gate(s, g, nullptr, nullptr, 0, false, scratch);
    benchmark::ClobberMemory();
  }
  set_bytes(st, n, batch, sizeof(T));
}
template <class T>
void BM_GateRZ(benchmark::State& st) {
  const int n = int(st.range(0)), batch = int(st.range(1));
  sim::State<T> s = random_state<T>(n, batch);
  GateScratch<T> scratch;
  const Gate g = make_gate(GateKind::RZ, n / 2, {}, {Angle::constant(0.3)});
  for (auto _ : st) {
    apply_gate(s, g, nullptr, nullptr, 0, false, scratch);
    benchmark::ClobberMemory();
  }
  set_bytes(st, n, batch, sizeof(T));
}

// Two per-sample 1-qubit matrices (qubits n/2 and n/2 - 1) in one pass
// (a fused plan's Pair op), against BM_Gate1q_persample twice.
template <class T>
void BM_GatePair(benchmark::State& st) {
  const int n = int(st.range(0)), batch = int(st.range(1));
  sim::State<T> s = random_state<T>(n, batch);
  PerSample<T> ps(batch);
  for (auto _ : st) {
    sim::apply_matrix_pair(s, n / 2, ps.m, n / 2 - 1, ps.m);
    benchmark::ClobberMemory();
  }
  set_bytes(st, n, batch, sizeof(T));
}

// One backward run (per-sample matrix) on phi and lam: the three overlaps
// and the undo on both states (adjoint_step_overlaps).
template <class T>
void BM_AdjointOverlap(benchmark::State& st) {
  const int n = int(st.range(0)), batch = int(st.range(1));
  sim::State<T> phi = random_state<T>(n, batch), lam = random_state<T>(n, batch);
  PerSample<T> ps(batch);
  std::vector<double> ov(std::size_t(3) * batch);
  double* o[3] = {ov.data(), ov.data() + batch, ov.data() + 2 * batch};
  for (auto _ : st) {
    sim::adjoint_step_overlaps(phi, lam, n / 2, {}, ps.m, o);
    benchmark::ClobberMemory();
  }
  set_bytes(st, n, batch, sizeof(T));
}

// The backward of one QMoE expert layer: 8 targets (qubits 0-7) under 2
// controls (qubits 8, 9), batch 32 (a training chunk), shared matrices, all
// three overlaps. Arg 1: 0 = an overlap-and-undo step per op on phi and lam
// (a layer forward() did not save); 1 = read-only overlaps, then lam undone
// in pairs and phi's part restored (sim::restore_controlled), as backward()
// does for a saved layer. Reports us per sample.
void BM_ExpertLayerBackward(benchmark::State& st) {
  const int n = 10, batch = 32;
  const bool saved = st.range(0) != 0;
  sim::State<double> phi = random_state<double>(n, batch), lam = random_state<double>(n, batch), part;
  const sim::Controls ctl{std::uint64_t(3) << 8, std::uint64_t(1) << 8};
  sim::copy_controlled(phi, ctl, part);
  const sim::Mat<double> m{{0.6, 0.1, -0.1, 0.6}, {0.7, 0.2, 0.2, -0.7}};
  std::vector<double> ov(std::size_t(3) * batch);
  double* o[3] = {ov.data(), ov.data() + batch, ov.data() + 2 * batch};
  for (auto _ : st) {
    if (!saved) {
      for (int q = 0; q < 8; ++q) sim::adjoint_step_overlaps(phi, lam, q, ctl, m, o);
    } else {
      for (int q = 0; q < 8; ++q) sim::pauli_overlaps(phi, lam, q, ctl, o);
      for (int q = 0; q < 8; q += 2) sim::apply_matrix_pair(lam, q, m, q + 1, m, ctl);
      sim::restore_controlled(part, ctl, phi);
    }
    benchmark::ClobberMemory();
  }
  st.counters["us_per_sample"] = benchmark::Counter(
      double(st.iterations()) * batch, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void kernel_args(benchmark::internal::Benchmark* b) {
  for (int n : {4, 8, 10, 12, 20})
    for (int batch : {1, 32, 256, 1024})
      if ((std::int64_t(1) << n) * batch <= (std::int64_t(1) << 22)) b->Args({n, batch});
}

// ---- STREAM-like bandwidth on arrays the size of an n-qubit double state -----
// Arg n: each operand is re + im of 2^n doubles, i.e. 2^(n+1) doubles, the
// bytes a 1-qubit gate on that state reads and writes. Compiled with the same
// target_clones as the kernels; threads as for the gates (OMP_NUM_THREADS).
#define BENCH_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))

BENCH_CLONES void stream_copy(double* __restrict a, const double* __restrict b, std::size_t n) {
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < n; ++i) a[i] = b[i];
}
BENCH_CLONES void stream_scale_inplace(double* __restrict a, std::size_t n) {
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < n; ++i) a[i] = 0.999 * a[i];
}
BENCH_CLONES void stream_triad(double* __restrict a, const double* __restrict b,
                               const double* __restrict c, std::size_t n) {
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < n; ++i) a[i] = b[i] + 0.5 * c[i];
}

void BM_StreamCopy(benchmark::State& st) {
  const std::size_t n = std::size_t(2) << st.range(0);
  std::vector<double> a(n, 1.0), b(n, 2.0);
  for (auto _ : st) {
    stream_copy(a.data(), b.data(), n);
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(std::int64_t(st.iterations()) * 2 * n * sizeof(double));
}
// In place a = s * a: the access pattern of a 1-qubit gate (read + write each element).
void BM_StreamScale(benchmark::State& st) {
  const std::size_t n = std::size_t(2) << st.range(0);
  std::vector<double> a(n, 1.0);
  for (auto _ : st) {
    stream_scale_inplace(a.data(), n);
    if (a[0] < 1e-200) std::fill(a.begin(), a.end(), 1.0);  // never reach denormals
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(std::int64_t(st.iterations()) * 2 * n * sizeof(double));
}
void BM_StreamTriad(benchmark::State& st) {
  const std::size_t n = std::size_t(2) << st.range(0);
  std::vector<double> a(n, 1.0), b(n, 2.0), c(n, 0.5);
  for (auto _ : st) {
    stream_triad(a.data(), b.data(), c.data(), n);
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(std::int64_t(st.iterations()) * 3 * n * sizeof(double));
}

// ---- a 10-qubit, 200-gate circuit ---------------------------------------------
// 4 layers of: RY(x) and RZ(x) on each qubit (per-sample angles), RX(theta) on
// each qubit, a CNOT ring, and 4 doubly-controlled RY(theta) (4 * 44 = 176);
// then RY(theta) gates cycling over the qubits up to 200 gates.
Circuit bench_circuit() {
  const int n = 10;
  Circuit c;
  c.n_qubits = n;
  int p = 0, f = 0;
  for (int layer = 0; layer < 4; ++layer) {
    for (int q = 0; q < n; ++q) add_gate(c, make_gate(GateKind::RY, q, {}, {Angle::feature(f++ % 64)}));
    for (int q = 0; q < n; ++q) add_gate(c, make_gate(GateKind::RZ, q, {}, {Angle::feature(f++ % 64)}));
    for (int q = 0; q < n; ++q) add_gate(c, make_gate(GateKind::RX, q, {}, {Angle::param(p++)}));
    for (int q = 0; q < n; ++q) add_gate(c, make_gate(GateKind::X, (q + 1) % n, {{q, true}}));
    for (int j = 0; j < 4; ++j)
      add_gate(c, make_gate(GateKind::RY, (2 * j + 2) % n, {{2 * j, true}, {2 * j + 1, true}},
                            {Angle::param(p++)}));
  }
  while (c.gates.size() < 200)
    add_gate(c, make_gate(GateKind::RY, int(c.gates.size()) % n, {}, {Angle::param(p++)}));
  return c;
}

template <class T>
void BM_Circuit(benchmark::State& st) {
  const int batch = int(st.range(0));
  const int mode = int(st.range(1));  // 0 forward, 1 forward() then backward(), 2 forward_backward()
  const bool with_backward = mode != 0;
  const Circuit c = bench_circuit();
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-M_PI, M_PI);
  std::vector<double> theta(std::size_t(c.n_params)), x(std::size_t(c.n_features) * batch);
  for (auto& v : theta) v = u(rng);
  for (auto& v : x) v = u(rng);
  std::vector<PauliString> obs;
  for (int q = 0; q < c.n_qubits; ++q) obs.push_back(PauliString::Z(q));
  std::vector<double> ev(obs.size() * batch), dO(obs.size() * batch, 0.1), dtheta(theta.size());
  Workspace<T> ws;
  if (st.range(2) > 0) ws.chunk_size = int(st.range(2));
  if (with_backward) ws.saved_layers = kTrainingSavedLayers;  // as the trainer
  ws.keep_states = with_backward;  // forward only: as evaluation and inference
  const LossGradient loss_gradient = [&](int begin, int count, const double*, double* d) {
    std::copy_n(dO.data() + std::size_t(begin) * obs.size(), std::size_t(count) * obs.size(), d);
  };
  for (auto _ : st) {
    if (mode == 2) {
      forward_backward(c, theta, x.data(), batch, obs, loss_gradient, ev.data(), dtheta.data(), nullptr, ws);
    } else {
      forward(c, theta, x.data(), batch, obs, ev.data(), ws);
      if (with_backward) backward(c, theta, x.data(), batch, obs, dO.data(), dtheta.data(), nullptr, ws);
    }
    benchmark::DoNotOptimize(ev.data());
  }
  st.counters["us_per_sample"] = benchmark::Counter(
      double(st.iterations()) * batch,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  st.counters["gates"] = double(c.gates.size());
}

// Parameter shift at its floor (issue 18): one parameter-shift vjp of the
// paper's QMoE (MNIST-4: 10 qubits, 4 experts) over a batch, against its floor,
// (shifted evaluations) x (one batched forward of the same batch), timed in
// the same process just before. Counters: evaluations, forward_us (best of
// 20) and ratio_to_floor (the target: <= 1.5).
void BM_ParamShiftQmoe(benchmark::State& st) {
  const int batch = int(st.range(0));
  const model::Model m = model::build_model(model::ModelConfig{});
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(-M_PI, M_PI);
  std::vector<double> theta(std::size_t(m.n_params())), x(std::size_t(m.circuit.n_features) * batch);
  for (auto& v : theta) v = u(rng);
  for (auto& v : x) v = u(rng);
  const std::size_t K = m.observables.size();
  std::vector<double> ev(K * batch), dO(K * batch, 0.1), dtheta(theta.size());
  Workspace<double> ws;
  ws.keep_states = false;
  double forward_s = 1e300;
  for (int r = 0; r < 20; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    forward(m.circuit, theta, x.data(), batch, m.observables, ev.data(), ws);
    forward_s = std::min(forward_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  int evaluations = 0;
  for (auto _ : st) {
    evaluations = param_shift_vjp(m.circuit, theta, batch, int(K), dO.data(), dtheta.data(),
                                  [&](const Circuit& oc, const std::vector<double>& th, double* e) {
                                    forward(oc, th, x.data(), batch, m.observables, e, ws);
                                  });
    benchmark::DoNotOptimize(dtheta.data());
  }
  st.counters["evaluations"] = evaluations;
  st.counters["forward_us"] = forward_s * 1e6;
  st.counters["ratio_to_floor"] = benchmark::Counter(double(st.iterations()) * evaluations * forward_s,
                                                     benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

}  // namespace

// 20 qubits: 16 MiB per operand (fits this EPYC's 32 MiB L3); 23 qubits: 128 MiB (DRAM).
BENCHMARK(BM_StreamCopy)->Arg(20)->Arg(23)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_StreamScale)->Arg(20)->Arg(23)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_StreamTriad)->Arg(20)->Arg(23)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Gate<double, 0, true>)->Name("BM_Gate1q_shared_big")->Args({23, 1})->UseRealTime()->Unit(benchmark::kMicrosecond);

BENCHMARK(BM_Gate<double, 0, true>)->Name("BM_Gate1q_shared")->Apply(kernel_args)->UseRealTime();
BENCHMARK(BM_Gate<double, 0, true, true>)->Name("BM_Gate1q_shared_real")->Args({10, 32})->Args({10, 256})->Args({20, 1})->UseRealTime();
BENCHMARK(BM_Gate<double, 0, false>)->Name("BM_Gate1q_persample")->Apply(kernel_args)->UseRealTime();
BENCHMARK(BM_Gate<double, 1, true>)->Name("BM_GateC1_shared")->Apply(kernel_args)->UseRealTime();
BENCHMARK(BM_Gate<double, 1, false>)->Name("BM_GateC1_persample")->Apply(kernel_args)->UseRealTime();
BENCHMARK(BM_Gate<double, 2, true>)->Name("BM_GateC3_shared")->Apply(kernel_args)->UseRealTime();
BENCHMARK(BM_Gate<double, 2, false>)->Name("BM_GateC3_persample")->Apply(kernel_args)->UseRealTime();
BENCHMARK(BM_GateCNOT<double>)->Name("BM_GateCNOT")->Apply(kernel_args)->UseRealTime();
BENCHMARK(BM_GateRZ<double>)->Name("BM_GateRZ")->Apply(kernel_args)->UseRealTime();
BENCHMARK(BM_GatePair<double>)->Name("BM_GatePair_persample")->Args({8, 8})->Args({10, 32})->Args({10, 256})->UseRealTime();
BENCHMARK(BM_AdjointOverlap<double>)->Name("BM_AdjointOverlap_persample")->Args({8, 8})->Args({10, 32})->Args({10, 256})->UseRealTime();
BENCHMARK(BM_ExpertLayerBackward)->Arg(0)->Arg(1)->UseRealTime();
BENCHMARK(BM_Gate<float, 0, true>)->Name("BM_Gate1q_shared_f32")->Args({20, 1})->Args({10, 256})->UseRealTime();

// args: batch, mode (0 forward, 1 forward() then backward(), 2 forward_backward()),
// chunk size (0: workspace default)
BENCHMARK(BM_Circuit<double>)->Name("BM_Circuit10q_f64")
    ->ArgsProduct({{32, 256, 1024}, {0, 1, 2}, {0}})->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Circuit<float>)->Name("BM_Circuit10q_f32")
    ->ArgsProduct({{256, 1024}, {0, 1, 2}, {0}})->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Circuit<double>)->Name("BM_Circuit10q_f64_chunk")
    ->ArgsProduct({{256}, {0, 2}, {4, 8, 16, 32, 64}})->UseRealTime()->Unit(benchmark::kMicrosecond);

BENCHMARK(BM_ParamShiftQmoe)->Arg(32)->Arg(256)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
