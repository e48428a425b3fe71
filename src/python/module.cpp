// qmoe._core: the Python bindings (pybind11) of the C++ layers. The package
// python/qmoe wraps this module; docs/python.md maps each Python name onto
// the C++ function it calls.
//
// Contract of this layer:
//  - arrays arrive as C-contiguous float64 numpy arrays (python/qmoe converts
//    and checks dtypes first, so a wrong dtype is a TypeError there) and are
//    read in place; results are numpy arrays the core writes into directly;
//  - every simulation and training call releases the GIL;
//  - every C++ exception leaves as qmoe.Error (a ValueError), MemoryError for
//    std::bad_alloc; nothing reaches the interpreter as a crash;
//  - precision: `single` selects Workspace<float> (inputs and results stay
//    float64 at the interface, as in the core).
#include <cstdlib>
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "circuit/circuit.hpp"
#include "circuit/execute.hpp"
#include "circuit/qasm.hpp"
#include "data/data.hpp"
#include "grad/adjoint.hpp"
#include "model/model.hpp"
#include "sim/state.hpp"
#include "train/checkpoint.hpp"
#include "train/hard_routing.hpp"
#include "train/trainer.hpp"

namespace py = pybind11;
using nlohmann::json;

namespace qmoe::python {
namespace {

using Array = py::array_t<double, py::array::c_style>;
using OptArray = std::optional<Array>;

// The one error type of the package (qmoe.Error, a ValueError subclass).
PyObject* g_error = nullptr;

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

// ---- inputs ------------------------------------------------------------------
// theta as the core's vector (parameters are few: the copy costs nothing).
std::vector<double> theta_of(const Circuit& c, const Array& theta) {
  if (theta.ndim() != 1) fail("theta must be 1-D, got " + std::to_string(theta.ndim()) + " dimensions");
  if (theta.shape(0) != c.n_params)
    fail("theta has " + std::to_string(theta.shape(0)) + " values, the circuit has " +
         std::to_string(c.n_params) + " parameters");
  std::vector<double> t(theta.data(), theta.data() + theta.shape(0));
  for (double v : t)
    if (!std::isfinite(v)) fail("theta holds a NaN or infinite value");
  return t;
}

// X as a pointer into the caller's array: [batch][n_features]; None when the
// circuit takes no features (then the batch is 1).
struct Inputs {
  const double* x = nullptr;
  int batch = 1;
};
Inputs inputs_of(const Circuit& c, const OptArray& X) {
  Inputs in;
  if (!X) {
    if (c.n_features > 0) fail("the circuit reads " + std::to_string(c.n_features) + " features: pass X");
    return in;
  }
  const Array& a = *X;
  if (a.ndim() != 2) fail("X must be 2-D [batch, features], got " + std::to_string(a.ndim()) + " dimensions");
  if (a.shape(1) != c.n_features)
    fail("X has " + std::to_string(a.shape(1)) + " features per sample, the circuit reads " +
         std::to_string(c.n_features));
  if (a.shape(0) < 1) fail("X has no samples");
  in.batch = int(a.shape(0));
  in.x = c.n_features > 0 ? a.data() : nullptr;
  const std::size_t n = std::size_t(a.size());
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(a.data()[i])) fail("X holds a NaN or infinite value");
  return in;
}

std::vector<PauliString> observables_of(const Circuit& c, const std::vector<std::string>& names) {
  if (names.empty()) fail("no observables given");
  std::vector<PauliString> obs;
  for (const std::string& s : names) {
    try {
      obs.push_back(PauliString::parse(s));
    } catch (const std::exception& e) {
      fail("observable '" + s + "': " + e.what());
    }
  }
  check_observables(c, obs);
  return obs;
}

Array new_array(std::vector<py::ssize_t> shape) { return Array(shape); }

// ---- circuits ----------------------------------------------------------------
GateKind kind_of(const std::string& name) {
  for (int k = 0; k <= int(GateKind::Swap); ++k)
    if (name == gate_name(GateKind(k))) return GateKind(k);
  fail("unknown gate '" + name + "'");
}

using AngleSpec = std::tuple<std::string, int, double>;  // ("const" | "param" | "feature", index, value)

void add(Circuit& c, const std::string& name, const std::vector<int>& targets,
         const std::vector<std::pair<int, bool>>& controls, const std::vector<AngleSpec>& angles,
         const std::optional<std::vector<std::complex<double>>>& matrix) {
  const GateKind kind = kind_of(name);
  Gate g;
  g.kind = kind;
  const std::size_t n_targets = kind == GateKind::Swap ? 2 : 1;
  if (targets.size() != n_targets)
    fail(std::string(name) + " takes " + std::to_string(n_targets) + " target qubit(s), got " +
         std::to_string(targets.size()));
  g.target = targets[0];
  if (kind == GateKind::Swap) g.target2 = targets[1];
  for (const auto& [q, on_one] : controls) g.controls.push_back({q, on_one});
  if (int(angles.size()) != angle_count(kind))
    fail(std::string(name) + " takes " + std::to_string(angle_count(kind)) + " angle(s), got " +
         std::to_string(angles.size()));
  for (std::size_t j = 0; j < angles.size(); ++j) {
    const auto& [src, index, value] = angles[j];
    if (!std::isfinite(value)) fail(std::string(name) + ": angle or scale is not finite");
    if (src == "const") g.angles[j] = Angle::constant(value);
    else if (src == "param") g.angles[j] = Angle::param(index, value);
    else if (src == "feature") g.angles[j] = Angle::feature(index, value);
    else fail("angle source must be const, param or feature");
  }
  if (kind == GateKind::Matrix) {
    if (!matrix || matrix->size() != 4) fail("unitary takes a 2x2 matrix");
    for (int k = 0; k < 4; ++k) g.matrix[std::size_t(k)] = (*matrix)[std::size_t(k)];
    const Mat2& m = g.matrix;  // U^dagger U = I
    const cplx a = std::conj(m[0]) * m[0] + std::conj(m[2]) * m[2], b = std::conj(m[0]) * m[1] + std::conj(m[2]) * m[3],
               d = std::conj(m[1]) * m[1] + std::conj(m[3]) * m[3];
    if (std::abs(a - 1.0) > 1e-9 || std::abs(b) > 1e-9 || std::abs(d - 1.0) > 1e-9) fail("unitary: the matrix is not unitary");
  }
  add_gate(c, std::move(g));
}

py::list gates_of(const Circuit& c) {
  py::list out;
  for (const Gate& g : c.gates) {
    py::list targets, controls, angles;
    targets.append(g.target);
    if (g.kind == GateKind::Swap) targets.append(g.target2);
    for (const Control& ctl : g.controls) controls.append(py::make_tuple(ctl.qubit, ctl.on_one));
    for (int j = 0; j < angle_count(g.kind); ++j) {
      const Angle& a = g.angles[std::size_t(j)];
      const char* src = a.source == AngleSource::Constant ? "const" : a.source == AngleSource::Param ? "param" : "feature";
      angles.append(py::make_tuple(src, a.index, a.value));
    }
    py::object matrix = py::none();
    if (g.kind == GateKind::Matrix) matrix = py::cast(std::vector<cplx>(g.matrix.begin(), g.matrix.end()));
    out.append(py::dict(py::arg("name") = gate_name(g.kind), py::arg("targets") = targets,
                        py::arg("controls") = controls, py::arg("angles") = angles, py::arg("matrix") = matrix));
  }
  return out;
}

template <class T>
void run_forward(const Circuit& c, const std::vector<double>& theta, const Inputs& in,
                 const std::vector<PauliString>& obs, double* out, Workspace<T>& ws) {
  forward<T>(c, theta, in.x, in.batch, obs, out, ws);
}

Array expval(const Circuit& c, const Array& theta, const OptArray& X, const std::vector<std::string>& names,
             bool single) {
  const std::vector<double> t = theta_of(c, theta);
  const Inputs in = inputs_of(c, X);
  const std::vector<PauliString> obs = observables_of(c, names);
  Array out = new_array({in.batch, py::ssize_t(obs.size())});
  double* o = out.mutable_data();
  py::gil_scoped_release nogil;
  if (single) {
    Workspace<float> ws;
    ws.keep_states = false;
    run_forward(c, t, in, obs, o, ws);
  } else {
    Workspace<double> ws;
    ws.keep_states = false;
    run_forward(c, t, in, obs, o, ws);
  }
  return out;
}

void check_grad_out(const Array& g, int batch, std::size_t K) {
  if (g.ndim() != 2 || g.shape(0) != batch || g.shape(1) != py::ssize_t(K))
    fail("grad_out must have shape [" + std::to_string(batch) + ", " + std::to_string(K) + "]");
  for (py::ssize_t i = 0; i < g.size(); ++i)
    if (!std::isfinite(g.data()[i])) fail("grad_out holds a NaN or infinite value");
}

// The vector-Jacobian product by the adjoint method, chunk by chunk
// (forward_backward: each chunk's loss gradient is its rows of grad_out).
template <class T>
void vjp_run(const Circuit& c, const std::vector<double>& t, const Inputs& in, const std::vector<PauliString>& obs,
             const double* g, double* dtheta, double* dx, double* ev) {
  Workspace<T> ws;
  ws.saved_layers = kTrainingSavedLayers;
  const std::size_t K = obs.size();
  const LossGradient lg = [&](int begin, int count, const double*, double* d) {
    std::copy(g + std::size_t(begin) * K, g + std::size_t(begin + count) * K, d);
  };
  forward_backward<T>(c, t, in.x, in.batch, obs, lg, ev, dtheta, dx, ws);
}

py::tuple vjp(const Circuit& c, const Array& theta, const OptArray& X, const std::vector<std::string>& names,
              const Array& grad_out, bool single) {
  const std::vector<double> t = theta_of(c, theta);
  const Inputs in = inputs_of(c, X);
  const std::vector<PauliString> obs = observables_of(c, names);
  check_grad_out(grad_out, in.batch, obs.size());
  Array dtheta = new_array({c.n_params});
  std::fill(dtheta.mutable_data(), dtheta.mutable_data() + c.n_params, 0.0);
  Array dx = new_array({in.batch, c.n_features});
  std::vector<double> ev(std::size_t(in.batch) * obs.size());
  double* dt = dtheta.mutable_data();
  double* dxp = c.n_features > 0 ? dx.mutable_data() : nullptr;
  {
    py::gil_scoped_release nogil;
    if (single) vjp_run<float>(c, t, in, obs, grad_out.data(), dt, dxp, ev.data());
    else vjp_run<double>(c, t, in, obs, grad_out.data(), dt, dxp, ev.data());
  }
  return py::make_tuple(dtheta, dx);
}

// A forward() whose states a backward() follows (qmoe.torch.QuantumLayer):
// the circuit (a copy) and its observables, parsed once, and the workspace,
// which lives as long as the autograd node that holds the tape. Each forward
// counts up `generation`, so a backward can tell whether the tape still holds
// its forward.
struct Tape {
  Circuit circuit;
  std::vector<PauliString> obs;
  bool single = false;
  Workspace<double> ws64;
  Workspace<float> ws32;
  std::vector<double> theta;
  std::vector<double> x;  // the inputs of the forward (the backward re-reads them)
  int batch = 0;
  bool ready = false;
  std::uint64_t generation = 0;

  Tape(const Circuit& c, const std::vector<std::string>& names, bool single_precision)
      : circuit(c), obs(observables_of(c, names)), single(single_precision) {}
  // keep: the next forward keeps its states and layer saves for a backward().
  void keep_states(bool keep) {
    ws64.keep_states = ws32.keep_states = keep;
    ws64.saved_layers = ws32.saved_layers = keep ? kTrainingSavedLayers : 0;
  }
  void run_forward(double* out) {
    const Inputs in{x.empty() ? nullptr : x.data(), batch};
    if (single) qmoe::python::run_forward(circuit, theta, in, obs, out, ws32);
    else qmoe::python::run_forward(circuit, theta, in, obs, out, ws64);
  }
};

// keep: a backward() follows (the states and layer saves are kept for it);
// without it the forward keeps nothing and the tape is free again at once.
Array tape_forward(Tape& tape, const Array& theta, const OptArray& X, bool keep) {
  const Circuit& c = tape.circuit;
  tape.theta = theta_of(c, theta);
  const Inputs in = inputs_of(c, X);
  tape.x.assign(in.x, in.x + (in.x ? std::size_t(in.batch) * c.n_features : 0));
  tape.batch = in.batch;
  ++tape.generation;
  Array out = new_array({in.batch, py::ssize_t(tape.obs.size())});
  double* o = out.mutable_data();
  tape.keep_states(keep);
  py::gil_scoped_release nogil;
  tape.run_forward(o);
  tape.ready = keep;
  return out;
}

py::tuple tape_backward(Tape& tape, const Array& grad_out, bool want_dx) {
  const Circuit& c = tape.circuit;
  check_grad_out(grad_out, tape.batch, tape.obs.size());
  Array dtheta = new_array({c.n_params});
  std::fill(dtheta.mutable_data(), dtheta.mutable_data() + c.n_params, 0.0);
  Array dx = new_array({tape.batch, want_dx ? c.n_features : 0});
  double* dt = dtheta.mutable_data();
  double* dxp = want_dx && c.n_features > 0 ? dx.mutable_data() : nullptr;
  const double* x = tape.x.empty() ? nullptr : tape.x.data();
  {
    py::gil_scoped_release nogil;
    if (!tape.ready) {  // a second backward through the same forward (retain_graph): run it again
      std::vector<double> ev(std::size_t(tape.batch) * tape.obs.size());
      tape.keep_states(true);
      tape.run_forward(ev.data());
    }
    if (tape.single) backward<float>(c, tape.theta, x, tape.batch, tape.obs, grad_out.data(), dt, dxp, tape.ws32);
    else backward<double>(c, tape.theta, x, tape.batch, tape.obs, grad_out.data(), dt, dxp, tape.ws64);
  }
  tape.ready = false;
  return py::make_tuple(dtheta, dx);
}

Array jacobian(const Circuit& c, const Array& theta, const OptArray& X, const std::vector<std::string>& names,
               bool single) {
  const std::vector<double> t = theta_of(c, theta);
  const Inputs in = inputs_of(c, X);
  const std::vector<PauliString> obs = observables_of(c, names);
  const std::size_t K = obs.size(), P = std::size_t(c.n_params);
  Array out = new_array({in.batch, py::ssize_t(K), py::ssize_t(P)});
  double* o = out.mutable_data();
  py::gil_scoped_release nogil;
  for (int b = 0; b < in.batch; ++b) {
    const double* xb = in.x ? in.x + std::size_t(b) * c.n_features : nullptr;
    const std::vector<double> j = single ? adjoint_jacobian<float>(c, t, xb, obs) : adjoint_jacobian<double>(c, t, xb, obs);
    std::copy(j.begin(), j.end(), o + std::size_t(b) * K * P);
  }
  return out;
}

template <class T>
sim::State<T> final_states(const Circuit& c, const std::vector<double>& t, const Inputs& in) {
  sim::State<T> s = sim::make_state<T>(c.n_qubits, in.batch);
  GateScratch<T> scratch;
  scratch.reserve(in.batch);
  run_circuit(c, t.data(), in.x, s, scratch);
  return s;
}

Array probabilities(const Circuit& c, const Array& theta, const OptArray& X, const std::vector<int>& qubits,
                    bool single) {
  const std::vector<double> t = theta_of(c, theta);
  const Inputs in = inputs_of(c, X);
  if (c.n_qubits > 26) fail("probabilities of more than 26 qubits do not fit in memory");
  for (int q : qubits)
    if (q < 0 || q >= c.n_qubits) fail("qubit " + std::to_string(q) + " out of range");
  const std::size_t outcomes = std::size_t(1) << (qubits.empty() ? c.n_qubits : int(qubits.size()));
  Array out = new_array({in.batch, py::ssize_t(outcomes)});
  double* o = out.mutable_data();
  py::gil_scoped_release nogil;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const sim::State<T> s = final_states<T>(c, t, in);
    if (qubits.empty())
      for (int b = 0; b < in.batch; ++b) sim::probabilities(s, b, o + std::size_t(b) * outcomes);
    else
      sim::marginal_probabilities(s, qubits, o);
  };
  if (single) run(float{});
  else run(double{});
  return out;
}

py::array_t<std::uint64_t> sample(const Circuit& c, const Array& theta, const OptArray& x, long shots,
                                  std::uint64_t seed) {
  const std::vector<double> t = theta_of(c, theta);
  const Inputs in = inputs_of(c, x);
  if (in.batch != 1) fail("sample takes one input row (X of shape [1, features])");
  if (shots < 1 || shots > 100000000) fail("shots must be 1 .. 100000000");
  std::vector<std::uint64_t> r;
  {
    py::gil_scoped_release nogil;
    const sim::State<double> s = final_states<double>(c, t, in);
    r = sim::sample_basis_states(s, 0, int(shots), seed);
  }
  return py::array_t<std::uint64_t>(py::ssize_t(r.size()), r.data());
}

std::string to_qasm(const Circuit& c, const Array& theta, const OptArray& x, bool measure) {
  const std::vector<double> t = theta_of(c, theta);
  const Inputs in = inputs_of(c, x);
  if (in.batch != 1) fail("to_qasm takes one input row (X of shape [1, features])");
  QasmWriteOptions o;
  o.measure = measure;
  return write_qasm(c, t, in.x, o);
}

py::tuple from_qasm(const std::string& text) {
  ParsedQasm p;
  try {
    p = parse_qasm(text);
  } catch (const QasmError& e) {
    fail("OpenQASM line " + std::to_string(e.line()) + ", column " + std::to_string(e.column()) + ": " + e.message());
  }
  if (p.circuit.n_qubits < 1) fail("OpenQASM: no qubits declared (qreg)");
  if (p.dynamic)
    fail("OpenQASM: reset, if or a mid-circuit measurement make a dynamic program, which a Circuit "
         "cannot hold: run it with `qmoe qasm` (docs/qasm.md)");
  Array theta = new_array({py::ssize_t(p.theta.size())});
  std::copy(p.theta.begin(), p.theta.end(), theta.mutable_data());
  return py::make_tuple(p.circuit, theta);
}

// ---- models ------------------------------------------------------------------
// A model plus whether a ModelConfig describes it (then it has a CLI checkpoint form).
struct PyModel {
  model::Model m;
  bool from_config = false;
};

PyModel model_from_config(const std::string& config_json) {
  const json j = json::parse(config_json, nullptr, false);
  if (j.is_discarded()) fail("model config: not valid JSON");
  PyModel pm;
  pm.m = model::build_model(model::ModelConfig::from_json(j));
  pm.from_config = true;
  return pm;
}

// A model from any circuit: observables [data part, then for a QMoE the Z
// strings of every non-empty subset of routing bits, as build_model], the
// read-out matrix [C][K], the routing qubits (low bit first; empty: a QNN).
PyModel model_from_parts(const Circuit& c, const std::vector<std::string>& names, int n_data_observables,
                         const Array& readout, const std::vector<int>& routing_qubits, int experts,
                         double logit_scale) {
  PyModel pm;
  model::Model& m = pm.m;
  m.circuit = c;
  m.observables = observables_of(c, names);
  const int K = int(m.observables.size());
  if (n_data_observables < 1 || n_data_observables > K) fail("bad number of read-out observables");
  m.n_data_observables = n_data_observables;
  if (readout.ndim() != 2 || readout.shape(1) != K || readout.shape(0) < 2)
    fail("readout must be [classes >= 2, observables]");
  m.readout.assign(readout.data(), readout.data() + readout.size());
  m.routing_qubits = routing_qubits;
  m.config.n_classes = int(readout.shape(0));
  m.config.n_features = std::max(1, c.n_features);
  m.config.experts = experts;
  m.config.logit_scale = logit_scale;
  m.config.data_qubits = c.n_qubits - int(routing_qubits.size());
  for (int q = 0; q < c.n_qubits; ++q)
    if (std::find(routing_qubits.begin(), routing_qubits.end(), q) == routing_qubits.end()) m.data_qubits.push_back(q);
  return pm;
}

// The circuit inputs (quadrant means appended where the model reads them) of rows X.
std::vector<double> model_inputs(const model::Model& m, const Array& X) {
  if (X.ndim() != 2 || X.shape(1) != m.config.n_features)
    fail("X must be [samples, " + std::to_string(m.config.n_features) + "]");
  if (X.shape(0) < 1) fail("X has no samples");
  for (py::ssize_t i = 0; i < X.size(); ++i)
    if (!std::isfinite(X.data()[i])) fail("X holds a NaN or infinite value");
  if (m.circuit.n_features == 0) return {};
  return model::circuit_inputs(m, X.data(), int(X.shape(0)));
}

// logits [n][C], routing [n][L] (empty for a QNN), expvals [n][K] of rows X.
py::tuple model_predict(const PyModel& pm, const Array& theta, const Array& X, bool single) {
  const model::Model& m = pm.m;
  const std::vector<double> t = theta_of(m.circuit, theta);
  const std::vector<double> x = model_inputs(m, X);
  const int B = int(X.shape(0)), K = int(m.observables.size()), C = m.n_classes();
  const int L = m.routing_qubits.empty() ? 0 : m.config.experts;
  Array ev = new_array({B, K}), lg = new_array({B, C}), rt = new_array({B, L});
  double *e = ev.mutable_data(), *l = lg.mutable_data(), *r = rt.mutable_data();
  {
    py::gil_scoped_release nogil;
    const double* xp = x.empty() ? nullptr : x.data();
    if (single) {
      Workspace<float> ws;
      ws.keep_states = false;
      forward<float>(m.circuit, t, xp, B, m.observables, e, ws);
    } else {
      Workspace<double> ws;
      ws.keep_states = false;
      forward<double>(m.circuit, t, xp, B, m.observables, e, ws);
    }
    train::evaluation_logits(m, e, B, l);  // as `qmoe eval` (sampled routing: its top_k states)
    const std::vector<double> p = model::routing_probabilities(m, e, B);
    std::copy(p.begin(), p.end(), r);
  }
  return py::make_tuple(lg, rt, ev);  // with the GIL
}

data::Dataset dataset_of(const Array& X, const py::array_t<int, py::array::c_style>& y, int n_classes) {
  if (X.ndim() != 2) fail("X must be 2-D [samples, features]");
  if (y.ndim() != 1 || y.shape(0) != X.shape(0)) fail("y must be 1-D with one label per row of X");
  data::Dataset d;
  d.n_features = int(X.shape(1));
  d.n_classes = n_classes;
  d.x.assign(X.data(), X.data() + X.size());
  for (double v : d.x)
    if (!std::isfinite(v)) fail("X holds a NaN or infinite value");
  d.y.assign(y.data(), y.data() + y.size());
  for (int v : d.y)
    if (v < 0 || v >= n_classes) fail("label " + std::to_string(v) + " out of range");
  return d;
}

train::TrainConfig train_config_of(const std::string& config_json) {
  const json j = json::parse(config_json, nullptr, false);
  if (j.is_discarded()) fail("train config: not valid JSON");
  return train::TrainConfig::from_json(j);
}

// Trains state from its epoch up to the config's epochs (train::train, as `qmoe train`).
// on_batch(epoch, done, total, loss, acc) is called with the GIL held; an
// exception it raises (e.g. KeyboardInterrupt) stops training after that batch.
void fit(const PyModel& pm, const std::string& train_json, train::TrainState& state, const Array& X,
         const py::array_t<int, py::array::c_style>& y, const OptArray& X_eval,
         const std::optional<py::array_t<int, py::array::c_style>>& y_eval, const py::object& on_batch) {
  const model::Model& m = pm.m;
  const train::TrainConfig tc = train_config_of(train_json);
  const data::Dataset tr = dataset_of(X, y, m.n_classes());
  const data::Dataset te = X_eval && y_eval ? dataset_of(*X_eval, *y_eval, m.n_classes()) : data::Dataset{};
  train::Callbacks cb;
  if (!on_batch.is_none())
    cb.on_batch = [&](int epoch, std::size_t done, std::size_t total, double loss, double acc) {
      py::gil_scoped_acquire gil;
      on_batch(epoch, done, total, loss, acc);
    };
  // Interrupts (Ctrl-C) are seen between batches.
  auto user_batch = cb.on_batch;
  cb.on_batch = [user_batch](int epoch, std::size_t done, std::size_t total, double loss, double acc) {
    if (user_batch) user_batch(epoch, done, total, loss, acc);
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  };
  py::gil_scoped_release nogil;
  train::train(m, tc, tr, te, state, cb);
}

py::dict load_task(const std::string& task, const std::string& scaling, long train_limit, long test_limit,
                   const std::string& data_dir) {
  data::LoadOptions o;
  // The edge resolves the data directory as the CLI does (the core reads no environment).
  o.data_dir = data::resolve_data_dir(data_dir, std::getenv("QMOE_DATA_DIR"), std::getenv("XDG_DATA_HOME"),
                                      std::getenv("HOME"));
  data::check_scaling_applies(task, scaling);
  if (!scaling.empty()) o.scaling = data::parse_scaling(scaling);
  if (train_limit < 0 || test_limit < 0) fail("limits must be >= 0");
  o.max_train = std::size_t(train_limit);
  o.max_test = std::size_t(test_limit);
  data::TaskData td;
  {
    py::gil_scoped_release nogil;
    td = data::load_task(task, o);
  }
  auto split = [](const data::Dataset& d) {
    Array x = new_array({py::ssize_t(d.size()), d.n_features});
    std::copy(d.x.begin(), d.x.end(), x.mutable_data());
    py::array_t<int> y(py::ssize_t(d.size()), d.y.data());
    return std::make_pair(x, y);
  };
  auto [xtr, ytr] = split(td.train);
  auto [xte, yte] = split(td.test);
  return py::dict(py::arg("task") = td.task, py::arg("description") = td.description,
                  py::arg("source_dir") = td.source_dir, py::arg("class_names") = td.train.class_names,
                  py::arg("scaling") = data::is_csv_path(task) ? std::string("none") : data::scaling_name(o.scaling),
                  py::arg("x_train") = xtr, py::arg("y_train") = ytr, py::arg("x_test") = xte,
                  py::arg("y_test") = yte);
}

void set_threads(int n) {
  if (n < 0) fail("threads must be >= 0 (0: all cores)");
#ifdef _OPENMP
  omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
#endif
}
int get_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace

PYBIND11_MODULE(_core, mod) {
  mod.doc() = "qmoe's C++ core (circuits, adjoint gradients, models, training); use the qmoe package";
  g_error = PyErr_NewExceptionWithDoc("qmoe.Error", "A problem with qmoe's input (a ValueError).", PyExc_ValueError,
                                      nullptr);
  mod.attr("Error") = py::handle(g_error);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const py::error_already_set&) {
      throw;
    } catch (const std::bad_alloc&) {
      PyErr_SetString(PyExc_MemoryError, "qmoe: out of memory");
    } catch (const std::exception& e) {
      PyErr_SetString(g_error, e.what());
    }
  });

  py::class_<Circuit>(mod, "Circuit")
      .def(py::init([](int n) {
        if (n < 1 || n > 30) fail("n_qubits must be 1 .. 30, got " + std::to_string(n));
        Circuit c;
        c.n_qubits = n;
        return c;
      }))
      .def_readonly("n_qubits", &Circuit::n_qubits)
      .def_readonly("n_params", &Circuit::n_params)
      .def_readonly("n_features", &Circuit::n_features)
      .def("reserve", [](Circuit& c, int params, int features) {
        if (params < 0 || features < 0) fail("negative size");
        c.n_params = std::max(c.n_params, params), c.n_features = std::max(c.n_features, features);
      })
      .def("__len__", [](const Circuit& c) { return c.gates.size(); })
      .def("add", &add)
      .def("gates", &gates_of)
      .def("describe", [](const Circuit& c) {
        std::string s;
        for (const Gate& g : c.gates) s += describe(g) + "\n";
        return s;
      })
      .def("copy", [](const Circuit& c) { return c; })
      .def(py::pickle([](const Circuit& c) { return py::make_tuple(c.n_qubits, c.n_params, c.n_features, gates_of(c)); },
                      [](py::tuple t) {
                        Circuit c;
                        c.n_qubits = t[0].cast<int>();
                        for (py::handle g : t[3].cast<py::list>()) {
                          py::dict d = g.cast<py::dict>();
                          add(c, d["name"].cast<std::string>(), d["targets"].cast<std::vector<int>>(),
                              d["controls"].cast<std::vector<std::pair<int, bool>>>(),
                              d["angles"].cast<std::vector<AngleSpec>>(),
                              d["matrix"].cast<std::optional<std::vector<cplx>>>());
                        }
                        c.n_params = std::max(c.n_params, t[1].cast<int>());
                        c.n_features = std::max(c.n_features, t[2].cast<int>());
                        return c;
                      }));

  mod.def("expval", &expval);
  mod.def("vjp", &vjp);
  mod.def("jacobian", &jacobian);
  mod.def("probabilities", &probabilities);
  mod.def("sample", &sample);
  mod.def("to_qasm", &to_qasm);
  mod.def("from_qasm", &from_qasm);

  py::class_<Tape>(mod, "Tape")
      .def(py::init<const Circuit&, const std::vector<std::string>&, bool>())
      .def("forward", &tape_forward, py::arg("theta"), py::arg("X"), py::arg("keep") = true)
      .def("backward", &tape_backward)
      .def_readonly("generation", &Tape::generation);

  py::class_<train::TrainState>(mod, "TrainState")
      .def_property_readonly("theta",
                             [](const train::TrainState& s) {
                               return py::array_t<double>(py::ssize_t(s.theta.size()), s.theta.data());
                             })
      .def("set_theta", [](train::TrainState& s, const Array& t) {
        if (t.ndim() != 1 || std::size_t(t.shape(0)) != s.theta.size()) fail("theta has the wrong size");
        s.theta.assign(t.data(), t.data() + t.size());
      })
      .def_readonly("epoch", &train::TrainState::epoch)
      .def(py::pickle(  // every field, so a fitted estimator pickles (and clones) completely
          [](const train::TrainState& s) {
            std::vector<std::vector<double>> hist;
            for (const auto& e : s.history)
              hist.push_back({double(e.epoch), e.train_loss, e.train_acc, e.test_loss, e.test_acc, e.seconds});
            const train::Adam& b = s.best_adam;
            return py::make_tuple(s.theta, s.adam.lr, s.adam.beta1, s.adam.beta2, s.adam.eps, s.adam.step_count,
                                  s.adam.m, s.adam.v, s.epoch, py::bytes(s.rng_state), hist, s.best_test_acc,
                                  s.best_epoch, s.best_theta,
                                  py::make_tuple(b.lr, b.beta1, b.beta2, b.eps, b.step_count, b.m, b.v),
                                  py::bytes(s.best_rng_state));
          },
          [](const py::tuple& t) {  // 13 fields: pickled before the best epoch's state was kept
            if (t.size() != 13 && t.size() != 16) fail("damaged training state");
            train::TrainState s;
            s.theta = t[0].cast<std::vector<double>>();
            s.adam.lr = t[1].cast<double>(), s.adam.beta1 = t[2].cast<double>(), s.adam.beta2 = t[3].cast<double>();
            s.adam.eps = t[4].cast<double>(), s.adam.step_count = t[5].cast<std::int64_t>();
            s.adam.m = t[6].cast<std::vector<double>>(), s.adam.v = t[7].cast<std::vector<double>>();
            s.epoch = t[8].cast<int>(), s.rng_state = t[9].cast<std::string>();
            for (const auto& h : t[10].cast<std::vector<std::vector<double>>>()) {
              if (h.size() != 6) fail("damaged training state");
              s.history.push_back({int(h[0]), h[1], h[2], h[3], h[4], h[5]});
            }
            s.best_test_acc = t[11].cast<double>(), s.best_epoch = t[12].cast<int>();
            if (t.size() == 16) {
              s.best_theta = t[13].cast<std::vector<double>>();
              const auto b = t[14].cast<py::tuple>();
              if (b.size() != 7) fail("damaged training state");
              s.best_adam.lr = b[0].cast<double>(), s.best_adam.beta1 = b[1].cast<double>();
              s.best_adam.beta2 = b[2].cast<double>(), s.best_adam.eps = b[3].cast<double>();
              s.best_adam.step_count = b[4].cast<std::int64_t>();
              s.best_adam.m = b[5].cast<std::vector<double>>(), s.best_adam.v = b[6].cast<std::vector<double>>();
              s.best_rng_state = t[15].cast<std::string>();
            }
            return s;
          }))
      .def_property_readonly("history", [](const train::TrainState& s) {
        py::list out;
        for (const auto& e : s.history)
          out.append(py::dict(py::arg("epoch") = e.epoch, py::arg("train_loss") = e.train_loss,
                              py::arg("train_acc") = e.train_acc, py::arg("test_loss") = e.test_loss,
                              py::arg("test_acc") = e.test_acc, py::arg("seconds") = e.seconds));
        return out;
      });

  py::class_<PyModel>(mod, "Model")
      .def_static("from_config", &model_from_config)
      .def_static("from_parts", &model_from_parts)
      .def_property_readonly("from_config_", [](const PyModel& p) { return p.from_config; })
      .def_property_readonly("config_json", [](const PyModel& p) { return p.m.config.to_json().dump(); })
      .def_property_readonly("circuit", [](const PyModel& p) { return p.m.circuit; })
      .def_property_readonly("observables", [](const PyModel& p) {
        std::vector<std::string> s;
        for (const PauliString& o : p.m.observables) s.push_back(o.str());
        return s;
      })
      .def_property_readonly("n_params", [](const PyModel& p) { return p.m.n_params(); })
      .def_property_readonly("n_classes", [](const PyModel& p) { return p.m.n_classes(); })
      .def_property_readonly("n_features", [](const PyModel& p) { return p.m.config.n_features; })
      .def_property_readonly("n_experts", [](const PyModel& p) { return p.m.routing_qubits.empty() ? 0 : p.m.config.experts; })
      .def_property_readonly("routing_qubits", [](const PyModel& p) { return p.m.routing_qubits; })
      .def("init_params",
           [](const PyModel& p, std::uint64_t seed) {
             const std::vector<double> t = model::init_params(p.m, seed);
             return py::array_t<double>(py::ssize_t(t.size()), t.data());
           })
      .def("initial_state", [](const PyModel& p, const std::string& train_json) {
        return train::initial_state(p.m, train_config_of(train_json));
      })
      .def("circuit_inputs", [](const PyModel& p, const Array& X) {
        const std::vector<double> x = model_inputs(p.m, X);
        Array out = new_array({X.shape(0), p.m.circuit.n_features});
        std::copy(x.begin(), x.end(), out.mutable_data());
        return out;
      })
      .def("predict", &model_predict)
      .def("fit", &fit)
      .def("save_checkpoint",
           [](const PyModel& p, const std::string& path, const std::string& train_json, const std::string& task_json,
              const train::TrainState& st) {
             if (!p.from_config) fail("only models a ModelConfig describes (qmoe.models factories) have a CLI checkpoint form");
             train::Checkpoint ck;
             ck.model = p.m.config;
             ck.train = train_config_of(train_json);
             ck.task = json::parse(task_json);
             ck.state = st;
             train::save_checkpoint(path, ck);
           });

  mod.def("load_checkpoint", [](const std::string& path) {
    train::Checkpoint ck = train::load_checkpoint(path);
    PyModel pm;
    pm.m = model::build_model(ck.model);
    pm.from_config = true;
    return py::make_tuple(pm, ck.train.to_json().dump(), ck.task.dump(), ck.state);
  });
  mod.def("default_model_config", [] { return model::ModelConfig().to_json().dump(); });
  mod.def("default_train_config", [] { return train::TrainConfig().to_json().dump(); });
  mod.def("default_scaling", [] { return data::scaling_name(data::LoadOptions().scaling); });
  mod.def("matched_depth", [](const std::string& qnn_json, int target) {
    return model::matched_depth(model::ModelConfig::from_json(json::parse(qnn_json)), target);
  });
  mod.def("load_task", &load_task);
  mod.def("task_list", &data::task_list);
  mod.def("set_threads", &set_threads);
  mod.def("get_threads", &get_threads);
}

}  // namespace qmoe::python
