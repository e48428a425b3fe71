// Shared by the train / eval / predict / export / reproduce commands.
#pragma once

#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "data/data.hpp"
#include "grad/noise.hpp"
#include "model/model.hpp"
#include "train/trainer.hpp"

namespace qmoe::cli {

// Options that select and load a task's data.
struct DataOptions {
  std::string task = "mnist4";
  std::string data_dir;
  std::string scaling;  // image tasks: unit, tq or pi ("": data::kDefaultScaling);
                        // CSV tasks: none, standard or minmax ("": none)
  long train_limit = 0;  // total samples kept (0: all)
  long test_limit = 0;
  std::string test_csv;  // CSV tasks: a separate test file (else --val holds one out)
  std::string csv_header = "auto";  // CSV tasks: auto, yes, no
  nlohmann::json feature_transform;  // CSV tasks: the fitted scaling from a checkpoint (null: fit it)
  void add(CLI::App& cmd, bool task_required);
  bool is_csv() const;                  // the task is a CSV file
  std::string scaling_name() const;     // the scaling in effect (a CSV task's default: "none")
  nlohmann::json to_json() const;
  static DataOptions from_json(const nlohmann::json& j);
  data::TaskData load() const;
  // The checkpoint's fitted feature scaling (kind None when there is none).
  data::FeatureTransform transform() const;
  // The fitted feature scaling of a loaded CSV task, for the checkpoint (null if none).
  static nlohmann::json transform_json(const data::FeatureTransform& t);
};

// The environment's side of data::resolve_data_dir (the core reads no
// environment): --data-dir if given, else $QMOE_DATA_DIR, else
// ${XDG_DATA_HOME:-$HOME/.local/share}/qmoe. `flag` empty gives the default.
std::string data_dir_from_env(const std::string& flag);
// LoadOptions with the data directory resolved from --data-dir and the environment.
data::LoadOptions load_options(const std::string& data_dir_flag);

// --depol1 / --depol2 / --amp-damping / --phase-damping / --readout-error [-01 / -10] /
// --method / --trajectories [/ --seed] (grad/noise.hpp).
struct NoiseOptions {
  NoiseModel model;
  std::string model_file;  // --noise-model FILE.json (then the other error options are refused)
  std::string method = "trajectories";  // or "density" (exact density matrix, --method)
  int trajectories = 0;  // 0: kDefaultTrajectories when some noise is given
  std::uint64_t seed = 0;
  bool seed_given = false;
  static constexpr int kDefaultTrajectories = 100;
  // with_seed: also --seed (a command whose --seed serves more sets `seed` itself).
  void add(CLI::App& cmd, bool with_seed);
  void add_errors(CLI::App& cmd);  // the error options only (train: noise-aware training)
  bool active() const { return !model.empty(); }
  bool density() const { return method == "density"; }
  int n_trajectories() const { return trajectories > 0 ? trajectories : kDefaultTrajectories; }
  void check() const;  // --trajectories or --seed without noise is an error
  nlohmann::json to_json() const;  // the model, trajectories and seed
};

// A device's noise model from a JSON file (schema: docs/noise.md). Any
// problem: std::runtime_error "FILE: field 'F': what is wrong".
NoiseModel load_noise_model(const std::string& path);

// --seed, validated by parse_seed; `given` is set when it appears.
void add_seed_option(CLI::App& cmd, std::uint64_t& seed, bool& given, const std::string& help);

// Model flags on top of a ModelConfig.
void add_model_options(CLI::App& cmd, model::ModelConfig& mc, std::string& model_name);

// A CLI11 check that runs an option's parse function: its message on a bad value.
template <class Enum>
CLI::Validator parses_as(Enum (*parse)(std::string_view)) {
  return CLI::Validator(
      [parse](std::string& v) {
        try {
          parse(v);
          return std::string();
        } catch (const std::invalid_argument& e) {
          return std::string(e.what());
        }
      },
      "NAME");
}

// An option whose value is parsed by parse (e.g. model::parse_readout) into
// target; the help shows the default, a bad value gets parse's message.
template <class Enum>
CLI::Option* add_enum_option(CLI::App& cmd, const std::string& flag, Enum& target, Enum (*parse)(std::string_view),
                             const std::string& help) {
  return cmd.add_option_function<std::string>(flag, [&target, parse](const std::string& v) { target = parse(v); }, help)
      ->check(parses_as(parse))
      ->default_str(to_string(target));
}

// "qnn-matched": a QNN whose depth gives about as many parameters as the QMoE
// built from the same flags.
model::ModelConfig resolve_model(model::ModelConfig mc, const std::string& model_name);

void set_threads(int threads);  // 0: all cores

// A live progress line on stderr for long work ("label [####....] 40% 12 samples/s,
// 30 s left"), drawn only when stderr is a terminal; the rate counts from
// construction. finish() clears the line.
class ProgressLine {
 public:
  explicit ProgressLine(std::string label);
  void update(std::size_t done, std::size_t total);
  void finish();

 private:
  std::string label_;
  bool tty_;
  double start_;
};

// A file or directory of the source tree (e.g. "experiments", "scripts/plot_run.py"):
// ./rel if it exists, else rel in the nearest ancestor of the qmoe binary's
// directory that has it (build/qmoe -> the checkout), so commands work from any
// directory. Empty if none has it.
std::string source_path(const std::string& rel);

// The machine's available memory in bytes (MemAvailable of /proc/meminfo; 0 if unknown).
double available_memory_bytes();
std::string format_bytes(double bytes);  // "12.3 MiB", "10.2 GiB"
// Refuses (one error line) when `need` bytes exceed the available memory,
// unless `override_given` (--no-memory-check); `what` says what takes it.
void check_memory(double need, const std::string& what, bool override_given);

// Creates dir and its parents; a failure is one line naming the directory
// ("cannot create directory DIR: Read-only file system").
void make_directories(const std::string& dir);

// A seed option's value: decimal 0 .. 2^64-1 (throws CLI::ValidationError
// otherwise; CLI11 would wrap negative values and clamp large ones).
std::uint64_t parse_seed(const std::string& text);

}  // namespace qmoe::cli
