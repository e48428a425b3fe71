#include "train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "grad/noise.hpp"
#include "grad/param_shift.hpp"
#include "grad/shots.hpp"
#include "model/json_integer.hpp"
#include "model/routing_loss.hpp"
#include "sim/rng.hpp"
#include "train/hard_routing.hpp"

namespace qmoe::train {

using nlohmann::json;

GradientMethod parse_gradient_method(std::string_view s) {
  if (s == "adjoint") return GradientMethod::Adjoint;
  if (s == "param-shift") return GradientMethod::ParamShift;
  throw std::invalid_argument("gradient must be adjoint or param-shift, got '" + std::string(s) + "'");
}

const char* to_string(GradientMethod m) { return m == GradientMethod::ParamShift ? "param-shift" : "adjoint"; }

json TrainConfig::to_json() const {
  json j{{"epochs", epochs}, {"batch", batch}, {"lr", lr}, {"seed", seed}, {"gradient", to_string(gradient)},
         {"chunk", chunk}};
  j["shots"] = shots;
  j["noise"] = noise.empty() ? json(nullptr) : noise_model_to_json(noise);
  return j;
}

TrainConfig TrainConfig::from_json(const json& j) {
  if (!j.is_object()) throw std::invalid_argument("train config: expected a JSON object");
  TrainConfig t;
  for (const char* key : {"epochs", "batch", "lr", "seed", "gradient"})
    if (!j.contains(key)) throw std::invalid_argument(std::string("train config: \"") + key + "\" is missing");
  // Each field by name, so an error says which one (not the JSON library's text).
  const auto wrong_type = [&j](const char* key) {
    return std::invalid_argument(std::string("\"") + key + "\" has the wrong type (" + j.at(key).dump() + ")");
  };
  try {
    t.epochs = model::json_integer<int>(j.at("epochs"), "epochs");
    t.batch = model::json_integer<int>(j.at("batch"), "batch");
    if (!j.at("lr").is_number()) throw wrong_type("lr");
    t.lr = j.at("lr").get<double>();
    t.seed = model::json_integer<std::uint64_t>(j.at("seed"), "seed");
    if (!j.at("gradient").is_string()) throw wrong_type("gradient");
    t.gradient = parse_gradient_method(j.at("gradient").get<std::string>());
    if (j.contains("chunk")) t.chunk = model::json_integer<int>(j.at("chunk"), "chunk");
    if (j.contains("shots")) t.shots = model::json_integer<long>(j.at("shots"), "shots");
    if (j.contains("noise") && !j.at("noise").is_null()) t.noise = noise_model_from_json(j.at("noise"));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("train config: ") + e.what());
  }
  t.validate();
  return t;
}

void TrainConfig::validate() const {
  // The one check of every path (CLI flags, checkpoints, experiment files).
  if (epochs < 0 || epochs > kMaxEpochs) throw std::invalid_argument("epochs must be 0..100000");
  if (batch < 1 || batch > kMaxBatch) throw std::invalid_argument("batch must be 1..1000000");
  if (!(lr > 0) || !std::isfinite(lr)) throw std::invalid_argument("learning rate must be > 0");
  if (chunk < 1 || chunk > kMaxBatch) throw std::invalid_argument("chunk must be 1..1000000");
  if (shots < 0 || shots > kMaxShots) throw std::invalid_argument("shots must be 0..100000000");
  if (shots > 0 && gradient != GradientMethod::ParamShift)
    throw std::invalid_argument("training from shots takes parameter-shift gradients (gradient param-shift)");
  noise.validate();
}

json noise_model_to_json(const NoiseModel& n) {
  // Only the values that are set: the model reads back equal field by field.
  const auto fields = [](json& j, double p1, double p2, double pm, double amp, double phase, double r01, double r10) {
    const std::pair<const char*, double> all[] = {{"depol1", p1},        {"depol2", p2},
                                                  {"depol_multi", pm},   {"amp_damping", amp},
                                                  {"phase_damping", phase}, {"readout_01", r01},
                                                  {"readout_10", r10}};
    for (const auto& [k, v] : all)
      if (v >= 0) j[k] = v;
  };
  json j = json::object();
  fields(j, n.p1, n.p2, n.p_multi, n.amp_damping, n.phase_damping, n.readout_01, n.readout_10);
  j["readout_error"] = n.readout;
  for (std::size_t q = 0; q < n.qubits.size(); ++q) {
    const QubitNoise& u = n.qubits[q];
    json o = json::object();
    fields(o, u.p1, u.p2, u.p_multi, u.amp_damping, u.phase_damping, u.readout_01, u.readout_10);
    if (!o.empty()) j["qubits"][std::to_string(q)] = o;
  }
  return j;
}

NoiseModel noise_model_from_json(const json& j) {
  const auto bad = [](const std::string& field, const std::string& what) {
    return std::invalid_argument("field '" + field + "': " + what);
  };
  if (!j.is_object()) throw std::invalid_argument("expected a JSON object (docs/noise.md)");
  const auto prob = [&](const json& v, const std::string& field) {
    if (!v.is_number()) throw bad(field, "expected a number");
    const double p = v.get<double>();
    if (!(p >= 0.0 && p <= 1.0)) throw bad(field, "must be a probability in [0, 1], not " + v.dump());
    return p;
  };
  // The error fields of the top level and of each qubit.
  const auto error_field = [&](const std::string& k, const json& v, const std::string& field, double& p1, double& p2,
                               double& pm, double& amp, double& phase, double& r01, double& r10) {
    if (k == "depol1") p1 = prob(v, field);
    else if (k == "depol2") p2 = prob(v, field);
    else if (k == "depol_multi") pm = prob(v, field);
    else if (k == "amp_damping") amp = prob(v, field);
    else if (k == "phase_damping") phase = prob(v, field);
    else if (k == "readout_01") r01 = prob(v, field);
    else if (k == "readout_10") r10 = prob(v, field);
    else return false;
    return true;
  };
  NoiseModel m;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "readout_error") {
      m.readout = prob(it.value(), k);
    } else if (k == "description") {
      if (!it.value().is_string()) throw bad(k, "expected a string");
    } else if (k == "qubits") {
      if (!it.value().is_object()) throw bad(k, "expected an object {\"0\": {...}, \"1\": {...}}");
      for (auto q = it.value().begin(); q != it.value().end(); ++q) {
        const std::string qf = "qubits." + q.key();
        const std::string& key = q.key();
        if (key.empty() || key.size() > 2 || key.find_first_not_of("0123456789") != std::string::npos ||
            std::stoi(key) > 63)
          throw bad(qf, "a qubit index 0..63 is expected as the key");
        if (!q.value().is_object()) throw bad(qf, "expected an object of error fields");
        const std::size_t qi = std::size_t(std::stoi(key));
        if (m.qubits.size() <= qi) m.qubits.resize(qi + 1);
        QubitNoise& n = m.qubits[qi];
        for (auto f = q.value().begin(); f != q.value().end(); ++f)
          if (!error_field(f.key(), f.value(), qf + "." + f.key(), n.p1, n.p2, n.p_multi, n.amp_damping,
                           n.phase_damping, n.readout_01, n.readout_10))
            throw bad(qf + "." + f.key(), "unknown field (known: depol1, depol2, depol_multi, amp_damping, "
                                          "phase_damping, readout_01, readout_10)");
      }
    } else if (!error_field(k, it.value(), k, m.p1, m.p2, m.p_multi, m.amp_damping, m.phase_damping, m.readout_01,
                            m.readout_10)) {
      throw bad(k, "unknown field (known: description, depol1, depol2, depol_multi, amp_damping, phase_damping, "
                   "readout_error, readout_01, readout_10, qubits)");
    }
  }
  return m;
}

namespace {

void check_data(const model::Model& m, const data::Dataset& d) {
  if (d.n_features != m.config.n_features)
    throw std::invalid_argument("data has " + std::to_string(d.n_features) + " features, the model expects " +
                                std::to_string(m.config.n_features));
  if (d.n_classes > m.n_classes())
    throw std::invalid_argument("data has " + std::to_string(d.n_classes) + " classes, the model " +
                                std::to_string(m.n_classes()));
}

bool all_finite(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

// Gathers rows into a contiguous batch of circuit inputs.
std::vector<double> gather(const model::Model& m, const data::Dataset& d, const std::size_t* rows, int n,
                           std::vector<int>& labels) {
  std::vector<double> x(std::size_t(n) * d.n_features);
  labels.resize(std::size_t(n));
  for (int i = 0; i < n; ++i) {
    std::copy(d.row(rows[i]), d.row(rows[i]) + d.n_features, x.begin() + std::size_t(i) * d.n_features);
    labels[std::size_t(i)] = d.y[rows[i]];
  }
  return model::circuit_inputs(m, x.data(), n);
}

// m with its circuit replaced (same parameters, features and observables).
model::Model with_circuit(const model::Model& m, Circuit c) {
  model::Model out = m;
  out.circuit = std::move(c);
  return out;
}

}  // namespace

std::pair<int, int> share(int n, int rank, int size) {
  if (size < 1 || rank < 0 || rank >= size) throw std::invalid_argument("share: bad worker rank or count");
  const auto at = [&](int w) { return int(std::int64_t(n) * w / size); };
  return {at(rank), at(rank + 1)};
}

namespace {

// All workers' partials in worker (= chunk) order: mine alone for one worker.
std::vector<double> gather_all(const DataParallel& dp, std::vector<double> mine, const std::vector<int>& counts) {
  if (dp.size == 1) return mine;
  if (!dp.gather) throw std::invalid_argument("data parallelism over several workers needs a gather function");
  std::vector<double> all = dp.gather(mine, counts);
  std::size_t total = 0;
  for (int c : counts) total += std::size_t(c);
  if (all.size() != total) throw std::runtime_error("data parallelism: the workers' partials came back incomplete");
  return all;
}

}  // namespace

std::pair<double, int> batch_gradient(const model::Model& m, const std::vector<double>& theta,
                                      const data::Dataset& d, const std::vector<std::size_t>& rows,
                                      GradientMethod method, std::vector<double>& grad,
                                      Workspace<double>& ws, const DataParallel& dp, std::uint64_t route_seed,
                                      const Shots& shots) {
  const int B = int(rows.size()), C = m.n_classes(), K = int(m.observables.size());
  if (shots.count > 0 && method != GradientMethod::ParamShift)
    throw std::invalid_argument("training from shots takes parameter-shift gradients");
  const bool routed = !m.routing_qubits.empty();
  const int L = m.config.experts;
  const model::RoutingLossWeights rw{routed ? m.config.load_balance : 0.0, routed ? m.config.routing_entropy : 0.0};
  const bool sampled = m.config.routing == model::Routing::Sampled;
  std::vector<int> labels;
  ws.saved_layers = method == GradientMethod::ParamShift ? 0 : kTrainingSavedLayers;
  if (method == GradientMethod::Adjoint && !(rw.load_balance > 0) && !sampled) {
    // A sample's loss needs only its own expectations: each chunk runs forward
    // and back while its states are in cache (forward_backward). This worker
    // runs chunks [c0, c1) of the batch; the per-chunk partials of all workers
    // (dL/dtheta, loss, hits: W doubles) are summed in chunk order.
    const int cs = ws.chunk_size, n_chunks = (B + cs - 1) / cs;
    const std::size_t P = theta.size(), W = P + 2;
    const auto [c0, c1] = share(n_chunks, dp.rank, dp.size);
    const int b0 = c0 * cs, nb = std::min(B, c1 * cs) - b0;
    std::vector<double> mine(std::size_t(c1 - c0) * W);
    if (nb > 0) {
      const std::vector<double> x = gather(m, d, rows.data() + b0, nb, labels);
      std::vector<double> ev(std::size_t(nb) * K), dtheta(P, 0.0);
      std::vector<double> chunk_loss(std::size_t(nb), 0.0);  // at each chunk's first sample
      std::vector<int> chunk_hits(std::size_t(nb), 0);
      const LossGradient loss_gradient = [&](int begin, int count, const double* e, double* dz_out) {
        std::vector<double> z(std::size_t(count) * C), dz(z.size());
        model::logits(m, e, count, z.data());
        chunk_loss[std::size_t(begin)] = nll_log_softmax(z.data(), labels.data() + begin, count, C, dz.data(),
                                                         &chunk_hits[std::size_t(begin)], B);
        model::logits_backward(m, dz.data(), count, dz_out);
        if (rw.entropy > 0) {  // per sample, so it fits a chunk
          const std::vector<double> p = model::routing_probabilities(m, e, count);
          std::vector<double> dpk(p.size(), 0.0);
          chunk_loss[std::size_t(begin)] += model::routing_loss(p.data(), count, L, rw, dpk.data(), B);
          model::routing_probabilities_backward(m, dpk.data(), count, dz_out);
        }
      };
      forward_backward(m.circuit, theta, x.data(), nb, m.observables, loss_gradient, ev.data(), dtheta.data(),
                       nullptr, ws);
      for (int k = 0; k < c1 - c0; ++k) {
        std::copy_n(ws.chunk_grads.begin() + std::ptrdiff_t(std::size_t(k) * P), P, mine.begin() + std::ptrdiff_t(k * W));
        mine[std::size_t(k) * W + P] = chunk_loss[std::size_t(k) * cs];
        mine[std::size_t(k) * W + P + 1] = chunk_hits[std::size_t(k) * cs];
      }
    }
    std::vector<int> counts(std::size_t(dp.size));
    for (int w = 0; w < dp.size; ++w) {
      const auto [f, l] = share(n_chunks, w, dp.size);
      counts[std::size_t(w)] = int(std::size_t(l - f) * W);
    }
    const std::vector<double> all = gather_all(dp, std::move(mine), counts);
    grad.assign(P, 0.0);
    double loss = 0;
    int correct = 0;
    for (int c = 0; c < n_chunks; ++c) {  // chunk order, as forward_backward() sums them
      const double* part = all.data() + std::size_t(c) * W;
      for (std::size_t j = 0; j < P; ++j) grad[j] += part[j];
      loss += part[P];
      correct += int(part[P + 1]);
    }
    return {loss, correct};
  }
  const std::vector<double> x = gather(m, d, rows.data(), B, labels);
  std::vector<double> ev(std::size_t(B) * K);
  grad.assign(theta.size(), 0.0);
  // The load-balance term couples the batch (its mean routing), sampled routing's baseline
  // too, and parameter shift takes the whole batch's dL/d<O>: forward(), the loss, then the gradient.
  std::vector<double> dev(std::size_t(B) * K, 0.0);
  ws.keep_states = method == GradientMethod::Adjoint;
  if (shots.count > 0)
    shot_forward<double>(m.circuit, theta, x.data(), B, m.observables, shots.count, shots.seed, ev.data());
  else
    forward(m.circuit, theta, x.data(), B, m.observables, ev.data(), ws);
  int correct = 0;
  double loss = 0;
  if (sampled) {  // the measured routing register: score-function estimate (hard_routing.hpp)
    const Branches br = branches(m, ev.data(), B);
    std::vector<double> dpr, da;
    const HardLoss hl = sampled_routing_loss(m, br, labels.data(), B, draw_routes(br, B, m.config.top_k, route_seed),
                                             dpr, da);
    loss = hl.loss;
    correct = hl.correct;
    branches_backward(m, br, dpr.data(), da.data(), B, dev.data());
  } else {
    std::vector<double> lg(std::size_t(B) * C), dlg(std::size_t(B) * C);
    model::logits(m, ev.data(), B, lg.data());
    loss = nll_log_softmax(lg.data(), labels.data(), B, C, dlg.data(), &correct);
    model::logits_backward(m, dlg.data(), B, dev.data());
  }
  if (rw.any()) {  // load balance and entropy on the soft routing distribution (model/routing_loss.hpp)
    const std::vector<double> p = model::routing_probabilities(m, ev.data(), B);
    std::vector<double> dpk(p.size(), 0.0);
    loss += model::routing_loss(p.data(), B, L, rw, dpk.data(), B);
    model::routing_probabilities_backward(m, dpk.data(), B, dev.data());
  }
  if (shots.count > 0)
    shot_param_shift_gradient(m.circuit, theta, x.data(), B, m.observables, shots.count,
                              sim::mix64(shots.seed, 0x5ea7), dev.data(), grad.data());
  else if (method == GradientMethod::ParamShift)
    param_shift_gradient(m.circuit, theta, x.data(), B, m.observables, dev.data(), grad.data(), ws);
  else
    backward(m.circuit, theta, x.data(), B, m.observables, dev.data(), grad.data(), nullptr, ws);
  return {loss, correct};
}

Evaluation evaluate(const model::Model& m, const std::vector<double>& theta, const data::Dataset& d,
                    Workspace<double>& ws, const EvalNoise* noise, const DataParallel& dp,
                    const BatchExpectations* run,
                    const std::function<void(std::size_t, std::size_t)>& progress) {
  check_data(m, d);
  Evaluation e;
  const int C = m.n_classes(), K = int(m.observables.size()), L = m.routing_qubits.empty() ? 0 : m.config.experts;
  const std::size_t n = d.size();
  e.predictions.resize(n);
  e.probabilities.resize(n * C);
  e.routing.resize(n * L);
  e.confusion.assign(std::size_t(C), std::vector<int>(std::size_t(C), 0));
  e.routing_by_class.assign(std::size_t(C), std::vector<double>(std::size_t(L), 0.0));
  const bool sampled = m.config.routing == model::Routing::Sampled;
  if (sampled) {
    e.choices.resize(n);
    e.choice_counts.assign(std::size_t(C), std::vector<double>(std::size_t(1) << m.routing_qubits.size(), 0.0));
  }
  std::vector<std::size_t> rows(n);
  std::iota(rows.begin(), rows.end(), std::size_t(0));
  // The expectation values, in steps of whole chunks: this worker's run of
  // chunks (all of them with one worker or with noise, whose trajectories
  // depend on the step), then every worker's, in sample order.
  const DataParallel one;
  const DataParallel& w = noise || run ? one : dp;
  const int cs = ws.chunk_size, n_chunks = int((n + std::size_t(cs) - 1) / std::size_t(cs));
  const int step = cs * std::max(1, 1024 / cs);
  const auto [c0, c1] = share(n_chunks, w.rank, w.size);
  const std::size_t s0 = std::size_t(c0) * cs, s1 = std::min(n, std::size_t(c1) * cs);
  std::vector<double> mine((s1 - s0) * K);
  std::vector<int> labels;
  for (std::size_t s = s0; s < s1; s += step) {
    const int B = int(std::min<std::size_t>(step, s1 - s));
    const std::vector<double> x = gather(m, d, rows.data() + s, B, labels);
    double* ev = mine.data() + (s - s0) * K;
    ws.saved_layers = 0;  // no backward follows
    ws.keep_states = false;
    if (run)
      (*run)(x.data(), B, ev);
    else if (noise)
      noisy_forward<double>(m.circuit, theta, x.data(), B, m.observables, noise->model, noise->trajectories,
                            noise->seed, ev);
    else
      forward(m.circuit, theta, x.data(), B, m.observables, ev, ws);
    if (progress) progress(s + std::size_t(B) - s0, s1 - s0);
  }
  std::vector<int> ev_counts(std::size_t(w.size));
  for (int r = 0; r < w.size; ++r) {
    const auto [f, l] = share(n_chunks, r, w.size);
    ev_counts[std::size_t(r)] = int((std::min(n, std::size_t(l) * cs) - std::min(n, std::size_t(f) * cs)) * K);
  }
  e.expvals = gather_all(w, std::move(mine), ev_counts);
  // Loss, predictions and routing from the expectation values.
  const int summary_step = 1024;
  double loss_sum = 0;
  int correct_sum = 0;
  for (std::size_t s = 0; s < n; s += summary_step) {
    const int B = int(std::min<std::size_t>(summary_step, n - s));
    labels.resize(std::size_t(B));
    for (int b = 0; b < B; ++b) labels[std::size_t(b)] = d.y[s + std::size_t(b)];
    const double* ev = e.expvals.data() + s * K;
    std::vector<double> lg(std::size_t(B) * C);
    if (sampled) {  // the most likely top_k routing states' read-out (hard_routing.hpp)
      routed_logits(m, branches(m, ev, B), B, lg.data(), e.choices.data() + s);
      for (int b = 0; b < B; ++b) e.choice_counts[std::size_t(labels[b])][std::size_t(e.choices[s + b])] += 1;
    } else {
      model::logits(m, ev, B, lg.data());
    }
    int correct = 0;
    loss_sum += nll_log_softmax(lg.data(), labels.data(), B, C, nullptr, &correct) * B;
    correct_sum += correct;
    const std::vector<double> p = model::routing_probabilities(m, ev, B);
    std::copy(p.begin(), p.end(), e.routing.begin() + std::ptrdiff_t(s * L));
    for (int b = 0; b < B; ++b) {
      const double* z = lg.data() + std::size_t(b) * C;
      const int arg = int(std::max_element(z, z + C) - z);
      double mx = z[arg], sum = 0;
      for (int c = 0; c < C; ++c) sum += std::exp(z[c] - mx);
      for (int c = 0; c < C; ++c) e.probabilities[(s + b) * C + c] = std::exp(z[c] - mx) / sum;
      e.predictions[s + b] = arg;
      e.confusion[std::size_t(labels[b])][std::size_t(arg)]++;
      for (int k = 0; k < L; ++k) e.routing_by_class[std::size_t(labels[b])][std::size_t(k)] += p[std::size_t(b) * L + k];
    }
  }
  const std::vector<std::size_t> counts = d.class_counts();
  for (int c = 0; c < C && c < int(counts.size()); ++c)
    for (int k = 0; k < L; ++k)
      if (counts[c]) e.routing_by_class[c][k] /= double(counts[c]);
  e.loss = n ? loss_sum / double(n) : 0.0;
  e.accuracy = n ? double(correct_sum) / double(n) : 0.0;
  return e;
}

TrainState initial_state(const model::Model& m, const TrainConfig& tc) {
  TrainState s;
  s.theta = model::init_params(m, tc.seed);
  s.adam.lr = tc.lr;
  std::mt19937_64 rng(tc.seed ^ 0x9e3779b97f4a7c15ULL);
  std::ostringstream os;
  os << rng;
  s.rng_state = os.str();
  return s;
}

void train(const model::Model& m, const TrainConfig& tc, const data::Dataset& train_set,
           const data::Dataset& test_set, TrainState& st, const Callbacks& cb, const DataParallel& dp) {
  tc.validate();
  check_data(m, train_set);
  if (test_set.size() > 0) check_data(m, test_set);
  if (st.theta.size() != std::size_t(m.n_params()))
    throw std::invalid_argument("parameter count does not match the model");
  if (train_set.size() == 0) throw std::invalid_argument("the training set is empty");
  Workspace<double> ws;
  ws.chunk_size = tc.chunk;
  std::mt19937_64 rng;
  {
    std::istringstream is(st.rng_state);
    is >> rng;
    if (is.fail()) throw std::runtime_error("damaged random-number state in the training state");
  }
  std::vector<double> grad;
  std::vector<std::size_t> order(train_set.size());
  // Works on a copy: on a non-finite value `st` stays the last completed epoch.
  TrainState work = st;
  for (int epoch = st.epoch + 1; epoch <= tc.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    std::iota(order.begin(), order.end(), std::size_t(0));
    for (std::size_t i = order.size() - 1; i > 0; --i)  // Fisher-Yates with explicit draws
      std::swap(order[i], order[rng() % (i + 1)]);
    double loss_sum = 0;
    std::size_t correct = 0;
    for (std::size_t s = 0; s < order.size(); s += std::size_t(tc.batch)) {
      const std::size_t e = std::min(order.size(), s + std::size_t(tc.batch));
      const std::vector<std::size_t> rows(order.begin() + std::ptrdiff_t(s), order.begin() + std::ptrdiff_t(e));
      // Sampled routing, shots and injected noise draw from hashes of the seed and the step:
      // the same on every worker, and on resume.
      const std::uint64_t route_seed = sim::mix64(tc.seed, std::uint64_t(work.adam.step_count));
      const std::uint64_t step_seed = sim::mix64(sim::mix64(tc.seed ^ 0x7a11ULL, std::uint64_t(epoch)), s / tc.batch);
      const Shots shots{tc.shots, step_seed};
      const std::pair<double, int> lh =
          tc.noise.empty()
              ? batch_gradient(m, work.theta, train_set, rows, tc.gradient, grad, ws, dp, route_seed, shots)
              : batch_gradient(with_circuit(m, error_realisation(m.circuit, tc.noise, step_seed)), work.theta,
                               train_set, rows, tc.gradient, grad, ws, dp, route_seed, shots);
      const auto [loss, hits] = lh;
      const auto where = [&] { return "epoch " + std::to_string(epoch) + ", batch " + std::to_string(s / tc.batch + 1); };
      if (!std::isfinite(loss) || !all_finite(grad))
        throw NonFiniteError("training turned non-finite in " + where() + " (loss " + std::to_string(loss) +
                             (std::isfinite(loss) ? ", a gradient entry not finite" : "") + "): stopped");
      work.adam.step(work.theta, grad);
      if (!all_finite(work.theta))
        throw NonFiniteError("training turned non-finite in " + where() +
                             ": an Adam step made a parameter infinite (learning rate too large?): stopped");
      loss_sum += loss * double(rows.size());
      correct += std::size_t(hits);
      if (cb.on_batch) cb.on_batch(epoch, e, order.size(), loss_sum / double(e), double(correct) / double(e));
    }
    EpochMetrics em;
    em.epoch = epoch;
    em.train_loss = loss_sum / double(order.size());
    em.train_acc = double(correct) / double(order.size());
    if (test_set.size() > 0) {
      const Evaluation ev = evaluate(m, work.theta, test_set, ws, nullptr, dp);
      if (!std::isfinite(ev.loss))
        throw NonFiniteError("training turned non-finite in epoch " + std::to_string(epoch) +
                             ": the evaluation loss is " + std::to_string(ev.loss) + ": stopped");
      em.test_loss = ev.loss;
      em.test_acc = ev.accuracy;
    } else {  // nothing to evaluate on (e.g. a Python estimator's fit without eval_set)
      em.test_loss = em.test_acc = std::numeric_limits<double>::quiet_NaN();
    }
    em.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    work.epoch = epoch;
    work.history.push_back(em);
    std::ostringstream os;
    os << rng;
    work.rng_state = os.str();
    const bool best = em.test_acc > work.best_test_acc;  // never without an evaluation (NaN)
    if (best) work.best_test_acc = em.test_acc, work.best_epoch = epoch;
    st = work;
    if (cb.on_epoch) cb.on_epoch(st, em, best);
  }
}

// ---- checkpoints ---------------------------------------------------------------

static json metrics_json(const EpochMetrics& e) {
  return json{{"epoch", e.epoch}, {"train_loss", e.train_loss}, {"train_acc", e.train_acc},
              {"test_loss", e.test_loss}, {"test_acc", e.test_acc}, {"seconds", e.seconds}};
}

json to_json(const Checkpoint& c) {
  json hist = json::array();
  for (const auto& e : c.state.history) hist.push_back(metrics_json(e));
  return json{{"format", "qmoe-checkpoint"},
              {"version", 1},
              {"model", c.model.to_json()},
              {"train", c.train.to_json()},
              {"task", c.task},
              {"state",
               {{"theta", c.state.theta},
                {"adam", {{"lr", c.state.adam.lr}, {"beta1", c.state.adam.beta1}, {"beta2", c.state.adam.beta2},
                          {"eps", c.state.adam.eps}, {"step", c.state.adam.step_count}, {"m", c.state.adam.m},
                          {"v", c.state.adam.v}}},
                {"epoch", c.state.epoch},
                {"rng", c.state.rng_state},
                {"history", hist},
                {"best_test_acc", c.state.best_test_acc},
                {"best_epoch", c.state.best_epoch}}}};
}

// A metric of the history: null (written for NaN, an epoch without an evaluation) reads as NaN.
static double metric(const json& v) {
  return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
}

Checkpoint checkpoint_from_json(const json& j) {
  Checkpoint c;
  if (!j.is_object() || !j.contains("format") || j["format"] != "qmoe-checkpoint")
    throw std::runtime_error("not a qmoe checkpoint");
  if (!j.contains("version") || !j["version"].is_number() || j["version"] != 1)
    throw std::runtime_error("unsupported checkpoint version " + (j.contains("version") ? j["version"].dump() : "(none)"));
  try {
    c.model = model::ModelConfig::from_json(j.at("model"));
    c.train = TrainConfig::from_json(j.at("train"));
    c.task = j.at("task");
    const json& s = j.at("state");
    c.state.theta = s.at("theta").get<std::vector<double>>();
    const json& a = s.at("adam");
    c.state.adam.lr = a.at("lr").get<double>();
    c.state.adam.beta1 = a.at("beta1").get<double>();
    c.state.adam.beta2 = a.at("beta2").get<double>();
    c.state.adam.eps = a.at("eps").get<double>();
    c.state.adam.step_count = model::json_integer<std::int64_t>(a.at("step"), "step");
    c.state.adam.m = a.at("m").get<std::vector<double>>();
    c.state.adam.v = a.at("v").get<std::vector<double>>();
    c.state.epoch = model::json_integer<int>(s.at("epoch"), "epoch");
    c.state.rng_state = s.at("rng").get<std::string>();
    for (const json& e : s.at("history")) {
      EpochMetrics m;
      m.epoch = model::json_integer<int>(e.at("epoch"), "epoch");
      m.train_loss = e.at("train_loss").get<double>();
      m.train_acc = e.at("train_acc").get<double>();
      m.test_loss = metric(e.at("test_loss"));
      m.test_acc = metric(e.at("test_acc"));
      m.seconds = e.at("seconds").get<double>();
      c.state.history.push_back(m);
    }
    c.state.best_test_acc = s.at("best_test_acc").get<double>();
    c.state.best_epoch = model::json_integer<int>(s.at("best_epoch"), "best_epoch");
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("damaged checkpoint: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("damaged checkpoint: ") + e.what());
  }
  const model::Model m = model::build_model(c.model);
  if (c.state.theta.size() != std::size_t(m.n_params()) ||
      (!c.state.adam.m.empty() && c.state.adam.m.size() != c.state.theta.size()) ||
      c.state.adam.v.size() != c.state.adam.m.size())
    throw std::runtime_error("damaged checkpoint: parameter count does not match its model");
  if (c.state.epoch < 0 || c.state.best_epoch < 0 || c.state.adam.step_count < 0)
    throw std::runtime_error("damaged checkpoint: negative epoch or step count");
  for (double t : c.state.theta)
    if (!std::isfinite(t)) throw std::runtime_error("damaged checkpoint: non-finite parameter");
  return c;
}

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  bool ok;
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("cannot write " + tmp);
    f << text;
    f.flush();
    ok = bool(f);
  }
  if (!ok) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + tmp + " (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot rename " + tmp + " to " + path);
  }
}

double estimate_training_bytes(const model::Model& m, const TrainConfig& tc, int threads) {
  const double amplitudes = std::ldexp(1.0, m.circuit.n_qubits);
  const double samples = double(std::min(tc.chunk, tc.batch));
  const double states = 3.0 + (tc.gradient == GradientMethod::ParamShift ? 0.0 : double(kTrainingSavedLayers));
  return double(std::max(threads, 1)) * states * amplitudes * samples * 16.0;
}

double to_percent(double fraction) { return std::round(fraction * 1e14) / 1e12; }

std::string metrics_csv(const std::vector<EpochMetrics>& h, bool validation) {
  std::ostringstream os;
  os << (validation ? "epoch,train_loss,train_accuracy_percent,val_loss,val_accuracy_percent,seconds\n"
                    : "epoch,train_loss,train_accuracy_percent,test_loss,test_accuracy_percent,seconds\n");
  os.precision(17);
  for (const auto& e : h)
    os << e.epoch << ',' << e.train_loss << ',' << to_percent(e.train_acc) << ',' << e.test_loss << ','
       << to_percent(e.test_acc) << ',' << e.seconds << '\n';
  return os.str();
}

void save_checkpoint(const std::string& path, const Checkpoint& c) { write_file_atomic(path, to_json(c).dump()); }

Checkpoint load_checkpoint(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open checkpoint " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) throw std::runtime_error("checkpoint " + path + " is damaged (not valid JSON)");
  try {
    return checkpoint_from_json(j);
  } catch (const std::exception& e) {
    throw std::runtime_error("checkpoint " + path + ": " + e.what());
  }
}

}  // namespace qmoe::train
