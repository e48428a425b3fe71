// Shared by the model and training tests: a small QMoE configuration and a
// learnable synthetic data set.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "data/data.hpp"
#include "model/model.hpp"
#include "test_helpers.hpp"

namespace qmoe::testing {

inline model::ModelConfig small_qmoe(int experts, const std::string& ops = "rxryrz",
                                     model::RoutingEncoder routing_encoder = model::RoutingEncoder::Full) {
  model::ModelConfig c;
  c.routing_encoder = routing_encoder;
  c.logit_scale = 1.0;
  c.model = model::ModelKind::QMoE;
  c.ops = ops;
  c.n_classes = 4;
  c.n_features = routing_encoder == model::RoutingEncoder::Quadrant ? 64 : 16;
  c.data_qubits = 4;
  c.depth = 2;
  c.experts = experts;
  c.routing_depth = 2;
  c.encoder_ring_every = 2;
  return c;
}

inline data::Dataset synthetic(int n, int features, int classes, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  data::Dataset d;
  d.n_features = features;
  d.n_classes = classes;
  for (int c = 0; c < classes; ++c) d.class_names.push_back("c" + std::to_string(c));
  d.x = random_vector(rng, std::size_t(n) * features, -1.5, 1.5);
  for (int i = 0; i < n; ++i) {
    d.y.push_back(i % classes);
    d.x[std::size_t(i) * features + (i % classes)] += 2.0;  // a learnable signal
    d.source_index.push_back(i);
  }
  return d;
}

}  // namespace qmoe::testing
