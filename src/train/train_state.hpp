// What a training run is asked to do (TrainConfig) and where it stands
// (TrainState, EpochMetrics): the trainer's input and output, and what a
// checkpoint stores (train/checkpoint.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "grad/noise.hpp"
#include "train/optim.hpp"

namespace qmoe::train {

// How batch_gradient differentiates: the adjoint sweep, or parameter shift
// (two circuit runs per parameter; the reference). One parse / to_string pair,
// spelled "adjoint" and "param-shift" in JSON and on the command line.
enum class GradientMethod { Adjoint, ParamShift };
GradientMethod parse_gradient_method(std::string_view s);  // throws std::invalid_argument
const char* to_string(GradientMethod m);

struct TrainConfig {
  int epochs = 10;
  int batch = 32;
  double lr = 2e-3;
  std::uint64_t seed = 0;
  GradientMethod gradient = GradientMethod::Adjoint;
  int chunk = 16;                    // samples per thread work item (batch 32: both cores busy)
  // Training as a device would (docs/noise.md). shots > 0: expectations and
  // parameter-shift gradients estimated from `shots` shots per sample (needs
  // gradient = param-shift). noise non-empty: noise-aware training, each step
  // on one sampled error realisation of it (grad/noise.hpp error_realisation).
  // Both draw from (seed, epoch, step).
  long shots = 0;
  NoiseModel noise;

  // Limits of validate(), which every path calls (the CLI's flag ranges use them too).
  static constexpr int kMaxEpochs = 100000, kMaxBatch = 1000000;
  static constexpr long kMaxShots = 100000000;

  nlohmann::json to_json() const;
  static TrainConfig from_json(const nlohmann::json& j);  // validated; throws std::invalid_argument
  void validate() const;                                   // throws std::invalid_argument
};

// The noise model as JSON in --noise-model's schema (docs/noise.md), and back
// (throws std::invalid_argument "field 'F': what is wrong"): TrainConfig's
// "noise" entry, and the CLI's --noise-model file.
nlohmann::json noise_model_to_json(const NoiseModel& n);
NoiseModel noise_model_from_json(const nlohmann::json& j);

struct EpochMetrics {
  int epoch = 0;  // 1-based
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0, seconds = 0;
};

// Everything needed to continue training exactly where it stopped.
struct TrainState {
  std::vector<double> theta;
  Adam adam;
  int epoch = 0;            // completed epochs
  std::string rng_state;    // std::mt19937_64 state (shuffling), as text
  std::vector<EpochMetrics> history;
  double best_test_acc = -1;
  int best_epoch = 0;
  // The state after best_epoch (what checkpoint.best holds), so that it can be
  // rebuilt from the last checkpoint alone (docs/checkpoints.md). Empty theta:
  // not known (no best epoch yet, or a checkpoint written before it was kept).
  std::vector<double> best_theta;
  Adam best_adam;
  std::string best_rng_state;
};

// An accuracy fraction in [0,1] as a percentage, rounded to 12 decimals so that
// k/n prints as 28 and not 28.000000000000004. Every accuracy qmoe reports
// (metrics.csv, --json, result.json) is a percentage with "percent" in its name.
double to_percent(double fraction);

}  // namespace qmoe::train
