#include "train/hard_routing.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "grad/adjoint.hpp"
#include "sim/rng.hpp"
#include "train/optim.hpp"

namespace qmoe::train {

namespace {

constexpr double kMinP = 1e-12;  // a branch less likely than this is never drawn nor enumerated

double sign(int k, int S) { return (std::popcount(unsigned(k & S)) & 1) ? -1.0 : 1.0; }

// One sample's loss for one tuple of K routing states: read-out = mean of the
// branches' f = a / p. With weight w != 0 adds w * d(loss)/d(p, a) to dp, da
// (the pathwise part; p enters through f = a / p).
double tuple_loss(const model::Model& m, const Branches& br, int b, const int* ks, int K, int label, double w,
                  double* dp, double* da, int* correct) {
  const int D = br.D, R = br.R, C = m.n_classes(), Kobs = int(m.observables.size());
  std::vector<double> f(std::size_t(D), 0.0), z(std::size_t(C), 0.0), dz(std::size_t(C), 0.0);
  for (int i = 0; i < K; ++i) {
    const std::size_t bk = std::size_t(b) * R + ks[i];
    for (int d = 0; d < D; ++d) f[std::size_t(d)] += br.a[bk * D + d] / br.p[bk] / K;
  }
  for (int c = 0; c < C; ++c)
    for (int d = 0; d < D; ++d) z[std::size_t(c)] += m.readout[std::size_t(c) * Kobs + d] * f[std::size_t(d)];
  const double loss = nll_log_softmax(z.data(), &label, 1, C, dz.data(), correct);
  if (w != 0)
    for (int i = 0; i < K; ++i) {
      const std::size_t bk = std::size_t(b) * R + ks[i];
      double ga = 0;  // g . a_k
      for (int d = 0; d < D; ++d) {
        double g = 0;
        for (int c = 0; c < C; ++c) g += m.readout[std::size_t(c) * Kobs + d] * dz[std::size_t(c)];
        da[bk * D + d] += w * g / (K * br.p[bk]);
        ga += g * br.a[bk * D + d];
      }
      dp[bk] -= w * ga / (K * br.p[bk] * br.p[bk]);
    }
  return loss;
}

}  // namespace

Branches branches(const model::Model& m, const double* ev, int B) {
  const int r = int(m.routing_qubits.size()), R = 1 << r, D = m.n_data_observables, Kobs = int(m.observables.size());
  if (r == 0 || Kobs != D + (R - 1) * (1 + D))
    throw std::invalid_argument("hard routing needs a QMoE built with routing = sampled");
  Branches br;
  br.R = R;
  br.D = D;
  br.p.assign(std::size_t(B) * R, 0.0);
  br.a.assign(std::size_t(B) * R * D, 0.0);
  const double norm = 1.0 / R;
  for (int b = 0; b < B; ++b) {
    const double* e = ev + std::size_t(b) * Kobs;
    for (int k = 0; k < R; ++k) {
      const std::size_t bk = std::size_t(b) * R + k;
      double p = 1.0;
      for (int S = 1; S < R; ++S) p += sign(k, S) * e[D + S - 1];
      br.p[bk] = norm * p;
      for (int d = 0; d < D; ++d) {
        double a = e[d];
        for (int S = 1; S < R; ++S) a += sign(k, S) * e[D + (R - 1) + (S - 1) * D + d];
        br.a[bk * D + d] = norm * a;
      }
    }
  }
  return br;
}

void branches_backward(const model::Model& m, const Branches& br, const double* dp, const double* da, int B,
                       double* dev) {
  const int R = br.R, D = br.D, Kobs = int(m.observables.size());
  const double norm = 1.0 / R;
  for (int b = 0; b < B; ++b) {
    double* g = dev + std::size_t(b) * Kobs;
    for (int k = 0; k < R; ++k) {
      const std::size_t bk = std::size_t(b) * R + k;
      for (int S = 1; S < R; ++S) g[D + S - 1] += norm * sign(k, S) * dp[bk];
      for (int d = 0; d < D; ++d) {
        g[d] += norm * da[bk * D + d];
        for (int S = 1; S < R; ++S) g[D + (R - 1) + (S - 1) * D + d] += norm * sign(k, S) * da[bk * D + d];
      }
    }
  }
}

std::vector<int> draw_routes(const Branches& br, int B, int K, std::uint64_t seed) {
  std::vector<int> out(std::size_t(B) * K);
  for (int b = 0; b < B; ++b) {
    const double* p = br.p.data() + std::size_t(b) * br.R;
    double total = 0;
    for (int k = 0; k < br.R; ++k) total += p[k] > kMinP ? p[k] : 0.0;
    for (int i = 0; i < K; ++i) {
      const double u = sim::unit_double(sim::mix64(sim::mix64(seed, std::uint64_t(b)), std::uint64_t(i))) * total;
      double acc = 0;
      int pick = -1;
      for (int k = 0; k < br.R; ++k) {
        if (p[k] <= kMinP) continue;
        pick = k;  // the last drawable state takes what rounding leaves at the top
        acc += p[k];
        if (u < acc) break;
      }
      out[std::size_t(b) * K + i] = pick;
    }
  }
  return out;
}

HardLoss sampled_routing_loss(const model::Model& m, const Branches& br, const int* labels, int B,
                              const std::vector<int>& draws, std::vector<double>& dp, std::vector<double>& da) {
  const int R = br.R, K = int(draws.size()) / std::max(1, B);
  dp.assign(br.p.size(), 0.0);
  da.assign(br.a.size(), 0.0);
  std::vector<double> loss(std::size_t(B), 0);
  HardLoss out;
  for (int b = 0; b < B; ++b) {
    int hit = 0;
    loss[std::size_t(b)] =
        tuple_loss(m, br, b, draws.data() + std::size_t(b) * K, K, labels[b], 1.0 / B, dp.data(), da.data(), &hit);
    out.correct += hit;
  }
  const double total = std::accumulate(loss.begin(), loss.end(), 0.0);
  for (int b = 0; b < B; ++b) {
    const double baseline = B > 1 ? (total - loss[std::size_t(b)]) / (B - 1) : 0.0;
    const double adv = (loss[std::size_t(b)] - baseline) / B;
    for (int i = 0; i < K; ++i) {
      const std::size_t bk = std::size_t(b) * R + draws[std::size_t(b) * K + i];
      dp[bk] += adv / br.p[bk];  // d log p_k = dp_k / p_k
    }
  }
  out.loss = total / B;
  return out;
}

double expected_routing_loss(const model::Model& m, const Branches& br, const int* labels, int B,
                             std::vector<double>& dp, std::vector<double>& da) {
  const int R = br.R, K = m.config.top_k;
  dp.assign(br.p.size(), 0.0);
  da.assign(br.a.size(), 0.0);
  double J = 0;
  std::vector<int> ks(std::size_t(K), 0);
  long tuples = 1;
  for (int i = 0; i < K; ++i) tuples *= R;
  for (int b = 0; b < B; ++b) {
    const double* p = br.p.data() + std::size_t(b) * R;
    for (long t = 0; t < tuples; ++t) {
      double P = 1;
      long rest = t;
      for (int i = 0; i < K; ++i, rest /= R) {
        ks[std::size_t(i)] = int(rest % R);
        P *= p[ks[std::size_t(i)]];
      }
      bool drawable = true;
      for (int k : ks) drawable = drawable && p[k] > kMinP;
      if (!drawable) continue;
      const double l = tuple_loss(m, br, b, ks.data(), K, labels[b], P / B, dp.data(), da.data(), nullptr);
      J += P * l / B;
      for (int i = 0; i < K; ++i) dp[std::size_t(b) * R + ks[std::size_t(i)]] += P * l / B / p[ks[std::size_t(i)]];
    }
  }
  return J;
}

void routed_logits(const model::Model& m, const Branches& br, int B, double* logits, int* choice) {
  const int R = br.R, D = br.D, C = m.n_classes(), Kobs = int(m.observables.size());
  const int K = std::min(m.config.top_k, R);
  std::vector<int> order(std::size_t(R), 0);
  for (int b = 0; b < B; ++b) {
    const double* p = br.p.data() + std::size_t(b) * R;
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return p[x] > p[y]; });
    choice[b] = order[0];
    std::vector<double> f(std::size_t(D), 0.0);
    int used = 0;
    for (int i = 0; i < K; ++i) {
      const int k = order[std::size_t(i)];
      if (p[k] <= kMinP) break;
      for (int d = 0; d < D; ++d) f[std::size_t(d)] += br.a[(std::size_t(b) * R + k) * D + d] / p[k];
      ++used;
    }
    for (int c = 0; c < C; ++c) {
      double s = 0;
      for (int d = 0; d < D; ++d) s += m.readout[std::size_t(c) * Kobs + d] * f[std::size_t(d)] / std::max(1, used);
      logits[std::size_t(b) * C + c] = s;
    }
  }
}

void evaluation_logits(const model::Model& m, const double* ev, int B, double* logits, int* choice) {
  if (m.config.routing != model::Routing::Sampled) return model::logits(m, ev, B, logits);
  std::vector<int> own(choice ? 0 : std::size_t(B));
  routed_logits(m, branches(m, ev, B), B, logits, choice ? choice : own.data());
}

EstimatorStats estimator_statistics(const model::Model& m, const std::vector<double>& theta, const data::Dataset& d,
                                    int batch, int draws, std::uint64_t seed) {
  const int B = int(std::min<std::size_t>(std::size_t(batch), d.size())), K = int(m.observables.size());
  const int P = int(theta.size()), C = m.n_classes();
  EstimatorStats st;
  st.draws = draws;
  st.batch = B;
  if (B == 0 || draws < 2) return st;
  const std::vector<double> x = model::circuit_inputs(m, d.x.data(), B);
  Workspace<double> ws;
  ws.keep_states = true;
  ws.saved_layers = 0;
  std::vector<double> ev(std::size_t(B) * K);
  forward(m.circuit, theta, x.data(), B, m.observables, ev.data(), ws);
  const Branches br = branches(m, ev.data(), B);
  // dL/d<O> -> dL/dtheta (backward needs the forward just before it)
  std::vector<double> ev2(ev.size());
  const auto to_theta = [&](const std::vector<double>& dev) {
    std::vector<double> g(std::size_t(P), 0.0);
    forward(m.circuit, theta, x.data(), B, m.observables, ev2.data(), ws);
    backward(m.circuit, theta, x.data(), B, m.observables, dev.data(), g.data(), nullptr, ws);
    return g;
  };
  std::vector<double> dp, da, dev(std::size_t(B) * K, 0.0);
  expected_routing_loss(m, br, d.y.data(), B, dp, da);
  branches_backward(m, br, dp.data(), da.data(), B, dev.data());
  const std::vector<double> gJ = to_theta(dev);
  // the soft model: logits of the mixture read-out
  std::vector<double> lg(std::size_t(B) * C), dlg(lg.size());
  model::logits(m, ev.data(), B, lg.data());
  nll_log_softmax(lg.data(), d.y.data(), B, C, dlg.data(), nullptr);
  std::fill(dev.begin(), dev.end(), 0.0);
  model::logits_backward(m, dlg.data(), B, dev.data());
  const std::vector<double> gS = to_theta(dev);
  std::vector<std::vector<double>> est;
  std::vector<double> mean(std::size_t(P), 0.0);
  for (int s = 0; s < draws; ++s) {
    sampled_routing_loss(m, br, d.y.data(), B, draw_routes(br, B, m.config.top_k, sim::mix64(seed, std::uint64_t(s))),
                         dp, da);
    std::fill(dev.begin(), dev.end(), 0.0);
    branches_backward(m, br, dp.data(), da.data(), B, dev.data());
    est.push_back(to_theta(dev));
    for (int j = 0; j < P; ++j) mean[std::size_t(j)] += est.back()[std::size_t(j)] / draws;
  }
  const auto dist = [&](const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (int j = 0; j < P; ++j) s += (a[std::size_t(j)] - b[std::size_t(j)]) * (a[std::size_t(j)] - b[std::size_t(j)]);
    return std::sqrt(s);
  };
  const std::vector<double> zero(std::size_t(P), 0.0);
  const double nJ = dist(gJ, zero), nS = dist(gS, zero);
  double dot = 0, var = 0;
  for (int j = 0; j < P; ++j) dot += gJ[std::size_t(j)] * gS[std::size_t(j)];
  for (const auto& e : est) var += dist(e, mean) * dist(e, mean) / (draws - 1);
  st.bias_vs_objective = dist(mean, gJ) / nJ;
  st.bias_vs_soft = dist(mean, gS) / nS;
  st.exact_vs_soft = dist(gJ, gS) / nS;
  st.cosine_vs_soft = dot / (nJ * nS);
  st.relative_std = std::sqrt(var) / nJ;
  return st;
}

}  // namespace qmoe::train
