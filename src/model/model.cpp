#include "model/model.hpp"

#include "model/json_integer.hpp"

#include <bit>
#include <cmath>
#include <random>
#include <stdexcept>

namespace qmoe::model {
namespace {

using nlohmann::json;

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("model config: " + what);
}

std::vector<GateKind> ops_gates(const std::string& ops) {
  if (ops == "rx") return {GateKind::RX};
  if (ops == "ry") return {GateKind::RY};
  if (ops == "rxry") return {GateKind::RX, GateKind::RY};
  if (ops == "rxryrz") return {GateKind::RX, GateKind::RY, GateKind::RZ};
  throw std::invalid_argument("model config: ops must be rx, ry, rxry or rxryrz, got '" + ops + "'");
}

int routing_register_size(const ModelConfig& c) {
  if (c.model != ModelKind::QMoE) return 0;
  if (c.routing_qubits > 0) return c.routing_qubits;
  return std::max(1, int(std::bit_width(unsigned(c.experts - 1))));  // ceil(log2 L)
}

void cnot_ring(Circuit& c, const std::vector<int>& q, const std::vector<Control>& ctrl) {
  const int m = int(q.size());
  if (m < 2) return;
  for (int i = 0; i < m; ++i) {
    std::vector<Control> cc = ctrl;
    cc.push_back({q[i], true});
    add_gate(c, make_gate(GateKind::X, q[(i + 1) % m], cc));
  }
}

// U(z): rotation layers cycling RY, RZ, RX; feature k on register qubit k mod m
// (layer k / m); a CNOT ring after every `ring_every` layers that are followed
// by more layers.
void encoder(Circuit& c, const std::vector<int>& q, int first_feature, int n_features, int ring_every) {
  static const GateKind cycle[3] = {GateKind::RY, GateKind::RZ, GateKind::RX};
  const int m = int(q.size());
  const int layers = (n_features + m - 1) / m;
  for (int l = 0; l < layers; ++l) {
    for (int i = 0; i < m && l * m + i < n_features; ++i)
      add_gate(c, make_gate(cycle[l % 3], q[i], {}, {Angle::feature(first_feature + l * m + i)}));
    if (ring_every > 0 && (l + 1) % ring_every == 0 && l + 1 < layers) cnot_ring(c, q, {});
  }
}

// One ansatz layer: the trainable rotations on every qubit, then a CNOT ring;
// every gate carries `ctrl` (an expert's selection by the routing register).
void ansatz_layer(Circuit& c, const std::vector<int>& q, const std::vector<GateKind>& ops,
                  const std::vector<Control>& ctrl) {
  for (int qb : q)
    for (GateKind k : ops) add_gate(c, make_gate(k, qb, ctrl, {Angle::param(c.n_params)}));
  cnot_ring(c, q, ctrl);
}

// One table per option: the spellings in enum order.
template <class Enum, std::size_t N>
Enum parse_option(std::string_view s, const char* const (&names)[N], const char* what) {
  for (std::size_t i = 0; i < N; ++i)
    if (s == names[i]) return Enum(i);
  std::string valid;
  for (std::size_t i = 0; i < N; ++i) valid += std::string(i == 0 ? "" : i + 1 == N ? " or " : ", ") + names[i];
  throw std::invalid_argument(std::string(what) + " must be " + valid + ", got '" + std::string(s) + "'");
}

constexpr const char* kModelKinds[] = {"qmoe", "qnn"};
constexpr const char* kRoutingEncoders[] = {"full", "quadrant", "joint"};
constexpr const char* kAggregations[] = {"cnot", "none"};
constexpr const char* kReadouts[] = {"pairs", "qubits"};

}  // namespace

ModelKind parse_model_kind(std::string_view s) { return parse_option<ModelKind>(s, kModelKinds, "model"); }
RoutingEncoder parse_routing_encoder(std::string_view s) {
  return parse_option<RoutingEncoder>(s, kRoutingEncoders, "routing_encoder");
}
Aggregation parse_aggregation(std::string_view s) { return parse_option<Aggregation>(s, kAggregations, "aggregation"); }
Readout parse_readout(std::string_view s) { return parse_option<Readout>(s, kReadouts, "readout"); }
const char* to_string(ModelKind v) { return kModelKinds[int(v)]; }
const char* to_string(RoutingEncoder v) { return kRoutingEncoders[int(v)]; }
const char* to_string(Aggregation v) { return kAggregations[int(v)]; }
const char* to_string(Readout v) { return kReadouts[int(v)]; }

json ModelConfig::to_json() const {
  return json{{"model", to_string(model)},
              {"ops", ops},
              {"n_classes", n_classes},
              {"n_features", n_features},
              {"data_qubits", data_qubits},
              {"depth", depth},
              {"experts", experts},
              {"routing_qubits", routing_qubits},
              {"routing_depth", routing_depth},
              {"routing_encoder", to_string(routing_encoder)},
              {"encoder_ring_every", encoder_ring_every},
              {"aggregation", to_string(aggregation)},
              {"readout", to_string(readout)},
              {"load_balance", load_balance},
              {"logit_scale", logit_scale}};
}

ModelConfig ModelConfig::from_json(const json& j) {
  ModelConfig c;
  if (!j.is_object()) throw std::invalid_argument("model config: expected a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    try {
      if (k == "model") c.model = parse_model_kind(v.get<std::string>());
      else if (k == "ops") c.ops = v.get<std::string>();
      else if (k == "n_classes") c.n_classes = json_integer<int>(v, k);
      else if (k == "n_features") c.n_features = json_integer<int>(v, k);
      else if (k == "data_qubits") c.data_qubits = json_integer<int>(v, k);
      else if (k == "depth") c.depth = json_integer<int>(v, k);
      else if (k == "experts") c.experts = json_integer<int>(v, k);
      else if (k == "routing_qubits") c.routing_qubits = json_integer<int>(v, k);
      else if (k == "routing_depth") c.routing_depth = json_integer<int>(v, k);
      else if (k == "routing_encoder") c.routing_encoder = parse_routing_encoder(v.get<std::string>());
      else if (k == "encoder_ring_every") c.encoder_ring_every = json_integer<int>(v, k);
      else if (k == "aggregation") c.aggregation = parse_aggregation(v.get<std::string>());
      else if (k == "readout") c.readout = parse_readout(v.get<std::string>());
      else if (k == "load_balance") c.load_balance = v.get<double>();
      else if (k == "logit_scale") c.logit_scale = v.get<double>();
      else throw std::invalid_argument("model config: unknown key '" + k + "'");
    } catch (const json::exception&) {
      throw std::invalid_argument("model config: '" + k + "' has the wrong type");
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("model config: ") + e.what());
    }
  }
  c.validate();
  return c;
}

void ModelConfig::validate() const {
  // The one check of every path (CLI flags, checkpoints, config.json,
  // experiment files), before anything is allocated.
  const auto in = [](int v, int lo, int hi) { return v >= lo && v <= hi; };
  const auto range = [](const char* what, int lo, int hi) {
    return std::string(what) + " must be " + std::to_string(lo) + ".." + std::to_string(hi);
  };
  ops_gates(ops);
  require(in(n_classes, 2, kMaxDataQubits), range("n_classes", 2, kMaxDataQubits));
  require(in(n_features, 1, kMaxFeatures), range("n_features", 1, kMaxFeatures));
  require(in(data_qubits, 1, kMaxDataQubits), range("data_qubits", 1, kMaxDataQubits));
  require(in(depth, 0, kMaxDepth), range("depth", 0, kMaxDepth));
  require(in(encoder_ring_every, 0, kMaxFeatures), range("encoder_ring_every", 0, kMaxFeatures));
  if (n_classes == 2 && readout == Readout::Pairs)
    require(data_qubits >= 4, "the 'pairs' 2-class read-out needs 4 data qubits");
  else
    require(n_classes <= data_qubits, "more classes than data qubits");
  require(load_balance >= 0 && std::isfinite(load_balance), "load_balance must be >= 0");
  require(logit_scale > 0 && logit_scale <= kMaxLogitScale, "logit_scale must be in (0, 1000]");
  if (model == ModelKind::QMoE) {
    require(in(experts, 1, kMaxExperts), range("experts", 1, kMaxExperts));
    require(in(routing_qubits, 0, kMaxRoutingQubits), range("routing_qubits", 0, kMaxRoutingQubits));
    require((1 << routing_register_size(*this)) >= experts, "routing register too small for the experts");
    require(in(routing_depth, 0, kMaxDepth), range("routing_depth", 0, kMaxDepth));
    require(routing_encoder != RoutingEncoder::Quadrant || n_features == 64, "the quadrant routing encoder needs 8x8 images (64 features): "
          "use --routing-encoder full or joint");
    require(data_qubits + routing_register_size(*this) <= kMaxQubits,
            "too many qubits in total (at most " + std::to_string(kMaxQubits) + ")");
  }
}

Model build_model(const ModelConfig& cfg) {
  cfg.validate();
  Model m;
  m.config = cfg;
  const int r = routing_register_size(cfg), n = cfg.data_qubits;
  const std::vector<GateKind> ops = ops_gates(cfg.ops);
  Circuit& c = m.circuit;
  c.n_qubits = r + n;
  c.n_features = cfg.n_features + (r > 0 && cfg.routing_encoder == RoutingEncoder::Quadrant ? 4 : 0);
  // Circuit qubits: the data register first (0..n-1), then the routing
  // register (n..n+r-1). Every expert gate is controlled by the routing
  // qubits; as the highest index bits they select one contiguous block of
  // the state vector, which the kernels stream faster than the interleaved
  // rows that low control bits select (docs/models.md).
  for (int i = 0; i < n; ++i) m.data_qubits.push_back(i);
  // Routing register position j (0 = the expert index's high bit) is circuit
  // qubit rq[j]; routing bit i (low first) is position r-1-i.
  std::vector<int> rq(r);
  for (int j = 0; j < r; ++j) rq[j] = n + j;
  for (int i = 0; i < r; ++i) m.routing_qubits.push_back(rq[std::size_t(r - 1 - i)]);

  if (r > 0 && cfg.routing_encoder == RoutingEncoder::Joint) {
    std::vector<int> all = rq;  // the routing register, then the data register
    all.insert(all.end(), m.data_qubits.begin(), m.data_qubits.end());
    encoder(c, all, 0, cfg.n_features, cfg.encoder_ring_every);
  } else {
    encoder(c, m.data_qubits, 0, cfg.n_features, cfg.encoder_ring_every);
  }
  if (r > 0) {
    if (cfg.routing_encoder == RoutingEncoder::Full)
      encoder(c, rq, 0, cfg.n_features, cfg.encoder_ring_every);
    else if (cfg.routing_encoder == RoutingEncoder::Quadrant)  // RY, RY, RX, RX on routing qubits 0, 1, 0, 1 (cycling)
      for (int k = 0; k < 4; ++k)
        add_gate(c, make_gate(k < 2 ? GateKind::RY : GateKind::RX, rq[k % r], {},
                              {Angle::feature(cfg.n_features + k)}));
    for (int l = 0; l < cfg.routing_depth; ++l) ansatz_layer(c, rq, {GateKind::RX, GateKind::RY}, {});
    for (int k = 0; k < cfg.experts; ++k) {
      std::vector<Control> sel;
      for (int i = 0; i < r; ++i) sel.push_back({m.routing_qubits[i], bool((k >> i) & 1)});
      for (int l = 0; l < cfg.depth; ++l) ansatz_layer(c, m.data_qubits, ops, sel);
    }
    if (cfg.aggregation == Aggregation::CNOT)
      for (int i = 0; i < std::min(r, n); ++i)
        add_gate(c, make_gate(GateKind::X, m.data_qubits[i], {{rq[std::size_t(i)], true}}));
  } else {
    for (int l = 0; l < cfg.depth; ++l) ansatz_layer(c, m.data_qubits, ops, {});
  }

  for (int q : m.data_qubits) m.observables.push_back(PauliString::Z(q));
  m.n_data_observables = n;
  for (int s = 1; s < (1 << r); ++s) {  // Z strings of the routing subsets
    PauliString p;
    for (int i = 0; i < r; ++i)
      if ((s >> i) & 1) p.z |= std::uint64_t(1) << m.routing_qubits[i];
    m.observables.push_back(p);
  }

  const int C = cfg.n_classes, K = int(m.observables.size());
  m.readout.assign(std::size_t(C) * K, 0.0);
  const double s = cfg.logit_scale;
  if (C == 2 && cfg.readout == Readout::Pairs) {
    m.readout[0 * K + 0] = m.readout[0 * K + 1] = s;
    m.readout[1 * K + 2] = m.readout[1 * K + 3] = s;
  } else {
    for (int cl = 0; cl < C; ++cl) m.readout[std::size_t(cl) * K + cl] = s;
  }
  return m;
}

std::vector<double> init_params(const Model& m, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> theta(std::size_t(m.n_params()));
  // 53 random bits -> [-pi, pi); explicit so every platform draws the same numbers
  for (auto& t : theta) t = (double(rng() >> 11) * 0x1p-53 * 2.0 - 1.0) * M_PI;
  return theta;
}

int matched_depth(const ModelConfig& qnn, int target_params) {
  const int per_layer = qnn.data_qubits * int(ops_gates(qnn.ops).size());
  return std::max(1, int(std::lround(double(target_params) / per_layer)));
}

void logits(const Model& m, const double* ev, int batch, double* out) {
  const int C = m.n_classes(), K = int(m.observables.size());
  for (int b = 0; b < batch; ++b)
    for (int c = 0; c < C; ++c) {
      double s = 0;
      for (int k = 0; k < m.n_data_observables; ++k) s += m.readout[std::size_t(c) * K + k] * ev[std::size_t(b) * K + k];
      out[std::size_t(b) * C + c] = s;
    }
}

void logits_backward(const Model& m, const double* dl, int batch, double* dev) {
  const int C = m.n_classes(), K = int(m.observables.size());
  for (int b = 0; b < batch; ++b)
    for (int k = 0; k < K; ++k) {
      double s = 0;
      for (int c = 0; c < C; ++c) s += m.readout[std::size_t(c) * K + k] * dl[std::size_t(b) * C + c];
      dev[std::size_t(b) * K + k] = s;
    }
}

std::vector<double> routing_probabilities(const Model& m, const double* ev, int batch) {
  const int r = int(m.routing_qubits.size()), L = m.config.experts, K = int(m.observables.size());
  if (r == 0) return {};
  std::vector<double> p(std::size_t(batch) * L);
  const double norm = 1.0 / double(1 << r);
  for (int b = 0; b < batch; ++b)
    for (int k = 0; k < L; ++k) {
      double s = 1.0;  // the empty subset: <I> = 1
      for (int S = 1; S < (1 << r); ++S)
        s += ((std::popcount(unsigned(k & S)) & 1) ? -1.0 : 1.0) *
             ev[std::size_t(b) * K + m.n_data_observables + S - 1];
      p[std::size_t(b) * L + k] = norm * s;
    }
  return p;
}

void routing_probabilities_backward(const Model& m, const double* dp, int batch, double* dev) {
  const int r = int(m.routing_qubits.size()), L = m.config.experts, K = int(m.observables.size());
  const double norm = 1.0 / double(1 << r);
  for (int b = 0; b < batch; ++b)
    for (int k = 0; k < L; ++k)
      for (int S = 1; S < (1 << r); ++S)
        dev[std::size_t(b) * K + m.n_data_observables + S - 1] +=
            norm * ((std::popcount(unsigned(k & S)) & 1) ? -1.0 : 1.0) * dp[std::size_t(b) * L + k];
}

std::vector<double> circuit_inputs(const Model& m, const double* x, int batch) {
  const int F = m.config.n_features, Fc = m.circuit.n_features;
  std::vector<double> out(std::size_t(batch) * Fc);
  for (int b = 0; b < batch; ++b) {
    const double* row = x + std::size_t(b) * F;
    double* o = out.data() + std::size_t(b) * Fc;
    std::copy(row, row + F, o);
    if (Fc == F + 4)  // quadrant means of the 8x8 image: TL, TR, BL, BR
      for (int qd = 0; qd < 4; ++qd) {
        // Each term divided first: the sum of 16 finite values / 16 cannot
        // overflow (16 x 1e308 would), and dividing by a power of two is
        // exact, so the mean is bit for bit the sum / 16 wherever that is finite.
        double s = 0;
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 4; ++j) s += row[(4 * (qd / 2) + i) * 8 + 4 * (qd % 2) + j] / 16.0;
        o[F + qd] = s;
      }
  }
  return out;
}

}  // namespace qmoe::model
