#include "cli/run_dir.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace qmoe::cli {

RunDir::RunDir(std::string dir, bool validation) : dir_(std::move(dir)), validation_(validation) {
  if (const char* n = std::getenv("QMOE_TEST_KILL_AFTER_RENAMES"); n && *n) {
    char* end = nullptr;
    errno = 0;
    kill_after_ = std::strtol(n, &end, 10);
    if (errno != 0 || *end != '\0' || kill_after_ < 1)
      throw std::runtime_error("QMOE_TEST_KILL_AFTER_RENAMES must be a positive integer, not '" + std::string(n) + "'");
  }
}

std::string RunDir::path(const char* name) const { return (std::filesystem::path(dir_) / name).string(); }

void RunDir::renamed() {
  if (kill_after_ > 0 && ++renames_ == kill_after_) ::kill(::getpid(), SIGKILL);
}

void RunDir::write_config(const nlohmann::json& config) {
  train::write_file_atomic(path("config.json"), config.dump(2) + "\n");
  renamed();
}

void RunDir::write_checkpoint(const train::Checkpoint& ck) {
  train::save_checkpoint(checkpoint_path(), ck);
  renamed();
}

void RunDir::write_epoch(const train::Checkpoint& ck, bool is_best) {
  write_checkpoint(ck);  // first: the truth
  if (is_best) {
    if (const auto best = train::best_checkpoint(ck)) {
      train::save_checkpoint(path("checkpoint.best"), *best);
      renamed();
    }
  }
  train::write_file_atomic(path("metrics.csv"), train::metrics_csv(ck.state.history, validation_));
  renamed();
}

void RunDir::rebuild_from(const train::Checkpoint& ck) {
  if (const auto best = train::best_checkpoint(ck)) {
    train::save_checkpoint(path("checkpoint.best"), *best);
    renamed();
  }
  train::write_file_atomic(path("metrics.csv"), train::metrics_csv(ck.state.history, validation_));
  renamed();
}

}  // namespace qmoe::cli
