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
  if (c.model == ModelKind::QNN) return 0;
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

// Block means of the 8x8 image uploaded to the routing register: 4 (quadrant:
// 4x4 blocks) or 16 (grid: 2x2 blocks); 0 for the other encoders.
int routing_block_features(const ModelConfig& c) {
  if (routing_register_size(c) == 0 || c.model == ModelKind::Sum) return 0;
  if (c.routing_encoder == RoutingEncoder::Quadrant) return 4;
  if (c.routing_encoder == RoutingEncoder::Grid) return 16;
  return 0;
}

// The block means on the routing register. quadrant:
// RY, RY, RX, RX on routing positions 0, 1, 0, 1 (cycling). grid: block j on
// position j mod r, RY in even and RX in odd layers (layer j / r).
void routing_upload(Circuit& c, const std::vector<int>& rq, const ModelConfig& cfg) {
  const int r = int(rq.size()), nb = routing_block_features(cfg);
  for (int k = 0; k < nb; ++k) {
    const GateKind g = cfg.routing_encoder == RoutingEncoder::Quadrant ? (k < 2 ? GateKind::RY : GateKind::RX)
                                                                       : ((k / r) % 2 == 0 ? GateKind::RY : GateKind::RX);
    add_gate(c, make_gate(g, rq[std::size_t(k % r)], {}, {Angle::feature(cfg.n_features + k)}));
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

constexpr const char* kModelKinds[] = {"qmoe", "qnn", "sum"};
constexpr const char* kRoutingEncoders[] = {"full", "quadrant", "joint", "grid"};
constexpr const char* kAggregations[] = {"cnot", "none"};
constexpr const char* kReadouts[] = {"pairs", "qubits"};
constexpr const char* kRoutings[] = {"soft", "sampled"};

}  // namespace

ModelKind parse_model_kind(std::string_view s) { return parse_option<ModelKind>(s, kModelKinds, "model"); }
RoutingEncoder parse_routing_encoder(std::string_view s) {
  return parse_option<RoutingEncoder>(s, kRoutingEncoders, "routing_encoder");
}
Aggregation parse_aggregation(std::string_view s) { return parse_option<Aggregation>(s, kAggregations, "aggregation"); }
Readout parse_readout(std::string_view s) { return parse_option<Readout>(s, kReadouts, "readout"); }
Routing parse_routing(std::string_view s) { return parse_option<Routing>(s, kRoutings, "routing"); }
const char* to_string(ModelKind v) { return kModelKinds[int(v)]; }
const char* to_string(RoutingEncoder v) { return kRoutingEncoders[int(v)]; }
const char* to_string(Aggregation v) { return kAggregations[int(v)]; }
const char* to_string(Readout v) { return kReadouts[int(v)]; }
const char* to_string(Routing v) { return kRoutings[int(v)]; }

json ModelConfig::to_json() const {
  json j{{"model", to_string(model)},
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
  // The specialisation options (issue 19) only when set, so configs written
  // before them compare equal (qmoe reproduce reuses finished runs by config).
  const ModelConfig d;
  if (routing_entropy != d.routing_entropy) j["routing_entropy"] = routing_entropy;
  if (expert_reupload) j["expert_reupload"] = true;
  if (routing_reupload) j["routing_reupload"] = true;
  if (routing != d.routing) j["routing"] = to_string(routing);
  if (top_k != d.top_k) j["top_k"] = top_k;
  return j;
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
      else if (k == "routing_entropy") c.routing_entropy = v.get<double>();
      else if (k == "expert_reupload") c.expert_reupload = v.get<bool>();
      else if (k == "routing_reupload") c.routing_reupload = v.get<bool>();
      else if (k == "routing") c.routing = parse_routing(v.get<std::string>());
      else if (k == "top_k") c.top_k = json_integer<int>(v, k);
      else throw std::invalid_argument("unknown key '" + k + "'");  // prefixed below
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
    require(n_classes <= 2 * data_qubits - 1,
            "too many classes for the data qubits (at most 2n - 1: n <Z_q> and n - 1 <Z_q Z_q+1>)");
  require(load_balance >= 0 && std::isfinite(load_balance), "load_balance must be >= 0");
  require(logit_scale > 0 && logit_scale <= kMaxLogitScale, "logit_scale must be in (0, 1000]");
  require(routing_entropy >= 0 && std::isfinite(routing_entropy), "routing_entropy must be >= 0");
  require(in(top_k, 1, kMaxTopK), range("top_k", 1, kMaxTopK));
  require(routing == Routing::Soft || model == ModelKind::QMoE, "sampled routing needs the qmoe model");
  if (model == ModelKind::Sum) {
    require(in(experts, 1, kMaxExperts) && (experts & (experts - 1)) == 0,
            "the sum of experts needs a power of two experts, 1.." + std::to_string(kMaxExperts) +
                " (the routing register in uniform superposition)");
    require(routing_qubits == 0 || (in(routing_qubits, 0, kMaxRoutingQubits) && (1 << routing_qubits) == experts),
            "the sum of experts takes routing_qubits = log2 L");
    require(data_qubits + routing_register_size(*this) <= kMaxQubits,
            "too many qubits in total (at most " + std::to_string(kMaxQubits) + ")");
  }
  if (model == ModelKind::QMoE) {
    require(in(experts, 1, kMaxExperts), range("experts", 1, kMaxExperts));
    require(in(routing_qubits, 0, kMaxRoutingQubits), range("routing_qubits", 0, kMaxRoutingQubits));
    require((1 << routing_register_size(*this)) >= experts, "routing register too small for the experts");
    require(in(routing_depth, 0, kMaxDepth), range("routing_depth", 0, kMaxDepth));
    require((routing_encoder != RoutingEncoder::Quadrant && routing_encoder != RoutingEncoder::Grid) ||
                n_features == 64,
            "the quadrant and grid routing encoders need 8x8 images (64 features): use --routing-encoder full or joint");
    require(!routing_reupload || routing_encoder == RoutingEncoder::Quadrant || routing_encoder == RoutingEncoder::Grid,
            "routing re-uploading needs the quadrant or grid routing encoder");
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
  c.n_features = cfg.n_features + routing_block_features(cfg);
  const bool sum = cfg.model == ModelKind::Sum;
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

  if (r > 0 && !sum && cfg.routing_encoder == RoutingEncoder::Joint) {
    std::vector<int> all = rq;  // the routing register, then the data register
    all.insert(all.end(), m.data_qubits.begin(), m.data_qubits.end());
    encoder(c, all, 0, cfg.n_features, cfg.encoder_ring_every);
  } else {
    encoder(c, m.data_qubits, 0, cfg.n_features, cfg.encoder_ring_every);
  }
  // Data re-uploading: U_d(z) again before every layer after the first.
  const auto reupload = [&](int layer) {
    if (cfg.expert_reupload && layer > 0) encoder(c, m.data_qubits, 0, cfg.n_features, cfg.encoder_ring_every);
  };
  if (sum) {
    // The sum of experts (Tognini et al.): the routing register in uniform
    // superposition, so <Z_q> = (1/L) sum_k <Z_q>_k; no router, no routing input.
    for (int q : rq) add_gate(c, make_gate(GateKind::H, q));
  } else if (r > 0) {
    if (cfg.routing_encoder == RoutingEncoder::Full)
      encoder(c, rq, 0, cfg.n_features, cfg.encoder_ring_every);
    else
      routing_upload(c, rq, cfg);  // quadrant or grid (nothing for joint)
    for (int l = 0; l < cfg.routing_depth; ++l) {
      if (cfg.routing_reupload && l > 0) routing_upload(c, rq, cfg);
      ansatz_layer(c, rq, {GateKind::RX, GateKind::RY}, {});
    }
  }
  if (r > 0) {
    std::vector<std::vector<Control>> sel(std::size_t(cfg.experts));
    for (int k = 0; k < cfg.experts; ++k)
      for (int i = 0; i < r; ++i) sel[std::size_t(k)].push_back({m.routing_qubits[i], bool((k >> i) & 1)});
    if (cfg.expert_reupload) {
      // Layer l of every expert, then U_d(z) once for all: it acts alike in
      // every routing branch, so branch k sees A_k,depth-1 U ... U A_k,0 U,
      // an expert with re-uploading, without controlling the encoder.
      for (int l = 0; l < cfg.depth; ++l) {
        reupload(l);
        for (int k = 0; k < cfg.experts; ++k) ansatz_layer(c, m.data_qubits, ops, sel[std::size_t(k)]);
      }
    } else {  // expert by expert: each expert's parameters contiguous (as before re-uploading existed)
      for (int k = 0; k < cfg.experts; ++k)
        for (int l = 0; l < cfg.depth; ++l) ansatz_layer(c, m.data_qubits, ops, sel[std::size_t(k)]);
    }
    if (cfg.aggregation == Aggregation::CNOT)
      for (int i = 0; i < std::min(r, n); ++i)
        add_gate(c, make_gate(GateKind::X, m.data_qubits[i], {{rq[std::size_t(i)], true}}));
  } else {
    for (int l = 0; l < cfg.depth; ++l) {
      reupload(l);
      ansatz_layer(c, m.data_qubits, ops, {});
    }
  }

  // Read-out block: <Z_q>, then for classes beyond n, <Z_j Z_j+1>.
  for (int q : m.data_qubits) m.observables.push_back(PauliString::Z(q));
  for (int j = 0; j + n < cfg.n_classes; ++j) {
    PauliString p;
    p.z = (std::uint64_t(1) << m.data_qubits[j]) | (std::uint64_t(1) << m.data_qubits[j + 1]);
    m.observables.push_back(p);
  }
  m.n_data_observables = int(m.observables.size());
  std::vector<PauliString> routing_strings;
  for (int s = 1; s < (1 << r); ++s) {  // Z strings of the routing subsets
    PauliString p;
    for (int i = 0; i < r; ++i)
      if ((s >> i) & 1) p.z |= std::uint64_t(1) << m.routing_qubits[i];
    routing_strings.push_back(p);
    m.observables.push_back(p);
  }
  if (cfg.routing == Routing::Sampled)  // read-out x routing string: each branch's read-out
    for (const PauliString& zs : routing_strings)
      for (int d = 0; d < m.n_data_observables; ++d) {
        PauliString p = m.observables[std::size_t(d)];
        p.z |= zs.z;
        m.observables.push_back(p);
      }

  const int C = cfg.n_classes, K = int(m.observables.size());
  m.readout.assign(std::size_t(C) * K, 0.0);
  const double s = cfg.logit_scale;
  if (C == 2 && cfg.readout == Readout::Pairs) {
    m.readout[0 * K + 0] = m.readout[0 * K + 1] = s;
    m.readout[1 * K + 2] = m.readout[1 * K + 3] = s;
  } else {  // class c < n: <Z_c>; class n + j: <Z_j Z_j+1>
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
    // Block means of the 8x8 image, row-major over a g x g grid of blocks:
    // g = 2 (quadrant: TL, TR, BL, BR) or 4 (grid: 2x2-pixel blocks).
    const int nb = Fc - F, g = nb == 16 ? 4 : 2, w = 8 / g;
    const double n = double(w * w);  // 16 or 4: a power of two
    for (int blk = 0; blk < nb; ++blk) {
      // Each term divided first: the sum of w*w finite values / (w*w) cannot
      // overflow (16 x 1e308 would), and dividing by a power of two is exact,
      // so the mean is bit for bit the sum / (w*w) wherever that is finite.
      double s = 0;
      for (int i = 0; i < w; ++i)
        for (int j = 0; j < w; ++j) s += row[(w * (blk / g) + i) * 8 + w * (blk % g) + j] / n;
      o[F + blk] = s;
    }
  }
  return out;
}

}  // namespace qmoe::model
