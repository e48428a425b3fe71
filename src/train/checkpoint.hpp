// The files of a training run: the checkpoint (one JSON file with the settings
// and the TrainState, guarded by a SHA-256 checksum), metrics.csv, and the
// write they share (a temporary name, then a rename: never half-written).
// The only file I/O of train/: the trainer itself only trains. Format and
// guarantees: docs/checkpoints.md.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model.hpp"
#include "train/train_state.hpp"

namespace qmoe::train {

// 2: with "checksum" (and the best epoch's state); 1: written before the
// checksum, still read (without one).
inline constexpr int kCheckpointVersion = 2;

struct Checkpoint {
  model::ModelConfig model;
  TrainConfig train;
  nlohmann::json task;  // {"task": name, "scaling": ..., limits...}
  TrainState state;
};

// The checkpoint's content disagrees with its checksum, or a version-2 file
// has none: it was changed or corrupted after it was written.
struct ChecksumError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The checkpoint as JSON, version kCheckpointVersion, with its checksum.
nlohmann::json to_json(const Checkpoint& c);
// Reads a checkpoint: verifies the checksum (version 2; version 1 has none),
// then validates every field as the CLI's flags are. Throws ChecksumError or
// std::runtime_error ("not a qmoe checkpoint", "damaged checkpoint: ...").
Checkpoint checkpoint_from_json(const nlohmann::json& j);
// Written to path + ".tmp" and renamed: never half-written.
void save_checkpoint(const std::string& path, const Checkpoint& c);
// One clear error line on any problem, naming path ("checkpoint PATH is
// damaged (checksum mismatch: ...)", "... (not valid JSON)", ...).
Checkpoint load_checkpoint(const std::string& path);

// The checkpoint of c's best epoch (what checkpoint.best holds), rebuilt from
// the best state that c carries; none before a best epoch, or when c does not
// carry that state (a version-1 checkpoint whose best epoch is not its last).
std::optional<Checkpoint> best_checkpoint(const Checkpoint& c);

// metrics.csv: epoch,train_loss,train_accuracy_percent,test_loss,test_accuracy_percent,seconds
// (val_ in place of test_ when the evaluation set is a validation split); 17 digits.
std::string metrics_csv(const std::vector<EpochMetrics>& history, bool validation);

// Writes text to path atomically (temporary file + rename).
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace qmoe::train
