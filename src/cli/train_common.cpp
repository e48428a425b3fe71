#include "cli/train_common.hpp"

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace qmoe::cli {

void DataOptions::add(CLI::App& cmd, bool task_required) {
  auto* t = cmd.add_option("--task", task, "task: " + data::task_list() + ", or a CSV file");
  if (task_required) t->required();
  cmd.add_option("--data-dir", data_dir, "data directory (default $QMOE_DATA_DIR or ~/.local/share/qmoe)");
  cmd.add_option("--scaling", scaling, "pixel to angle mapping of the image tasks: tq (default), unit, pi");
  cmd.add_option("--train-limit", train_limit, "use only the first N training samples")->check(CLI::NonNegativeNumber);
  cmd.add_option("--test-limit", test_limit, "use only the first N test samples")->check(CLI::NonNegativeNumber);
  cmd.add_option("--test-csv", test_csv, "CSV tasks: a separate test file");
}

bool DataOptions::is_csv() const { return data::is_csv_path(task); }

std::string DataOptions::scaling_name() const {
  return is_csv() ? "none" : scaling.empty() ? "tq" : scaling;
}

nlohmann::json DataOptions::to_json() const {
  // A CSV path is stored absolute so eval / predict work from any directory.
  nlohmann::json j = {{"task", is_csv() ? std::filesystem::absolute(task).string() : task},
                      {"scaling", scaling_name()}, {"train_limit", train_limit}, {"test_limit", test_limit}};
  if (!test_csv.empty()) j["test_csv"] = std::filesystem::absolute(test_csv).string();
  return j;
}

DataOptions DataOptions::from_json(const nlohmann::json& j) {
  DataOptions d;
  try {
    d.task = j.value("task", d.task);
    d.scaling = j.value("scaling", d.scaling);
    if (d.is_csv()) d.scaling.clear();  // older checkpoints stored "tq" for CSV tasks too
    d.train_limit = j.value("train_limit", 0L);
    d.test_limit = j.value("test_limit", 0L);
    d.test_csv = j.value("test_csv", std::string());
  } catch (const nlohmann::json::exception&) {
    throw std::runtime_error("damaged checkpoint: bad \"task\" entry");
  }
  if (d.train_limit < 0 || d.test_limit < 0) throw std::runtime_error("damaged checkpoint: negative sample limit");
  return d;
}

data::TaskData DataOptions::load() const {
  data::LoadOptions o;
  o.data_dir = data_dir;
  data::check_scaling_applies(task, !scaling.empty());
  if (!is_csv()) o.scaling = data::parse_scaling(scaling_name());
  o.max_train = std::size_t(train_limit);
  o.max_test = std::size_t(test_limit);
  o.test_csv = test_csv;
  return data::load_task(task, o);
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

void NoiseOptions::add(CLI::App& cmd, bool with_seed) {
  cmd.add_option("--depol1", model.p1, "noise: error probability after each 1-qubit gate (X, Y or Z, p/3 each)")
      ->check(probability());
  cmd.add_option("--depol2", model.p2, "noise: error probability of each qubit of a multi-qubit gate")
      ->check(probability());
  cmd.add_option("--readout-error", model.readout, "noise: bit-flip probability of each measured qubit")
      ->check(probability());
  cmd.add_option("--trajectories", trajectories,
                 "noise: trajectories averaged per input (default " + std::to_string(kDefaultTrajectories) + ")")
      ->check(CLI::Range(1, 10000000));
  if (with_seed) add_seed_option(cmd, seed, seed_given, "noise: seed of the sampled errors (default 0)");
}

void NoiseOptions::check() const {
  if (trajectories > 0 && !active())
    throw std::runtime_error("--trajectories needs noise: give --depol1, --depol2 or --readout-error");
  if (seed_given && !active())
    throw std::runtime_error("--seed seeds the noise: without --depol1, --depol2 or --readout-error the result is exact");
}

nlohmann::json NoiseOptions::to_json() const {
  return {{"depol1", model.p1}, {"depol2", model.p2}, {"readout_error", model.readout},
          {"trajectories", n_trajectories()}, {"seed", seed}};
}

void add_seed_option(CLI::App& cmd, std::uint64_t& seed, bool& given, const std::string& help) {
  cmd.add_option_function<std::string>(
      "--seed", [&seed, &given](const std::string& v) { seed = parse_seed(v), given = true; }, help);
}

void add_model_options(CLI::App& cmd, model::ModelConfig& mc, std::string& model_name) {
  cmd.add_option("--model", model_name,
                 "qmoe (default), qnn, qnn-matched (a QNN with as many parameters as the QMoE), "
                 "or sum (the experts summed, no router)")
      ->check(CLI::IsMember({"qmoe", "qnn", "qnn-matched", "sum"}));
  cmd.add_option("--ops", mc.ops, "trainable rotations: rx, ry, rxry (default), rxryrz")
      ->check(CLI::IsMember({"rx", "ry", "rxry", "rxryrz"}));
  cmd.add_option("--experts", mc.experts, "number of experts L (QMoE)")->check(CLI::Range(1, 64));
  cmd.add_option("--depth", mc.depth, "ansatz layers per expert / of the QNN")->check(CLI::Range(0, 1000));
  cmd.add_option("--qubits", mc.data_qubits, "data qubits")->check(CLI::Range(1, 24));
  cmd.add_option("--routing-depth", mc.routing_depth, "layers of the routing circuit G")->check(CLI::Range(0, 1000));
  cmd.add_option("--routing-encoder", mc.routing_encoder,
                 "full (U(z) on the routing register too), quadrant (4 quadrant means), grid (16 means of 2x2 "
                 "blocks), joint (one U(z) across both registers)")
      ->check(CLI::IsMember({"full", "quadrant", "grid", "joint"}));
  cmd.add_option("--aggregation", mc.aggregation, "cnot (default) or none")->check(CLI::IsMember({"cnot", "none"}));
  cmd.add_option("--readout", mc.readout, "2-class read-out: pairs (default) or qubits")
      ->check(CLI::IsMember({"pairs", "qubits"}));
  cmd.add_option("--ring-every", mc.encoder_ring_every, "CNOT ring after every k encoder layers (0: none)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--logit-scale", mc.logit_scale, "logits = scale * <Z> read-out (default 40)")
      ->check(CLI::Range(1e-6, 1000.0));
  cmd.add_option("--load-balance", mc.load_balance, "weight of the load-balancing loss (default 0: off)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--routing-entropy", mc.routing_entropy,
                 "weight of the per-sample routing entropy loss (confident choices; default 0: off)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_flag("--expert-reupload", mc.expert_reupload, "the data encoder again between expert (or QNN) layers");
  cmd.add_flag("--routing-reupload", mc.routing_reupload,
               "the routing encoder (quadrant or grid) again before every layer of G");
  cmd.add_option_function<std::string>(
         "--routing", [&mc](const std::string& v) { mc.routing = model::parse_routing(v); },
         "soft (default: the mixture) or sampled (top-k experts drawn per sample, score-function gradient)")
      ->check(CLI::IsMember({"soft", "sampled"}));
  cmd.add_option("--top-k", mc.top_k, "sampled routing: experts drawn per sample (default 1)")->check(CLI::Range(1, 8));
}

model::ModelConfig resolve_model(model::ModelConfig mc, const std::string& model_name) {
  if (model_name == "qnn-matched") {
    model::ModelConfig q = mc;
    q.model = "qmoe";
    const int target = model::build_model(q).n_params();
    mc.model = "qnn";
    mc.depth = model::matched_depth(mc, target);
    mc.routing = model::Routing::Soft;  // a QNN has no router
  } else if (model_name == "qnn") {
    mc.model = model_name;
    mc.routing = model::Routing::Soft;
  } else {
    mc.model = model_name;
  }
  mc.validate();
  return mc;
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
