// qmoe bench [--json]: training (forward + adjoint backward + Adam step) and
// inference throughput in samples/s for two fixed circuits, built explicitly:
//
//   qnn8:   8 qubits. Encoder: 8 layers, layer l applies RY/RZ/RX/RY (type l%4)
//           on every qubit q with feature 8l+q. Ansatz: 2 layers of RX(theta),
//           RY(theta) on each qubit then CNOT q->q+1 mod 8. <Z_q> on all 8,
//           log-softmax over the first 4, NLL.
//   qmoe10: 10 qubits, 0-7 data, 8-9 routing (the model's layout:
//           docs/models.md). The same encoder on the data qubits;
//           RY, RY, RX, RX on routing qubits 8, 9, 8, 9 with the four
//           quadrant means of the 8x8 image; trainable RX, RY on each routing
//           qubit then CNOT(8,9); 4 experts k: 2 layers of RX, RY on each data
//           qubit controlled on the routing register being |k> (qubit 8 the
//           high bit), each layer followed by an unconditioned CNOT ring on
//           the data qubits. <Z> on the data qubits, log-softmax over the
//           first 4, NLL.
// Inputs are seeded random angles in [0, pi) and random labels.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "circuit/circuit.hpp"
#include "cli/cli.hpp"
#include "grad/adjoint.hpp"
#include "train/optim.hpp"

namespace qmoe::cli {

namespace {

constexpr GateKind kEncoderKinds[4] = {GateKind::RY, GateKind::RZ, GateKind::RX, GateKind::RY};

// 8 layers x 8 qubits, feature 8*layer + i on qubit data[i].
void add_encoder(Circuit& c, const int* data) {
  for (int l = 0; l < 8; ++l)
    for (int i = 0; i < 8; ++i)
      add_gate(c, make_gate(kEncoderKinds[l % 4], data[i], {}, {Angle::feature(8 * l + i)}));
}

void add_ring(Circuit& c, const int* data, int n) {
  for (int i = 0; i < n; ++i) add_gate(c, make_gate(GateKind::X, data[(i + 1) % n], {{data[i], true}}));
}

Circuit make_qnn8() {
  Circuit c;
  c.n_qubits = 8;
  const int data[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  add_encoder(c, data);
  int p = 0;
  for (int layer = 0; layer < 2; ++layer) {
    for (int q = 0; q < 8; ++q) {
      add_gate(c, make_gate(GateKind::RX, q, {}, {Angle::param(p++)}));
      add_gate(c, make_gate(GateKind::RY, q, {}, {Angle::param(p++)}));
    }
    add_ring(c, data, 8);
  }
  return c;
}

Circuit make_qmoe10() {
  Circuit c;
  c.n_qubits = 10;
  const int data[8] = {0, 1, 2, 3, 4, 5, 6, 7}, r0 = 8, r1 = 9;
  add_encoder(c, data);
  // quadrant means are features 64..67
  add_gate(c, make_gate(GateKind::RY, r0, {}, {Angle::feature(64)}));
  add_gate(c, make_gate(GateKind::RY, r1, {}, {Angle::feature(65)}));
  add_gate(c, make_gate(GateKind::RX, r0, {}, {Angle::feature(66)}));
  add_gate(c, make_gate(GateKind::RX, r1, {}, {Angle::feature(67)}));
  int p = 0;
  for (int q : {r0, r1}) {
    add_gate(c, make_gate(GateKind::RX, q, {}, {Angle::param(p++)}));
    add_gate(c, make_gate(GateKind::RY, q, {}, {Angle::param(p++)}));
  }
  add_gate(c, make_gate(GateKind::X, r1, {{r0, true}}));
  for (int k = 0; k < 4; ++k) {
    const std::vector<Control> ctl = {{r0, bool(k & 2)}, {r1, bool(k & 1)}};
    for (int layer = 0; layer < 2; ++layer) {
      for (int i = 0; i < 8; ++i) {
        add_gate(c, make_gate(GateKind::RX, data[i], ctl, {Angle::param(p++)}));
        add_gate(c, make_gate(GateKind::RY, data[i], ctl, {Angle::param(p++)}));
      }
      add_ring(c, data, 8);
    }
  }
  return c;
}

struct Shape {
  std::string name;
  Circuit circuit;
  std::vector<PauliString> obs;
  bool quadrants = false;
};

// Seeded inputs: 64 angles in [0, pi) (+ the 4 quadrant means) and labels.
void make_inputs(const Shape& s, int batch, std::vector<double>& x, std::vector<int>& labels) {
  std::mt19937_64 rng(1234);
  std::uniform_real_distribution<double> u(0.0, M_PI);
  const int F = s.circuit.n_features;
  x.assign(std::size_t(F) * batch, 0.0);
  labels.resize(std::size_t(batch));
  for (int b = 0; b < batch; ++b) {
    double* row = x.data() + std::size_t(b) * F;
    for (int f = 0; f < 64; ++f) row[f] = u(rng);
    if (s.quadrants)
      for (int qd = 0; qd < 4; ++qd) {
        double sum = 0;
        for (int r = 0; r < 4; ++r)
          for (int col = 0; col < 4; ++col) sum += row[(4 * (qd / 2) + r) * 8 + 4 * (qd % 2) + col];
        row[64 + qd] = sum / 16;
      }
    labels[std::size_t(b)] = int(rng() % 4);
  }
}

int default_chunk(int batch) {
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  // At least two chunks per thread for balance, at most 32 samples per chunk.
  return std::clamp(batch / (2 * threads), 1, 32);
}

struct Rate {
  double wall = 0;  // samples per second of wall time
  double cpu = 0;   // samples per second of process CPU time (all threads)
};

// Throughput of `step` run for about `seconds`. On a shared machine the wall
// rate drops when other processes take the cores; the CPU rate shows the work.
template <class F>
Rate throughput(int batch, double seconds, F&& step) {
  step();  // warm-up: allocations, plans
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const std::clock_t c0 = std::clock();
  long long samples = 0;
  double elapsed = 0;
  do {
    step();
    samples += batch;
    elapsed = std::chrono::duration<double>(clock::now() - t0).count();
  } while (elapsed < seconds);
  const double cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;
  return {double(samples) / elapsed, double(samples) / std::max(cpu, 1e-9)};
}

template <class T>
Rate bench_train(const Shape& s, int batch, int chunk, double seconds) {
  const Circuit& c = s.circuit;
  std::vector<double> x;
  std::vector<int> labels;
  make_inputs(s, batch, x, labels);
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(-M_PI, M_PI);
  std::vector<double> theta(std::size_t(c.n_params)), grad(theta.size());
  for (auto& t : theta) t = u(rng);
  const int K = int(s.obs.size()), C = 4;
  std::vector<double> ev(std::size_t(K) * batch), logits(std::size_t(C) * batch),
      dlogits(logits.size());
  train::Adam adam;
  Workspace<T> ws;
  ws.chunk_size = chunk > 0 ? chunk : default_chunk(batch);
  ws.saved_layers = kTrainingSavedLayers;
  // As the trainer: each chunk forward, its loss gradient, and back (forward_backward).
  const LossGradient loss_gradient = [&](int begin, int count, const double* e, double* d) {
    for (int b = 0; b < count; ++b)
      for (int k = 0; k < C; ++k) logits[std::size_t(begin + b) * C + k] = e[std::size_t(b) * K + k];
    train::nll_log_softmax(logits.data() + std::size_t(begin) * C, labels.data() + begin, count, C,
                           dlogits.data() + std::size_t(begin) * C, nullptr, batch);
    for (int b = 0; b < count; ++b)  // d arrives zeroed
      for (int k = 0; k < C; ++k) d[std::size_t(b) * K + k] = dlogits[std::size_t(begin + b) * C + k];
  };
  return throughput(batch, seconds, [&] {
    std::fill(grad.begin(), grad.end(), 0.0);
    forward_backward(c, theta, x.data(), batch, s.obs, loss_gradient, ev.data(), grad.data(), nullptr, ws);
    adam.step(theta, grad);
  });
}

template <class T>
Rate bench_infer(const Shape& s, int batch, int chunk, double seconds) {
  const Circuit& c = s.circuit;
  std::vector<double> x;
  std::vector<int> labels;
  make_inputs(s, batch, x, labels);
  std::vector<double> theta(std::size_t(c.n_params), 0.3);
  const int K = int(s.obs.size());
  std::vector<double> ev(std::size_t(K) * batch);
  std::vector<int> predicted(static_cast<std::size_t>(batch));
  int* out = predicted.data();
  Workspace<T> ws;
  ws.chunk_size = chunk > 0 ? chunk : default_chunk(batch);
  ws.keep_states = false;  // inference: no backward follows
  return throughput(batch, seconds, [&] {
    forward(c, theta, x.data(), batch, s.obs, ev.data(), ws);
    for (int b = 0; b < batch; ++b) {
      const double* e = ev.data() + std::size_t(b) * K;
      out[b] = int(std::max_element(e, e + 4) - e);
    }
  });
}

struct BenchArgs {
  bool json = false;
  double seconds = 0.7;
  int chunk = 0;
  bool use_float = false;
};

void run_bench(const BenchArgs& a) {
  std::vector<Shape> shapes(2);
  shapes[0].name = "qnn8";
  shapes[0].circuit = make_qnn8();
  for (int q = 0; q < 8; ++q) shapes[0].obs.push_back(PauliString::Z(q));
  shapes[1].name = "qmoe10";
  shapes[1].circuit = make_qmoe10();
  shapes[1].quadrants = true;
  for (int q = 0; q < 8; ++q) shapes[1].obs.push_back(PauliString::Z(q));

  // TorchQuantum reference figures (samples/s) for the ratio column.
  const nlohmann::json tq = {{"qnn8_train", 1300.0}, {"qnn8_infer", 2600.0},
                             {"qmoe10_train", 110.0}, {"qmoe10_infer", 260.0}};
  nlohmann::json out = nlohmann::json::object();
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  out["threads"] = threads;
  out["precision"] = a.use_float ? "float" : "double";
  if (!a.json)
    std::printf("%d threads, %s\n%-22s %14s %10s %18s\n", threads, a.use_float ? "float" : "double", "entry", "samples/s", "vs TQ",
                "samples/CPU-s");
  for (const Shape& s : shapes)
    for (const char* mode : {"train", "infer"})
      for (int batch : {32, 256}) {
        const bool train = std::string(mode) == "train";
        Rate r;
        if (a.use_float)
          r = train ? bench_train<float>(s, batch, a.chunk, a.seconds)
                    : bench_infer<float>(s, batch, a.chunk, a.seconds);
        else
          r = train ? bench_train<double>(s, batch, a.chunk, a.seconds)
                    : bench_infer<double>(s, batch, a.chunk, a.seconds);
        const std::string key = s.name + "_" + mode + "_b" + std::to_string(batch);
        out[key] = std::round(r.wall);
        if (!a.json)
          std::printf("%-22s %14.0f %9.0fx %18.0f\n", key.c_str(), r.wall,
                      r.wall / tq[s.name + "_" + mode].get<double>(), r.cpu);
      }
  if (a.json) std::printf("%s\n", out.dump().c_str());
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "training and inference throughput (samples/s) of fixed qnn8 and qmoe10 circuits");
  cmd->add_flag("--json", args->json, "print one JSON object");
  cmd->add_option("--seconds", args->seconds, "time per entry")
      ->check(CLI::Validator(
          [](std::string& v) {
            const double s = std::strtod(v.c_str(), nullptr);
            return s >= 0.01 && s <= 3600.0 ? std::string() : "must be a number of seconds in 0.01 .. 3600";
          },
          "SECONDS"));
  cmd->add_option("--chunk", args->chunk, "samples per work item (0: batch / (2 x threads), at most 32)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_flag("--float", args->use_float,
                "simulate in single precision (TorchQuantum's complex64); default double");
  cmd->callback([args] { run_bench(*args); });
}

}  // namespace qmoe::cli
