// The files of a `qmoe train --out DIR` run (docs/checkpoints.md). DIR/checkpoint
// carries the truth; DIR/checkpoint.best and DIR/metrics.csv are derived from
// it: written after it each epoch, and rebuilt from it when a run is resumed,
// so that a kill at any instant leaves a directory that --resume makes
// consistent. Only rank 0 of an MPI run writes them.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "train/checkpoint.hpp"

namespace qmoe::cli {

class RunDir {
 public:
  // validation: metrics.csv names its evaluation columns val_ (else test_).
  RunDir(std::string dir, bool validation);
  std::string checkpoint_path() const { return path("checkpoint"); }
  void write_config(const nlohmann::json& config);  // DIR/config.json
  void write_checkpoint(const train::Checkpoint& ck);
  // After an epoch: the checkpoint, then checkpoint.best (if this epoch is the
  // best), then metrics.csv, each renamed into place.
  void write_epoch(const train::Checkpoint& ck, bool is_best);
  // checkpoint.best (when ck carries the best epoch's state: a version-1
  // checkpoint may not, and then the file is kept as it is) and metrics.csv, from ck.
  void rebuild_from(const train::Checkpoint& ck);

 private:
  std::string path(const char* name) const;
  // Test hook of the CLI (not of the core): with QMOE_TEST_KILL_AFTER_RENAMES=N
  // in the environment, the process kills itself (SIGKILL) right after the
  // N-th file of the run directory is renamed into place, as a kill at that
  // instant would (tests/cli/train_kill_renames.sh).
  void renamed();
  std::string dir_;
  bool validation_;
  long kill_after_ = 0, renames_ = 0;
};

}  // namespace qmoe::cli
