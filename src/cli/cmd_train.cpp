// qmoe train: trains a QMoE or QNN on a task, writing DIR/config.json,
// DIR/metrics.csv, DIR/checkpoint (last epoch) and DIR/checkpoint.best
// (cli/run_dir.hpp: the checkpoint carries the truth, the rest follows from it).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "cli/cli.hpp"
#include "cli/mpi.hpp"
#include "cli/run_dir.hpp"
#include "cli/train_common.hpp"
#include "grad/chunks.hpp"  // thread_count
#include "train/checkpoint.hpp"

namespace qmoe::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct TrainArgs {
  DataOptions data;
  model::ModelConfig model;
  std::string model_name = "qmoe";
  train::TrainConfig train;
  NoiseOptions noise;  // noise-aware training: copied into train.noise
  std::string out = "runs/latest";
  bool resume = false;
  std::string init_from;    // fine-tuning: start from this checkpoint's parameters
  std::string config_file;  // a run's config.json: its settings, then the flags given on top
  int threads = 0;
  bool json = false;
  bool no_memory_check = false;
  bool epochs_given = false;
  std::vector<std::string> given;  // the options given on the command line
  double val = 0;  // fraction of training data held out and evaluated instead of the test split
};

// The flags that set a run's settings, and where each lives in config.json /
// the checkpoint ({"task": ..., "model": ..., "train": ...}). The others
// (--out, --threads, --data-dir, --json, ...) may differ from run to run.
struct SettingFlag {
  const char* flag;
  const char* section;
  const char* key;
};
constexpr SettingFlag kSettingFlags[] = {
    {"--task", "task", "task"}, {"--scaling", "task", "scaling"}, {"--train-limit", "task", "train_limit"},
    {"--test-limit", "task", "test_limit"}, {"--test-csv", "task", "test_csv"}, {"--val", "task", "val"},
    {"--csv-header", "task", "csv_header"},
    {"--model", "model", "model"}, {"--ops", "model", "ops"}, {"--experts", "model", "experts"},
    {"--depth", "model", "depth"}, {"--qubits", "model", "data_qubits"}, {"--routing-depth", "model", "routing_depth"},
    {"--routing-encoder", "model", "routing_encoder"}, {"--aggregation", "model", "aggregation"},
    {"--readout", "model", "readout"}, {"--ring-every", "model", "encoder_ring_every"},
    {"--logit-scale", "model", "logit_scale"}, {"--load-balance", "model", "load_balance"},
    {"--routing-entropy", "model", "routing_entropy"}, {"--expert-reupload", "model", "expert_reupload"},
    {"--routing-reupload", "model", "routing_reupload"}, {"--routing", "model", "routing"},
    {"--top-k", "model", "top_k"},
    {"--epochs", "train", "epochs"}, {"--batch", "train", "batch"}, {"--lr", "train", "lr"},
    {"--seed", "train", "seed"}, {"--gradient", "train", "gradient"}, {"--chunk", "train", "chunk"},
    {"--shots", "train", "shots"}, {"--noise-model", "train", "noise"}, {"--depol1", "train", "noise"},
    {"--depol2", "train", "noise"}, {"--readout-error", "train", "noise"}, {"--readout-01", "train", "noise"},
    {"--readout-10", "train", "noise"}, {"--amp-damping", "train", "noise"}, {"--phase-damping", "train", "noise"}};

// A model config's JSON with every field a flag sets: ModelConfig::to_json()
// leaves issue 19's fields out at their defaults (older configs compare equal),
// so they are filled in here for overlaying and comparing flags.
json model_settings(const model::ModelConfig& mc) {
  json j = mc.to_json();
  j["routing_entropy"] = mc.routing_entropy;
  j["expert_reupload"] = mc.expert_reupload;
  j["routing_reupload"] = mc.routing_reupload;
  j["routing"] = model::to_string(mc.routing);
  j["top_k"] = mc.top_k;
  return j;
}

bool given(const TrainArgs& a, const std::string& flag) {
  return std::find(a.given.begin(), a.given.end(), flag) != a.given.end();
}

// The settings the flags ask for, in config.json's layout.
json flag_settings(const TrainArgs& a) {
  json task = a.data.to_json();
  task["val"] = a.val;
  json model = model_settings(a.model);
  model["model"] = a.model_name;
  return {{"task", task}, {"model", model}, {"train", a.train.to_json()}};
}

// `base` (a config.json's or checkpoint's settings) with each given flag's value on top.
json overlay_given(json base, const TrainArgs& a) {
  const json flags = flag_settings(a);
  for (const SettingFlag& f : kSettingFlags)
    if (given(a, f.flag)) base[f.section][f.key] = flags[f.section][f.key];
  return base;
}

// The given flags whose value differs from `ck`'s settings, each as
// "--depth 4 (checkpoint: 3)"; --epochs is left out (it may extend a run).
// --model qnn-matched is compared through the depth it resolves to.
std::string differing_flags(const TrainArgs& a, const train::Checkpoint& ck, bool model_only) {
  const std::string scaling = DataOptions::from_json(ck.task).scaling_name();  // checks the task entry first
  json have = {{"task", ck.task}, {"model", model_settings(ck.model)}, {"train", ck.train.to_json()}};
  have["task"]["val"] = ck.task.value("val", 0.0);
  have["task"]["scaling"] = scaling;
  json want = overlay_given(have, a);
  if (given(a, "--model") && a.model_name == "qnn-matched") {
    model::ModelConfig mc = a.model;
    mc.n_classes = ck.model.n_classes;
    mc.n_features = ck.model.n_features;
    want["model"]["model"] = "qnn";
    want["model"]["depth"] = resolve_model(mc, a.model_name).depth;
  }
  std::string out;
  for (const SettingFlag& f : kSettingFlags) {
    if (!given(a, f.flag) || std::string(f.flag) == "--epochs") continue;
    if (model_only && std::string(f.section) != "model") continue;
    const json& w = want[f.section][f.key];
    const json& h = have[f.section][f.key];
    const bool depth_too = std::string(f.flag) == "--model" && want["model"]["depth"] != have["model"]["depth"];
    if (w == h && !depth_too) continue;
    out += (out.empty() ? "" : ", ") + std::string(f.flag) + " " + (w.is_string() ? w.get<std::string>() : w.dump()) +
           " (checkpoint: " + (h.is_string() ? h.get<std::string>() : h.dump()) +
           (depth_too ? ", depth " + have["model"]["depth"].dump() : "") + ")";
  }
  return out;
}

// --config FILE: the settings of that config.json, with the given flags on top.
void apply_config_file(TrainArgs& a) {
  std::ifstream f(a.config_file);
  if (!f) throw std::runtime_error("cannot open " + a.config_file);
  const json cfg = json::parse(f, nullptr, false);
  if (cfg.is_discarded() || !cfg.is_object() || !cfg.contains("model") || !cfg.contains("train") ||
      !cfg.contains("task"))
    throw std::runtime_error(a.config_file + " is not a qmoe config.json (needs \"model\", \"train\" and \"task\")");
  json s = overlay_given(cfg, a);
  if (given(a, "--experts")) s["model"]["routing_qubits"] = 0;  // config.json holds the resolved count
  const std::string data_dir = a.data.data_dir;
  try {
    a.data = DataOptions::from_json(s.at("task"));
    a.val = s.at("task").value("val", 0.0);
    if (!s.at("task").value("val", json(0.0)).is_number()) throw std::runtime_error("\"val\" is not a number");
    a.model = model::ModelConfig::from_json(s.at("model"));
    a.model_name = given(a, "--model") ? a.model_name : std::string(model::to_string(a.model.model));
    a.train = train::TrainConfig::from_json(s.at("train"));
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (what.rfind("damaged checkpoint: ", 0) == 0) what.erase(0, 20);
    throw std::runtime_error(a.config_file + ": " + what);
  }
  a.data.data_dir = data_dir;
  a.epochs_given = true;  // the file's epochs (or --epochs) is the total
}

void run_train(TrainArgs& a) {
  set_threads(a.threads);
  if (a.resume && !a.init_from.empty())
    throw std::runtime_error("--init-from starts a new run from a checkpoint's parameters; --resume continues the run in --out: give one");
  if (!a.config_file.empty()) apply_config_file(a);
  const std::string ckpt_path = (fs::path(a.out) / "checkpoint").string();
  train::Checkpoint ck;
  bool resumed = false;
  if (a.resume && !fs::exists(ckpt_path))
    throw std::runtime_error("--resume: no checkpoint in " + a.out + " to continue");
  if (fs::exists(ckpt_path)) {
    if (!a.resume)
      throw std::runtime_error(a.out + " already holds a checkpoint: pass --resume to continue it, or choose another --out");
    ck = train::load_checkpoint(ckpt_path);
    const std::string differ = differing_flags(a, ck, false);
    if (!differ.empty())
      throw std::runtime_error("--resume continues with the checkpoint's settings, and these flags differ: " + differ +
                               " (drop them, or train into another --out)");
    const int epochs = a.train.epochs;
    const std::string data_dir = a.data.data_dir;  // where the data is may differ from run to run
    a.data = DataOptions::from_json(ck.task);
    a.data.data_dir = data_dir;
    if (a.epochs_given && epochs < ck.state.epoch)
      throw std::runtime_error("--resume --epochs " + std::to_string(epochs) + ": the checkpoint has already trained " +
                               std::to_string(ck.state.epoch) + " epochs");
    if (a.epochs_given) ck.train.epochs = epochs;  // --epochs may extend a finished run
    resumed = true;
  }
  data::TaskData td = a.data.load();
  if (resumed) a.val = ck.task.value("val", 0.0);
  if (a.val > 0) {  // model selection without touching the test split
    data::Split sp = data::split_validation(td.train, a.val, resumed ? ck.train.seed : a.train.seed);
    td.train = std::move(sp.first);
    td.test = std::move(sp.second);
  }
  train::Checkpoint init;  // --init-from: the checkpoint whose parameters start this run
  if (!resumed && !a.init_from.empty()) {
    std::error_code ec;
    const std::string path = fs::is_directory(a.init_from, ec) ? (fs::path(a.init_from) / "checkpoint").string() : a.init_from;
    if (!fs::exists(path, ec)) throw std::runtime_error("--init-from: checkpoint " + path + " does not exist");
    init = train::load_checkpoint(path);
    const std::string differ = differing_flags(a, init, true);
    if (!differ.empty())
      throw std::runtime_error("--init-from keeps the checkpoint's model, and these flags differ: " + differ);
    if (init.model.n_classes != td.train.n_classes || init.model.n_features != td.train.n_features)
      throw std::runtime_error("--init-from: the model in " + path + " takes " + std::to_string(init.model.n_features) +
                               " features and " + std::to_string(init.model.n_classes) + " classes; task " + td.task +
                               " has " + std::to_string(td.train.n_features) + " and " +
                               std::to_string(td.train.n_classes));
    a.model = init.model;
    a.model_name = model::to_string(init.model.model);
  }
  // A CSV task's features are no 8x8 image: the default routing encoder
  // (quadrant means) does not apply, so its default there is full U(z).
  if (!resumed && a.config_file.empty() && a.init_from.empty() && a.data.is_csv() && !given(a, "--routing-encoder"))
    a.model.routing_encoder = model::RoutingEncoder::Full;
  if (!resumed) {
    a.model.n_classes = td.train.n_classes;
    a.model.n_features = td.train.n_features;
    ck.model = resolve_model(a.model, a.model_name);
    ck.train = a.train;
    ck.task = a.data.to_json();
    if (a.val > 0) ck.task["val"] = a.val;
    ck.task["class_names"] = td.train.class_names;  // predict --input names the classes without the data
    if (td.transform.kind != data::FeatureScaling::None) ck.task["feature_transform"] = DataOptions::transform_json(td.transform);
    if (!init.state.theta.empty()) ck.task["init_from"] = fs::absolute(a.init_from).string();
  }
  const model::Model m = model::build_model(ck.model);
  // Before any state vector is allocated (a 24-qubit run takes gigabytes).
  const double mem = train::estimate_training_bytes(m, ck.train, detail::thread_count());
  check_memory(mem, "training " + std::to_string(m.circuit.n_qubits) + " qubits (batch " +
                        std::to_string(ck.train.batch) + ", " + std::to_string(detail::thread_count()) + " threads)",
               a.no_memory_check);
  if (!resumed) {
    ck.state = train::initial_state(m, ck.train);
    if (!init.state.theta.empty()) ck.state.theta = init.state.theta;  // fresh optimiser state and history
  }
  ck.train.validate();  // before anything is written
  if (td.train.size() == 0) throw std::runtime_error("the training split is empty");
  if (td.test.size() == 0)
    throw std::runtime_error(a.val > 0 ? "the validation split is empty: raise --val or the training samples"
                                       : "the task has no test split: give one with --test-csv or hold one out with --val");
  // Under mpirun every rank trains (its share of each batch, the same state
  // after each step); rank 0 alone writes (cli/mpi.hpp).
  const bool writer = mpi::rank() == 0;
  std::optional<RunDir> run;  // rank 0's files
  if (writer) {
    make_directories(a.out);
    run.emplace(a.out, a.val > 0);
    // After a kill between the checkpoint's rename and the others': checkpoint.best
    // and metrics.csv as the checkpoint says (docs/checkpoints.md).
    if (resumed) run->rebuild_from(ck);
  }
  json model_cfg = ck.model.to_json();
  model_cfg["routing_qubits"] = m.routing_qubits.size();  // resolved (0 in the config means ceil(log2 L))
  json cfg = {{"model", model_cfg}, {"train", ck.train.to_json()}, {"task", ck.task},
                        {"params", m.n_params()}, {"qubits", m.circuit.n_qubits}, {"gates", m.circuit.gates.size()},
                        {"train_samples", td.train.size()}, {"test_samples", td.test.size()}};
  if (writer) run->write_config(cfg);

  const bool tty = isatty(fileno(stderr));
  std::fprintf(stderr, "%s %s on %s: %d qubits, %d parameters, %zu train / %zu %s samples, about %s of memory%s\n",
               model::to_string(ck.model.model), ck.model.ops.c_str(), td.task.c_str(), m.circuit.n_qubits, m.n_params(),
               td.train.size(), td.test.size(), a.val > 0 ? "validation" : "test", format_bytes(mem).c_str(),
               resumed ? (", resuming after epoch " + std::to_string(ck.state.epoch)).c_str() : "");
  // The rate counts from the end of an epoch's first batch (that batch's start
  // is not seen), over the samples done since: no rate until a second batch.
  auto t_first = std::chrono::steady_clock::now();
  std::size_t first_done = 0;
  train::Callbacks cb;
  cb.on_batch = [&](int epoch, std::size_t done, std::size_t total, double loss, double acc) {
    if (!tty) return;
    if (done <= std::size_t(a.train.batch)) t_first = std::chrono::steady_clock::now(), first_done = done;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_first).count();
    const double rate = done > first_done && secs > 0 ? double(done - first_done) / secs : 0.0;
    const int width = 24, filled = int(width * double(done) / double(total));
    std::string speed = "";
    if (rate > 0) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " %.0f samples/s, %.0f s left", rate, double(total - done) / rate);
      speed = buf;
    }
    std::fprintf(stderr, "\repoch %d/%d [%s%s] %3d%% loss %.4f acc %.2f%%%s   ", epoch, ck.train.epochs,
                 std::string(std::size_t(filled), '#').c_str(), std::string(std::size_t(width - filled), '.').c_str(),
                 int(100.0 * double(done) / double(total)), loss, train::to_percent(acc), speed.c_str());
  };
  cb.on_epoch = [&](const train::TrainState& st, const train::EpochMetrics& e, bool best) {
    ck.state = st;
    if (writer) run->write_epoch(ck, best);
    std::fprintf(stderr, "%sepoch %d/%d: train loss %.4f acc %.2f%%, %s loss %.4f acc %.2f%%, %.1f s\n",
                 tty ? "\r\033[K" : "", e.epoch, ck.train.epochs, e.train_loss, 100 * e.train_acc,
                 a.val > 0 ? "validation" : "test", e.test_loss,
                 100 * e.test_acc, e.seconds);
  };
  try {
    train::train(m, ck.train, td.train, td.test, ck.state, cb, mpi::data_parallel());
  } catch (const train::NonFiniteError& e) {  // ck.state: the last checkpoint written, if any
    throw std::runtime_error(std::string(e.what()) + (ck.state.epoch > 0 ? "; " + ckpt_path + " keeps epoch " +
                                                                               std::to_string(ck.state.epoch)
                                                                         : "; no checkpoint was written"));
  }
  if (writer) run->write_checkpoint(ck);
  if (mpi::size() > 1) {
    const mpi::CommStats c = mpi::comm_stats();
    std::fprintf(stderr, "%d ranks: %ld gathers, %.3g MB, %.3g s in MPI_Allgatherv on rank 0\n", mpi::size(), c.calls,
                 c.bytes / 1e6, c.seconds);
  }
  // The last epoch's evaluation; with no epoch trained (--epochs 0), the
  // initial parameters' (what `qmoe eval` of this checkpoint reports).
  double acc, loss;
  if (!ck.state.history.empty()) {
    acc = ck.state.history.back().test_acc;
    loss = ck.state.history.back().test_loss;
  } else {
    Workspace<double> ws;
    const train::Evaluation e = train::evaluate(m, ck.state.theta, td.test, ws, nullptr, mpi::data_parallel());
    acc = e.accuracy, loss = e.loss;
  }
  if (!writer) return;
  if (a.json) {
    const json out = {{"out", a.out}, {"task", td.task}, {"split", a.val > 0 ? "validation" : "test"},
                      {"epoch", ck.state.epoch}, {"accuracy_percent", train::to_percent(acc)}, {"loss", loss},
                      {"best_epoch", ck.state.best_epoch}, {"params", m.n_params()}, {"qubits", m.circuit.n_qubits},
                      {"train_samples", td.train.size()}, {"test_samples", td.test.size()}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("%s accuracy: %.2f%%\n", a.val > 0 ? "validation" : "test", train::to_percent(acc));
  }
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "train a QMoE or a baseline QNN");
  a->data.add(*cmd, false);
  add_model_options(*cmd, a->model, a->model_name);
  cmd->add_option("--epochs", a->train.epochs, "epochs")->check(CLI::Range(0, train::TrainConfig::kMaxEpochs));
  cmd->add_option("--batch", a->train.batch, "mini-batch size")->check(CLI::Range(1, train::TrainConfig::kMaxBatch));
  cmd->add_option("--lr", a->train.lr, "Adam learning rate")->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a->train.seed, "seed (initial parameters and shuffling)");
  add_enum_option(*cmd, "--gradient", a->train.gradient, train::parse_gradient_method, "adjoint (default) or param-shift");
  cmd->add_option("--chunk", a->train.chunk,
                 "samples per work item of the threads and MPI ranks (default 16; the sums go chunk by chunk, so it is "
                 "part of the run's numbers)")
      ->check(CLI::Range(1, train::TrainConfig::kMaxBatch));
  cmd->add_option("--shots", a->train.shots,
                  "train as a device would: expectations and parameter-shift gradients from N shots per sample "
                  "(implies --gradient param-shift)")
      ->check(CLI::Range(0L, train::TrainConfig::kMaxShots));
  a->noise.add_errors(*cmd);  // noise-aware training: each step on one sampled error realisation
  cmd->add_option("--out", a->out, "output directory");
  cmd->add_flag("--resume", a->resume,
                "continue the checkpoint in --out (flags that set the run must equal the checkpoint's; --epochs sets a new total)");
  cmd->add_option("--init-from", a->init_from,
                  "start from this checkpoint's parameters (fine-tuning: its model, a fresh optimiser)");
  cmd->add_option("--config", a->config_file,
                  "take the settings of a run's config.json (flags given override them), e.g. to rerun a run killed in its first epoch");
  cmd->add_flag("--json", a->json, "print the result as one JSON line (progress stays on stderr)");
  cmd->add_flag("--no-memory-check", a->no_memory_check,
                "train even when the estimated memory exceeds what the machine has available");
  cmd->add_option("--val", a->val, "hold out this fraction of the training data and evaluate on it instead of the test split")
      ->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--threads", a->threads, "threads (0: all cores)")->check(CLI::NonNegativeNumber);
  cmd->callback([a, cmd] {
    a->epochs_given = cmd->count("--epochs") > 0;
    for (const CLI::Option* o : cmd->get_options())
      if (o->count() > 0) a->given.push_back(o->get_name());
    a->noise.check();
    a->train.noise = a->noise.model;
    if (a->train.shots > 0 && cmd->count("--gradient") == 0) a->train.gradient = train::GradientMethod::ParamShift;
    run_train(*a);
  });
}

}  // namespace qmoe::cli
