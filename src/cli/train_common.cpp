#include "cli/train_common.hpp"

#include "model/json_integer.hpp"
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace qmoe::cli {

void DataOptions::add(CLI::App& cmd, bool task_required) {
  auto* t = cmd.add_option("--task", task, "task: " + data::task_list() + ", or a CSV file");
  if (task_required) t->required();
  cmd.add_option("--data-dir", data_dir, "data directory")
      ->default_str("$QMOE_DATA_DIR, else ${XDG_DATA_HOME:-~/.local/share}/qmoe");
  cmd.add_option("--scaling", scaling,
                 "features to angles: images unit (p/255), tq (TorchQuantum's (p/255-0.1307)/0.3081) or pi "
                 "(p/255*pi); CSV none, standard (zero mean, unit variance) or minmax ([0, 1]), fitted on the "
                 "training split")
      ->check(CLI::IsMember({"unit", "tq", "pi", "none", "standard", "minmax"}))
      ->default_str(data::scaling_name(data::kDefaultScaling) + " (CSV: none)");
  cmd.add_option("--csv-header", csv_header,
                 "CSV tasks: is the first line a header? auto (yes if its feature fields are all text), yes, no")
      ->check(CLI::IsMember({"auto", "yes", "no"}));
  cmd.add_option("--train-limit", train_limit, "use only the first N training samples")->check(CLI::NonNegativeNumber);
  cmd.add_option("--test-limit", test_limit, "use only the first N test samples")->check(CLI::NonNegativeNumber);
  cmd.add_option("--test-csv", test_csv, "CSV tasks: a separate test file");
}

bool DataOptions::is_csv() const { return data::is_csv_path(task); }

std::string DataOptions::scaling_name() const {
  if (!scaling.empty()) return scaling;
  return is_csv() ? "none" : data::scaling_name(data::kDefaultScaling);
}

nlohmann::json DataOptions::to_json() const {
  // A CSV path is stored absolute so eval / predict work from any directory.
  nlohmann::json j = {{"task", is_csv() ? std::filesystem::absolute(task).string() : task},
                      {"scaling", scaling_name()}, {"train_limit", train_limit}, {"test_limit", test_limit}};
  if (!test_csv.empty()) j["test_csv"] = std::filesystem::absolute(test_csv).string();
  if (csv_header != "auto") j["csv_header"] = csv_header;
  if (!feature_transform.is_null()) j["feature_transform"] = feature_transform;
  return j;
}

DataOptions DataOptions::from_json(const nlohmann::json& j) {
  DataOptions d;
  try {
    d.task = j.value("task", d.task);
    d.scaling = j.value("scaling", d.scaling);
    if (d.is_csv() && d.scaling == "tq") d.scaling.clear();  // older checkpoints stored "tq" for CSV tasks too
    if (j.contains("train_limit")) d.train_limit = model::json_integer<long>(j["train_limit"], "train_limit");
    if (j.contains("test_limit")) d.test_limit = model::json_integer<long>(j["test_limit"], "test_limit");
    d.test_csv = j.value("test_csv", std::string());
    d.csv_header = j.value("csv_header", d.csv_header);
    d.feature_transform = j.value("feature_transform", nlohmann::json());
  } catch (const nlohmann::json::exception&) {
    throw std::runtime_error("damaged checkpoint: bad \"task\" entry");
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("damaged checkpoint: task ") + e.what());
  }
  if (d.train_limit < 0 || d.test_limit < 0) throw std::runtime_error("damaged checkpoint: negative sample limit");
  return d;
}

std::string data_dir_from_env(const std::string& flag) {
  return data::resolve_data_dir(flag, std::getenv("QMOE_DATA_DIR"), std::getenv("XDG_DATA_HOME"), std::getenv("HOME"));
}

data::LoadOptions load_options(const std::string& data_dir_flag) {
  data::LoadOptions o;
  try {
    o.default_data_dir = data_dir_from_env("");
  } catch (const std::runtime_error&) {  // no HOME: only --data-dir can say where
  }
  o.data_dir = data_dir_flag.empty() ? o.default_data_dir : data_dir_flag;
  return o;
}

data::TaskData DataOptions::load() const {
  data::LoadOptions o = load_options(data_dir);
  if (o.data_dir.empty() && !is_csv()) data_dir_from_env(data_dir);  // throws, naming what to set
  data::check_scaling_applies(task, scaling);
  if (!is_csv()) o.scaling = data::parse_scaling(scaling_name());
  if (is_csv()) {
    o.feature_scaling = data::parse_feature_scaling(scaling_name());
    o.csv.header = data::parse_csv_header(csv_header);
    o.feature_transform = transform();
  }
  o.max_train = std::size_t(train_limit);
  o.max_test = std::size_t(test_limit);
  o.test_csv = test_csv;
  return data::load_task(task, o);
}

data::FeatureTransform DataOptions::transform() const {
  data::FeatureTransform t;
  if (feature_transform.is_null()) return t;
  try {
    t.kind = data::parse_feature_scaling(scaling_name());
    t.offset = feature_transform.at("offset").get<std::vector<double>>();
    t.scale = feature_transform.at("scale").get<std::vector<double>>();
  } catch (const std::exception&) {
    throw std::runtime_error("damaged checkpoint: bad \"feature_transform\" entry (needs \"offset\" and \"scale\" arrays)");
  }
  return t;
}

nlohmann::json DataOptions::transform_json(const data::FeatureTransform& t) {
  if (t.kind == data::FeatureScaling::None) return nullptr;
  return {{"offset", t.offset}, {"scale", t.scale}};
}

// A probability option's check: a finite number in [0, 1] (CLI::Range lets NaN through).
CLI::Validator probability() {
  return CLI::Validator(
      [](std::string& v) {
        char* end = nullptr;
        const double p = std::strtod(v.c_str(), &end);
        return !v.empty() && *end == '\0' && p >= 0.0 && p <= 1.0 ? std::string()
                                                                  : "'" + v + "' is not a probability in [0, 1]";
      },
      "P");
}

NoiseModel load_noise_model(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open noise model " + path + ": " + std::strerror(errno));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(path + ": not valid JSON (byte " + std::to_string(e.byte) + ")");
  }
  NoiseModel m;
  try {
    m = train::noise_model_from_json(j);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  if (m.empty()) throw std::runtime_error(path + ": the noise model has no errors (all zero)");
  return m;
}

void NoiseOptions::add(CLI::App& cmd, bool with_seed) {
  add_errors(cmd);
  cmd.add_option("--method", method,
                 "noise: trajectories (default; Monte Carlo, any size) or density (exact density matrix, up to " +
                     std::to_string(kDensityMaxQubits) + " qubits)")
      ->check(CLI::IsMember({"trajectories", "density"}));
  cmd.add_option("--trajectories", trajectories,
                 "noise: trajectories averaged per input")
      ->check(CLI::Range(1, 10000000))
      ->default_str(std::to_string(kDefaultTrajectories));
  if (with_seed) add_seed_option(cmd, seed, seed_given, "noise: seed of the sampled errors");
}

void NoiseOptions::add_errors(CLI::App& cmd) {
  cmd.add_option_function<std::string>(
      "--noise-model", [this](const std::string& f) { model_file = f, model = load_noise_model(f); },
      "noise: a device's errors per gate kind and per qubit from a JSON file (docs/noise.md); "
      "instead of the other error options");
  cmd.add_option("--depol1", model.p1, "noise: error probability after each 1-qubit gate (X, Y or Z, p/3 each)")
      ->check(probability());
  cmd.add_option("--depol2", model.p2, "noise: error probability of each qubit of a multi-qubit gate")
      ->check(probability());
  cmd.add_option("--readout-error", model.readout, "noise: bit-flip probability of each measured qubit")
      ->check(probability());
  cmd.add_option("--readout-01", model.readout_01, "noise: probability a measured 0 reads 1 (default: --readout-error)")
      ->check(probability());
  cmd.add_option("--readout-10", model.readout_10, "noise: probability a measured 1 reads 0 (default: --readout-error)")
      ->check(probability());
  cmd.add_option("--amp-damping", model.amp_damping,
                 "noise: amplitude damping G (T1) after every gate on each of its qubits")
      ->check(probability());
  cmd.add_option("--phase-damping", model.phase_damping,
                 "noise: phase damping L (T2) after every gate on each of its qubits, after the amplitude damping")
      ->check(probability());
}

void NoiseOptions::check() const {
  if (!model_file.empty()) {
    NoiseModel file = load_noise_model(model_file);
    if (file.p1 != model.p1 || file.p2 != model.p2 || file.amp_damping != model.amp_damping ||
        file.phase_damping != model.phase_damping || file.readout != model.readout ||
        file.readout_01 != model.readout_01 || file.readout_10 != model.readout_10)
      throw std::runtime_error("--noise-model " + model_file + " holds the whole noise model: drop the other error options");
  }
  if (trajectories > 0 && !active())
    throw std::runtime_error("--trajectories needs noise: give --depol1, --depol2 or --readout-error");
  if (density() && !active())
    throw std::runtime_error("--method density simulates noise: give --depol1, --depol2, --amp-damping, "
                             "--phase-damping or --readout-error");
  if (density() && trajectories > 0)
    throw std::runtime_error("--trajectories is for --method trajectories: the density matrix is exact");
  if (seed_given && !active())
    throw std::runtime_error("--seed seeds the noise: without --depol1, --depol2 or --readout-error the result is exact");
}

nlohmann::json NoiseOptions::to_json() const {
  nlohmann::json j = {{"depol1", model.p1}, {"depol2", model.p2}, {"amp_damping", model.amp_damping},
                      {"phase_damping", model.phase_damping}, {"readout_error", model.readout},
                      {"readout_01", model.flip01()}, {"readout_10", model.flip10()}, {"method", method}};
  if (!density()) j["trajectories"] = n_trajectories(), j["seed"] = seed;
  if (model.p_multi >= 0) j["depol_multi"] = model.p_multi;
  if (!model_file.empty()) j["noise_model"] = model_file, j["per_qubit"] = !model.qubits.empty();
  return j;
}

void add_seed_option(CLI::App& cmd, std::uint64_t& seed, bool& given, const std::string& help) {
  cmd.add_option_function<std::string>(
         "--seed", [&seed, &given](const std::string& v) { seed = parse_seed(v), given = true; }, help)
      ->default_str(std::to_string(seed));
}

void add_model_options(CLI::App& cmd, model::ModelConfig& mc, std::string& model_name) {
  using MC = model::ModelConfig;  // its limits: the checkpoint and config readers check the same
  cmd.add_option("--model", model_name,
                 "qmoe (default), qnn, qnn-matched (a QNN with as many parameters as the QMoE), "
                 "or sum (the experts summed, no router)")
      ->check(CLI::IsMember({"qmoe", "qnn", "qnn-matched", "sum"}));
  cmd.add_option("--ops", mc.ops, "trainable rotations: rx, ry, rxry, rxryrz")
      ->check(CLI::IsMember({"rx", "ry", "rxry", "rxryrz"}));
  cmd.add_option("--experts", mc.experts, "number of experts L (QMoE)")->check(CLI::Range(1, MC::kMaxExperts));
  cmd.add_option("--depth", mc.depth, "ansatz layers per expert / of the QNN")->check(CLI::Range(0, MC::kMaxDepth));
  cmd.add_option("--qubits", mc.data_qubits, "data qubits")->check(CLI::Range(1, MC::kMaxDataQubits));
  cmd.add_option("--routing-depth", mc.routing_depth, "layers of the routing circuit G")->check(CLI::Range(0, MC::kMaxDepth));
  add_enum_option(cmd, "--routing-encoder", mc.routing_encoder, model::parse_routing_encoder,
                  "full (U(z) on the routing register too), quadrant (4 quadrant means), joint (one U(z) across both "
                  "registers), grid (16 means of 2x2 blocks)");
  add_enum_option(cmd, "--aggregation", mc.aggregation, model::parse_aggregation, "cnot (default) or none");
  add_enum_option(cmd, "--readout", mc.readout, model::parse_readout, "2-class read-out: pairs (default) or qubits");
  cmd.add_option("--ring-every", mc.encoder_ring_every, "CNOT ring after every k encoder layers (0: none)")
      ->check(CLI::Range(0, MC::kMaxFeatures));
  cmd.add_option("--logit-scale", mc.logit_scale, "logits = scale * <Z> read-out (default 40)")
      ->check(CLI::Range(1e-6, MC::kMaxLogitScale));
  cmd.add_option("--load-balance", mc.load_balance, "weight of the load-balancing loss (default 0: off)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--routing-entropy", mc.routing_entropy,
                 "weight of the per-sample routing entropy loss (confident choices; default 0: off)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_flag("--expert-reupload", mc.expert_reupload, "the data encoder again between expert (or QNN) layers");
  cmd.add_flag("--routing-reupload", mc.routing_reupload,
               "the routing encoder (quadrant or grid) again before every layer of G");
  add_enum_option(cmd, "--routing", mc.routing, model::parse_routing,
                  "soft (default: the mixture) or sampled (top-k experts drawn per sample, score-function gradient)");
  cmd.add_option("--top-k", mc.top_k, "sampled routing: experts drawn per sample")->check(CLI::Range(1, MC::kMaxTopK));
}

model::ModelConfig resolve_model(model::ModelConfig mc, const std::string& model_name) {
  if (model_name == "qnn-matched") {
    model::ModelConfig q = mc;
    q.model = model::ModelKind::QMoE;
    const int target = model::build_model(q).n_params();
    mc.model = model::ModelKind::QNN;
    mc.depth = model::matched_depth(mc, target);
    mc.routing = model::Routing::Soft;  // a QNN has no router
  } else if (model_name == "qnn") {
    mc.model = model::ModelKind::QNN;
    mc.routing = model::Routing::Soft;  // a QNN has no router
  } else {
    mc.model = model::parse_model_kind(model_name);
  }
  mc.validate();
  return mc;
}

void make_directories(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create directory " + dir + ": " + ec.message());
}

namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

ProgressLine::ProgressLine(std::string label)
    : label_(std::move(label)), tty_(isatty(fileno(stderr)) != 0), start_(now_seconds()) {}

void ProgressLine::update(std::size_t done, std::size_t total) {
  if (!tty_ || total == 0) return;
  const double secs = now_seconds() - start_, rate = secs > 0 ? double(done) / secs : 0.0;
  const int width = 24, filled = int(width * double(done) / double(total));
  std::fprintf(stderr, "\r%s [%s%s] %3d%% %.0f samples/s, %.0f s left   ", label_.c_str(),
               std::string(std::size_t(filled), '#').c_str(), std::string(std::size_t(width - filled), '.').c_str(),
               int(100.0 * double(done) / double(total)), rate, rate > 0 ? double(total - done) / rate : 0.0);
}

void ProgressLine::finish() {
  if (tty_) std::fprintf(stderr, "\r\033[K");
}

std::string source_path(const std::string& rel) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(rel, ec)) return rel;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  for (fs::path d = exe.parent_path(); !d.empty(); d = d.parent_path()) {
    if (fs::exists(d / rel, ec)) return (d / rel).string();
    if (d == d.root_path()) break;
  }
  return "";
}

double available_memory_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string key, unit;
  double kib = 0;
  while (f >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024.0;
  return 0;
}

std::string format_bytes(double bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

void check_memory(double need, const std::string& what, bool override_given) {
  const double have = available_memory_bytes();
  if (override_given || have <= 0 || need <= have) return;
  throw std::runtime_error(what + " needs about " + format_bytes(need) + ", more than the " + format_bytes(have) +
                           " this machine has available: use fewer --qubits, a smaller --batch or --threads, "
                           "or pass --no-memory-check to try anyway");
}

void set_threads(int threads) {
#ifdef _OPENMP
  if (threads > 0) omp_set_num_threads(threads);
#else
  (void)threads;
#endif
}

std::uint64_t parse_seed(const std::string& text) {
  const bool digits = !text.empty() && text.size() <= 20 &&
                      text.find_first_not_of("0123456789") == std::string::npos;
  errno = 0;
  const unsigned long long v = digits ? std::strtoull(text.c_str(), nullptr, 10) : 0;
  if (!digits || errno == ERANGE)
    throw CLI::ValidationError("--seed", "'" + text + "' is not an integer in 0 .. 18446744073709551615");
  return v;
}

}  // namespace qmoe::cli
