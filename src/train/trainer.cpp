#include "train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "grad/noise.hpp"
#include "grad/param_shift.hpp"
#include "grad/shots.hpp"
#include "model/routing_loss.hpp"
#include "sim/rng.hpp"
#include "train/hard_routing.hpp"

namespace qmoe::train {

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
    evaluation_logits(m, ev, B, lg.data(), sampled ? e.choices.data() + s : nullptr);
    if (sampled)  // the most likely top_k routing states' read-out (hard_routing.hpp)
      for (int b = 0; b < B; ++b) e.choice_counts[std::size_t(labels[b])][std::size_t(e.choices[s + b])] += 1;
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
    if (best) {  // kept in the state: checkpoint.best can be rebuilt from the checkpoint alone
      work.best_test_acc = em.test_acc;
      work.best_epoch = epoch;
      work.best_theta = work.theta;
      work.best_adam = work.adam;
      work.best_rng_state = work.rng_state;
    }
    st = work;
    if (cb.on_epoch) cb.on_epoch(st, em, best);
  }
}

double estimate_training_bytes(const model::Model& m, const TrainConfig& tc, int threads) {
  const double amplitudes = std::ldexp(1.0, m.circuit.n_qubits);
  const double samples = double(std::min(tc.chunk, tc.batch));
  const double states = 3.0 + (tc.gradient == GradientMethod::ParamShift ? 0.0 : double(kTrainingSavedLayers));
  return double(std::max(threads, 1)) * states * amplitudes * samples * 16.0;
}

}  // namespace qmoe::train
