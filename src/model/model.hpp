// Models: the paper's baseline QNN and its quantum mixture of experts (QMoE),
// built as one Circuit each plus a linear read-out from <Z_q> to class logits.
// Defaults and circuit diagrams: docs/models.md.
//
// QNN:   data register (n qubits):  U(z) -> ansatz(theta) -> <Z_q>
// QMoE:  data register (n qubits, circuit qubits 0..n-1) then routing
//        register (r = ceil(log2 L) qubits, n..n+r-1):
//        U(z) on both registers, G(theta_G) on the routing register, expert k
//        = an ansatz on the data register controlled on the routing register
//        being |k> (controls on |0> and |1>), aggregation CNOTs routing ->
//        data, read-out <Z_q> on data qubits. Because every later gate is
//        block-diagonal in the routing basis,
//          <Z_q> = sum_k p_k(z) <Z_q>_k,   p_k(z) = |<k| G U(z) |0>|^2,
//        the paper's Eq. (1); p_k(z) is reported as the routing decision.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "circuit/circuit.hpp"
#include "grad/adjoint.hpp"

namespace qmoe::model {

// Typed options: the core compares enums only. Each has one parse / to_string
// pair, used at the edges (CLI flags, JSON); the spellings are the JSON and
// CLI ones ("qmoe", "quadrant", "cnot", "pairs", ...). parse_* throws
// std::invalid_argument naming the valid spellings.
enum class ModelKind { QMoE, QNN };
enum class RoutingEncoder {
  Full,      // U(z) on the routing register too
  Quadrant,  // the 4 quadrant means of an 8x8 image
  Joint,     // one U(z) across both registers
};
enum class Aggregation { CNOT, None };  // CNOT routing qubit j -> data qubit j, or nothing
enum class Readout {
  Pairs,   // 2 classes: Z0+Z1, Z2+Z3 (TorchQuantum)
  Qubits,  // class c: Z_c
};
ModelKind parse_model_kind(std::string_view s);
RoutingEncoder parse_routing_encoder(std::string_view s);
Aggregation parse_aggregation(std::string_view s);
Readout parse_readout(std::string_view s);
const char* to_string(ModelKind v);
const char* to_string(RoutingEncoder v);
const char* to_string(Aggregation v);
const char* to_string(Readout v);

struct ModelConfig {
  ModelKind model = ModelKind::QMoE;
  std::string ops = "rxry";       // trainable rotations per qubit: rx | ry | rxry | rxryrz
  int n_classes = 4;
  int n_features = 64;            // input angles per sample
  int data_qubits = 8;
  int depth = 3;                  // ansatz layers per expert (QMoE) or of the QNN
  int experts = 4;                // L (QMoE)
  int routing_qubits = 0;         // 0: ceil(log2 L)
  int routing_depth = 2;          // layers of G: RX RY on each routing qubit + CNOT ring
  RoutingEncoder routing_encoder = RoutingEncoder::Quadrant;
  int encoder_ring_every = 3;     // CNOT ring on a register after every k rotation layers (0: none)
  Aggregation aggregation = Aggregation::CNOT;
  Readout readout = Readout::Pairs;  // matters for 2 classes only (more classes: one qubit each)
  double load_balance = 0.0;      // weight of the load-balancing loss (0: off)
  double logit_scale = 40.0;      // logits = scale * (read-out sum of <Z_q>); 40 chosen on validation (docs/models.md)

  // Limits of validate(), which every path calls (the CLI's flag ranges use them too).
  static constexpr int kMaxDataQubits = 24, kMaxQubits = 26, kMaxDepth = 1000, kMaxExperts = 64,
                       kMaxRoutingQubits = 6, kMaxFeatures = 100000;
  static constexpr double kMaxLogitScale = 1000;

  nlohmann::json to_json() const;
  static ModelConfig from_json(const nlohmann::json& j);  // validated; throws std::invalid_argument
  void validate() const;                                  // throws std::invalid_argument
};

struct Model {
  ModelConfig config;
  Circuit circuit;
  // <Z_q> of each data qubit in order, then (QMoE) the Z strings of every
  // non-empty subset S of routing bits, from which p_k follows exactly.
  std::vector<PauliString> observables;
  int n_data_observables = 0;
  std::vector<int> data_qubits;          // circuit qubit of data qubit 0..n-1
  std::vector<int> routing_qubits;       // circuit qubit of routing bit 0 (low) ..; empty for QNN
  // logits[c] = sum_k readout[c * K + k] * <O_k>
  std::vector<double> readout;
  int n_params() const { return circuit.n_params; }
  int n_classes() const { return config.n_classes; }
};

Model build_model(const ModelConfig& cfg);

// Trainable parameters drawn uniformly from [-pi, pi) with a seeded generator.
std::vector<double> init_params(const Model& m, std::uint64_t seed);

// Number of ansatz layers that gives a QNN about `target` parameters.
int matched_depth(const ModelConfig& qnn, int target_params);

// ---- read-out -----------------------------------------------------------------
// logits[b*C + c] from expvals[b*K + k].
void logits(const Model& m, const double* expvals, int batch, double* out);
// dL/d<O> from dL/dlogits (the transpose of the read-out map).
void logits_backward(const Model& m, const double* dlogits, int batch, double* dexpvals);

// Routing probabilities p_k(z) = |<k|G U(z)|0>|^2 of each sample from the
// forward pass's expectation values (empty for a QNN): out[b * L + k].
// p_k = 2^-r sum_S (-1)^{|k & S|} <Z_S>. With L < 2^r the basis states k >= L
// select no expert; their mass is 1 - sum_k p_k.
std::vector<double> routing_probabilities(const Model& m, const double* expvals, int batch);
// Chain rule back through routing_probabilities: dexpvals += d/d<O> of sum dL/dp.
void routing_probabilities_backward(const Model& m, const double* dprobs, int batch,
                                    double* dexpvals);

// The circuit's per-sample inputs from a data set row (appends the quadrant
// means with the quadrant routing encoder): out[b * circuit.n_features + f].
std::vector<double> circuit_inputs(const Model& m, const double* x, int batch);

}  // namespace qmoe::model
