// The files of a training run: the checkpoint (one JSON file with the settings
// and the TrainState), metrics.csv, and the write they share (a temporary
// name, then a rename: never half-written). The only file I/O of train/: the
// trainer itself only trains.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model.hpp"
#include "train/train_state.hpp"

namespace qmoe::train {

// One JSON file: format tag, model + train config, task info, the TrainState.
struct Checkpoint {
  model::ModelConfig model;
  TrainConfig train;
  nlohmann::json task;  // {"task": name, "scaling": ..., limits...}
  TrainState state;
};
nlohmann::json to_json(const Checkpoint& c);
Checkpoint checkpoint_from_json(const nlohmann::json& j);  // throws std::runtime_error
// Written to path + ".tmp" and renamed: never half-written.
void save_checkpoint(const std::string& path, const Checkpoint& c);
Checkpoint load_checkpoint(const std::string& path);  // one clear error line on any problem

// metrics.csv: epoch,train_loss,train_accuracy_percent,test_loss,test_accuracy_percent,seconds
// (val_ in place of test_ when the evaluation set is a validation split); 17 digits.
std::string metrics_csv(const std::vector<EpochMetrics>& history, bool validation);

// Writes text to path atomically (temporary file + rename).
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace qmoe::train
