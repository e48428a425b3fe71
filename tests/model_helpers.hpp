// Shared by the model and training tests: a small QMoE configuration, a
// synthetic data set and the finite-difference check of a batch's gradient.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "data/data.hpp"
#include "model/model.hpp"
#include "test_helpers.hpp"
#include "train/trainer.hpp"

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

// n samples with `features` features uniform in [lo, hi) (drawn from seed);
// sample i is of class i % classes and its feature i % classes gets `signal`
// added: the default 2.0 makes the set learnable, 0 leaves only noise.
inline data::Dataset synthetic(int n, int features, int classes, std::uint64_t seed, double lo = -1.5,
                               double hi = 1.5, double signal = 2.0) {
  std::mt19937_64 rng(seed);
  data::Dataset d;
  d.n_features = features;
  d.n_classes = classes;
  for (int c = 0; c < classes; ++c) d.class_names.push_back("c" + std::to_string(c));
  d.x = random_vector(rng, std::size_t(n) * features, lo, hi);
  for (int i = 0; i < n; ++i) {
    d.y.push_back(i % classes);
    d.x[std::size_t(i) * features + (i % classes)] += signal;
    d.source_index.push_back(i);
  }
  return d;
}

// A short training run's settings: epochs, batch, learning rate 0.05 and the
// seed; every other field at its default.
inline train::TrainConfig short_run(int epochs, int batch, std::uint64_t seed) {
  train::TrainConfig tc;
  tc.epochs = epochs;
  tc.batch = batch;
  tc.lr = 0.05;
  tc.seed = seed;
  return tc;
}

// What ModelConfig::from_json says about j: its invalid_argument message, or
// "accepted".
inline std::string model_config_error(const nlohmann::json& j) {
  try {
    model::ModelConfig::from_json(j);
  } catch (const std::invalid_argument& e) {
    return std::string(e.what());
  }
  return std::string("accepted");
}

// The gradient batch_gradient computes by the adjoint method for the loss of
// d's `rows` at theta == central finite differences of that loss (h = 1e-5, to
// 1e-7) and == the parameter-shift gradient (to ps_tol), parameter by
// parameter; `what` names the case in a failure.
inline void expect_batch_gradient_matches_fd(const model::Model& m, const data::Dataset& d,
                                             const std::vector<std::size_t>& rows, const std::vector<double>& theta,
                                             double ps_tol, const std::string& what, int chunk = 16) {
  Workspace<double> ws;
  ws.chunk_size = chunk;
  std::vector<double> grad, ps_grad, g2;
  train::batch_gradient(m, theta, d, rows, train::GradientMethod::Adjoint, grad, ws);
  train::batch_gradient(m, theta, d, rows, train::GradientMethod::ParamShift, ps_grad, ws);
  const auto loss = [&](const std::vector<double>& t) {
    return train::batch_gradient(m, t, d, rows, train::GradientMethod::Adjoint, g2, ws).first;
  };
  for (int j = 0; j < m.n_params(); ++j) {
    EXPECT_NEAR(grad[std::size_t(j)], central_difference(loss, theta, std::size_t(j), 1e-5), 1e-7)
        << what << " param " << j;
    EXPECT_NEAR(grad[std::size_t(j)], ps_grad[std::size_t(j)], ps_tol) << what << " param " << j;
  }
}

}  // namespace qmoe::testing
