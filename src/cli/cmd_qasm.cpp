// qmoe qasm FILE [--grad] [--shots N [--seed S]] [--float]
//               [--depol1 P] [--depol2 P] [--readout-error P] [--trajectories N]
//
// Simulates an OpenQASM 2.0 file and prints one JSON line:
//   {"n_qubits": N, "expval_z": [<Z_0>, ...], "jacobian": [[d<Z_i>/dp_j, ...], ...]}
// p_j runs over every numeric gate argument in textual order (see docs/qasm.md).
// Exact: statevector expectations, adjoint-method Jacobian. With --shots N:
// expectations are averages over N sampled basis states, and the Jacobian
// comes from the parameter-shift rule applied to such shot estimates (every
// shifted circuit gets its own N shots, seeded from S and the evaluation).
// With noise (grad/noise.hpp): expectations are trajectory means, or the shots
// are spread over the trajectories; the JSON then has a "noise" object.
// A dynamic program (reset, if, mid-circuit measurement; circuit/qasm_dynamic.hpp):
// exact expectations of the mixture over every outcome branch, or shots split
// over the branches; no --grad and no noise.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "circuit/execute.hpp"
#include "circuit/qasm.hpp"
#include "circuit/qasm_dynamic.hpp"
#include "cli/cli.hpp"
#include "cli/train_common.hpp"
#include "grad/noise.hpp"
#include "grad/adjoint.hpp"
#include "grad/param_shift.hpp"
#include "sim/rng.hpp"
#include "sim/state.hpp"

namespace qmoe::cli {
namespace {

struct QasmOptions {
  std::string file;
  bool grad = false;
  long shots = 0;
  std::uint64_t seed = 0;
  bool single = false;
  bool json = false;  // --json: the output is JSON anyway
  NoiseOptions noise;
  bool seed_given = false;
};

// Seed for one shot-based evaluation: depends on the user's seed and on the
// circuit's parameter wiring and values, so each shifted circuit gets its own
// sample while the whole run stays deterministic.
std::uint64_t eval_seed(std::uint64_t seed, const Circuit& c, const std::vector<double>& theta) {
  std::uint64_t h = sim::mix64(0x51ab5eedULL, seed);
  for (double v : theta) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    h = sim::mix64(h, bits);
  }
  for (const Gate& g : c.gates)
    for (int j = 0; j < angle_count(g.kind); ++j)
      if (g.angles[std::size_t(j)].source == AngleSource::Param)
        h = sim::mix64(h, std::uint64_t(g.angles[std::size_t(j)].index));
  return h;
}

// <Z_q> = 1 - 2 (fraction of shots with bit q set).
std::vector<double> z_from_ones(const std::vector<long>& ones, long shots) {
  std::vector<double> ev(ones.size());
  for (std::size_t q = 0; q < ones.size(); ++q) ev[q] = 1.0 - 2.0 * double(ones[q]) / double(shots);
  return ev;
}

// Shots are counted as they are drawn, not stored: memory does not grow with --shots.
template <class T>
std::vector<double> shot_expvals(const Circuit& c, const std::vector<double>& theta, long shots,
                                 std::uint64_t seed) {
  sim::State<T> s = sim::make_state<T>(c.n_qubits, 1);
  GateScratch<T> scratch;
  scratch.reserve(1);
  run_circuit(c, theta.data(), nullptr, s, scratch);
  sim::BasisSampler smp = sim::make_sampler(s, 0, seed);
  std::vector<long> ones(std::size_t(c.n_qubits), 0);
  for (long k = 0; k < shots; ++k) {
    const std::uint64_t b = smp.next();
    for (int q = 0; q < c.n_qubits; ++q) ones[std::size_t(q)] += long((b >> q) & 1);
  }
  return z_from_ones(ones, shots);
}

// Counts keep one entry per distinct value: bounded by the shots.
void check_counts_size(const ParsedQasm& p, const QasmOptions& o) {
  if (o.shots > 10000000 && !p.measured.empty())
    throw std::runtime_error("counts of more than 10^7 shots are not kept: use fewer --shots");
}

// A dynamic program (reset, if, mid-circuit measurement; circuit/qasm_dynamic.hpp):
// exact expectations over every branch, or shots split over the branches.
template <class T>
nlohmann::ordered_json run_dynamic(const ParsedQasm& p, const QasmOptions& o) {
  const int n = p.circuit.n_qubits;
  nlohmann::ordered_json out;
  out["n_qubits"] = n;
  if (o.shots == 0) {
    try {
      out["expval_z"] = dynamic_expval_z<T>(p);
    } catch (const QasmBranchLimit& e) {
      throw std::runtime_error(o.file + ": " + e.what() + ": use --shots N");
    }
    return out;
  }
  check_counts_size(p, o);
  DynamicShots r;
  try {
    r = dynamic_shots<T>(p, o.shots, o.seed, !p.measured.empty());
  } catch (const QasmBranchLimit& e) {
    throw std::runtime_error(o.file + ": " + e.what());
  }
  const std::vector<double> ev = z_from_ones(r.ones, o.shots);
  out["expval_z"] = ev;
  if (!p.measured.empty()) {
    nlohmann::ordered_json cj = nlohmann::ordered_json::object();
    for (const auto& [bits, k] : r.counts) cj[bits] = k;
    out["counts"] = cj;
  }
  std::vector<double> se;
  for (double v : ev) se.push_back(std::sqrt(std::max(0.0, 1.0 - v * v) / double(o.shots)));
  out["std_error"] = se;
  return out;
}

template <class T>
nlohmann::ordered_json run(const ParsedQasm& p, const QasmOptions& o) {
  if (p.dynamic) return run_dynamic<T>(p, o);
  const Circuit& c = p.circuit;
  const int n = c.n_qubits;
  std::vector<PauliString> obs;
  for (int q = 0; q < n; ++q) obs.push_back(PauliString::Z(q));
  nlohmann::ordered_json out;
  out["n_qubits"] = n;
  std::vector<double> ev(static_cast<std::size_t>(n)), jac, se;
  if (o.noise.active()) {
    const int traj = o.noise.n_trajectories();
    if (o.noise.density()) {
      density_forward(c, p.theta, nullptr, 1, obs, o.noise.model, ev.data());
      se.assign(ev.size(), 0.0);  // exact
    } else if (o.shots > 0) {
      ev = z_from_ones(noisy_shot_ones<T>(c, p.theta, o.noise.model, traj, o.shots, o.seed), o.shots);
    } else {
      se.resize(ev.size());
      noisy_forward<T>(c, p.theta, nullptr, 1, obs, o.noise.model, traj, o.seed, ev.data(), se.data());
    }
  } else if (o.shots > 0) {
    const long shots = o.shots;
    ev = shot_expvals<T>(c, p.theta, shots, o.seed);
    if (o.grad)
      jac = param_shift_jacobian(c, p.theta, n,
                                 [&](const Circuit& cc, const std::vector<double>& th) {
                                   return shot_expvals<T>(cc, th, shots, eval_seed(o.seed, cc, th));
                                 });
  } else {
    Workspace<T> ws;
    forward<T>(c, p.theta, nullptr, 1, obs, ev.data(), ws);
    if (o.grad) jac = adjoint_jacobian<T>(c, p.theta, nullptr, obs);
  }
  out["expval_z"] = ev;
  if (o.shots > 0 && !p.measured.empty()) {
    // the same shots again (same seeds), now as the classical registers' values
    if (o.shots > 10000000) throw std::runtime_error("counts of more than 10^7 shots are not kept: use fewer --shots");
    std::map<std::string, long> counts;
    if (o.noise.active()) {
      for (std::uint64_t v : noisy_shots<T>(c, p.theta, o.noise.model, o.noise.n_trajectories(), o.shots, o.seed))
        ++counts[classical_bits(p, v)];
    } else {
      sim::State<T> s = sim::make_state<T>(c.n_qubits, 1);
      GateScratch<T> scratch;
      scratch.reserve(1);
      run_circuit(c, p.theta.data(), nullptr, s, scratch);
      sim::BasisSampler smp = sim::make_sampler(s, 0, o.seed);
      for (long k = 0; k < o.shots; ++k) ++counts[classical_bits(p, smp.next())];
    }
    nlohmann::ordered_json cj = nlohmann::ordered_json::object();
    for (const auto& [bits, n] : counts) cj[bits] = n;
    out["counts"] = cj;
  }
  if (o.shots > 0 && se.empty()) {
    // each shot's bit is +-1: the binomial standard error (with noise, exact
    // when every shot has its own trajectory, i.e. --trajectories >= --shots)
    for (double v : ev) se.push_back(std::sqrt(std::max(0.0, 1.0 - v * v) / double(o.shots)));
  }
  if (!se.empty()) out["std_error"] = se;
  if (o.noise.active()) {
    nlohmann::json nj = o.noise.to_json();
    nj["seed"] = o.seed;
    if (o.shots > 0) nj["shots"] = o.shots;
    out["noise"] = nlohmann::ordered_json::parse(nj.dump());
  }
  if (o.grad) {
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    const std::size_t np = p.theta.size();
    for (int k = 0; k < n; ++k)
      rows.push_back(std::vector<double>(jac.begin() + std::ptrdiff_t(k * np),
                                         jac.begin() + std::ptrdiff_t((k + 1) * np)));
    out["jacobian"] = rows;
  }
  return out;
}

// The file's text ("-": standard input), without a UTF-8 byte-order mark.
std::string read_source(const std::string& file) {
  std::ostringstream buf;
  if (file == "-") {
    buf << std::cin.rdbuf();
  } else {
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec)) throw std::runtime_error("cannot read " + file + ": is a directory");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + file + ": " + std::strerror(errno));
    buf << in.rdbuf();
    if (in.bad()) throw std::runtime_error("cannot read " + file);
  }
  std::string text = buf.str();
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // as some editors save it
  return text;
}

bool c_too_big(const ParsedQasm& p) { return p.circuit.n_qubits > kDensityMaxQubits; }

void run_qasm(const QasmOptions& o) {
  const std::string text = read_source(o.file);
  ParsedQasm p;
  try {
    p = parse_qasm(text);
  } catch (const QasmError& e) {
    throw std::runtime_error(o.file + ":" + std::to_string(e.line()) + ":" +
                             std::to_string(e.column()) + ": " + e.message());
  }
  if (p.circuit.n_qubits < 1) throw std::runtime_error(o.file + ": no qubits declared (qreg)");
  if (o.shots < 0) throw std::runtime_error("--shots must be positive");
  if (o.seed_given && o.shots == 0 && !o.noise.active())
    throw std::runtime_error("--seed is for --shots or noise; without them the result is exact");
  o.noise.check();
  if (p.dynamic && o.grad)
    throw std::runtime_error(o.file + ": --grad is not supported for a dynamic program (reset, if or a "
                             "mid-circuit measurement): drop --grad");
  if (p.dynamic && o.noise.active())
    throw std::runtime_error(o.file + ": noise is not supported for a dynamic program (reset, if or a "
                             "mid-circuit measurement): drop the noise options");
  if (o.noise.density() && o.shots > 0)
    throw std::runtime_error("--method density gives exact expectations: drop --shots (or use --method trajectories)");
  if (o.noise.density() && c_too_big(p))
    throw std::runtime_error(o.file + ": " + std::to_string(p.circuit.n_qubits) + " qubits is too many for --method density (at most " +
                             std::to_string(kDensityMaxQubits) + "): use --method trajectories");
  if (o.grad && o.noise.active())
    throw std::runtime_error("--grad gives exact, noiseless derivatives: drop --grad or the noise options");
  const nlohmann::ordered_json out = o.single ? run<float>(p, o) : run<double>(p, o);
  std::cout << out.dump() << std::endl;
}

}  // namespace

void add_qasm_command(CLI::App& app) {
  auto o = std::make_shared<QasmOptions>();
  CLI::App* cmd = app.add_subcommand(
      "qasm", "simulate an OpenQASM 2.0 file: <Z_i> of every qubit (and the Jacobian) as JSON");
  cmd->add_option("file", o->file, "OpenQASM 2.0 file ('-': standard input)")->required();
  cmd->add_flag("--grad", o->grad,
                "also print d<Z_i>/dp_j for every numeric gate argument p_j (textual order)");
  cmd->add_option("--shots", o->shots,
                  "estimate from N sampled shots (with --grad: parameter-shift rule on shots)")
      ->check(CLI::Range(1L, 100000000L));
  add_seed_option(*cmd, o->seed, o->seed_given, "seed for --shots sampling and the noise's errors");
  cmd->add_flag("--float", o->single, "simulate in single precision");
  cmd->add_flag("--json", o->json, "accepted for symmetry with the other commands: the output is always one JSON line");
  o->noise.add(*cmd, false);
  cmd->callback([o] { run_qasm(*o); });
}

}  // namespace qmoe::cli
